"""The simulated cluster: nodes, replicas, the router and requests, driven by the event loop.

`set_target(now, n)` is the scale subresource (what a decision applies); `replica_infos()` and
`node_infos()` are what the controller observes; for a classic model with a recipe `workers`
section, `worker_infos()` and `resize_workers()` are the workers inside each replica. The cluster
is also the one loop's world (`core.world`): observe/apply, the workers, and the signals read from
the windows its emitter fills, at the event loop's virtual time. Requests arrive
from a workload, wait in the gateway's buffer while no replica is ready, run on a replica's engine
and end served, dropped or timed out. Nothing here knows about policies: the runtime wires the
controller in.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from swell import recipe
from swell.clusters.sim import emit, events, nodes, outcomes, replicas, router
from swell.core import decision, signals, snapshot, windows, world
from swell.core import nodes as sizing
from swell.core.policies import workers
from swell.workload import arrivals


def fewest(auto: recipe.Autoscaling) -> int:
    """The fewest replicas a run holds: min_replicas, and at least 1 unless max_replicas is 0."""
    return max(auto.min_replicas, 1 if auto.max_replicas > 0 else 0)


@dataclass(frozen=True, kw_only=True)
class Options:
    router: router.Kind = "least-outstanding"
    request_timeout_s: float = 600.0  # the client gives up (OpenAI client default)
    grace_period_s: float | None = None  # a replica scaled down finishes what it has in flight within
    # this, then what still runs is dropped; None: the recipe's `drain_s`, as `swell up` and the
    # rendered Deployment drain (Kubernetes' default 30 s cut a reasoning model's answers of minutes)
    model_load_samples: Sequence[float] = ()  # empty: the recipe's fixed model_load_s
    initial_replicas: int | None = None  # None: min_replicas (at least 1 when the max allows)
    start_s: float = 0.0  # Unix time of the run's t = 0, for the calendar: schedule windows' cron
    # fire at start_s + t (0: Thursday 1 January 1970, 00:00 UTC)


def start_text(start_s: float) -> str:
    """A run's start on the calendar, ISO 8601 in UTC ('1970-01-01T00:00:00Z' by default)."""
    return dt.datetime.fromtimestamp(start_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimCluster:
    def __init__(
        self,
        rec: recipe.Recipe,
        loop: events.Loop,
        store: windows.Store,
        sigs: Sequence[recipe.Signal],
        options: Options | None = None,
    ) -> None:
        self.rec, self.loop = rec, loop
        self.options = options = options or Options()
        self.kind, self.preset = replicas.engine_factory(rec)
        self.pool = nodes.Pool(rec.node_pool, rec.resources.gpus)
        self.router = router.Router(options.router, cap=rec.local.max_ongoing_requests)
        self.emitter = emit.Emitter(store, sigs, rec)
        self.requests = outcomes.Requests()
        self.target = 0
        self.spare: int | None = None  # spare nodes the last decision asked for (None: headroom_nodes)
        self.replicas: dict[str, replicas.SimReplica] = {}  # every replica not gone, in creation order
        self.gone: list[replicas.SimReplica] = []
        self.buffer: deque[int] = deque()
        self._count = 0
        self._max_tokens = replicas.make_engine(self.kind, self.preset, loop.rng).max_tokens()
        self._prov = rec.node_pool.provisioning
        self.worker_control = self.kind == "fixed" and rec.workers is not None
        self._deadline_s = rec.slo.deadline_s

    # ---- setup ---------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """A warm cluster: the initial replicas ready on ready nodes; the node autoscaler running."""
        auto = self.rec.autoscaling
        n = self.options.initial_replicas
        if n is None:
            n = fewest(auto)
        for _ in range(nodes.initial_nodes(self.rec.node_pool, self.pool.gpr, n)):
            self.pool.warm(now)
        self.target = n
        for _ in range(n):
            rep = self._new_replica(now)
            node = self.pool.place(rep.name)
            if node is not None:
                rep.node = node
                rep.timeline.update(scheduled=now, pulled=now, loaded=now)
                self._ready(now, rep)
        self.loop.every(now, nodes.SCAN_INTERVAL_S, events.AUTOSCALER, self._scan)

    def feed(self, batches: Iterator[arrivals.Arrivals]) -> None:
        """Arrivals from a workload, pulled a batch at a time as virtual time reaches them."""
        self.loop.at(0.0, events.ARRIVAL, self._next_batch, batches)

    def _next_batch(self, now: float, batches: Iterator[arrivals.Arrivals]) -> Iterable[events.Event]:
        for batch in batches:
            if len(batch):
                t = batch.t.tolist()
                data = (t, batch.input_tokens.tolist(), batch.output_tokens.tolist(), 0, batches)
                return (events.Event(max(now, t[0]), events.ARRIVAL, self._arrive, data),)
        return ()

    # ---- requests ------------------------------------------------------------------------------

    def _arrive(
        self, now: float, data: tuple[list[float], list[int], list[int], int, Iterator[arrivals.Arrivals]]
    ) -> Iterable[events.Event]:
        ts, ins, outs, i, batches = data
        inp, out = max(1, ins[i]), max(1, outs[i])
        rid = self.requests.add(now, inp, out)
        follow = [events.Event(now + self.options.request_timeout_s, events.TIMEOUT, self._timeout, rid)]
        if self._deadline_s is not None and self._deadline_s < self.options.request_timeout_s:
            follow.append(events.Event(now + self._deadline_s, events.TIMEOUT, self._deadline, rid))
        if inp >= self._max_tokens:
            self.requests.end(rid, outcomes.DROPPED, now)
        else:
            self._route(now, rid, inp, min(out, self._max_tokens - inp))
        if i + 1 < len(ts):
            follow.append(
                events.Event(
                    max(now, ts[i + 1]), events.ARRIVAL, self._arrive, (ts, ins, outs, i + 1, batches)
                )
            )
        else:
            follow.extend(self._next_batch(now, batches))
        return follow

    def _route(self, now: float, rid: int, inp: int, out: int) -> None:
        rep = self.router.choose()
        if rep is None:
            if len(self.buffer) >= self.rec.local.buffer_requests:
                self.requests.end(rid, outcomes.DROPPED, now)
            else:
                self.buffer.append(rid)
            return
        engine = rep.engine
        assert engine is not None
        if not engine.submit(now, rid, inp, out):
            self.requests.end(rid, outcomes.DROPPED, now)
            return
        rep.live.add(rid)
        self.requests.where[rid] = rep
        self.requests.sent[rid] = now
        self._rewake(rep)

    def _flush(self, now: float) -> None:
        while self.buffer and self.router.has_room():
            rid = self.buffer.popleft()
            if self.requests.status[rid] == outcomes.IN_FLIGHT:
                self._route(
                    now,
                    rid,
                    self.requests.input_tokens[rid],
                    min(self.requests.output_tokens[rid], self._max_tokens - self.requests.input_tokens[rid]),
                )

    def _timeout(self, now: float, rid: int) -> None:
        """The client gave up: the request ends timed out, its work on the replica cancelled."""
        if self.requests.status[rid] == outcomes.IN_FLIGHT:
            self._cancel(now, rid, outcomes.TIMED_OUT)

    def _deadline(self, now: float, rid: int) -> None:
        """The SLO's deadline_s passed: a request with no first token yet (buffered, queued on its
        replica, or in its first prefill) is shed; one already answering goes on."""
        reqs = self.requests
        if reqs.status[rid] != outcomes.IN_FLIGHT:
            return
        rep = reqs.where.get(rid)
        if rep is not None and rep.engine is not None:
            self._sync(rep, now)  # what finished or started answering by now
            if reqs.status[rid] != outcomes.IN_FLIGHT or rep.engine.answering(rid):
                return
        self._cancel(now, rid, outcomes.SHED)

    def _cancel(self, now: float, rid: int, status: int) -> None:
        reqs = self.requests
        rep = reqs.where.get(rid)  # before `end`, which forgets where the request was
        reqs.end(rid, status, now)
        if rep is not None and rep.engine is not None:
            rep.engine.abort(now, rid)
            self._sync(rep, now)
            if rid in rep.live:  # an engine that reports no abort: its slot is free all the same
                rep.live.discard(rid)
                self._slot_freed(now)
        # a buffered request is skipped when the buffer is flushed (its status is no longer in flight)

    def _sync(self, rep: replicas.SimReplica, now: float) -> None:
        """Advance a replica's engine to `now` and settle what finished."""
        engine = rep.engine
        assert engine is not None
        reqs, live = self.requests, rep.live
        before = len(live)
        for done in engine.advance(now):
            live.discard(done.rid)
            reqs.where.pop(done.rid, None)
            if done.ok and reqs.status[done.rid] == outcomes.IN_FLIGHT:
                reqs.serve(done.rid, done.ttft, done.e2e)
        if rep.state == "terminating" and not live:
            self._gone(now, rep)
        else:
            self._rewake(rep)
        if len(live) < before:
            self._slot_freed(now)

    def _slot_freed(self, now: float) -> None:
        """A request left a replica: under a cap, a buffered one may take its place."""
        if self.router.cap and self.buffer:
            self._flush(now)

    def _rewake(self, rep: replicas.SimReplica) -> None:
        assert rep.engine is not None
        t = rep.engine.next_event_time()
        rep.wake_seq += 1
        if t is not None:
            self.loop.at(t, events.ENGINE, self._wake, (rep, rep.wake_seq))

    def _wake(self, now: float, data: tuple[replicas.SimReplica, int]) -> None:
        rep, seq = data
        if seq == rep.wake_seq and rep.state in ("ready", "terminating"):
            self._sync(rep, now)

    # ---- replicas ------------------------------------------------------------------------------

    def _new_replica(self, now: float) -> replicas.SimReplica:
        self._count += 1
        rep = replicas.SimReplica(self._count, now)
        self.replicas[rep.name] = rep
        return rep

    def set_target(self, now: float, n: int) -> None:
        """Scale to n replicas: create pending ones, or delete pending, then starting, then ready (newest first)."""
        self.target = n
        alive = [r for r in self.replicas.values() if r.state != "terminating"]
        for _ in range(n - len(alive)):
            self._new_replica(now)
        if n < len(alive):
            # node-aware: pending first, then the emptiest nodes' replicas (starting before ready),
            # so a scale-down gives nodes back (Kubernetes: pod-deletion-cost)
            infos = [self._info(r) for r in alive]
            for name in sizing.victims(infos, len(alive) - n):
                self._delete(now, self.replicas[name])
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        """Bind pending replicas to ready nodes (bin-packing), then start them."""
        for rep in [r for r in self.replicas.values() if r.state == "pending"]:
            node = self.pool.place(rep.name)
            if node is None:
                return
            self._start(now, rep, node)

    def _start(self, now: float, rep: replicas.SimReplica, node: nodes.Node) -> None:
        prov = self._prov
        rep.state, rep.node = "starting", node
        if node.image_at is None:
            node.image_at = now + prov.image_pull_s
        pulled = max(now, node.image_at)
        samples = self.options.model_load_samples
        load = self.loop.rng.choice(samples) if samples else prov.model_load_s
        ready_at = replicas.ready_time(pulled, load, self.rec.service.probes.readiness)
        rep.timeline.update(scheduled=now, pulled=pulled, loaded=pulled + load)
        self.loop.at(ready_at, events.REPLICA, self._ready, rep)

    def _ready(self, now: float, rep: replicas.SimReplica) -> None:
        if rep.state not in ("starting", "pending"):
            return
        rep.state = "ready"
        rep.timeline["ready"] = now
        rep.engine = replicas.make_engine(self.kind, self.preset, self.loop.rng)
        if isinstance(rep.engine, replicas.FixedEngine):
            rep.workers = rep.engine.workers
        rep.busy_mark = (now, 0.0)
        self.router.add(rep)
        self._flush(now)

    def _delete(self, now: float, rep: replicas.SimReplica) -> None:
        if rep.state == "ready":
            rep.state = "terminating"
            rep.timeline["terminating"] = now
            self.router.remove(rep)
            if not rep.live:
                self._gone(now, rep)
            else:
                grace = self.options.grace_period_s
                self.loop.at(now + (self.rec.drain_s if grace is None else grace), events.REPLICA, self._kill, rep)
        else:
            self._gone(now, rep)

    def _kill(self, now: float, rep: replicas.SimReplica) -> None:
        """The grace period is over: what still runs is dropped."""
        if rep.state != "terminating" or rep.engine is None:
            return
        self._sync(rep, now)
        for rid in sorted(rep.live):
            if self.requests.status[rid] == outcomes.IN_FLIGHT:
                self.requests.end(rid, outcomes.DROPPED, now)
            self.requests.where.pop(rid, None)
        rep.live.clear()
        if rep.state == "terminating":
            self._gone(now, rep)

    def _gone(self, now: float, rep: replicas.SimReplica) -> None:
        rep.state = "gone"
        rep.timeline["gone"] = now
        rep.wake_seq += 1
        del self.replicas[rep.name]
        self.gone.append(rep)
        if rep.node is not None:
            self.pool.release(rep.node, rep.name)
        if rep.engine is not None:
            self.emitter.forget(rep)
        self._schedule(now)

    # ---- workers inside replicas (classic models) ------------------------------------------------

    def resize_workers(self, now: float, name: str, n: int) -> None:
        """Resize a ready replica's workers: fewer at once (a busy worker finishes its request),
        more after `workers.worker_start_s` (a worker process starts and loads the model)."""
        rep = self.replicas.get(name)
        if rep is None or rep.state != "ready" or not isinstance(rep.engine, replicas.FixedEngine):
            return
        rep.workers = n
        if n < rep.engine.workers:
            rep.engine.set_workers(now, n)
            self._sync(rep, now)
        elif n > rep.engine.workers:
            assert self.rec.workers is not None
            self.loop.at(now + self.rec.workers.worker_start_s, events.REPLICA, self._workers_up, (rep, n))

    def _workers_up(self, now: float, data: tuple[replicas.SimReplica, int]) -> None:
        rep, n = data
        n = min(n, rep.workers)  # a later, smaller decision wins over a start still under way
        if rep.state == "ready" and isinstance(rep.engine, replicas.FixedEngine) and n > rep.engine.workers:
            rep.engine.set_workers(now, n)
            self._sync(rep, now)

    def worker_infos(self, now: float) -> tuple[workers.Observed, ...] | None:
        """Each ready replica's set worker count and its queue now; None without worker control."""
        if not self.worker_control:
            return None
        out = []
        for rep in self.replicas.values():
            if rep.state == "ready" and isinstance(rep.engine, replicas.FixedEngine):
                self._sync(rep, now)
                out.append(workers.Observed(replica=rep.name, workers=rep.workers, queue=rep.engine.queue()))
        return tuple(out)

    # ---- the one loop's world (core.world), at the event loop's time ---------------------------

    async def observe(self) -> world.ClusterState:
        return world.ClusterState(current=self.target, replicas=self.replica_infos(), nodes=self.node_infos())

    async def apply(self, d: decision.Decision) -> None:
        self.set_target(self.loop.now, d.desired)

    async def observe_workers(self) -> tuple[workers.Observed, ...] | None:
        return self.worker_infos(self.loop.now)

    async def keep_spare(self, nodes: int | None) -> None:
        """The node pool keeps `nodes` empty nodes from its next scan (None: headroom_nodes)."""
        self.spare = nodes

    async def set_workers(self, replica: str, count: int) -> None:
        self.resize_workers(self.loop.now, replica, count)

    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: world.ClusterState
    ) -> dict[str, snapshot.Reading]:
        return signals.evaluate_all(sigs, self.emitter.store, now, self.rec.resources)

    def running_workers(self) -> int:
        """Workers running (started) on the ready replicas of a classic model."""
        return sum(
            r.engine.workers
            for r in self.replicas.values()
            if r.state == "ready" and isinstance(r.engine, replicas.FixedEngine)
        )

    # ---- nodes ---------------------------------------------------------------------------------

    def _scan(self, now: float) -> None:
        pending = sum(1 for r in self.replicas.values() if r.state == "pending")
        spare = self.spare if self.spare is not None else self.rec.autoscaling.headroom_nodes
        add, remove, late, _ = self.pool.scan(now, pending, spare)
        for node in (*late, *remove):
            self.pool.remove(node, now)
        pipe = self.pool.pipeline
        for _ in range(add):
            node = self.pool.request(now)
            for stage, offset in (("booted", pipe.booted), ("kubelet", pipe.kubelet), ("ready", pipe.ready)):
                self.loop.at(now + offset, events.NODE, self._node_stage, (node, stage))

    def _node_stage(self, now: float, data: tuple[nodes.Node, str]) -> None:
        node, stage = data
        if self.pool.stage_done(node, stage, now):
            self._schedule(now)

    # ---- what the controller observes ----------------------------------------------------------

    def scrape(self, now: float) -> None:
        ready = [r for r in self.replicas.values() if r.state == "ready"]
        for rep in ready:
            self._sync(rep, now)
        self.emitter.scrape(now, ready)
        self.emitter.gateway(now, self.requests.in_flight, len(self.buffer), len(ready), self.requests.served,
                             None if self._deadline_s is None else self.requests.shed)

    @staticmethod
    def _info(rep: replicas.SimReplica) -> snapshot.Replica:
        """The replica as observed, with its node and when it was scheduled and became ready."""
        base = rep.info()
        return replace(
            base,
            node=rep.node.name if rep.node is not None else "",
            scheduled_at=rep.timeline.get("scheduled") if rep.node is not None else None,
            ready_at=rep.timeline.get("ready"),
        )

    def replica_infos(self) -> tuple[snapshot.Replica, ...]:
        return tuple(self._info(r) for r in self.replicas.values())

    def node_infos(self) -> tuple[snapshot.NodeInfo, ...]:
        return self.pool.infos()

    def counts(self) -> dict[str, int]:
        c = {"ready": 0, "starting": 0, "pending": 0, "terminating": 0}
        for r in self.replicas.values():
            c[r.state] += 1
        ready_nodes, provisioning = self.pool.counts()
        return c | {"nodes": ready_nodes, "nodes_provisioning": provisioning}

    def finish(self, now: float) -> None:
        """End of the run: settle every engine; what is still in flight is unfinished."""
        for rep in list(self.replicas.values()):
            if rep.engine is not None and rep.state in ("ready", "terminating"):
                self._sync(rep, now)
        self.requests.close(now)
