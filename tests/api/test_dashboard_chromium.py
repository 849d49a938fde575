"""The dashboard in headless Chromium: load through a running local deployment, the charts fill
and move, scale events and decisions show; a screenshot is saved as an artifact (path printed).

Driven over the DevTools protocol (aiohttp's websocket client). Skips when chromium is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from swell.api import dashboard
from tests.api import apihelp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(
        dashboard.plotly_js() is None, reason="plotly is not installed (pip install plotly)"
    ),
]
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
)  # fmt: skip
PROBE = """(() => {
  const s = document.querySelector('[data-deployment="chat"]');
  if (!s) return null;
  const lines = [...s.querySelectorAll('.chart path.js-line')].filter(p => (p.getAttribute('d') || '').length > 20);
  return {points: Number(s.dataset.points), lastT: s.dataset.lastT, lines: lines.length,
          decisions: s.querySelectorAll('.decisions li').length,
          scale: s.querySelectorAll('.decisions li.scale').length,
          markers: s.querySelectorAll('.chart .scatterlayer .points path').length};
})()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tab:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        await self.ws.send_json({"id": n, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == n:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return dict(msg["result"])

    async def evaluate(self, expr: str) -> Any:
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r["result"].get("value")


@contextlib.asynccontextmanager
async def chromium(session: aiohttp.ClientSession) -> AsyncIterator[Tab]:
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="swell-chromium-")
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        targets: list[dict[str, Any]] = []
        for _ in range(150):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                    targets = [t for t in await r.json() if t.get("type") == "page"]
                if targets:
                    break
            await asyncio.sleep(0.1)
        assert targets, "chromium's DevTools endpoint did not come up"
        async with session.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=64 << 20) as ws:
            yield Tab(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _load(url: str, stop: asyncio.Event) -> None:
    """Bounded load: 6 concurrent streams of short completions until stopped."""
    body = {"model": "chat", "prompt": "hello " * 20, "max_tokens": 24, "stream": True}
    async with aiohttp.ClientSession() as s:

        async def one() -> None:
            while not stop.is_set():
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with s.post(f"{url}/v1/completions", json=body) as r:
                        await r.read()

        await asyncio.gather(*(one() for _ in range(6)))


async def _until(tab: Tab, ok: Any, timeout_s: float = 40.0) -> dict[str, Any]:
    got: Any = None
    for _ in range(int(timeout_s / 0.25)):
        got = await tab.evaluate(PROBE)
        if got and ok(got):
            return dict(got)
        await asyncio.sleep(0.25)
    raise AssertionError(f"dashboard never showed what was expected; last probe: {got}")


async def test_dashboard_plots_live_data_in_chromium(tmp_path: Path) -> None:
    async with apihelp.running(tmp_path) as (srv, s):
        r = await s.post("/deployments", json=apihelp.chat_recipe(), headers=apihelp.AUTH)
        assert r.status == 201, await r.text()
        url = (await r.json())["url"]
        stop = asyncio.Event()
        load = asyncio.create_task(_load(url, stop))
        try:
            async with aiohttp.ClientSession() as plain, chromium(plain) as tab:
                await tab.call("Page.enable")
                await tab.call("Page.navigate", url=f"{srv.url}/")
                for _ in range(100):  # no token yet: the login form, no data
                    if await tab.evaluate("document.getElementById('login')?.hidden === false"):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the login form did not show without a token")
                assert await tab.evaluate("document.querySelectorAll('[data-deployment]').length") == 0
                await tab.call("Page.navigate", url=f"{srv.url}/#token={apihelp.TOKEN}")
                first = await _until(tab, lambda p: p["points"] >= 3 and p["lines"] >= 3)
                later = await _until(
                    tab, lambda p: p["points"] > first["points"] + 4 and p["lastT"] != first["lastT"]
                )
                # under load the deployment scales up: a scale decision listed and marked on the plot
                scaled = await _until(tab, lambda p: p["scale"] >= 1 and p["markers"] >= 1)
                assert later["decisions"] >= 1 and scaled["scale"] >= 1
                assert await tab.evaluate("location.hash") == ""  # the token left the address bar
                shot = await tab.call("Page.captureScreenshot", format="png")
            ts = await (await s.get("/deployments/chat/timeseries", headers=apihelp.AUTH)).json()
            assert any((x["offered_rps"] or 0) > 0 and (x["rps"] or 0) > 0 for x in ts["samples"])
            assert any(x["ttft_p95"] is not None for x in ts["samples"])
        finally:
            stop.set()
            await load
    out = Path(os.environ.get("SWELL_ARTIFACTS", tempfile.gettempdir())) / "swell-dashboard.png"
    import base64

    out.write_bytes(base64.b64decode(shot["data"]))
    print(f"dashboard screenshot: {out}")
    assert out.stat().st_size > 10_000
