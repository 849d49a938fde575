"""The API's aiohttp application: routes, the token check, size limits and JSON errors.

`make_app(manager, token)` builds it; `serve(...)` runs it beside other work in the same loop and
returns the runner to clean up. Every error is JSON `{error, problems}` with a 4xx status that
says what is wrong; an unexpected exception is logged and answered 500 without a traceback.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import pydantic
from aiohttp import typedefs, web

from swell import errors, recipe
from swell.api import auth, dashboard, deployments, routes, schemas, telemetry

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20  # a recipe is a few KiB; a larger body is a 413

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, problems: list[errors.Problem] | None = None) -> web.Response:
    body = schemas.ErrorOut(
        error=message,
        problems=[
            schemas.ProblemOut(path=errors.cut(p.path), value=_jsonable(p.value), rule=p.rule) for p in problems or []
        ],
    )
    return web.json_response(body.model_dump(mode="json"), status=status)


def _jsonable(value: object) -> object:
    """A problem's value as JSON: scalars as they are (long strings cut), anything else as its repr."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no NaN nor infinity: "nan", "inf", as the CLI shows them
    if value is None or isinstance(value, bool | int | float):
        return value
    return errors.cut(value if isinstance(value, str) else repr(value))


def middleware(token: str) -> typedefs.Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if auth.needs_token(request.path):
            status = auth.check(request.headers.get("Authorization"), token)
            if status == 401:
                return error(
                    401, "no bearer token: send `Authorization: Bearer TOKEN` (printed at first start)"
                )
            if status == 403:
                return error(403, "wrong bearer token")
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        except (web.HTTPNotFound, web.HTTPForbidden):  # a static folder itself is no page either
            return error(404, f"no such path: {errors.cut(request.path)}")
        except ConnectionResetError:  # the client hung up mid-request: nothing of ours failed
            log.info("%s %s: the client hung up", request.method, errors.cut(request.path))
            return error(400, "the client hung up before the request was read")
        except OSError as exc:  # a static path the file system refuses (a name over 255 bytes)
            if request.path.startswith(dashboard.STATIC_PREFIXES):
                return error(404, f"no such path: {errors.cut(request.path)} ({exc.strerror})")
            log.exception("%s %s failed", request.method, errors.cut(request.path))
            return error(500, "an unexpected error in swell (logged); please report it")
        except web.HTTPMethodNotAllowed as exc:
            return error(
                405, f"{request.method} not allowed here; allowed: {', '.join(sorted(exc.allowed_methods))}"
            )
        except errors.RecipeError as exc:
            return error(422, f"{exc.source}: {len(exc.problems)} problem(s)", exc.problems)
        except pydantic.ValidationError as exc:
            probs = recipe.problems(exc)
            return error(422, f"{len(probs)} problem(s)", probs)
        except deployments.NotFound as exc:
            return error(404, str(exc))
        except deployments.Conflict as exc:
            return error(409, str(exc))
        except routes.BadRequest as exc:
            return error(400, str(exc))
        except routes.SlowBody as exc:  # closed after the answer: the rest of the body is not read
            response = error(408, str(exc))
            response.force_close()
            return response
        except errors.SwellError as exc:  # e.g. a port taken, a server that cannot start: say why
            return error(409, str(exc))
        except web.HTTPException:
            raise
        except Exception:
            log.exception("%s %s failed", request.method, errors.cut(request.path))
            return error(500, "an unexpected error in swell (logged); please report it")

    return guard


def make_app(manager: deployments.Manager, token: str) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[middleware(token)])
    app[routes.MANAGER] = manager
    app[routes.METRICS] = telemetry.Metrics(manager)
    app[routes.SPEC] = routes.build_spec()
    for r in routes.ROUTES:
        if r.method == "GET":  # and HEAD, as any HTTP server answers it (health probes, curl -I)
            app.router.add_get(r.path, r.handler)
        else:
            app.router.add_route(r.method, r.path, r.handler)
    dashboard.add_routes(app)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; the runner (cleanup() stops it) and the port it got."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return runner, bound
