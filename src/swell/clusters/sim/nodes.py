"""Simulated GPU node pool: provisioning pipeline, bin-packing placement, node autoscaler, billing.

A requested node goes boot → kubelet and system units → GPU driver and device plugin → ready.
Replicas are placed on ready nodes by GPU bin-packing (most allocated first). A cluster-autoscaler
scan (every 10 s) asks `swell.core.nodes.plan` what to add and remove; a node not ready within
max_node_provision_time_s is given up and deleted. Each node is billed from request to removal.
"""

from __future__ import annotations

import csv
import gzip
import pathlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from swell import errors, recipe
from swell.core import nodes as sizing
from swell.core import snapshot

SCAN_INTERVAL_S = 10.0  # cluster-autoscaler --scan-interval default
STAGES = ("requested", "booted", "kubelet", "ready")


class Node:
    """One node. `timeline` holds when each stage of its provisioning ended."""

    __slots__ = ("gpus", "image_at", "name", "ready", "removed_at", "replicas", "requested_at", "timeline",
                 "used")  # fmt: skip

    def __init__(self, name: str, gpus: int, requested_at: float) -> None:
        self.name, self.gpus, self.requested_at = name, gpus, requested_at
        self.used = 0
        self.ready = False
        self.image_at: float | None = None  # when the image is (or will be) on this node's disk
        self.removed_at: float | None = None
        self.replicas: set[str] = set()
        self.timeline: dict[str, float] = {"requested": requested_at}

    @property
    def free(self) -> int:
        return self.gpus - self.used

    def info(self) -> snapshot.NodeInfo:
        return snapshot.NodeInfo(
            name=self.name,
            gpus=self.gpus,
            used_gpus=self.used,
            ready=self.ready,
            requested_at=self.requested_at,
            ready_at=self.timeline.get("ready") if self.ready else None,
        )


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    """Offsets from a node's request to the end of each provisioning stage."""

    booted: float
    kubelet: float
    ready: float

    @staticmethod
    def of(p: recipe.Provisioning) -> Pipeline:
        return Pipeline(booted=p.node_boot_s, kubelet=p.node_boot_s + p.kubelet_s, ready=p.node_ready_s)


class Pool:
    """The nodes of one pool and the cluster autoscaler's memory (which nodes are empty since when)."""

    def __init__(self, pool: recipe.NodePool, gpus_per_replica: int) -> None:
        self.spec = pool
        self.gpr = gpus_per_replica
        self.pipeline = Pipeline.of(pool.provisioning)
        self.nodes: dict[str, Node] = {}
        self.gone: list[Node] = []
        self.empty_since: dict[str, float] = {}
        self.given_up = 0
        self._count = 0

    # ---- lifecycle -------------------------------------------------------------------------

    def request(self, now: float) -> Node:
        """A new node, provisioning from `now` (the caller schedules its stage events)."""
        self._count += 1
        node = Node(f"node-{self._count}", self.spec.gpus, now)
        self.nodes[node.name] = node
        return node

    def warm(self, now: float) -> Node:
        """A node that is already up with the image cached (the cluster at the start)."""
        node = self.request(now)
        node.ready, node.image_at = True, now
        node.timeline.update(booted=now, kubelet=now, ready=now)
        return node

    def stage_done(self, node: Node, stage: str, now: float) -> bool:
        """Record the end of a stage; True when the node became ready. False if it is gone."""
        if node.removed_at is not None:
            return False
        node.timeline[stage] = now
        if stage == "ready":
            node.ready = True
            return True
        return False

    def remove(self, node: Node, now: float) -> None:
        if node.replicas:
            raise errors.ClusterError(f"{node.name} still holds replicas {sorted(node.replicas)}")
        node.removed_at = now
        node.timeline["removed"] = now
        del self.nodes[node.name]
        self.empty_since.pop(node.name, None)
        self.gone.append(node)

    # ---- placement -------------------------------------------------------------------------

    def place(self, replica: str) -> Node | None:
        """Bind a replica to the ready node with the fewest free slots that still fits it (bin-packing)."""
        each = sizing.per_node(self.gpr, self.spec.gpus)
        best: Node | None = None
        best_left = 0
        for node in self.nodes.values():
            left = each - len(node.replicas)
            if node.ready and left > 0 and (best is None or left < best_left):
                best, best_left = node, left
        if best is not None:
            best.used += self.gpr
            best.replicas.add(replica)
        return best

    def release(self, node: Node, replica: str) -> None:
        node.replicas.discard(replica)
        node.used -= self.gpr

    # ---- the cluster autoscaler --------------------------------------------------------------

    def scan(self, now: float, pending: int, spare_nodes: int = 0) -> tuple[int, list[Node], list[Node], str]:
        """One autoscaler scan: (nodes to add, nodes to remove, nodes given up, reason)."""
        limit = self.spec.max_node_provision_time_s
        late = [n for n in self.nodes.values() if not n.ready and now - n.requested_at >= limit]
        ready = [n for n in self.nodes.values() if n.ready]
        provisioning = sum(1 for n in self.nodes.values() if not n.ready) - len(late)
        infos = [_cpu_aware(n, self.gpr) for n in ready]
        plan = sizing.plan(
            self.spec, self.gpr, infos, pending, provisioning, self.empty_since, now, spare_nodes
        )
        self.empty_since = dict(plan.empty_since)
        self.given_up += len(late)
        reason = plan.reason
        if late:
            reason = f"gave up {len(late)} node(s) not ready after {limit:g} s; " + reason
        return plan.add, [self.nodes[name] for name in plan.remove], late, reason

    # ---- billing -----------------------------------------------------------------------------

    def gpu_seconds(self, start: float, end: float) -> float:
        """GPU-seconds billed within [start, end]: every node from its request until its removal."""
        total = 0.0
        for node in (*self.nodes.values(), *self.gone):
            lo = max(start, node.requested_at)
            hi = min(end, node.removed_at if node.removed_at is not None else end)
            if hi > lo:
                total += node.gpus * (hi - lo)
        return total

    def counts(self) -> tuple[int, int]:
        """(ready nodes, nodes still provisioning)."""
        ready = sum(1 for n in self.nodes.values() if n.ready)
        return ready, len(self.nodes) - ready

    def infos(self) -> tuple[snapshot.NodeInfo, ...]:
        return tuple(n.info() for n in self.nodes.values())


def _cpu_aware(node: Node, gpr: int) -> snapshot.NodeInfo:
    """CPU-only replicas take slots, not GPUs: present a slot as a used 'GPU' to the planner."""
    used = node.used if gpr > 0 else len(node.replicas)
    return snapshot.NodeInfo(name=node.name, gpus=node.gpus, used_gpus=used, ready=node.ready)


def load_latencies(path: str | pathlib.Path) -> list[float]:
    """Model-load latencies in seconds from a CSV (optionally gzipped) with a `value` column in ms.

    This is the shape of Alibaba GenAI's basemodel_update_latency_anon.csv.gz."""
    p = pathlib.Path(path)
    try:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8", newline="") as fh:
            values = [float(row["value"]) / 1000.0 for row in csv.DictReader(fh)]
    except (OSError, KeyError, ValueError) as exc:
        raise errors.RecipeError(
            str(p),
            [
                errors.Problem(
                    path="model_load", value=str(p), rule=f"needs a CSV with a 'value' column in ms: {exc}"
                )
            ],
        ) from None
    values = [v for v in values if v > 0]
    if not values:
        raise errors.RecipeError(
            str(p),
            [errors.Problem(path="model_load", value=str(p), rule="no positive latencies in the file")],
        )
    return sorted(values)


def initial_nodes(pool: recipe.NodePool, gpus_per_replica: int, replicas: int) -> int:
    """Nodes a warm cluster starts with: enough for `replicas`, at least min_nodes, at most max_nodes."""
    need = sizing.nodes_for(replicas, gpus_per_replica, pool.gpus) if replicas else 0
    return min(pool.max_nodes, max(pool.min_nodes, need))


def free_slots(nodes: Iterable[Node], gpus_per_replica: int) -> int:
    infos: Sequence[snapshot.NodeInfo] = [_cpu_aware(n, gpus_per_replica) for n in nodes]
    return sizing.free_slots(infos, gpus_per_replica)
