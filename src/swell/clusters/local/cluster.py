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

from swell import recipe
from swell.clusters.local import engines
from swell.clusters.local import gateway as gateway_mod
from swell.clusters.local import replicas as replicas_mod
from swell.core import decision, snapshot, world


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
        self.initial = rec.autoscaling.min_replicas if initial is None else initial
        local = rec.local
        self.gateway = gateway_mod.Gateway(
            host=local.host,
            port=local.port if port is None else port,
            buffer_requests=local.buffer_requests,
            buffer_timeout_s=local.buffer_timeout_s,
            protocol=engines.protocol(rec.service),
            max_request_bytes=round(local.max_request_mb * 2**20),
            max_connections=local.max_connections,
            header_timeout_s=local.header_timeout_s,
            read_timeout_s=local.read_timeout_s,
        )
        self.manager = replicas_mod.ReplicaManager(rec, self.gateway, self.run_dir)

    @property
    def endpoint(self) -> str:
        return self.gateway.url

    async def start(self) -> None:
        await self.gateway.start()
        await self.manager.scale(self.initial)

    async def stop(self, *, drain: bool = False) -> None:
        """Stop every replica, then the gateway. With `drain`, new and buffered requests get a 503
        at once while those in flight finish (each replica waits up to local.drain_timeout_s)."""
        if drain:
            self.gateway.close_to_new_requests()
        try:
            await self.manager.close(drain=drain)
        finally:
            await self.gateway.stop()

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
