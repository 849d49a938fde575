"""Node pool sizing: bin-pack replicas by GPUs onto nodes, nodes to add, nodes to remove.

Pure functions with cluster-autoscaler semantics: add nodes for replicas that fit nowhere (up to
max_nodes), remove a node only after it has been empty for the unneeded time and never below
min_nodes. Corrino's worked examples hold: a 2-GPU replica on an 8-GPU node -> 4 per node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from swell import recipe
from swell.core import snapshot


def per_node(gpus_per_replica: int, gpus_per_node: int) -> int:
    """Replicas one node holds. A CPU-only replica (0 GPUs) is not bounded by GPUs: one per slot."""
    if gpus_per_replica <= 0:
        return gpus_per_node
    return gpus_per_node // gpus_per_replica


def capacity(pool: recipe.NodePool, gpus_per_replica: int, nodes: int | None = None) -> int:
    """Replicas that `nodes` (default: max_nodes) nodes of the pool can hold."""
    return per_node(gpus_per_replica, pool.gpus) * (pool.max_nodes if nodes is None else nodes)


def wasted_gpus(gpus_per_replica: int, gpus_per_node: int) -> int:
    """GPUs per node no replica can use (GPUs per replica should divide GPUs per node)."""
    if gpus_per_replica <= 0:
        return 0
    return gpus_per_node % gpus_per_replica


def nodes_for(replicas: int, gpus_per_replica: int, gpus_per_node: int) -> int:
    n = per_node(gpus_per_replica, gpus_per_node)
    return math.ceil(replicas / n) if n > 0 else 0


@dataclass(frozen=True, kw_only=True)
class NodePlan:
    add: int  # nodes to request now
    remove: tuple[str, ...]  # nodes to delete now
    fits: int  # pending replicas that fit on existing free GPUs
    unfit: int  # pending replicas that will stay Pending even after `add` (max_nodes reached)
    empty_since: Mapping[str, float]  # carry to the next call
    reason: str


def free_slots(nodes: Sequence[snapshot.NodeInfo], gpus_per_replica: int) -> int:
    if gpus_per_replica <= 0:
        return sum(max(0, n.gpus - n.used_gpus) for n in nodes if n.ready)
    return sum(max(0, n.gpus - n.used_gpus) // gpus_per_replica for n in nodes if n.ready)


def plan(
    pool: recipe.NodePool,
    gpus_per_replica: int,
    nodes: Sequence[snapshot.NodeInfo],
    pending: int,
    provisioning: int,
    empty_since: Mapping[str, float],
    now: float,
    spare_nodes: int = 0,
) -> NodePlan:
    """What a cluster autoscaler does this scan.

    `nodes` are the pool's registered nodes, `provisioning` the ones requested and not yet ready
    (they will hold per_node replicas each), `spare_nodes` empty nodes to keep for headroom."""
    each = per_node(gpus_per_replica, pool.gpus)
    fits = min(pending, free_slots(nodes, gpus_per_replica))
    waiting = pending - fits
    coming_used = min(provisioning, math.ceil(waiting / each)) if each > 0 else 0
    short = max(0, waiting - provisioning * each)
    room = max(0, pool.max_nodes - len(nodes) - provisioning)
    empty_now = [n for n in nodes if n.used_gpus == 0 and n.headroom_pods == 0]
    spare_have = len(empty_now) + (provisioning - coming_used)
    want = (math.ceil(short / each) if each > 0 else 0) + max(0, spare_nodes - spare_have)
    add = min(room, want)
    unfit = max(0, short - add * each)
    since = {n.name: empty_since.get(n.name, now) for n in empty_now}
    removable = sorted((t, name) for name, t in since.items() if now - t >= pool.unneeded_time_s)
    can_remove = min(max(0, len(nodes) - pool.min_nodes), max(0, len(empty_now) - spare_nodes))
    remove = tuple(name for _, name in removable[:can_remove]) if not waiting else ()
    parts = []
    if add:
        parts.append(f"add {add} node(s) for {short} replica(s) that fit nowhere")
    if unfit:
        parts.append(f"{unfit} replica(s) stay Pending: max_nodes {pool.max_nodes} reached")
    if remove:
        parts.append(f"remove {len(remove)} node(s) empty for {pool.unneeded_time_s:g} s")
    return NodePlan(
        add=add,
        remove=remove,
        fits=fits,
        unfit=unfit,
        empty_since=since,
        reason="; ".join(parts) or "no change",
    )
