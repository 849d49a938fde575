"""OpenAPI 3.1 built from the typed route table: each route names its body and response models.

A small generator instead of a framework: aiohttp stays the one web stack (the gateway's), and the
pydantic models that check bodies and build answers are the schemas the spec publishes, so the
two cannot drift. `/docs` is a plain HTML page rendered from the same spec (no CDN assets).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from swell.api import schemas

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RECIPE_BODY = "recipe"  # a free-form mapping validated by swell.recipe (problems in the user's keys)
ERROR_CODES = {
    400: "the request is malformed (not JSON, a bad parameter)",
    401: "no bearer token",
    403: "a wrong bearer token",
    404: "no such deployment",
    409: "a deployment of that name exists, or this machine cannot start it now (e.g. its port is taken)",
    413: "the body is larger than the limit",
    422: "the recipe or change is invalid: every problem, in the user's keys",
}


@dataclass(frozen=True, kw_only=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    ok: int = 200
    response: type[BaseModel] | None = None  # None: not JSON (text or HTML)
    body: type[BaseModel] | str | None = None
    query: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (json type, description)
    errors: tuple[int, ...] = ()
    auth: bool = True
    content_type: str = "application/json"


def _ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def spec(routes: Sequence[Route], *, title: str, version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    error_ref = _ref(schemas.ErrorOut, components)
    for r in routes:
        op: dict[str, Any] = {"summary": r.summary, "operationId": f"{r.method.lower()}{r.path}"}
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 63}}
            for p in _path_params(r.path)
        ]
        params += [
            {"name": q, "in": "query", "required": False, "schema": {"type": t}, "description": d}
            for q, (t, d) in r.query.items()
        ]
        if params:
            op["parameters"] = params
        if r.body == RECIPE_BODY:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "description": "a swell recipe, or a Corrino payload as published (optionally "
                            "with a swell `service` section naming a local engine)",
                        }
                    }
                },
            }
        elif isinstance(r.body, type):
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(r.body, components)}},
            }
        ok_content = (
            {r.content_type: {"schema": _ref(r.response, components)}}
            if r.response is not None
            else {r.content_type: {"schema": {"type": "object" if "json" in r.content_type else "string"}}}
        )
        responses: dict[str, Any] = {str(r.ok): {"description": "OK", "content": ok_content}}
        codes = set(r.errors) | {400} | ({401, 403} if r.auth else set())  # 400: malformed HTTP
        for code in sorted(codes):
            responses[str(code)] = {
                "description": ERROR_CODES[code],
                "content": {"application/json": {"schema": error_ref}},
            }
        op["responses"] = responses
        if not r.auth:
            op["security"] = []
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def docs_page(doc: dict[str, Any]) -> str:
    """A readable HTML page of the spec: each operation, its parameters and answers."""
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = ", ".join(op["responses"])
            auth = "" if op.get("security") == [] else " 🔒"
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code>{auth}</td>"
                f"<td>{html.escape(op['summary'])}</td><td>{codes}</td></tr>"
            )
    return (
        "<!doctype html><meta charset=utf-8><title>swell API</title>"
        "<style>body{font:14px system-ui;margin:2em}td{padding:.3em .8em;border-bottom:1px solid #ddd}</style>"
        f"<h1>{html.escape(doc['info']['title'])} {html.escape(doc['info']['version'])}</h1>"
        "<p>🔒: send <code>Authorization: Bearer TOKEN</code>. The full spec: "
        "<a href=/openapi.json>/openapi.json</a>.</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>answers</th></tr>"
        + "".join(rows)
        + "</table>"
    )
