"""Performance model of a classic-model replica (KServe / TorchServe style), in virtual time.

N workers take requests from one FIFO queue; each request's service time is drawn from a
distribution (lognormal by mean and coefficient of variation) with an RNG passed in, so runs
are reproducible. Same API shape as engines.llm: submit / advance / next_event_time, no clock.
Workers can be resized at run time (TorchServe scales workers inside a replica).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass

from swell.engines import stats


@dataclass(frozen=True, kw_only=True)
class ServicePreset:
    name: str
    mean_s: float  # mean service time of one request on one worker
    cv: float = 0.5  # coefficient of variation (std / mean); 0 = deterministic
    workers: int = 1
    queue_limit: int | None = None  # waiting requests beyond this are rejected (HTTP 503)

    def __post_init__(self) -> None:
        if self.mean_s <= 0 or self.cv < 0 or self.workers < 0:
            raise ValueError(
                f"service preset {self.name!r}: need mean_s > 0, cv >= 0, workers >= 0 "
                f"(got {self.mean_s}, {self.cv}, {self.workers})"
            )

    def sample(self, rng: random.Random) -> float:
        """One service time: lognormal with this mean and cv."""
        if self.cv == 0:
            return self.mean_s
        sigma2 = math.log1p(self.cv * self.cv)
        return rng.lognormvariate(math.log(self.mean_s) - sigma2 / 2, math.sqrt(sigma2))


PRESETS: dict[str, ServicePreset] = {
    p.name: p
    for p in (
        ServicePreset(name="sklearn-cpu", mean_s=0.002, cv=0.3, workers=1),
        ServicePreset(name="resnet50-cpu", mean_s=0.080, cv=0.2, workers=4),
        ServicePreset(name="resnet50-t4", mean_s=0.012, cv=0.15, workers=1),
        ServicePreset(name="bert-base-cpu", mean_s=0.050, cv=0.4, workers=2),
    )
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    time: float
    request_id: str
    reason: str  # "ok" or "abort"
    arrival: float
    queue_time: float | None
    service_time: float | None
    latency: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceState:
    time: float
    busy: int  # workers serving a request
    queued: int
    workers: int
    busy_seconds: float  # cumulative worker-seconds spent serving


class _Job:
    __slots__ = ("arrival", "done", "id", "service", "start")

    def __init__(self, request_id: str, now: float) -> None:
        self.id, self.arrival = request_id, now
        self.start = -1.0
        self.service = 0.0
        self.done = False


class Service:
    """One replica with `preset.workers` workers; `rng` decides every service time."""

    def __init__(self, preset: ServicePreset, rng: random.Random) -> None:
        self.preset = preset
        self.stats = stats.ServiceStats()
        self._rng = rng
        self._workers = preset.workers
        self._queue: deque[_Job] = deque()
        self._busy: dict[str, _Job] = {}
        self._jobs: dict[str, _Job] = {}
        self._heap: list[tuple[float, int, _Job]] = []
        self._tiebreak = 0
        self._now = 0.0
        self._busy_done = 0.0
        self._pending: list[Finished] = []

    def submit(self, now: float, request_id: str) -> bool:
        """Queue a request; False when the queue is full (the caller answers 503)."""
        if request_id in self._jobs:
            raise ValueError(f"request id {request_id!r} is already in this replica")
        self._move_to(now)
        limit = self.preset.queue_limit
        if limit is not None and len(self._queue) >= limit and len(self._busy) >= self._workers:
            self.stats.rejected += 1
            return False
        job = _Job(request_id, now)
        self._jobs[request_id] = job
        self._queue.append(job)
        self._start_jobs(now)
        return True

    def answering(self, request_id: str) -> bool:
        """Whether a request is being served (or is no longer here); False while it is queued."""
        job = self._jobs.get(request_id)
        return job is None or job.start >= 0

    def abort(self, now: float, request_id: str) -> bool:
        self._move_to(now)
        job = self._jobs.pop(request_id, None)
        if job is None:
            return False
        if job.start < 0:
            self._queue.remove(job)
        else:
            del self._busy[job.id]
            self._busy_done += now - job.start
            job.done = True  # its heap entry is skipped
        self.stats.aborted += 1
        queue = None if job.start < 0 else job.start - job.arrival
        self._pending.append(Finished(time=now, request_id=job.id, reason="abort", arrival=job.arrival,
                                      queue_time=queue, service_time=None, latency=now - job.arrival))  # fmt: skip
        self._start_jobs(now)
        return True

    def set_workers(self, now: float, workers: int) -> None:
        """Resize the pool; busy workers above the new size finish their request first."""
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self._move_to(now)
        self._workers = workers
        self._start_jobs(now)

    def advance(self, until: float) -> list[Finished]:
        self._move_to(until)
        out, self._pending = self._pending, []
        return out

    def next_event_time(self) -> float | None:
        if self._pending:
            return self._now
        while self._heap and self._heap[0][2].done:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def state(self, now: float | None = None) -> ServiceState:
        t = self._now if now is None else max(now, self._now)
        return ServiceState(time=t, busy=len(self._busy), queued=len(self._queue), workers=self._workers,
                            busy_seconds=self.busy_seconds(t))  # fmt: skip

    def busy_seconds(self, now: float) -> float:
        return self._busy_done + sum(max(0.0, now - j.start) for j in self._busy.values())

    @property
    def workers(self) -> int:
        return self._workers

    def _move_to(self, until: float) -> None:
        if until < self._now:
            raise ValueError(f"time went backwards: {until} < {self._now}")
        self._now = until
        heap = self._heap
        while heap and heap[0][0] <= until:
            t, _, job = heapq.heappop(heap)
            if job.done:
                continue
            job.done = True
            del self._busy[job.id]
            del self._jobs[job.id]
            self._busy_done += job.service
            self.stats.requests += 1
            self.stats.latency.observe(t - job.arrival)
            self._pending.append(Finished(time=t, request_id=job.id, reason="ok", arrival=job.arrival,
                                          queue_time=job.start - job.arrival, service_time=job.service,
                                          latency=t - job.arrival))  # fmt: skip
            self._start_jobs(t)

    def _start_jobs(self, now: float) -> None:
        while self._queue and len(self._busy) < self._workers:
            job = self._queue.popleft()
            job.start = now
            job.service = self.preset.sample(self._rng)
            self._busy[job.id] = job
            self.stats.queue_time.observe(now - job.arrival)
            self._tiebreak += 1
            heapq.heappush(self._heap, (now + job.service, self._tiebreak, job))
