"""Fakes of the loop's boundaries (Cluster, SignalSource) for unit tests, next to the protocols.

FakeCluster applies decisions instantly (or after `start_ticks` observations) and records them;
FakeSource returns scripted readings. Real parts have their own tests against the real thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from swell import recipe
from swell.core import decision, snapshot, world


class FakeCluster:
    def __init__(self, current: int, start_ticks: int = 0) -> None:
        self.current = current
        self.start_ticks = start_ticks
        self.applied: list[int] = []
        self._starting: list[int] = []  # ticks left per starting replica

    async def observe(self) -> world.ClusterState:
        self._starting = [n - 1 for n in self._starting if n > 1]
        starting = len(self._starting)
        ready = self.current - starting
        reps = [snapshot.Replica(name=f"r{i}", state="ready") for i in range(ready)]
        reps += [snapshot.Replica(name=f"s{i}", state="starting") for i in range(starting)]
        return world.ClusterState(current=self.current, replicas=tuple(reps))

    async def apply(self, d: decision.Decision) -> None:
        added = d.desired - self.current
        if added > 0 and self.start_ticks:
            self._starting += [self.start_ticks] * added
        self.current = d.desired
        self.applied.append(d.desired)


class FakeSource:
    def __init__(self, script: Sequence[Mapping[str, float | None]]) -> None:
        self.script = list(script)
        self.calls = 0

    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: world.ClusterState
    ) -> dict[str, snapshot.Reading]:
        values = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return {s.name: snapshot.Reading.of(values.get(s.name), "scripted: no value") for s in sigs}
