"""A small LLM-like HTTP server on 127.0.0.1 whose first token and token gaps take known times.

Endpoints: OpenAI chat and completions (streamed or not), KServe v1 `:predict`, a plain JSON
echo, fixed HTTP statuses, a slow endpoint (timeouts), a stream that errors midway and one that
drops the connection. Delays come from the request's `X-TTFT` / `X-ITL` headers or the defaults.

The OpenAI endpoints count prompt tokens as a server would: one per word, plus a chat template's
CHAT_TEMPLATE_TOKENS. Headers change them: `X-Usage: none` (no usage at all) or `no-prompt` (no
prompt_tokens); `X-Reasoning: R` sends the first R tokens as `X-Reasoning-Key` deltas
(`reasoning_content` by default: a reasoning model thinking aloud); `X-Close: 1` closes the
connection shortly after the answer without saying so (as llama.cpp's server does after a stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

from aiohttp import web

TTFT_S = 0.12
ITL_S = 0.03
CHAT_TEMPLATE_TOKENS = 9  # what a chat template adds to the prompt's own tokens
CLOSE_AFTER_S = 0.2  # X-Close: the connection stays open this long after the answer, then closes


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

    def _usage(request: web.Request, body: dict[str, object], chat: bool, n: int) -> dict[str, int] | None:
        kind = request.headers.get("X-Usage", "full")
        if kind == "none":
            return None
        if chat:
            messages = body["messages"]
            assert isinstance(messages, list)
            prompt = len(str(messages[0]["content"]).split()) + CHAT_TEMPLATE_TOKENS
        else:
            prompt = len(str(body["prompt"]).split())
        usage = {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n}
        if kind == "no-prompt":
            del usage["prompt_tokens"]
        return usage

    async def openai(request: web.Request) -> web.StreamResponse:
        body = await remember(request)
        chat = request.path.endswith("/chat/completions")
        n = int(body.get("max_tokens", 16))  # type: ignore[call-overload]
        ttft, itl = _delays(request)
        usage = _usage(request, body, chat, n)
        if not body.get("stream"):
            await asyncio.sleep(ttft + itl * (n - 1))
            choice = {"message": {"role": "assistant", "content": "x " * n}} if chat else {"text": "x " * n}
            answer: web.StreamResponse = web.json_response(
                {"choices": [choice], **({"usage": usage} if usage else {})}
            )
        else:
            answer = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await answer.prepare(request)
            reasoning = (int(request.headers.get("X-Reasoning", 0)), request.headers.get("X-Reasoning-Key"))
            with contextlib.suppress(ConnectionResetError):  # the client went away (a stopped run)
                await _stream(answer, chat, n, ttft, itl, usage, reasoning)
        if request.headers.get("X-Close"):
            await answer.prepare(request)
            await answer.write_eof()  # the whole answer is out; the connection looks reusable
            await asyncio.sleep(CLOSE_AFTER_S)  # the client puts its next request on it meanwhile
            assert request.transport is not None
            request.transport.close()
        return answer

    async def _stream(
        resp: web.StreamResponse,
        chat: bool,
        n: int,
        ttft: float,
        itl: float,
        usage: dict[str, int] | None,
        reasoning: tuple[int, str | None],
    ) -> None:
        await asyncio.sleep(ttft)
        if chat:  # vLLM first sends the role with no content: not a token
            await resp.write(b'data: {"choices": [{"delta": {"role": "assistant"}}]}\n\n')
        thinking, key = reasoning
        for i in range(n):
            if i:
                await asyncio.sleep(itl)
            delta = {(key or "reasoning_content") if i < thinking else "content": "x "}
            if chat and i < thinking:
                delta["content"] = None  # type: ignore[assignment]  # as vLLM sends it while reasoning
            choice = {"delta": delta} if chat else {"text": "x "}
            await resp.write(b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n")
        if usage is not None:
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
        await remember(request)
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    answered = [0]

    async def once(request: web.Request) -> web.StreamResponse:
        """Answers its first request (then closes that connection, unsaid); drops every later one."""
        await remember(request)
        assert request.transport is not None
        if answered[0]:
            request.transport.close()
            return web.Response()
        answered[0] += 1
        resp = web.json_response({"ok": True})
        await resp.prepare(request)
        await resp.write_eof()
        await asyncio.sleep(CLOSE_AFTER_S)
        request.transport.close()
        return resp

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
    app.router.add_post("/once", once)
    return app


@dataclass
class Server:
    url: str
    seen: Seen
