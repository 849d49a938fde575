"""The replica manager: replicas as processes on free loopback ports, probed, restarted, drained.

A replica takes a device slot or waits Pending with the reason; it gets traffic (`Routing.add`)
only once its readiness probe passes (probed every 0.1 s until then, like a startup probe); a
failed liveness probe or an exit restarts it with exponential backoff. Scaling down removes
pending, then not-ready (starting, restarting, failing readiness), then ready replicas, fewest
requests in flight first; one with requests in flight, whatever its state, is drained: no new
traffic, in-flight requests finish (bounded), SIGTERM, SIGKILL after the grace period.

`roll(recipe)` puts a changed service onto running replicas one at a time (Ray Serve's `serve
deploy`, a Deployment's rolling update): with a free slot a new replica starts first and an old one
drains once it is ready (one surge); without one an old replica drains first and the new one takes
its slot (one unavailable; requests wait in the gateway's buffer meanwhile). A new replica that
cannot start stops the roll and goes back to the previous recipe: the old replicas keep serving and
the count is made up on it. Scale-downs take old replicas first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp

from swell import errors, recipe
from swell.clusters.local import engines, procs, slots
from swell.core import snapshot

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
BACKOFF_RESET_AFTER_S = 60.0  # ready this long: the next crash starts the backoff afresh
STARTUP_PROBE_S = 0.1  # until first ready, probe this often (a startup probe): traffic sooner
LOG_LINES = 3  # of a replica's log shown with why it stopped
ROLL_GIVE_UP_STARTS = 2  # a new replica failing to start this many times in a row stops a roll


class Routing(Protocol):
    """What the replica manager tells the gateway (and asks it)."""

    def add_backend(self, name: str, url: str) -> None: ...

    def remove_backend(self, name: str) -> None: ...

    def in_flight(self, name: str) -> int: ...


@dataclass(frozen=True, kw_only=True)
class Event:
    t: float
    replica: str
    kind: str  # created, started, ready, unready, exited, draining, stopped, rolled, roll-stopped
    text: str


@dataclass(frozen=True, kw_only=True)
class ReplicaInfo:
    """A replica as the status screen, the scraper and the tests see it."""

    name: str
    state: snapshot.ReplicaState
    reason: str
    slot: str
    url: str | None
    pid: int | None
    restarts: int
    created_at: float
    ready_at: float | None  # first time ready
    last_error: str = ""  # why its last process ended, with the last lines of its log


class _Replica:
    def __init__(self, name: str, created_at: float) -> None:
        self.name = name
        self.created_at = created_at
        self.state: snapshot.ReplicaState = "pending"
        self.reason = ""
        self.slot: slots.Slot | None = None
        self.spec: engines.LaunchSpec | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.spawning: asyncio.Future[asyncio.subprocess.Process] | None = None
        self.task: asyncio.Task[None] | None = None
        self.restarts = 0
        self.streak = 0  # crashes since the last long stretch of readiness
        self.ready_at: float | None = None
        self.ready_since: float | None = None
        self.failed_starts = 0  # processes in a row that ended before they were ever ready
        self.last_error = ""
        self.generation = 0  # the recipe it runs (ReplicaManager.generation when it last started)


class ReplicaManager:
    def __init__(
        self,
        rec: recipe.Recipe,
        routing: Routing,
        run_dir: Path,
        *,
        host: str = "127.0.0.1",
        now: Callable[[], float] = time.time,
    ) -> None:
        self.recipe = rec
        self.routing = routing
        self.run_dir = run_dir
        self.host = host
        self.now = now
        self.pool = slots.SlotPool.for_recipe(rec)
        self.target = 0
        self.events: deque[Event] = deque(maxlen=500)
        self._replicas: dict[str, _Replica] = {}  # active (pending, starting, ready), in creation order
        self._stopping: dict[str, tuple[_Replica, asyncio.Task[None]]] = {}
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self.ever_ready = False  # has any replica passed readiness since the manager started
        self.generation = 0  # bumped by each roll: replicas of an older one run an older recipe
        self._surge = 0  # replicas beyond the target while a roll starts a new one first
        self.rolling: asyncio.Task[None] | None = None
        self.roll_error: str | None = None  # why the last roll stopped before its end
        self._previous = (rec, 0)  # the recipe (and its generation) before the roll in progress

    # ------------------------------------------------------------------ views

    def _info(self, r: _Replica) -> ReplicaInfo:
        return ReplicaInfo(
            name=r.name,
            state=r.state,
            reason=r.reason,
            slot=r.slot.label if r.slot else "",
            url=r.spec.base_url if r.spec else None,
            pid=r.proc.pid if r.proc and r.proc.returncode is None else None,
            restarts=r.restarts,
            created_at=r.created_at,
            ready_at=r.ready_at,
            last_error=r.last_error,
        )

    def replicas(self) -> tuple[ReplicaInfo, ...]:
        active = [self._info(r) for r in self._replicas.values()]
        return (*active, *(self._info(r) for r, _ in self._stopping.values()))

    def snapshot_replicas(self) -> tuple[snapshot.Replica, ...]:
        """The replicas as the loop sees them, with when each was started (`scheduled_at`: there is
        no node to wait for here) and first ready, from which the planner learns a replica's start."""
        return tuple(
            snapshot.Replica(
                name=i.name, state=i.state, reason=i.reason, scheduled_at=i.created_at, ready_at=i.ready_at
            )
            for i in self.replicas()
        )

    def scrape_urls(self) -> dict[str, str]:
        """{replica: base URL} of the scrape targets: every replica kept whose current process has
        passed readiness, ready or failing readiness since.

        A busy replica whose readiness fails under load gets no new traffic but still serves what
        it has: its queue is real demand, so it stays in the signals (were its series dropped, the
        sum would shrink and invite a scale-down). Should its /metrics fail too, the failed scrape
        marks the readings partial: no scale-down on a signal that misses it. Replicas never ready
        in this process (starting, restarting) are not scraped: nothing may listen yet, and a
        failing scrape would block every scale-down for as long as a model loads.
        """
        return {
            r.name: r.spec.metrics_base_url
            for r in self._replicas.values()
            if r.spec and r.ready_since is not None and r.state in ("ready", "starting")
        }

    def ready_specs(self) -> dict[str, engines.LaunchSpec]:
        """{replica: launch spec} of the replicas ready now (the ones the gateway routes to)."""
        return {r.name: r.spec for r in self._replicas.values() if r.state == "ready" and r.spec is not None}

    def start_failure(self, times: int) -> str | None:
        """Why the service cannot start, once a replica failed to start `times` times in a row
        while no replica has ever been ready (a server that cannot start at all); else None."""
        if self.ever_ready:
            return None
        for r in self._replicas.values():
            if r.failed_starts >= times:
                return f"replica {r.name} failed to start {r.failed_starts} times in a row: {r.last_error}"
        return None

    def _event(self, r: _Replica, kind: str, text: str) -> None:
        self.events.append(Event(t=self.now(), replica=r.name, kind=kind, text=text))

    # ------------------------------------------------------------------ scaling

    async def scale(self, n: int) -> None:
        """Ask for `n` replicas; returns at once (starts and drains go on in the background)."""
        if self._closed:
            raise errors.ClusterError("the replica manager is closed")
        self.target = max(0, n)
        while len(self._replicas) < self.target + self._surge:
            self._add()
        excess = len(self._replicas) - self.target - self._surge
        for r in self._removal_order()[:excess]:
            self._begin_stop(r, drain=True)

    def _add(self) -> _Replica:
        r = _Replica(f"{self.recipe.service.name}-{next(self._ids)}", self.now())
        r.generation = self.generation
        self._replicas[r.name] = r
        self._event(r, "created", "created")
        self._place(r)
        return r

    def _removal_order(self) -> list[_Replica]:
        """Older recipe first (a roll replaces those anyway); then pending, then not receiving
        traffic (starting, restarting, failing readiness), then ready; within each, fewest requests
        in flight first (one failing readiness under load may still serve many), then one never
        ready before one that was, then newest first."""
        newest_first = list(reversed(self._replicas.values()))
        rank = {"pending": 0, "failed": 1, "starting": 2, "ready": 3}
        return sorted(
            newest_first,
            key=lambda r: (
                r.generation == self.generation, rank.get(r.state, 1), self.routing.in_flight(r.name),
                r.ready_at is not None,
            ),
        )

    # ------------------------------------------------------------------ rolling a changed recipe

    def old(self) -> list[ReplicaInfo]:
        """The replicas still on an older recipe than the last `roll`'s."""
        return [self._info(r) for r in self._replicas.values() if r.generation < self.generation]

    def roll(self, rec: recipe.Recipe) -> None:
        """Run `rec` from now on: new replicas start on it and the running ones are replaced one at
        a time in the background (`rolling`; `roll_error` says why one stopped early)."""
        if self._closed:
            raise errors.ClusterError("the replica manager is closed")
        idle = self.rolling is None or self.rolling.done()  # else the roll in progress goes on to `rec`
        if idle:
            self._previous = (self.recipe, self.generation)  # what a failed roll goes back to
        self.recipe = rec
        self.generation += 1
        self.roll_error = None
        for r in self._replicas.values():
            if r.slot is None:  # pending: nothing runs yet, it will start on the new recipe
                r.generation = self.generation
        if idle:
            self.rolling = asyncio.get_running_loop().create_task(self._roll(), name="roll")

    async def _roll(self) -> None:
        previous = self._previous
        while not self._closed:
            old = [r for r in self._removal_order() if r.generation < self.generation]
            if not old:
                return
            victim = old[0]
            if self.pool.free:  # surge: the new one serves before the old one goes
                self._surge += 1
                try:
                    fresh = self._add()
                    ok = await self._serving(fresh)
                finally:
                    self._surge -= 1
                if ok and victim.name in self._replicas:
                    self._begin_stop(victim, drain=True)
            else:  # no free slot: the old one drains first, the new one takes its slot
                self._begin_stop(victim, drain=True)
                fresh = self._add()
                ok = await self._serving(fresh)
            if not ok:
                self._roll_back(fresh, previous)
                return
            self._event(fresh, "rolled", f"on the new recipe; {len(old) - 1} replica(s) left to replace")

    def _roll_back(self, fresh: _Replica, previous: tuple[recipe.Recipe, int]) -> None:
        """A new replica cannot start: back to the previous recipe. The failing one stops, the
        replicas still on the previous recipe keep serving, and the count is made up on it."""
        self.roll_error = f"new replica {fresh.name} did not start: {fresh.last_error or fresh.reason}"
        self.recipe, before = previous
        self.generation += 1
        for r in self._replicas.values():
            if r.generation == before or r.slot is None:  # on the previous recipe, or not started
                r.generation = self.generation
        if fresh.name in self._replicas:
            self._begin_stop(fresh, drain=False)
        for r in [r for r in self._replicas.values() if r.generation < self.generation]:
            self._begin_stop(r, drain=True)  # started during the roll, on the recipe that fails
        while len(self._replicas) < self.target:
            self._add()
        self._event(fresh, "roll-stopped", f"{self.roll_error}; rolled back to the previous recipe")

    async def _serving(self, r: _Replica, poll_s: float = 0.05) -> bool:
        """Wait until a replica of a roll is ready (True), is removed by a scale-down meanwhile
        (True: nothing to wait for), or failed to start ROLL_GIVE_UP_STARTS times (False)."""
        while not self._closed:
            if r.name not in self._replicas or r.state == "ready":
                return True
            if r.failed_starts >= ROLL_GIVE_UP_STARTS:
                return False
            await asyncio.sleep(poll_s)
        return False

    def _place(self, r: _Replica) -> None:
        slot = self.pool.acquire()
        if slot is None:
            r.state = "pending"
            draining = sum(1 for s, _ in self._stopping.values() if s.slot is not None)
            r.reason = (
                f"waiting for a device slot: {draining} replica(s) still draining"
                if draining
                else slots.no_slot_reason(self.recipe, self.pool.capacity)
            )
            return
        r.slot = slot
        r.state = "starting"
        r.reason = "starting"
        r.task = asyncio.get_running_loop().create_task(self._lifecycle(r), name=f"replica {r.name}")

    def _promote_pending(self) -> None:
        for r in self._replicas.values():
            if r.state == "pending" and self.pool.free:
                self._place(r)

    # ------------------------------------------------------------------ one replica's life

    async def _probe(
        self, url: str, timeout_s: float, body_ok: Callable[[bytes], bool] | None = None
    ) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                body = await resp.read()
                return 200 <= resp.status < 400 and (body_ok is None or body_ok(body))
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def _ready(self, spec: engines.LaunchSpec, timeout_s: float) -> bool:
        """The readiness probe: the path's status, and for TorchServe a READY worker of the model."""
        if spec.management_port is None:
            return await self._probe(spec.readiness_url, timeout_s)
        return await self._probe(spec.readiness_url, timeout_s, spec.ready_body)

    async def _lifecycle(self, r: _Replica) -> None:
        assert r.slot is not None
        while True:
            r.generation = self.generation  # a restart starts on the current recipe
            r.spec = engines.spec_for(self.recipe, r.slot, host=self.host, workdir=self.run_dir / r.name)
            log_path = self.run_dir / f"{r.name}.log"
            r.state, r.reason = "starting", f"starting on port {r.spec.port}"
            r.spawning = asyncio.ensure_future(
                procs.spawn(
                    r.spec.argv, engines.environment(r.spec), log_path, self.recipe.local.grace_period_s
                )
            )
            try:
                r.proc = await asyncio.shield(r.spawning)
                self._event(r, "started", f"pid {r.proc.pid} on {r.spec.base_url}")
                why = await self._supervise(r, r.proc, r.spec)
            except errors.EngineError as exc:
                why = str(exc)
            self.routing.remove_backend(r.name)
            if r.proc is not None:
                await procs.terminate(r.proc, self.recipe.local.grace_period_s)
            if r.ready_since is not None and self.now() - r.ready_since >= BACKOFF_RESET_AFTER_S:
                r.streak = 0
            r.failed_starts = 0 if r.ready_since is not None else r.failed_starts + 1
            r.ready_since = None
            r.restarts += 1
            r.streak += 1
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (r.streak - 1))
            tail = procs.log_tail(log_path, LOG_LINES).replace("\n", " | ")
            r.last_error = f"{why}; its log ends: {tail}" if tail else f"{why} (its log {log_path} is empty)"
            r.state = "starting"
            r.reason = f"restarting in {delay:.1f} s (restart {r.restarts}): {r.last_error}"
            self._event(r, "exited", f"{why}; restart in {delay:.1f} s; log: {tail}")
            await asyncio.sleep(delay)

    async def _wait(self, exited: asyncio.Task[int], seconds: float) -> bool:
        """Sleep up to `seconds`; True if the process exited meanwhile."""
        done, _ = await asyncio.wait({exited}, timeout=max(0.0, seconds))
        return bool(done)

    async def _supervise(
        self, r: _Replica, proc: asyncio.subprocess.Process, spec: engines.LaunchSpec
    ) -> str:
        """Probe until the process exits or liveness fails; returns why it has to restart."""
        ready_p = self.recipe.service.probes.readiness
        exited = asyncio.ensure_future(proc.wait())
        try:
            if await self._wait(exited, ready_p.initial_delay_s):
                return f"exited with code {proc.returncode} before ready"
            budget = self.recipe.startup_timeout_s
            deadline = self.now() + budget - ready_p.initial_delay_s
            while not await self._ready(spec, ready_p.timeout_s):
                if self.now() >= deadline:
                    return f"not ready within {budget:g} s (service.probes.startup_timeout_s)"
                r.reason = f"starting: waiting for {spec.readiness_path} on port {spec.port}"
                if await self._wait(exited, min(ready_p.period_s, STARTUP_PROBE_S)):
                    return f"exited with code {proc.returncode} before ready"
            if self._become_ready(r, spec):
                r.ready_since = self.now()
                if r.ready_at is None:
                    r.ready_at = r.ready_since
                self._event(r, "ready", f"ready after {self.now() - r.created_at:.1f} s")
            return await self._watch(r, exited, proc, spec)
        finally:
            exited.cancel()

    async def _watch(
        self,
        r: _Replica,
        exited: asyncio.Task[int],
        proc: asyncio.subprocess.Process,
        spec: engines.LaunchSpec,
    ) -> str:
        """Readiness and liveness probed concurrently, each on its own period with its own timeout
        (a slow liveness probe must not delay readiness: a hung replica leaves the gateway within
        readiness's budget); returns why the process has to restart."""
        live = asyncio.ensure_future(self._liveness(spec))
        ready = asyncio.ensure_future(self._readiness(r, spec))
        try:
            done, _ = await asyncio.wait({exited, live, ready}, return_when=asyncio.FIRST_COMPLETED)
            if exited in done:
                return f"exited with code {proc.returncode}"
            return live.result() if live in done else ready.result()
        finally:
            for t in (live, ready):
                t.cancel()
            await asyncio.gather(live, ready, return_exceptions=True)

    async def _liveness(self, spec: engines.LaunchSpec) -> str:
        """Probe liveness every period; returns once it failed `failure_threshold` times in a row."""
        p = self.recipe.service.probes.liveness
        await asyncio.sleep(p.initial_delay_s + p.period_s)
        fails = 0
        while True:
            started = self.now()
            ok = await self._probe(spec.base_url + spec.liveness_path, p.timeout_s)
            fails = 0 if ok else fails + 1
            if fails >= p.failure_threshold:
                return f"liveness probe {spec.liveness_path} failed {fails} times"
            await asyncio.sleep(max(0.0, started + p.period_s - self.now()))

    async def _readiness(self, r: _Replica, spec: engines.LaunchSpec) -> str:
        """Probe readiness every period: traffic stops after `failure_threshold` failures in a row
        and comes back on the next success. Never returns on its own."""
        p = self.recipe.service.probes.readiness
        fails = 0
        await asyncio.sleep(p.period_s)
        while True:
            started = self.now()
            ok = await self._ready(spec, p.timeout_s)
            fails = 0 if ok else fails + 1
            if ok and r.state != "ready":
                if self._become_ready(r, spec):
                    self._event(r, "ready", "readiness passes again")
            elif fails >= p.failure_threshold and r.state == "ready":
                r.state, r.reason = "starting", f"readiness {spec.readiness_path} failing: no traffic"
                self.routing.remove_backend(r.name)
                self._event(r, "unready", r.reason)
            await asyncio.sleep(max(0.0, started + p.period_s - self.now()))

    def _become_ready(self, r: _Replica, spec: engines.LaunchSpec) -> bool:
        """Readiness passed: route to it, but only if it is a starting replica still kept. A
        scale-down may land between the probe's answer and this (the replica is terminating then):
        it must not get traffic again."""
        if r.state != "starting" or self._replicas.get(r.name) is not r:
            return False
        r.state, r.reason = "ready", ""
        r.failed_starts = 0
        self.ever_ready = True
        self.routing.add_backend(r.name, spec.base_url)
        return True

    # ------------------------------------------------------------------ stopping

    def _begin_stop(self, r: _Replica, *, drain: bool) -> None:
        del self._replicas[r.name]
        if r.slot is None and r.task is None:  # pending: nothing runs, nothing to wait for
            self._event(r, "stopped", "removed while pending")
            return
        self.routing.remove_backend(r.name)  # no new traffic from now on
        if r.task is not None:
            r.task.cancel()  # its lifecycle acts on nothing more, not even a probe already answered
        # drain whatever the state: one failing readiness under load still serves its requests
        drain = drain and self.routing.in_flight(r.name) > 0
        r.state = "terminating"
        r.reason = "draining in-flight requests" if drain else "stopping"
        self._event(r, "draining", r.reason)
        task = asyncio.get_running_loop().create_task(self._stop(r, drain=drain))
        self._stopping[r.name] = (r, task)

    async def drained(self, name: str, poll_s: float = 0.05) -> None:
        """Wait until the gateway has no request in flight at replica `name`, at most
        the recipe's `drain_s` (the caller has stopped routing new ones to it)."""
        deadline = self.now() + self.recipe.drain_s
        while self.routing.in_flight(name) > 0 and self.now() < deadline:
            await asyncio.sleep(poll_s)

    async def _stop(self, r: _Replica, *, drain: bool) -> None:
        local = self.recipe.local
        try:
            if r.task is not None:
                r.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await r.task
            self.routing.remove_backend(r.name)  # whatever the cancelled lifecycle did last
            if drain:
                await self.drained(r.name)
            proc = r.proc
            if r.spawning is not None and not r.spawning.cancelled():
                with contextlib.suppress(errors.EngineError):
                    proc = await r.spawning
            if proc is not None:
                r.reason = "SIGTERM sent"
                code = await procs.terminate(proc, local.grace_period_s)
                self._event(r, "stopped", f"exit code {code}")
        finally:
            if r.slot is not None:
                self.pool.release(r.slot)
                r.slot = None
            self._stopping.pop(r.name, None)
            if not self._closed:
                self._promote_pending()

    async def close(self, *, drain: bool = False) -> None:
        """Stop every replica (draining first if asked) and wait until all processes are gone."""
        if self.rolling is not None and not self.rolling.done():
            self.rolling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.rolling
        for r in list(self._replicas.values()):
            self._begin_stop(r, drain=drain)
        self._closed = True
        self.target = 0
        tasks = [t for _, t in self._stopping.values()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
