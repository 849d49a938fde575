"""What one tick of the loop sees: the time, the replicas and their states, each signal's reading,
the nodes (with when they were asked for and became ready) and one replica's capacity profile.

A reading without a value (missing, empty, NaN, failed scrape) is `value=None` with an `error`
saying why — never 0.0. Policies read only this, so the same policy runs locally, simulated
and on Kubernetes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from swell.core import capacity as capacity_mod

ReplicaState = Literal["ready", "starting", "pending", "terminating", "failed"]


@dataclass(frozen=True, kw_only=True)
class Replica:
    name: str
    state: ReplicaState
    reason: str = ""  # e.g. "Unschedulable: Insufficient nvidia.com/gpu", "no free device slot"
    node: str = ""  # the node it is bound to ("" while pending, or where nodes are not known)
    scheduled_at: float | None = None  # bound to a node: its image pull and model load begin
    ready_at: float | None = None  # became ready (None: not yet)


@dataclass(frozen=True, kw_only=True)
class Reading:
    """One signal's value this tick, or no value and why."""

    value: float | None
    error: str = ""
    per_replica: Mapping[str, float | None] | None = None
    partial: bool = False  # some replicas could not be read: good for scaling up, not down

    @property
    def ok(self) -> bool:
        return self.value is not None and math.isfinite(self.value)

    @staticmethod
    def missing(why: str) -> Reading:
        return Reading(value=None, error=why)

    @staticmethod
    def of(value: float | None, why_missing: str = "no samples") -> Reading:
        """A reading from a computed value; None or NaN become 'no value' (never zero)."""
        if value is None or not math.isfinite(value):
            return Reading(value=None, error=why_missing if value is None else f"value is {value}")
        return Reading(value=value)


@dataclass(frozen=True, kw_only=True)
class NodeInfo:
    name: str
    gpus: int
    used_gpus: int
    ready: bool
    headroom_pods: int = 0
    requested_at: float | None = None  # asked for (None: unknown, e.g. a node that predates swell)
    ready_at: float | None = None  # Ready with its GPUs allocatable (None: still provisioning)


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    now: float
    current: int  # replicas the cluster is asked to run (the scale target's spec.replicas)
    replicas: tuple[Replica, ...] = ()
    signals: Mapping[str, Reading] = field(default_factory=dict)
    nodes: tuple[NodeInfo, ...] = ()
    capacity: capacity_mod.Profile | None = None  # one replica's performance model (from the engine)
    epoch_s: float = 0.0  # Unix time at now = 0, for calendars: 0 where now is Unix time (local,
    # Kubernetes); the simulator's start date (`swell simulate --start`), its now counting from 0

    @property
    def calendar_now(self) -> float:
        """Unix time of this tick, what schedule windows' cron expressions are read against."""
        return self.epoch_s + self.now

    def count(self, state: ReplicaState) -> int:
        return sum(1 for r in self.replicas if r.state == state)

    @property
    def ready(self) -> int:
        return self.count("ready")

    @property
    def starting(self) -> int:
        return self.count("starting")

    @property
    def pending(self) -> int:
        return self.count("pending")

    def reading(self, name: str) -> Reading:
        return self.signals.get(name) or Reading.missing("signal not read")
