"""A small LLM-like HTTP server on 127.0.0.1 whose first token and token gaps take known times.

Endpoints: OpenAI chat and completions (streamed or not), KServe v1 `:predict`, a plain JSON
echo, fixed HTTP statuses, a slow endpoint (timeouts), a stream that errors midway and one that
drops the connection. Delays come from the request's `X-TTFT` / `X-ITL` headers or the defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

from aiohttp import web

TTFT_S = 0.12
ITL_S = 0.03


@dataclass
class Seen:
    """What the server received, for assertions."""

    bodies: list[dict[str, object]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


def _delays(request: web.Request) -> tuple[float, float]:
    return float(request.headers.get("X-TTFT", TTFT_S)), float(request.headers.get("X-ITL", ITL_S))


def make_app(seen: Seen) -> web.Application:
    async def remember(request: web.Request) -> dict[str, object]:
        body = await request.json()
        seen.bodies.append(body)
        seen.paths.append(request.path)
        return body  # type: ignore[no-any-return]

    async def openai(request: web.Request) -> web.StreamResponse:
        body = await remember(request)
        chat = request.path.endswith("/chat/completions")
        n = int(body.get("max_tokens", 16))  # type: ignore[call-overload]
        ttft, itl = _delays(request)
        usage = {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": n + 7}
        if not body.get("stream"):
            await asyncio.sleep(ttft + itl * (n - 1))
            choice = {"message": {"role": "assistant", "content": "x " * n}} if chat else {"text": "x " * n}
            return web.json_response({"choices": [choice], "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the client went away (a stopped run)
            await _stream(resp, chat, n, ttft, itl, usage)
        return resp

    async def _stream(
        resp: web.StreamResponse, chat: bool, n: int, ttft: float, itl: float, usage: dict[str, int]
    ) -> None:
        await asyncio.sleep(ttft)
        if chat:  # vLLM first sends the role with no content: not a token
            await resp.write(b'data: {"choices": [{"delta": {"role": "assistant"}}]}\n\n')
        for i in range(n):
            if i:
                await asyncio.sleep(itl)
            choice = {"delta": {"content": "x "}} if chat else {"text": "x "}
            await resp.write(b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n")
        await resp.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-llm", "object": "model"}]})

    async def predict(request: web.Request) -> web.Response:
        body = await remember(request)
        await asyncio.sleep(_delays(request)[0])
        instances = body.get("instances")
        if not isinstance(instances, list):
            return web.json_response({"error": "instances must be a list"}, status=400)
        return web.json_response({"predictions": [1] * len(instances)})

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "got": await remember(request)})

    async def status(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"error": "as asked"}, status=int(request.match_info["code"]))

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(5)
        return web.json_response({})

    async def broken(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n')
        await resp.write(b'data: {"error": {"message": "out of memory"}}\n\n')
        return resp

    async def drop(request: web.Request) -> web.StreamResponse:
        await request.read()
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app = web.Application()
    app.router.add_post("/v1/chat/completions", openai)
    app.router.add_post("/v1/completions", openai)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/models/{name}:predict", predict)
    app.router.add_post("/echo", echo)
    app.router.add_post("/status/{code}", status)
    app.router.add_post("/slow", slow)
    app.router.add_post("/broken/v1/chat/completions", broken)
    app.router.add_post("/drop", drop)
    return app


@dataclass
class Server:
    url: str
    seen: Seen
