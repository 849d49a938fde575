"""A simulated vLLM replica: OpenAI-compatible HTTP in front of the engines.llm model on wall time.

Tokens stream with the pacing the performance model gives (batching, queueing, KV limits),
and /metrics speaks vLLM's metric names, labels and buckets plus DCGM GPU gauges, so the
autoscaler sees what it would see from a real GPU replica, without a GPU.
Run: python -m swell.servers.simulated_llm --port 8000 --model NAME --preset tiny-cpu
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
import uuid
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from swell.engines import llm, presets, vllm_flags
from swell.servers import common, openai_api, vllm_metrics


class _Live:
    """Streaming state of one request, updated by the driver."""

    __slots__ = ("changed", "finished", "generated")

    def __init__(self) -> None:
        self.generated = 0
        self.finished: llm.Finished | None = None
        self.changed = asyncio.Event()


class SimulatedLlm:
    def __init__(self, model: str, preset: presets.LlmPreset, default_max_tokens: int = 128) -> None:
        self.model = model
        self.preset = preset
        self.default_max_tokens = default_max_tokens
        self.replica = llm.Replica(preset)
        self.live: dict[str, _Live] = {}
        self.driver = common.Driver(self.replica, self._on_events, self._on_tick, self._pace)
        self.life = common.Lifecycle()
        self.registry = CollectorRegistry(auto_describe=True)
        self.gpu = vllm_metrics.GpuSampler(self.replica, self.driver.now)
        self.registry.register(
            vllm_metrics.Collector(
                self.replica, model, self.gpu, self.driver.now, hostname=socket.gethostname()
            )
        )

    # ---- driver callbacks -----------------------------------------------------------------

    def _on_events(self, events: list[llm.Event]) -> None:
        for e in events:
            live = self.live.get(e.request_id)
            if live is None:
                continue
            if isinstance(e, llm.Finished):
                live.finished = e
                live.generated = e.output_tokens
                live.changed.set()
            elif isinstance(e, llm.FirstToken):
                live.generated = max(live.generated, 1)
                live.changed.set()

    def _on_tick(self) -> None:
        for rid, live in self.live.items():
            n = self.replica.generated_tokens(rid)
            if n is not None and n > live.generated:
                live.generated = n
                live.changed.set()

    def _pace(self) -> float | None:
        return self.replica.next_step_time() if self.live else None

    # ---- HTTP -----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/metrics", self.metrics)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app: web.Application) -> None:
        self.driver.start()
        self.gpu.start()

    async def _stop(self, app: web.Application) -> None:
        await self.gpu.stop()
        await self.driver.stop()

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(openai_api.models_body(self.model, self.preset.max_model_len))

    async def metrics(self, request: web.Request) -> web.Response:
        self._on_events(self.replica.advance(self.driver.now()))  # fresh numbers; events still delivered
        self.driver.wake()
        return web.Response(body=generate_latest(self.registry), content_type="text/plain", charset="utf-8")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def _generate(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        try:
            body = await request.json()
            parsed = openai_api.parse(
                body,
                chat=chat,
                model=self.model,
                max_model_len=self.preset.max_model_len,
                default_max_tokens=self.default_max_tokens,
            )
        except openai_api.ApiError as e:
            return e.response()
        except json.JSONDecodeError as e:
            return openai_api.ApiError(f"request body is not JSON: {e}").response()
        too_long = context_error(self.preset.max_model_len, parsed.prompt_tokens, parsed.max_tokens)
        if too_long is not None:
            return too_long.response()
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        try:
            self.replica.submit(
                self.driver.now(),
                llm.Request(id=rid, input_tokens=parsed.prompt_tokens, output_tokens=parsed.max_tokens),
            )
        except ValueError as e:
            return openai_api.ApiError(str(e), param="max_tokens").response()
        live = self.live[rid] = _Live()
        self.driver.wake()
        out = openai_api.Writer(rid, self.model, chat=chat, created=int(time.time()))
        try:
            if parsed.stream:
                return await self._stream(request, rid, live, out, parsed)
            while live.finished is None:
                await live.changed.wait()
                live.changed.clear()
            return web.json_response(out.full(live.finished.output_tokens, parsed.prompt_tokens))
        finally:
            del self.live[rid]
            if live.finished is None:  # the client went away: free the replica's slot
                self.replica.abort(self.driver.now(), rid)
                self.driver.wake()

    async def _stream(
        self, request: web.Request, rid: str, live: _Live, out: openai_api.Writer, parsed: openai_api.Parsed
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        role = out.chat  # vLLM sends the assistant's role with the first token, after the prefill: not
        # before it, where a proxy timing the first byte (swell's gateway) would read it as the TTFT
        sent = 0
        while True:
            await live.changed.wait()
            live.changed.clear()
            if role and live.generated > 0:
                await resp.write(out.sse(out.role_chunk()))
                role = False
            while sent < live.generated:
                last = live.finished is not None and sent == live.generated - 1
                await resp.write(out.sse(out.token_chunk(sent, "length" if last else None)))
                sent += 1
            if live.finished is not None:
                break
        if parsed.include_usage:
            await resp.write(out.sse(out.usage_chunk(live.finished.output_tokens, parsed.prompt_tokens)))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def context_error(max_model_len: int, prompt_tokens: int, max_tokens: int) -> openai_api.ApiError | None:
    """vLLM's 400 for a request that does not fit the context, worded as vLLM words it."""
    if prompt_tokens >= max_model_len:
        return openai_api.ApiError(
            f"This model's maximum context length is {max_model_len} tokens. However, your request has "
            f"{prompt_tokens} input tokens. Please reduce the length of the input messages."
        )
    if prompt_tokens + max_tokens > max_model_len:
        return openai_api.ApiError(
            f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's maximum "
            f"context length is {max_model_len} tokens and your request has {prompt_tokens} input tokens "
            f"({max_tokens} > {max_model_len} - {prompt_tokens})."
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser("Simulated vLLM replica (OpenAI API, vLLM metrics) driven by swell's engine model.")
    p.add_argument("--model", default="simulated-llm", help="served model name (default simulated-llm)")
    p.add_argument(
        "--preset", default="tiny-cpu", help=f"engine preset: {', '.join(sorted(presets.PRESETS))}"
    )
    p.add_argument("--time-scale", type=float, default=1.0, help="speed-up: 2 runs the model twice as fast")
    for flag, what in (
        (vllm_flags.NUM_SEQS, "sequences in one batch"),
        (vllm_flags.MODEL_LEN, "context length: prompt + output tokens (e.g. 32768 or 128k)"),
        (vllm_flags.BATCHED, "token budget of one engine step"),
        (vllm_flags.MEMORY, "share of GPU memory vLLM takes; the KV capacity follows"),
    ):
        p.add_argument(flag, default=None, help=f"as vLLM's: {what} (default: the preset's)")
    p.add_argument("-tp", vllm_flags.TENSOR_PARALLEL, default=None, help="as vLLM's: GPUs one replica spans")
    p.add_argument("--default-max-tokens", type=int, default=128, help="max_tokens when a request gives none")
    args = p.parse_args(argv)
    common.setup_logging(args.log_level)
    try:
        preset = presets.get(args.preset).scaled(args.time_scale)
        given = {flag: getattr(args, flag[2:].replace("-", "_")) for flag in vllm_flags.FLAGS}
        preset = vllm_flags.apply(preset, {k: v for k, v in given.items() if v is not None})
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return common.run(_run(args, preset))


async def _run(args: argparse.Namespace, preset: presets.LlmPreset) -> None:
    server = SimulatedLlm(args.model, preset, args.default_max_tokens)
    await common.serve(
        server.app(), server.life, host=args.host, port=args.port, drain_timeout=args.drain_timeout
    )


if __name__ == "__main__":
    sys.exit(main())
