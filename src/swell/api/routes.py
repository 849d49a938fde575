"""The API's handlers and their typed route table (the OpenAPI spec is built from it).

Bodies are read as JSON and checked by pydantic (PATCH) or swell.recipe (POST); answers are built
from the response models. Errors become JSON `{error, problems}` in app.py's middleware.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from aiohttp import web, web_protocol
from pydantic import BaseModel

from swell import __version__, errors, recipe
from swell.api import deployments, openapi, schemas, telemetry, views

MANAGER = web.AppKey("manager", deployments.Manager)
METRICS = web.AppKey("metrics", telemetry.Metrics)
SPEC = web.AppKey("spec", dict)
LAST_DECISIONS = 20


BODY_TIMEOUT_S = 30.0  # a recipe's body arrives in milliseconds: one still trickling in after this is
# a client that holds a connection open, not one sending a recipe


class BadRequest(errors.SwellError):
    pass


class SlowBody(errors.SwellError):
    """The request body was not complete within BODY_TIMEOUT_S (a 408)."""


def reply(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


async def read_json(request: web.Request) -> Any:
    try:
        raw = await asyncio.wait_for(request.read(), BODY_TIMEOUT_S)  # over client_max_size: 413 (middleware)
    except TimeoutError:
        raise SlowBody(f"the body was not complete within {BODY_TIMEOUT_S:g} s") from None
    except web_protocol.RequestPayloadError as exc:  # e.g. Content-Encoding: gzip on a body that is not
        encoding = request.headers.get("Content-Encoding", "")
        raise BadRequest(
            f"the body could not be read as sent (Content-Encoding: {encoding or 'none'}): {exc}"
        ) from None
    try:
        return json.loads(raw, object_pairs_hook=recipe.json_object)
    except recipe.DuplicateKey as exc:  # JSON allows it; the last value would win without a word
        raise BadRequest(f"the body is ambiguous: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply to read (a recipe is a few levels deep)") from None


def _manager(request: web.Request) -> deployments.Manager:
    return request.app[MANAGER]


def _decisions(
    request: web.Request, name: str, since: float = 0.0, limit: int = 1000
) -> list[schemas.DecisionOut]:
    return [
        schemas.DecisionOut.model_validate(d) for d in _manager(request).store.decisions(name, since, limit)
    ]


def _since(request: web.Request) -> float:
    raw = request.query.get("since", "0")
    try:
        since = float(raw)
    except ValueError:
        raise BadRequest(f"since: a Unix time in seconds (got {raw!r})") from None
    if not math.isfinite(since):
        raise BadRequest(f"since: a finite Unix time in seconds (got {raw!r})")
    return since


async def create(request: web.Request) -> web.Response:
    payload = await read_json(request)
    dep = await _manager(request).create(payload)
    body = schemas.Created(
        name=dep.name, url=dep.rt.endpoint, api=f"/deployments/{dep.name}", notes=dep.notes
    )
    return reply(body, 201)


async def list_all(request: web.Request) -> web.Response:
    deps = [views.summary(d) for d in _manager(request).deployments.values()]
    return reply(schemas.DeploymentList(deployments=deps))


async def show(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    dep = _manager(request).get(name)
    return reply(views.detail(dep, _decisions(request, name, limit=LAST_DECISIONS)))


async def decisions(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    _manager(request).get(name)
    return reply(schemas.DecisionList(decisions=_decisions(request, name, _since(request))))


async def timeseries(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    m = _manager(request)
    dep = m.get(name)
    slo = dep.recipe.slo
    samples = [schemas.Sample.model_validate(s) for s in m.store.samples(name, _since(request))]
    return reply(
        schemas.Timeseries(
            name=name,
            slo={"ttft_s": slo.ttft_s, "e2e_s": slo.e2e_s, "percentile": slo.percentile},
            samples=samples,
        )
    )


async def patch(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    m = _manager(request)
    m.get(name)  # 404 before the body's problems
    body = await read_json(request)
    if not isinstance(body, dict):
        raise errors.RecipeError(
            deployments.SOURCE, [errors.Problem(path="", value=body, rule="a JSON object of changes")]
        )
    dep = m.patch(name, body)
    return reply(views.detail(dep, _decisions(request, name, limit=LAST_DECISIONS)))


async def replace(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    m = _manager(request)
    m.get(name)  # 404 before the body's problems
    dep = await m.replace(name, await read_json(request))
    return reply(views.detail(dep, _decisions(request, name, limit=LAST_DECISIONS)))


async def delete(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await _manager(request).delete(name)
    return reply(schemas.Deleted(name=name, stopped=True))


async def metrics(request: web.Request) -> web.Response:
    body, ctype = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": ctype})


async def health(request: web.Request) -> web.Response:
    deps = _manager(request).deployments.values()
    failed = sum(1 for d in deps if d.rt.failure)  # the API lives on: liveness is "ok" whatever they do
    return reply(schemas.Health(status="ok", deployments=len(deps), failed=failed))


async def spec(request: web.Request) -> web.Response:
    return web.json_response(request.app[SPEC])


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=openapi.docs_page(request.app[SPEC]), content_type="text/html")


def _r(**kw: Any) -> openapi.Route:
    return openapi.Route(**kw)


NAME_ERRORS = (404,)
ROUTES = (
    *(
        _r(method="POST", path=p, handler=create, summary="Deploy a swell recipe or a Corrino payload",
           ok=201, response=schemas.Created, body=openapi.RECIPE_BODY, errors=(400, 409, 413, 422))
        for p in ("/deployment", "/deployments")
    ),
    _r(method="GET", path="/deployments", handler=list_all, summary="Every deployment",
       response=schemas.DeploymentList),
    _r(method="GET", path="/deployments/{name}", handler=show,
       summary="Replicas and why, signals against targets, conditions, the last decisions",
       response=schemas.Detail, errors=NAME_ERRORS),
    _r(method="PATCH", path="/deployments/{name}", handler=patch,
       summary="Change min/max replicas, signal targets, stabilization windows (the next decision uses them)",
       response=schemas.Detail, body=schemas.Patch, errors=(400, 404, 413, 422)),
    _r(method="PUT", path="/deployments/{name}", handler=replace,
       summary="Put a whole new recipe onto it: a changed service is rolled onto the replicas one at a time",
       response=schemas.Detail, body=openapi.RECIPE_BODY, errors=(400, 404, 413, 422)),
    _r(method="DELETE", path="/deployments/{name}", handler=delete,
       summary="Drain (requests in flight finish), then stop", response=schemas.Deleted, errors=NAME_ERRORS),
    _r(method="GET", path="/deployments/{name}/decisions", handler=decisions,
       summary="Decisions with their reasons, oldest first", response=schemas.DecisionList,
       query={"since": ("number", "only those after this Unix time")}, errors=(400, 404)),
    _r(method="GET", path="/deployments/{name}/timeseries", handler=timeseries,
       summary="The dashboard's series: load, latency percentiles, replicas, signals",
       response=schemas.Timeseries, query={"since": ("number", "only samples after this Unix time")},
       errors=(400, 404)),
    _r(method="GET", path="/metrics", handler=metrics, summary="swell's own Prometheus metrics",
       auth=False, content_type="text/plain"),
    _r(method="GET", path="/healthz", handler=health, summary="Liveness", response=schemas.Health, auth=False),
    _r(method="GET", path="/openapi.json", handler=spec, summary="This API's OpenAPI spec", response=None),
    _r(method="GET", path="/docs", handler=docs, summary="This API's endpoints as a page",
       content_type="text/html"),
)  # fmt: skip


def build_spec() -> dict[str, Any]:
    return openapi.spec(ROUTES, title="swell deployment API", version=__version__)
