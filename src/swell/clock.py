"""Time, passed in rather than read inside logic.

Policies never call a clock: the loop reads one and puts `now` in the snapshot. Local and
Kubernetes run on SystemClock, the simulator and tests on ManualClock (virtual time).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since an arbitrary epoch (monotonic within one run)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep `seconds`, or less if `stop` is set meanwhile."""
        ...


class SystemClock:
    """Wall time (Unix seconds), so schedules in cron and timezones line up with the real day."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))


class ManualClock:
    """Virtual time that moves only when told: for tests and the simulator."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards by {seconds} s")
        self._now += seconds

    def set(self, t: float) -> None:
        if t < self._now:
            raise ValueError(f"cannot move a clock back from {self._now} to {t}")
        self._now = t

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    async def wait(self, stop: asyncio.Event, seconds: float) -> None:
        if not stop.is_set():
            await self.sleep(seconds)
