"""Sending one request and timing it: status, first token, gaps between tokens, the end.

A Sender is shared by all requests of a run; its `records` list grows as requests end. The hot
path stays small (no per-request allocations beyond the body and the record) so one core can
drive thousands of requests per second.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import numpy as np

from swell.loadgen import protocols, records
from swell.workload import prompts


class Sender:
    """Sends requests of one wire protocol over one session and keeps their records."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        wire: protocols.WireProtocol,
        headers: dict[str, str],
        seed: int,
    ) -> None:
        self.session, self.wire = session, wire
        self.headers = {"Content-Type": "application/json", **headers}
        if wire.streaming:
            self.headers.setdefault("Accept", "text/event-stream")
        self.rng = np.random.default_rng(seed + 1)
        self.records: list[records.RequestRecord] = []
        self.failed = 0
        self.t0 = time.perf_counter()

    async def one(
        self, index: int, scheduled: float | None, n_in: int, n_out: int, limit: asyncio.Semaphore | None
    ) -> None:
        """Send request `index` now and record what happened."""
        prompt = prompts.prompt(n_in, self.rng) if self.wire.needs_prompt else ""
        body = self.wire.body(index, prompt, n_in, n_out)
        ttft: float | None = None
        gaps: list[float] = []
        out = 0
        status: int | None = None
        error: str | None = None
        start = time.perf_counter()
        try:
            async with self.session.post(self.wire.url, data=body, headers=self.headers) as resp:
                status = resp.status
                if status >= 400:
                    await resp.read()
                    error = records.http_error(status)
                elif self.wire.streaming:
                    ttft, out = await self._stream(resp, start, gaps)
                else:
                    out = self.wire.output_tokens(await resp.read()) or 0
        except asyncio.CancelledError:
            error = records.CANCELLED
            self._record(index, scheduled, start, ttft, gaps, n_in, out, status, error)
            raise
        except Exception as exc:  # every failure is a measurement, never a crash of the run
            error = records.classify(exc)
        finally:
            if limit is not None:
                limit.release()
        self._record(index, scheduled, start, ttft, gaps, n_in, out, status, error)

    async def _stream(
        self, resp: aiohttp.ClientResponse, start: float, gaps: list[float]
    ) -> tuple[float | None, int]:
        ttft: float | None = None
        last = start
        chunks = 0
        usage: int | None = None
        async for line in resp.content:
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            content, tokens = self.wire.event(data)
            if tokens is not None:
                usage = tokens
            if content:
                now = time.perf_counter()
                if ttft is None:
                    ttft = now - start
                else:
                    gaps.append(now - last)
                last = now
                chunks += content
        return ttft, usage if usage is not None else chunks

    def _record(
        self,
        index: int,
        scheduled: float | None,
        start: float,
        ttft: float | None,
        gaps: list[float],
        n_in: int,
        out: int,
        status: int | None,
        error: str | None,
    ) -> None:
        if error is not None and error != records.CANCELLED:
            self.failed += 1
        self.records.append(
            records.RequestRecord(
                index=index,
                scheduled_s=scheduled,
                start_s=start - self.t0,
                end_s=time.perf_counter() - self.t0,
                ttft_s=ttft,
                itl_s=tuple(gaps),
                input_tokens=n_in,
                output_tokens=out,
                status=status,
                error=error,
            )
        )


async def discover_model(session: aiohttp.ClientSession, url: str) -> str:
    """The first model an OpenAI-compatible server lists at /v1/models, else 'default'."""
    base = str(url).split("/v1/")[0].rstrip("/")
    base = base[: -len("/v1")] if base.endswith("/v1") else base
    try:
        async with session.get(f"{base}/v1/models", timeout=aiohttp.ClientTimeout(total=5)) as resp:
            if resp.status == 200:
                data = (await resp.json(content_type=None)).get("data") or []
                if data and isinstance(data[0], dict) and data[0].get("id"):
                    return str(data[0]["id"])
    except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError):
        pass  # the request itself will report the real problem
    return "default"
