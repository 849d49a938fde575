"""The load run: asyncio + aiohttp, open loop (arrivals on schedule) or closed loop (N users).

`await runner.run(options, progress=callback)` works inside any running asyncio program (the
demo drives load in-process); `stop` (an asyncio.Event) ends it early with a partial result.
A run always ends by itself: after `duration_s`, after `requests`, or when the workload ends.
`warmup` requests go first and are awaited; the run's clock, bounds and statistics start after them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np

from swell.loadgen import dataset, protocols, records, sender, summary
from swell.loadgen import options as opts
from swell.workload import arrivals, patterns, prompts, shapes

Record = records.RequestRecord  # (inside Result, `records` names its field)
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
    phase: str = "run"  # "warmup" while the warmup requests go (their counts, apart from the run's)


@dataclass(frozen=True, kw_only=True)
class Result:
    """What a run gives back. `options.model` is the model the requests named (asked of the
    server when none was given); `warmup` holds the warmup requests, which no statistic counts."""

    options: opts.Options
    description: str
    url: str
    started_at: float  # wall-clock time.time() at the start (after the warmup)
    records: tuple[records.RequestRecord, ...]
    summary: summary.Summary
    interrupted: bool
    warmup: tuple[Record, ...] = ()
    prompts: dataset.Prompts | None = None  # the prompts file used; None: synthetic prompts


ProgressCallback = Callable[[Progress], None]


class _Run:
    def __init__(self, plan: opts.Plan, send: sender.Sender, stop: asyncio.Event, phase: str = "run") -> None:
        self.plan, self.send, self.stop, self.phase = plan, send, stop, phase
        self.t0 = time.perf_counter()
        send.t0 = self.t0
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

    async def all_of(self, sizes: list[tuple[int, int]], concurrency: int) -> None:
        """Send requests of `sizes`, at most `concurrency` at a time, and wait for them (warmup)."""
        limit = asyncio.Semaphore(concurrency)
        for n_in, n_out in sizes:
            await limit.acquire()
            if self.stop.is_set():
                return
            task = asyncio.create_task(self.send.one(self.sent, None, n_in, n_out, limit))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            self.sent += 1
        if self.tasks:
            await asyncio.gather(*self.tasks)

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
                    phase=self.phase,
                )
            )
            last_t, last_done, last_sent = now, done, self.sent


async def run(
    options: opts.Options,
    *,
    progress: ProgressCallback | None = None,
    progress_interval_s: float = 0.5,
    stop: asyncio.Event | None = None,
    plan: opts.Plan | None = None,
) -> Result:
    """Run the load `options` describe and summarise it. Set `stop` to end early (partial result).
    `plan`: `opts.plan(options)` when the caller has made it already (a prompts file is read once)."""
    plan = plan or opts.plan(options)
    prompts.prompt(1)  # build the prompt text now, not inside the timed run
    stop = stop or asyncio.Event()
    async with sender.session(options.timeout_s) as session:
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
        warm: tuple[records.RequestRecord, ...] = ()
        if options.warmup:
            warm = await _warm_up(plan, options, session, wire, stop, progress, progress_interval_s)
        started_at = time.time()
        send = sender.Sender(
            session=session, wire=wire, headers=dict(options.headers), seed=options.seed, source=plan.prompts
        )
        state = _Run(plan, send, stop)
        rng = np.random.default_rng(options.seed)
        try:
            if stop.is_set():
                pass  # stopped during the warmup: nothing measured
            elif isinstance(plan.load, patterns.ClosedLoop):
                users = [asyncio.create_task(state.user(plan.load, rng)) for _ in range(plan.load.users)]
                state.tasks.update(users)
                await _until_stopped(asyncio.gather(*users), stop, state, progress, progress_interval_s)
            else:
                limit = asyncio.Semaphore(options.max_in_flight) if options.max_in_flight else None
                await _until_stopped(
                    _open_loop(state, plan.load, rng, limit), stop, state, progress, progress_interval_s
                )
        finally:
            await _cancel(state)
            await send.aclose()
        duration = state.elapsed()
    rows = tuple(sorted(send.records, key=lambda r: r.index))
    return Result(
        options=dataclasses.replace(options, model=wire.model or options.model),  # the model named
        description=plan.description,
        url=str(wire.url),
        started_at=started_at,
        records=rows,
        summary=summary.summarize(rows, duration, options.slo),
        interrupted=stop.is_set(),
        warmup=warm,
        prompts=plan.prompts,
    )


async def _open_loop(
    state: _Run, load: arrivals.Workload, rng: np.random.Generator, limit: asyncio.Semaphore | None
) -> None:
    await state.open_loop(load, rng, limit)
    if state.tasks:
        await asyncio.gather(*state.tasks)


def _warmup_sizes(plan: opts.Plan, n: int, seed: int) -> list[tuple[int, int]]:
    """Sizes of `n` warmup requests, drawn like the run's (its first arrivals, its shape) with a
    generator of their own, so the run's arrivals and sizes are the same with or without warmup."""
    rng = np.random.default_rng([seed, 1])
    load = plan.load
    if isinstance(load, patterns.ClosedLoop):
        drawn = load.sizes(rng, n)
    else:
        firsts = list(itertools.islice(itertools.chain.from_iterable(load.batches(rng, plan.horizon_s)), n))
        if firsts:  # a trace shorter than n: again from its start
            return [(a.input_tokens, a.output_tokens) for a in itertools.islice(itertools.cycle(firsts), n)]
        drawn = shapes.attach(np.zeros(n), shapes.Shape(), rng)  # no arrival before the horizon
    return list(zip(drawn.input_tokens.tolist(), drawn.output_tokens.tolist(), strict=True))


async def _warm_up(
    plan: opts.Plan,
    options: opts.Options,
    session: aiohttp.ClientSession,
    wire: protocols.WireProtocol,
    stop: asyncio.Event,
    progress: ProgressCallback | None,
    progress_interval_s: float,
) -> tuple[records.RequestRecord, ...]:
    """Send `options.warmup` requests and wait for them: as many at once as the run's users (closed
    loop) or --max-in-flight, else all at once (vLLM's --num-warmups does the same)."""
    n = options.warmup
    if isinstance(plan.load, patterns.ClosedLoop):
        concurrency = plan.load.users
    else:
        concurrency = options.max_in_flight or n
    warm = sender.Sender(
        session=session, wire=wire, headers=dict(options.headers), seed=options.seed + 7, source=plan.prompts
    )
    state = _Run(opts.Plan(load=plan.load, horizon_s=math.inf, max_requests=n), warm, stop, phase="warmup")
    sizes = _warmup_sizes(plan, n, options.seed)
    try:
        await _until_stopped(
            state.all_of(sizes, min(concurrency, n)), stop, state, progress, progress_interval_s
        )
    finally:
        await _cancel(state)
        await warm.aclose()
    return tuple(sorted(warm.records, key=lambda r: r.index))


async def _cancel(state: _Run) -> None:
    for task in list(state.tasks):
        task.cancel()
    await asyncio.gather(*state.tasks, return_exceptions=True)


async def _until_stopped(
    work: Awaitable[Any],
    stop: asyncio.Event,
    state: _Run,
    progress: ProgressCallback | None,
    interval_s: float,
) -> None:
    """Await `work` unless `stop` is set first (then `work` is cancelled), reporting `state`'s
    progress meanwhile."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    reporter = asyncio.create_task(state.report(progress, interval_s)) if progress else None
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if reporter is not None:
            reporter.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, stopper, *([reporter] if reporter else []), return_exceptions=True)
    # A cancelled gather() reports CancelledError as its exception: that is the stop, not a failure.
    if task.done() and not task.cancelled():
        exc = task.exception()
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            raise exc


def run_sync(options: opts.Options, *, progress: ProgressCallback | None = None) -> Result:
    """`run` for code without an event loop."""
    return asyncio.run(run(options, progress=progress))
