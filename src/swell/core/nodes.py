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


def unfilled(
    nodes: Sequence[snapshot.NodeInfo], replicas: Sequence[snapshot.Replica], gpus_per_replica: int
) -> int:
    """Replicas that fit in the free GPUs of Ready nodes that run one of ours (starting or ready): a
    node is billed whole whatever it runs, and one in use is kept. None while a Ready node holds
    nothing but replicas of ours on their way out, or nothing at all (a spare bought ahead, or one
    being given back): a new replica may land there instead (Kubernetes' default scoring spreads
    pods to the least allocated node, and so does the simulator), and would keep that node, or be
    removed to give it back, and come again."""
    if gpus_per_replica <= 0:
        return 0
    live = {r.node for r in replicas if r.node and r.state in ("starting", "ready")}
    leaving: dict[str, int] = {}
    for r in replicas:
        if r.node and r.state == "terminating":
            leaving[r.node] = leaving.get(r.node, 0) + gpus_per_replica
    if any(n.ready and n.name not in live and n.used_gpus <= leaving.get(n.name, 0) for n in nodes):
        return 0
    return sum((n.gpus - n.used_gpus) // gpus_per_replica for n in nodes if n.ready and n.name in live)


def room(
    nodes: Sequence[snapshot.NodeInfo], replicas: Sequence[snapshot.Replica], gpus_per_replica: int
) -> int:
    """Replicas that can run without a new node: those placed on one (starting or ready), plus the
    free slots and the headroom placeholders' slots (a replica preempts one) on Ready nodes."""
    placed = sum(1 for r in replicas if r.state in ("starting", "ready"))
    held = sum(n.headroom_pods for n in nodes if n.ready)
    return placed + free_slots(nodes, gpus_per_replica) + held


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


# ---------------------------------------------------------------------------------------------
# node-aware scale-down: which replicas go first, and how many may go so that nodes empty

_RANK = {"pending": 0, "starting": 1, "ready": 2}


def _groups(replicas: Sequence[snapshot.Replica]) -> list[list[snapshot.Replica]]:
    """Pending replicas one by one (newest first), then the replicas of each node, the emptiest node
    first and within a node starting before ready. A replica whose node is unknown is its own group."""
    alive = [r for r in replicas if r.state in _RANK]
    newest_first = sorted(alive, key=lambda r: (_RANK[r.state], _age_key(r)))
    out: list[list[snapshot.Replica]] = [[r] for r in newest_first if r.state == "pending"]
    by_node: dict[str, list[snapshot.Replica]] = {}
    for r in newest_first:
        if r.state == "pending":
            continue
        if not r.node:
            out.append([r])
        else:
            by_node.setdefault(r.node, []).append(r)
    placed = sorted(by_node.values(), key=lambda g: (len(g), min(_RANK[r.state] for r in g)))
    return out + placed


def _age_key(r: snapshot.Replica) -> tuple[float, str]:
    # newest first: a later scheduled_at sorts first; unknown times last, then by name (stable)
    return (-(r.scheduled_at if r.scheduled_at is not None else float("-inf")), r.name)


def victims(replicas: Sequence[snapshot.Replica], n: int) -> list[str]:
    """The `n` replicas a node-aware scale-down removes, in order: pending, then the emptiest
    nodes' replicas (starting before ready)."""
    order = [r.name for g in _groups(replicas) for r in g]
    return order[: max(0, n)]


def emptying(replicas: Sequence[snapshot.Replica], excess: int, keep_pending: int = 0) -> tuple[int, int]:
    """(replicas to remove, nodes that empties): at most `excess`, taking pending replicas and
    then only whole nodes' worth, so every replica removed from a node gives that node back.

    `keep_pending` Pending replicas stay (a node is already coming for them: it is billed anyway);
    since a scale-down takes Pending replicas first, no node is emptied while they are kept."""
    pending = sum(1 for r in replicas if r.state == "pending")
    free_pending = max(0, pending - keep_pending)
    left, taken, emptied = excess, 0, 0
    for g in _groups(replicas):
        if g[0].state == "pending":
            if free_pending > 0 and left > 0:
                free_pending, left, taken = free_pending - 1, left - 1, taken + 1
            continue
        if keep_pending > 0 and pending > 0:
            break
        if len(g) > left:
            break  # groups are sorted by size: no later node fits either
        left -= len(g)
        taken += len(g)
        emptied += 1 if g[0].node else 0
    return taken, emptied


def coming(nodes: Sequence[snapshot.NodeInfo], gpus_per_replica: int) -> int:
    """Replicas the nodes still provisioning will hold."""
    return sum(per_node(gpus_per_replica, n.gpus) for n in nodes if not n.ready)
