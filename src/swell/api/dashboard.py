"""The dashboard at `/`: a static page (static/) whose script reads the API with the user's token.

The chart library is plotly.js, served from the installed `plotly` Python package (the `api`
extra), never from a CDN and not copied into this repository: clusters may have no internet.
Without plotly the page still lists deployments and decisions and says what to install.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

from aiohttp import web

STATIC = importlib.resources.files("swell.api") / "static"
PLOTLY_JS = "plotly.min.js"
STATIC_PREFIXES = ("/static/", "/vendor/")  # files served from disk


def plotly_js() -> Path | None:
    """plotly.js as bundled by the plotly package, found without importing it (a slow import)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / PLOTLY_JS
    return path if path.is_file() else None


async def index(request: web.Request) -> web.StreamResponse:
    return web.Response(text=(STATIC / "index.html").read_text(encoding="utf-8"), content_type="text/html")


async def vendor(request: web.Request) -> web.StreamResponse:
    path = plotly_js()
    if path is None:
        return web.Response(
            status=404,
            text="// plotly is not installed: pip install plotly (swell's api extra) for the dashboard's charts\n",
            content_type="application/javascript",
        )
    return web.FileResponse(path, headers={"Cache-Control": "max-age=86400"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get(f"/vendor/{PLOTLY_JS}", vendor)
    app.router.add_static(STATIC_PREFIXES[0], Path(str(STATIC)))
