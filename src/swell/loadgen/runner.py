"""The load run: asyncio + aiohttp, open loop (arrivals on schedule) or closed loop (N users).

`await runner.run(options, progress=callback)` works inside any running asyncio program (the
demo drives load in-process); `stop` (an asyncio.Event) ends it early with a partial result.
A run always ends by itself: after `duration_s`, after `requests`, or when the workload ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np

from swell.loadgen import options as opts
from swell.loadgen import protocols, records, sender, summary
from swell.workload import arrivals, patterns, prompts

LONG_SLEEP_S = 0.05  # sleep longer than this wakes on stop; shorter sleeps are plain (cheaper)


@dataclass(frozen=True, kw_only=True)
class Progress:
    """A look at a run in progress, handed to the progress callback."""

    elapsed_s: float
    sent: int
    done: int
    failed: int
    in_flight: int
    completion_rps: float  # over the last progress interval
    send_rps: float
    fraction: float | None  # of the time or count bound, whichever is nearer; None if unknown


@dataclass(frozen=True, kw_only=True)
class Result:
    """What a run gives back."""

    options: opts.Options
    description: str
    url: str
    started_at: float  # wall-clock time.time() at the start
    records: tuple[records.RequestRecord, ...]
    summary: summary.Summary
    interrupted: bool


ProgressCallback = Callable[[Progress], None]


class _Run:
    def __init__(self, plan: opts.Plan, send: sender.Sender, stop: asyncio.Event) -> None:
        self.plan, self.send, self.stop = plan, send, stop
        self.t0 = time.perf_counter()
        self.sent = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def can_send(self) -> bool:
        limit = self.plan.max_requests
        return not self.stop.is_set() and (limit is None or self.sent < limit)

    async def sleep(self, delay: float) -> None:
        if delay > LONG_SLEEP_S:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
        elif delay > 0:
            await asyncio.sleep(delay)

    async def open_loop(
        self, load: arrivals.Workload, rng: np.random.Generator, limit: asyncio.Semaphore | None
    ) -> None:
        for batch in load.batches(rng, self.plan.horizon_s):
            for t, n_in, n_out in zip(
                batch.t.tolist(), batch.input_tokens.tolist(), batch.output_tokens.tolist(), strict=True
            ):
                if not self.can_send():
                    return
                delay = t - (time.perf_counter() - self.t0)
                if delay > 0:
                    await self.sleep(delay)
                    if not self.can_send():
                        return
                elif self.sent % 32 == 0:
                    await asyncio.sleep(0)  # behind schedule: still let responses be read
                if limit is not None:
                    await limit.acquire()
                task = asyncio.create_task(self.send.one(self.sent, t, n_in, n_out, limit))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                self.sent += 1

    async def user(self, load: patterns.ClosedLoop, rng: np.random.Generator) -> None:
        while self.can_send() and self.elapsed() < self.plan.horizon_s:
            size = load.sizes(rng, 1)
            index, self.sent = self.sent, self.sent + 1
            await self.send.one(index, None, int(size.input_tokens[0]), int(size.output_tokens[0]), None)
            if load.think_s:
                await self.sleep(load.think_s)

    async def report(self, progress: ProgressCallback, interval_s: float) -> None:
        last_t, last_done, last_sent = 0.0, 0, 0
        while True:
            await asyncio.sleep(interval_s)
            now = self.elapsed()
            done = len(self.send.records)
            span = max(now - last_t, 1e-9)
            fractions = [now / self.plan.horizon_s] if math.isfinite(self.plan.horizon_s) else []
            if self.plan.max_requests:
                fractions.append(done / self.plan.max_requests)
            progress(
                Progress(
                    elapsed_s=now,
                    sent=self.sent,
                    done=done,
                    failed=self.send.failed,
                    in_flight=self.sent - done,
                    completion_rps=(done - last_done) / span,
                    send_rps=(self.sent - last_sent) / span,
                    fraction=min(1.0, max(fractions)) if fractions else None,
                )
            )
            last_t, last_done, last_sent = now, done, self.sent


async def run(
    options: opts.Options,
    *,
    progress: ProgressCallback | None = None,
    progress_interval_s: float = 0.5,
    stop: asyncio.Event | None = None,
) -> Result:
    """Run the load `options` describe and summarise it. Set `stop` to end early (partial result)."""
    plan = opts.plan(options)
    prompts.prompt(1)  # build the prompt text now, not inside the timed run
    stop = stop or asyncio.Event()
    started_at = time.time()
    timeout = aiohttp.ClientTimeout(total=options.timeout_s)
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        model = options.model
        if model is None and options.protocol.startswith("openai"):
            model = await sender.discover_model(session, options.url)
        wire = protocols.make(
            options.protocol,
            options.url,
            model=model,
            stream=options.stream,
            body=options.body,
            ignore_eos=options.ignore_eos,
        )
        send = sender.Sender(session=session, wire=wire, headers=dict(options.headers), seed=options.seed)
        state = _Run(plan, send, stop)
        send.t0 = state.t0
        reporter = asyncio.create_task(state.report(progress, progress_interval_s)) if progress else None
        rng = np.random.default_rng(options.seed)
        try:
            if isinstance(plan.load, patterns.ClosedLoop):
                users = [asyncio.create_task(state.user(plan.load, rng)) for _ in range(plan.load.users)]
                state.tasks.update(users)
                await _until_stopped(asyncio.gather(*users), stop)
            else:
                limit = asyncio.Semaphore(options.max_in_flight) if options.max_in_flight else None
                await _until_stopped(state.open_loop(plan.load, rng, limit), stop)
                if state.tasks:
                    await _until_stopped(asyncio.gather(*state.tasks), stop)
        finally:
            for task in list(state.tasks):
                task.cancel()
            await asyncio.gather(*state.tasks, return_exceptions=True)
            if reporter is not None:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
        duration = state.elapsed()
    rows = tuple(sorted(send.records, key=lambda r: r.index))
    return Result(
        options=options,
        description=plan.description,
        url=str(wire.url),
        started_at=started_at,
        records=rows,
        summary=summary.summarize(rows, duration, options.slo),
        interrupted=stop.is_set(),
    )


async def _until_stopped(work: Awaitable[Any], stop: asyncio.Event) -> None:
    """Await `work` unless `stop` is set first (then `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    # A cancelled gather() reports CancelledError as its exception: that is the stop, not a failure.
    if task.done() and not task.cancelled():
        exc = task.exception()
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            raise exc


def run_sync(options: opts.Options, *, progress: ProgressCallback | None = None) -> Result:
    """`run` for code without an event loop."""
    return asyncio.run(run(options, progress=progress))
