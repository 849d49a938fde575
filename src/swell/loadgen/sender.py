"""Sending one request and timing it: status, first token, gaps between tokens, the end.

A Sender is shared by all requests of a run; its `records` list grows as requests end. The hot
path stays small (no per-request allocations beyond the body, one small state and the record) so
one core can drive thousands of requests per second.

A server may close a keep-alive connection after an answer without saying so (llama.cpp's server
does after a stream); the next request put on that pooled connection then fails before any byte
comes back ("Can not write request body", "Server disconnected"). That is no answer of the
server's: such a request is sent once more on a fresh connection (RFC 9112 §9.3.1, as aiohttp
does by itself for idempotent methods), and its record says `attempts=2`. A request that fails
so on a new connection, or after a response began, is recorded as failed, never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import types
from typing import Any

import aiohttp
import numpy as np
import yarl

from swell import errors
from swell.loadgen import dataset, protocols, records
from swell.workload import prompts


class _Attempt:
    """What one try of a request saw so far (also the aiohttp trace context: was the connection
    taken from the pool?)."""

    __slots__ = ("gaps", "out", "prompt_tokens", "reused", "status", "ttft")

    def __init__(self) -> None:
        self.ttft: float | None = None
        self.gaps: list[float] = []
        self.out = 0
        self.prompt_tokens: int | None = None
        self.status: int | None = None
        self.reused = False


async def _on_reuse(session: aiohttp.ClientSession, ctx: types.SimpleNamespace, params: Any) -> None:
    attempt = ctx.trace_request_ctx
    if isinstance(attempt, _Attempt):
        attempt.reused = True


def session(timeout_s: float) -> aiohttp.ClientSession:
    """The HTTP session a Sender needs: no connection limit, and told when a pooled connection is
    reused (a request that fails on one before any answer is sent again)."""
    tracing = aiohttp.TraceConfig()
    tracing.on_connection_reuseconn.append(_on_reuse)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        trace_configs=[tracing],
    )


def _stale_connection(exc: Exception, attempt: _Attempt) -> bool:
    """Did `attempt` fail on a pooled keep-alive connection the server had closed, before any
    answer? (A refused or failed connect is a ClientConnectorError: a new connection, no retry.)"""
    return (
        attempt.reused
        and attempt.status is None
        and isinstance(exc, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError))
        and not isinstance(exc, aiohttp.ClientConnectorError)
    )


class Sender:
    """Sends requests of one wire protocol over one session and keeps their records. Give it a
    session from `session()`: with another, a stale keep-alive connection is never noticed (no
    second try). `aclose()` when done."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        wire: protocols.WireProtocol,
        headers: dict[str, str],
        seed: int,
        source: dataset.Prompts | None = None,
    ) -> None:
        self.session, self.wire, self.source = session, wire, source
        self.headers = {"Content-Type": "application/json", **headers}
        if wire.streaming:
            self.headers.setdefault("Accept", "text/event-stream")
        self.rng = np.random.default_rng(seed + 1)
        self.records: list[records.RequestRecord] = []
        self.failed = 0
        self.t0 = time.perf_counter()
        self._fresh: aiohttp.ClientSession | None = None  # for second tries: never a pooled connection

    def _fresh_session(self) -> aiohttp.ClientSession:
        if self._fresh is None:
            self._fresh = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True), timeout=self.session.timeout
            )
        return self._fresh

    async def aclose(self) -> None:
        """Close what the Sender opened itself (not the session it was given)."""
        if self._fresh is not None:
            await self._fresh.close()
            self._fresh = None

    async def one(
        self, index: int, scheduled: float | None, n_in: int, n_out: int, limit: asyncio.Semaphore | None
    ) -> None:
        """Send request `index` now and record what happened. With a prompts file, its entry
        `index` gives the prompt, the input length (its words) and, where it says, the output length."""
        if self.source is None:
            prompt = prompts.prompt(n_in, self.rng) if self.wire.needs_prompt else ""
            body = self.wire.body(index, prompt, n_in, n_out)
        else:
            entry = self.source.entry(index)
            n_in, n_out = entry.words, entry.output_tokens or n_out
            body = self.wire.body(index, entry.text, n_in, n_out, entry.messages)
        attempt = _Attempt()
        attempts = 1
        error: str | None = None
        detail: str | None = None
        start = time.perf_counter()
        try:
            try:
                detail = await self._send(self.session, body, start, attempt)
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
                if not _stale_connection(exc, attempt):
                    raise
                attempt, attempts = _Attempt(), 2
                detail = await self._send(self._fresh_session(), body, start, attempt)
            if detail is not None:
                error = records.http_error(attempt.status or 0)
        except asyncio.CancelledError:
            self._record(index, scheduled, start, attempt, n_in, attempts, records.CANCELLED, None)
            raise
        except Exception as exc:  # every failure is a measurement, never a crash of the run
            error, detail = records.classify(exc), records.detail(exc)
        finally:
            if limit is not None:
                limit.release()
        self._record(index, scheduled, start, attempt, n_in, attempts, error, detail)

    async def _send(
        self, session: aiohttp.ClientSession, body: bytes, start: float, attempt: _Attempt
    ) -> str | None:
        """One try: fills `attempt`; the text of an HTTP error status, else None."""
        async with session.post(
            self.wire.url, data=body, headers=self.headers, trace_request_ctx=attempt
        ) as resp:
            attempt.status = resp.status
            if resp.status >= 400:
                text = (await resp.read()).decode("utf-8", "replace").strip()
                return f"{resp.status} {resp.reason or ''}: {text}".strip()[: records.DETAIL_CHARS]
            if self.wire.streaming:
                await self._stream(resp, start, attempt)
            else:
                usage = self.wire.answer(await resp.read())
                attempt.out = usage.completion or 0
                attempt.prompt_tokens = usage.prompt
        return None

    async def _stream(self, resp: aiohttp.ClientResponse, start: float, attempt: _Attempt) -> None:
        last = start
        chunks = 0
        completion: int | None = None
        gaps = attempt.gaps
        async for line in resp.content:
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            content, usage = self.wire.event(data)
            if usage.completion is not None:
                completion = usage.completion
            if usage.prompt is not None:
                attempt.prompt_tokens = usage.prompt
            if content:
                now = time.perf_counter()
                if attempt.ttft is None:
                    attempt.ttft = now - start
                else:
                    gaps.append(now - last)
                last = now
                chunks += content
        attempt.out = completion if completion is not None else chunks

    def _record(
        self,
        index: int,
        scheduled: float | None,
        start: float,
        attempt: _Attempt,
        n_in: int,
        attempts: int,
        error: str | None,
        detail: str | None,
    ) -> None:
        if error is not None and error != records.CANCELLED:
            self.failed += 1
        counted = attempt.prompt_tokens
        self.records.append(
            records.RequestRecord(
                index=index,
                scheduled_s=scheduled,
                start_s=start - self.t0,
                end_s=time.perf_counter() - self.t0,
                ttft_s=attempt.ttft,
                itl_s=tuple(attempt.gaps),
                input_tokens=n_in if counted is None else counted,
                output_tokens=attempt.out,
                status=attempt.status,
                error=error,
                input_tokens_from=records.FROM_SERVER
                if counted is not None
                else (records.FROM_REQUEST if self.source is None else records.FROM_WORDS),
                error_detail=detail,
                attempts=attempts,
            )
        )


PROBE_S = 5.0  # the reachability check's bound: a server that takes longer to answer is there


class Unreachable(errors.SwellError):
    """Nothing answers at the URL (refused, no such host): no load is sent."""


async def probe(url: str) -> None:
    """Unreachable if no TCP connection can be made to the URL's server (refused, no such host);
    a server that accepts is there, whatever its requests then get. No request is sent. Without it
    a run sent thousands of requests to a closed port, each failing at once, for its whole duration."""
    parsed = yarl.URL(url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parsed.host, parsed.port), PROBE_S)
    except ConnectionRefusedError:
        raise Unreachable(f"cannot reach {url}: connection refused; is it serving?") from None
    except socket.gaierror as exc:
        raise Unreachable(f"cannot reach {url}: no such host {parsed.host!r} ({exc.strerror})") from None
    except OSError as exc:
        raise Unreachable(f"cannot reach {url}: {exc.strerror or exc}; is it serving?") from None
    except TimeoutError:
        return  # no answer within PROBE_S (a firewall that drops): the requests will say
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


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
