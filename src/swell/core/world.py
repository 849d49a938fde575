"""The one loop's boundary: what a world (local processes, the simulator, Kubernetes) offers it.

A world is a `Cluster` (observe its replicas and nodes, apply a decision), a `SignalSource` (read
the recipe's signals) and, where replicas run resizable workers, a `WorkerControl`; where it has a
node pool to keep spare nodes in, a `NodeControl`. Each world
implements these itself; `control.loop.Controller.tick` is the only code that drives them. The
methods are coroutines so real worlds can await I/O; the simulator's never suspend, so it runs
the same tick without an event loop (`control.loop.drive`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from swell import recipe
from swell.core import decision, snapshot
from swell.core.policies import workers


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

    async def observe_workers(self) -> Sequence[workers.Observed] | None:
        """Each ready replica's workers and queue; None: this cluster's replicas have no workers."""
        ...

    async def set_workers(self, replica: str, count: int) -> None: ...


@runtime_checkable
class NodeControl(Protocol):
    """A cluster that keeps spare nodes warm on a decision's word (`Decision.spare_nodes`): the
    simulator's node pool, Kubernetes' headroom placeholders or CapacityBuffer. Told every tick."""

    async def keep_spare(self, nodes: int | None) -> None:
        """Keep `nodes` empty nodes beyond the replicas; None: the recipe's headroom_nodes."""
        ...


class SignalSource(Protocol):
    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: ClusterState
    ) -> Mapping[str, snapshot.Reading]: ...


def worker_changes(state: ClusterState, d: decision.Decision) -> list[tuple[str, int]]:
    """(replica, workers) for each observed replica whose count differs from the decision's."""
    if d.workers is None or state.workers is None:
        return []
    want = d.workers.desired
    return [(o.replica, want) for o in state.workers if o.workers != want]
