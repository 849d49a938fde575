"""The simulator's event loop: a heap of (t, priority, seq, event); handlers return follow-ups.

Small on purpose (SimPy, vidur): virtual time moves only here, randomness comes from one seeded
generator, constructors do no I/O. Events at the same instant run by priority, then in the order
they were scheduled, so a run is a pure function of its inputs and seed. Stale events (a replica's
superseded wake-up) are dropped by their handlers, never searched for in the heap.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

# Priorities at one instant: the world changes first (nodes, replicas, engines, arrivals), then it
# is measured (scrape), then decided on (controller), then the node autoscaler and samplers look.
NODE = 0
REPLICA = 1
ENGINE = 2
ARRIVAL = 3
TIMEOUT = 4
SCRAPE = 5
CONTROL = 6
AUTOSCALER = 7
SAMPLE = 8


class Event(NamedTuple):
    """Something that happens at `t`: `handler(t, data)` runs and may return follow-up events."""

    t: float
    priority: int
    handler: Handler
    data: Any = None


Handler = Callable[[float, Any], "Iterable[Event] | None"]


class Loop:
    """Virtual time and the pending events. `run(until)` processes them in order."""

    def __init__(self, seed: int = 0) -> None:
        self.now = 0.0
        self.rng = random.Random(seed)
        self.processed = 0
        self._heap: list[tuple[float, int, int, Event]] = []
        self._seq = 0
        self._stopped = False

    def schedule(self, event: Event) -> None:
        if event.t < self.now:
            raise ValueError(f"event at t={event.t} is in the past (now {self.now})")
        self._seq += 1
        heapq.heappush(self._heap, (event.t, event.priority, self._seq, event))

    def at(self, t: float, priority: int, handler: Handler, data: Any = None) -> None:
        """Schedule `handler(t, data)`; shorthand for schedule(Event(...))."""
        self.schedule(Event(t, priority, handler, data))

    def every(self, start: float, period: float, priority: int, fn: Callable[[float], None]) -> None:
        """Call fn(t) at start, start + period, ... for as long as the loop runs."""
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period}")

        def tick(t: float, n: int) -> Iterable[Event]:
            fn(t)
            return (Event(start + (n + 1) * period, priority, tick, n + 1),)

        self.at(start, priority, tick, 0)

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def stop(self) -> None:
        """Ask run() to return after the event being handled."""
        self._stopped = True

    def run(self, until: float = math.inf) -> float:
        """Handle every event with t <= until (or until stop()); return the time reached."""
        heap, schedule = self._heap, self.schedule
        self._stopped = False
        processed = 0
        while heap and heap[0][0] <= until and not self._stopped:
            t, _, _, event = heapq.heappop(heap)
            self.now = t
            processed += 1
            follow = event.handler(t, event.data)
            if follow:
                for f in follow:
                    schedule(f)
        self.processed += processed
        if math.isfinite(until) and not self._stopped and until > self.now:
            self.now = until
        return self.now

    def __len__(self) -> int:
        return len(self._heap)
