"""The one loop: observe the cluster, read the signals, ask the policy, apply the decision.

`Controller.step` is synchronous and does no I/O, so the simulator calls it in virtual time;
`Controller.tick` and `run` wrap it with the I/O of a real cluster and metrics source on a Clock.
The same object runs locally, in the simulator and on Kubernetes. With a recipe's `workers`
section and a cluster that reports workers (`WorkerControl`), the same tick also sizes the workers
inside each replica (TorchServe-style).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol, runtime_checkable

from swell import clock as clock_mod
from swell import errors, recipe
from swell.control import history as history_mod
from swell.control import profile
from swell.core import capacity as capacity_mod
from swell.core import decision, signals, snapshot
from swell.core import policies as policies_mod
from swell.core.policies import steps, workers

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ClusterState:
    """What a cluster reports: its current target count, the replicas, the nodes, and the workers
    of each ready replica (None: the cluster does not control workers)."""

    current: int
    replicas: tuple[snapshot.Replica, ...] = ()
    nodes: tuple[snapshot.NodeInfo, ...] = ()
    workers: tuple[workers.Observed, ...] | None = None


class Cluster(Protocol):
    async def observe(self) -> ClusterState: ...

    async def apply(self, d: decision.Decision) -> None: ...


@runtime_checkable
class WorkerControl(Protocol):
    """A cluster whose replicas run resizable workers (a TorchServe management API, a pod's sidecar).
    Only ready replicas are reported; `set_workers` may take effect later (a worker starts)."""

    async def observe_workers(self) -> Sequence[workers.Observed]: ...

    async def set_workers(self, replica: str, count: int) -> None: ...


def worker_changes(state: ClusterState, d: decision.Decision) -> list[tuple[str, int]]:
    """(replica, workers) for each observed replica whose count differs from the decision's."""
    if d.workers is None or state.workers is None:
        return []
    want = d.workers.desired
    return [(o.replica, want) for o in state.workers if o.workers != want]


class SignalSource(Protocol):
    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: ClusterState
    ) -> Mapping[str, snapshot.Reading]: ...


class Controller:
    def __init__(
        self,
        rec: recipe.Recipe,
        *,
        policy: str | None = None,
        state: steps.State | None = None,
        history: history_mod.History | None = None,
        capacity: capacity_mod.Profile | Literal["engine"] | None = "engine",
    ) -> None:
        self.recipe = rec
        self.policy_name = policy or rec.autoscaling.policy
        self.decide = policies_mod.get(self.policy_name)
        self.state = state if state is not None else steps.State()
        self.history = history if history is not None else history_mod.History()
        self.signals = signals.required(rec.autoscaling)
        self.workers_desired = rec.workers.min_workers if rec.workers is not None else 0
        self.workers_recent: workers.Recent = ()
        # one replica's capacity model for the planner: the engine's, unless the caller gives one
        self.capacity = profile.of(rec) if capacity == "engine" else capacity

    def step(
        self, now: float, cluster: ClusterState, readings: Mapping[str, snapshot.Reading]
    ) -> decision.Decision:
        """One tick without I/O: snapshot -> policy -> decision (recorded in the history)."""
        snap = snapshot.Snapshot(
            now=now,
            current=cluster.current,
            replicas=cluster.replicas,
            signals=dict(readings),
            nodes=cluster.nodes,
            capacity=self.capacity,
        )
        d, self.state = self.decide(self.recipe, snap, self.state)
        cfg = self.recipe.workers
        if cfg is not None and cluster.workers is not None:
            obs = cluster.workers
            running = workers.current(obs, self.workers_desired)
            w, self.workers_recent = workers.decide(
                cfg, workers.queue_per_replica(obs), running, now=now, recent=self.workers_recent
            )
            self.workers_desired = w.desired
            d = replace(d, workers=w)
        self.history.add(d, snap)
        return d

    async def tick(self, cluster: Cluster, source: SignalSource, clock: clock_mod.Clock) -> decision.Decision:
        now = clock.now()
        state = await cluster.observe()
        control = cluster if self.recipe.workers is not None and isinstance(cluster, WorkerControl) else None
        if control is not None:
            state = replace(state, workers=tuple(await control.observe_workers()))
        try:
            readings = await source.read(self.signals, now, state)
        except errors.SwellError as exc:  # a broken source is "no value" for every signal, never zero
            readings = {s.name: snapshot.Reading.missing(str(exc)) for s in self.signals}
        before = self.state
        d = self.step(now, state, readings)
        if d.desired != state.current:
            log.info("scale %d -> %d (%s): %s", state.current, d.desired, d.bound_by, d.reason)
            try:
                await cluster.apply(d)
            except BaseException:
                # the rescale did not happen: the rate policies must not count it (the HPA stores
                # a scale event only after a successful update)
                self.state = replace(self.state, up_events=before.up_events, down_events=before.down_events)
                raise
        if control is not None:
            changes = worker_changes(state, d)
            if changes and d.workers is not None:
                log.info("workers %d -> %d: %s", d.workers.current, d.workers.desired, d.workers.reason)
            for name, count in changes:
                await control.set_workers(name, count)
        return d

    async def run(
        self, cluster: Cluster, source: SignalSource, clock: clock_mod.Clock, stop: asyncio.Event
    ) -> None:
        """Tick every polling interval until `stop` is set; errors of one tick are logged, not fatal."""
        interval = self.recipe.autoscaling.polling_interval_s
        while not stop.is_set():
            started = clock.now()
            try:
                await self.tick(cluster, source, clock)
            except errors.SwellError as exc:
                log.warning("tick failed: %s", exc)
            except Exception:  # a bug in one tick must not stop the loop that keeps a service up
                log.exception("tick failed unexpectedly")
            wait = max(0.0, interval - (clock.now() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
