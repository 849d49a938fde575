"""The local cluster: one machine, replicas as processes behind the built-in gateway.

What the loop's `Cluster` needs (the runtime adapts it, as the layers point down): the replica
count asked for, the replicas ready / starting / pending (with the reason) / terminating, and
the one node, this machine with its device slots. Start it with `async with LocalCluster(...)`.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp

from swell import errors, recipe
from swell.clusters.local import engines, memory
from swell.clusters.local import gateway as gateway_mod
from swell.clusters.local import replicas as replicas_mod
from swell.core import decision, snapshot, world
from swell.core.policies import workers
from swell.engines import torchserve

WORKERS_TIMEOUT_S = 30.0  # a management API call (a synchronous scale-down takes ~20 ms)


class StartStop:
    """`async with` for anything with start() and stop(): a failed start stops what did start."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class LocalCluster(StartStop):
    def __init__(
        self,
        rec: recipe.Recipe,
        *,
        run_dir: Path | None = None,
        port: int | None = None,
        initial: int | None = None,
    ) -> None:
        self.recipe = rec
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix=f"swell-{rec.service.name}-"))
        self.initial = rec.autoscaling.start_replicas if initial is None else initial
        local = rec.local
        self.gateway = gateway_mod.Gateway(
            host=local.host,
            port=local.port if port is None else port,
            max_connections=local.max_connections,
            header_timeout_s=local.header_timeout_s,
            max_request_bytes=round(local.max_request_mb * 2**20),
            read_timeout_s=local.read_timeout_s,
        )
        self.set_limits(rec)
        self.manager = replicas_mod.ReplicaManager(rec, self.gateway, self.run_dir)
        self._mgmt_session: aiohttp.ClientSession | None = None

    def set_limits(self, rec: recipe.Recipe) -> None:
        """The gateway's limits a recipe sets per request: its buffer, deadline, per-replica cap and
        metadata protocol (read at each request, so a running gateway takes them at once)."""
        self.recipe = rec
        local, gw = rec.local, self.gateway
        gw.buffer_requests, gw.buffer_timeout_s = local.buffer_requests, local.buffer_timeout_s
        gw.protocol, gw.deadline_s, gw.max_ongoing = engines.protocol(rec.service), rec.slo.deadline_s, local.max_ongoing_requests

    @property
    def endpoint(self) -> str:
        return self.gateway.url

    async def start(self) -> None:
        await self.gateway.start()
        await self.manager.scale(self.initial)

    async def stop(self, *, drain: bool = False) -> None:
        """Stop every replica, then the gateway. With `drain`, new and buffered requests get a 503
        at once while those in flight finish (each replica waits up to the recipe's `drain_s`)."""
        if drain:
            self.gateway.close_to_new_requests()
        try:
            await self.manager.close(drain=drain)
        finally:
            await self.gateway.stop()
            if self._mgmt_session is not None:
                await self._mgmt_session.close()
                self._mgmt_session = None

    # ------------------------------------------------------------------ what the loop sees and does

    @property
    def target(self) -> int:
        return self.manager.target

    def replicas(self) -> tuple[snapshot.Replica, ...]:
        return self.manager.snapshot_replicas()

    def node(self) -> snapshot.NodeInfo:
        pool = self.manager.pool
        return snapshot.NodeInfo(
            name=socket.gethostname(), gpus=pool.capacity, used_gpus=pool.capacity - pool.free, ready=True
        )

    async def scale(self, n: int) -> None:
        await self.manager.scale(n)

    # ---- the one loop's Cluster (core.world) ------------------------------------------------

    async def observe(self) -> world.ClusterState:
        return world.ClusterState(current=self.target, replicas=self.replicas(), nodes=(self.node(),))

    async def apply(self, d: decision.Decision) -> None:
        await self.scale(d.desired)

    # ---- workers inside replicas (core.world.WorkerControl): TorchServe's management API --------

    async def _management(self) -> aiohttp.ClientSession:
        if self._mgmt_session is None:
            self._mgmt_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WORKERS_TIMEOUT_S))
        return self._mgmt_session

    async def observe_workers(self) -> tuple[workers.Observed, ...] | None:
        """Each ready TorchServe replica's worker count (`minWorkers` of `GET /models/{m}`), its
        queue (the requests the gateway has at it, waiting or being served; never fewer than
        TorchServe's own pending count) and memory: one worker's (TorchServe's measurement) and
        what runs beside the workers (from /proc, below the replica's guard). None for engines
        without workers; a replica whose management API does not answer is left out."""
        specs = self.manager.ready_specs()
        if self.recipe.service.engine != "torchserve":
            return None
        session = await self._management()
        answered = []
        for name, spec in specs.items():
            if spec.management_url is None:
                continue
            got = await self._model_status(session, f"{spec.management_url}/models/{spec.model_name}")
            if got is not None:
                answered.append((name, got, max(self.gateway.in_flight(name), got.pending)))
        # /proc once for every replica, after the answers that list the worker pids it is matched to
        guards = {r.name: r.pid for r in self.manager.replicas()}
        parent_of = memory.parents() if answered else {}
        out = []
        for name, got, queue in answered:
            guard = guards.get(name)
            base = memory.beside_workers(guard, got.worker_pids, parent_of) if guard is not None else None
            out.append(
                workers.Observed(
                    replica=name,
                    workers=got.workers,
                    queue=float(queue),
                    worker_memory_bytes=got.worker_memory_bytes,
                    base_memory_bytes=base,
                )
            )
        return tuple(out)

    async def set_workers(self, replica: str, count: int) -> None:
        """`PUT /models/{m}?min_worker=N&max_worker=N` on the replica's management API.

        More workers: asynchronous (TorchServe starts them in the background, about a second
        each here; the loop does not wait). Fewer: TorchServe picks the workers to stop and does
        not wait for their requests (one was answered 500 in the loop test before this drain),
        so the replica is drained in the gateway first: new requests go to other replicas or wait in the buffer, the ones in
        flight finish (at most the recipe's `drain_s`), the synchronous PUT stops the workers
        (~20 ms), then the replica gets traffic again if it is still ready."""
        spec = self.manager.ready_specs().get(replica)
        if spec is None or spec.management_url is None:
            return  # no longer ready: the next tick observes without it
        session = await self._management()
        url = f"{spec.management_url}/models/{spec.model_name}"
        got = await self._model_status(session, url)
        if got is not None and count >= got.workers:
            await self._put_workers(session, replica, url, count, synchronous=False)
            return
        self.gateway.remove_backend(replica)
        try:
            await self.manager.drained(replica, poll_s=0.01)
            await self._put_workers(session, replica, url, count, synchronous=True)
        finally:
            if replica in self.manager.ready_specs():  # still ready and kept: traffic again
                self.gateway.add_backend(replica, spec.base_url)

    async def _model_status(self, session: aiohttp.ClientSession, url: str) -> torchserve.ModelStatus | None:
        """`model_status` of `GET /models/{m}`; None when it cannot be read."""
        try:
            async with session.get(url) as resp:
                if resp.status != 200:
                    return None
                return torchserve.model_status(await resp.json(content_type=None))
        except (
            aiohttp.ClientError,
            TimeoutError,
            OSError,
            ValueError,
            LookupError,
            TypeError,
            AttributeError,
        ):
            return None

    async def _put_workers(
        self, session: aiohttp.ClientSession, replica: str, url: str, count: int, *, synchronous: bool
    ) -> None:
        params = {"min_worker": str(count), "max_worker": str(count), "synchronous": str(synchronous).lower()}
        try:
            async with session.put(url, params=params) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    raise errors.ClusterError(
                        f"replica {replica}: setting {count} workers: HTTP {resp.status} {text[:200]}"
                    )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise errors.ClusterError(
                f"replica {replica}: setting {count} workers: {exc or type(exc).__name__}"
            ) from None
