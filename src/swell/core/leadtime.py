"""Lead times learned from what the cluster reports: node asked → node ready, replica scheduled → ready.

Starts from the recipe's provisioning delays and moves toward each observed event (an
exponentially weighted mean, weight 0.3), so a node pool that is slower or faster than its recipe
says is planned for as it is. A replica that starts on a node which became ready less than a
minute before is a cold start (image pull + model load); any other start is warm. Serialisable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from swell import recipe
from swell.core import snapshot

WEIGHT = 0.3
COLD_WITHIN_S = 60.0
REMEMBER = 64  # names already learned from (the newest ones)


@dataclass(frozen=True, kw_only=True)
class LeadTimes:
    node_s: float  # asking for a node → the node Ready with its GPUs allocatable
    cold_replica_s: float  # replica scheduled on a fresh node → ready (image pull + model load)
    warm_replica_s: float  # replica scheduled on a node with the image → ready
    samples: int = 0
    seen: tuple[str, ...] = ()
    new_nodes: bool = True  # more replicas need new nodes (False: one machine's slots, always there)

    @property
    def horizon_s(self) -> float:
        """H: from asking for a node to a replica serving on it; on one machine, a replica's start."""
        return self.node_s + self.cold_replica_s if self.new_nodes else self.warm_replica_s

    @staticmethod
    def of(pool: recipe.NodePool, probe_delay_s: float = 0.0) -> LeadTimes:
        p = pool.provisioning
        return LeadTimes(
            node_s=p.node_ready_s,
            cold_replica_s=p.image_pull_s + p.model_load_s + probe_delay_s,
            warm_replica_s=p.model_load_s + probe_delay_s,
        )

    @staticmethod
    def on_one_machine(pool: recipe.NodePool) -> LeadTimes:
        """Locally the nodes are the machine's slots, already there: H is a replica's start (the
        model load; nothing to pull), learned from the replicas that start."""
        load = pool.provisioning.model_load_s
        return LeadTimes(node_s=0.0, cold_replica_s=load, warm_replica_s=load, new_nodes=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "node_s": self.node_s,
            "cold_replica_s": self.cold_replica_s,
            "warm_replica_s": self.warm_replica_s,
            "samples": self.samples,
            "seen": list(self.seen),
            "new_nodes": self.new_nodes,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> LeadTimes:
        return LeadTimes(
            node_s=float(data["node_s"]),
            cold_replica_s=float(data["cold_replica_s"]),
            warm_replica_s=float(data["warm_replica_s"]),
            samples=int(data.get("samples", 0)),
            seen=tuple(str(s) for s in data.get("seen", ())),
            new_nodes=bool(data.get("new_nodes", True)),
        )


def _ewma(old: float, new: float) -> float:
    return (1.0 - WEIGHT) * old + WEIGHT * new


def learn(lt: LeadTimes, snap: snapshot.Snapshot, since: float | None = None) -> tuple[LeadTimes, list[str]]:
    """Fold every node and replica that became ready since the last call into the lead times;
    returns the new values and what was learned, in words. A node asked for before `since` (when
    the planner began watching) is not learned from: what it reports of its ask may be an old
    pod's, not the ask."""
    seen = set(lt.seen)
    new_seen: list[str] = []
    notes: list[str] = []
    node_s, cold_s, warm_s, n = lt.node_s, lt.cold_replica_s, lt.warm_replica_s, lt.samples
    ready_at = {nd.name: nd.ready_at for nd in snap.nodes}
    for nd in snap.nodes:
        key = "node/" + nd.name
        if key in seen or nd.ready_at is None or nd.requested_at is None or nd.ready_at <= nd.requested_at:
            continue
        if since is not None and nd.requested_at < since:
            continue
        new_seen.append(key)
        node_s, n = _ewma(node_s, nd.ready_at - nd.requested_at), n + 1
        notes.append(f"{nd.name} ready {nd.ready_at - nd.requested_at:.0f} s after asked")
    for r in snap.replicas:
        key = "replica/" + r.name
        if key in seen or r.ready_at is None or r.scheduled_at is None or r.ready_at <= r.scheduled_at:
            continue
        new_seen.append(key)
        took = r.ready_at - r.scheduled_at
        node_ready = ready_at.get(r.node)
        if node_ready is not None and r.scheduled_at - node_ready < COLD_WITHIN_S and node_ready > 0:
            cold_s = _ewma(cold_s, took)
        else:
            warm_s = _ewma(warm_s, took)
        n += 1
    if not new_seen:
        return lt, notes
    keep = (*lt.seen, *new_seen)[-REMEMBER:]
    return replace(
        lt, node_s=node_s, cold_replica_s=cold_s, warm_replica_s=warm_s, samples=n, seen=keep
    ), notes
