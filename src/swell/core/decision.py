"""A decision: desired replicas, each signal's proposal, what bound the result, and why in words.
With a recipe's `workers` section it also carries the workers wanted inside each replica.

Decisions are values; the loop keeps them as a history that the API, dashboards, reports and
`swell decide` show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

BoundBy = Literal[
    "metrics",  # the signals' proposal stood as is
    "tolerance",  # within tolerance of the target: no change
    "stabilization",  # held by the stabilization window
    "rate",  # limited by a scale-up / scale-down rate policy
    "min",  # raised to min_replicas
    "max",  # cut to max_replicas
    "schedule",  # a schedule window's floor or cap
    "capacity",  # no room (device slots, nodes)
    "no_data",  # signals without value: hold (or only scale up)
    "fallback",  # too many failed reads: fallback replicas
    "activation",  # 0 -> 1 on the activation threshold
    "cooldown",  # waiting for / reaching the cooldown before zero
    "panic",  # panic mode: no scale-down, scale to the panic window's need
    "disabled",  # scaling disabled (target scaled to zero by a person, or select_policy Disabled)
]


@dataclass(frozen=True, kw_only=True)
class Proposal:
    signal: str
    value: float | None
    target: float
    replicas: int | None  # None: this signal had no value
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class WorkerDecision:
    """Workers inside each replica (TorchServe-style): the count before and after, and why."""

    current: int
    desired: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"current": self.current, "desired": self.desired, "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class Decision:
    t: float
    policy: str
    current: int
    desired: int
    bound_by: BoundBy
    reason: str
    proposals: tuple[Proposal, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    workers: WorkerDecision | None = None  # set by the loop when the recipe scales workers
    # empty nodes to keep warm beyond the replicas (the planner's nodes ahead); None: the recipe's
    # autoscaling.headroom_nodes. Clusters with a node pool act on it (`core.world.NodeControl`).
    spare_nodes: int | None = None

    @property
    def changes(self) -> bool:
        return self.desired != self.current

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "current": self.current,
            "desired": self.desired,
            "proposals": {p.signal: p.replicas for p in self.proposals},
            "values": {p.signal: p.value for p in self.proposals},
            "bound_by": self.bound_by,
            "reason": self.reason,
            "policy": self.policy,
        } | ({} if self.workers is None else {"workers": self.workers.to_json()}) | (
            {} if self.spare_nodes is None else {"spare_nodes": self.spare_nodes}
        )
