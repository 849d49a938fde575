"""The one loop: observe the cluster, read the signals, ask the policy, apply the decision.

`Controller.tick` is the one tick body, written once against the boundary in `core.world`: local
and Kubernetes await it on the wall clock (`run`), the simulator runs it in virtual time with
`drive` (its world never suspends). `step` is the pure part (snapshot -> policy -> decision,
recorded in the history). With a recipe's `workers` section and a cluster that reports workers
(`WorkerControl`), the same tick also sizes the workers inside each replica (TorchServe-style).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar, cast

from swell import clock as clock_mod
from swell import errors, recipe
from swell.control import history as history_mod
from swell.control import profile
from swell.core import capacity as capacity_mod
from swell.core import decision, signals, snapshot, world
from swell.core import policies as policies_mod
from swell.core.policies import steps, workers

log = logging.getLogger(__name__)


T = TypeVar("T")


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the simulator's world does no I/O) to its result,
    without an event loop: the same async tick serves virtual and wall time."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise errors.SwellError("a simulated world awaited real I/O: drive() runs only worlds that never suspend")


@dataclass(frozen=True, kw_only=True)
class Tick:
    """What one tick saw and did: the cluster it observed, the readings, the decision, whether a
    rescale was applied (False: none was needed), the workers it set."""

    state: world.ClusterState
    readings: Mapping[str, snapshot.Reading]
    decision: decision.Decision
    applied: bool
    workers_set: tuple[tuple[str, int], ...] = ()


class ApplyFailed(errors.ClusterError):
    """The policy decided, the cluster refused the rescale: `tick` is what was decided and read."""

    def __init__(self, message: str, tick: Tick) -> None:
        super().__init__(message)
        self.tick = tick


class Controller:
    def __init__(
        self,
        rec: recipe.Recipe,
        *,
        policy: str | None = None,
        state: steps.State | None = None,
        history: history_mod.History | None = None,
        capacity: capacity_mod.Profile | Literal["engine"] | None = "engine",
        epoch_s: float = 0.0,
    ) -> None:
        self.policy_override = policy  # the caller's policy, whatever the recipe names (None: the recipe's)
        self.capacity_given = capacity
        self.state = state if state is not None else steps.State()
        self.history = history if history is not None else history_mod.History()
        self.epoch_s = epoch_s  # Unix time at now = 0 (snapshot.Snapshot.epoch_s): the simulator's start date
        self.take(rec)

    def take(self, rec: recipe.Recipe) -> None:
        """Decide by `rec` from the next tick on: its policy (unless the caller chose one), signals,
        capacity model and polling interval; the state and history go on."""
        self.recipe = rec
        self.policy_name = self.policy_override or rec.autoscaling.policy
        self.decide = policies_mod.get(self.policy_name)
        self.signals = signals.required(rec.autoscaling, rec.slo)
        # one replica's capacity model for the planner: the engine's, unless the caller gives one
        self.capacity = profile.of(rec) if self.capacity_given == "engine" else self.capacity_given

    def step(
        self, now: float, cluster: world.ClusterState, readings: Mapping[str, snapshot.Reading]
    ) -> decision.Decision:
        """One tick without I/O: snapshot -> policy -> decision (recorded in the history)."""
        snap = snapshot.Snapshot(
            now=now,
            current=cluster.current,
            replicas=cluster.replicas,
            signals=dict(readings),
            nodes=cluster.nodes,
            capacity=self.capacity,
            epoch_s=self.epoch_s,
        )
        d, self.state = self.decide(self.recipe, snap, self.state)
        cfg = self.recipe.workers
        if cfg is not None and cluster.workers is not None:
            obs = cluster.workers
            st = self.state
            running = workers.current(obs, st.workers if st.workers is not None else cfg.min_workers)
            cap = workers.memory_cap(cfg, self.recipe.resources.memory_gib, obs)
            queue = workers.queue_per_replica(obs)
            w, asks = workers.decide(cfg, queue, running, now=now, recent=st.worker_asks, cap=cap)
            self.state = replace(st, workers=w.desired, worker_asks=asks)
            d = replace(d, workers=w)
        self.history.add(d, snap)
        return d

    async def tick(
        self, cluster: world.Cluster, source: world.SignalSource, clock: clock_mod.Clock
    ) -> Tick:
        """Observe -> read -> step -> apply -> workers. A failed rescale is forgotten by the rate
        policies (the HPA stores a scale event only after a successful update) and raised as
        `ApplyFailed` carrying the tick; errors observing the cluster propagate (nothing decided)."""
        now = clock.now()
        state = await cluster.observe()
        control = cluster if self.recipe.workers is not None and isinstance(cluster, world.WorkerControl) else None
        if control is not None and (obs := await control.observe_workers()) is not None:
            state = replace(state, workers=tuple(obs))
        try:
            readings = await source.read(self.signals, now, state)
        except errors.SwellError as exc:  # a broken source is "no value" for every signal, never zero
            readings = {s.name: snapshot.Reading.missing(str(exc)) for s in self.signals}
        before = self.state
        d = self.step(now, state, readings)
        applied = False
        if d.desired != state.current:
            log.info("scale %d -> %d (%s): %s", state.current, d.desired, d.bound_by, d.reason)
            try:
                await cluster.apply(d)
                applied = True
            except errors.SwellError as exc:
                self.forget_rescale(before)
                raise ApplyFailed(str(exc), Tick(state=state, readings=readings, decision=d, applied=False)) from exc
            except BaseException:
                self.forget_rescale(before)
                raise
        if isinstance(cluster, world.NodeControl):
            await cluster.keep_spare(d.spare_nodes)
        changes = world.worker_changes(state, d) if control is not None else []
        if changes and d.workers is not None:
            log.info("workers %d -> %d: %s", d.workers.current, d.workers.desired, d.workers.reason)
        for name, count in changes:
            assert control is not None
            await control.set_workers(name, count)
        return Tick(state=state, readings=readings, decision=d, applied=applied, workers_set=tuple(changes))

    def forget_rescale(self, before: steps.State) -> None:
        """The rescale did not happen: the rate policies must not count it."""
        self.state = self.state.forget_rescale(before)

    async def run(
        self, cluster: world.Cluster, source: world.SignalSource, clock: clock_mod.Clock, stop: asyncio.Event
    ) -> None:
        """Tick every polling interval until `stop` is set, waiting with the clock; errors of one
        tick are logged, not fatal."""
        while not stop.is_set():
            interval = self.recipe.autoscaling.polling_interval_s  # read each tick: a new recipe may change it
            started = clock.now()
            try:
                await self.tick(cluster, source, clock)
            except errors.SwellError as exc:
                log.warning("tick failed: %s", exc)
            except Exception:  # a bug in one tick must not stop the loop that keeps a service up
                log.exception("tick failed unexpectedly")
            await clock.wait(stop, max(0.0, interval - (clock.now() - started)))
