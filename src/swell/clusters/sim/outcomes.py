"""What a simulation produced: each request's fate, the cluster over time, and their summary.

Requests are kept in flat lists while the run goes (cheap appends) and turned into numpy arrays
once at the end. SLO attainment counts every offered request: a dropped, shed, timed-out or
unfinished request misses the SLO, so a policy cannot look good by shedding load.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from swell import recipe
from swell.core import decision

IN_FLIGHT, SERVED, DROPPED, TIMED_OUT, UNFINISHED, SHED = 0, 1, 2, 3, 4, 5
STATUS_NAMES = ("in_flight", "served", "dropped", "timed_out", "unfinished", "shed")
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class Requests:
    """Per-request records, indexed by request id (arrival order)."""

    def __init__(self) -> None:
        # typed arrays: 8 bytes a value instead of a boxed float (millions of requests in a long run)
        self.arrival = array("d")
        self.input_tokens = array("q")
        self.output_tokens = array("q")
        self.status = array("b")
        self.ttft = array("d")
        self.e2e = array("d")
        self.sent = array("d")  # when the router handed it to a replica (after any buffering)
        self.where: dict[int, Any] = {}  # request id -> the replica holding it
        self.in_flight = 0
        self.served = 0
        self.shed = 0

    def add(self, t: float, input_tokens: int, output_tokens: int) -> int:
        rid = len(self.arrival)
        self.arrival.append(t)
        self.input_tokens.append(input_tokens)
        self.output_tokens.append(output_tokens)
        self.status.append(IN_FLIGHT)
        self.ttft.append(math.nan)
        self.e2e.append(math.nan)
        self.sent.append(math.nan)
        self.in_flight += 1
        return rid

    def serve(self, rid: int, ttft: float | None, e2e: float) -> None:
        """Served: the engine's latencies (from when the replica got it) plus any wait in the buffer."""
        waited = self.sent[rid] - self.arrival[rid]
        self.status[rid] = SERVED
        self.ttft[rid] = waited + (e2e if ttft is None else ttft)
        self.e2e[rid] = waited + e2e
        self.in_flight -= 1
        self.served += 1

    def end(self, rid: int, status: int, now: float) -> None:
        """A request that was not served: dropped, shed, timed out or unfinished."""
        if self.status[rid] == IN_FLIGHT:
            self.in_flight -= 1
            self.shed += status == SHED
        self.status[rid] = status
        self.where.pop(rid, None)

    def close(self, now: float) -> None:
        for rid, s in enumerate(self.status):
            if s == IN_FLIGHT:
                self.end(rid, UNFINISHED, now)

    def __len__(self) -> int:
        return len(self.arrival)

    def arrays(self) -> RequestArrays:
        return RequestArrays(
            arrival=np.frombuffer(self.arrival, dtype=np.float64).copy(),
            status=np.frombuffer(self.status, dtype=np.int8).astype(np.int64),
            ttft=np.frombuffer(self.ttft, dtype=np.float64).copy(),
            e2e=np.frombuffer(self.e2e, dtype=np.float64).copy(),
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class RequestArrays:
    arrival: Floats
    status: Ints
    ttft: Floats
    e2e: Floats

    def met(self, slo: recipe.SLO) -> npt.NDArray[np.bool_]:
        ok = self.status == SERVED
        if slo.ttft_s is not None:
            ok &= self.ttft <= slo.ttft_s
        if slo.e2e_s is not None:
            ok &= self.e2e <= slo.e2e_s
        return np.asarray(ok, dtype=np.bool_)


def percent(share: float) -> str:
    """A share of requests as a percentage, rounded down to 0.1: 98.96 % within the SLO reads 98.9 %,
    never 99.0 % beside a 99 % target it missed."""
    return f"{math.floor(1000 * share + 1e-9) / 10:.1f} %"


@dataclass(frozen=True, kw_only=True)
class Summary:
    requests: int
    served: int
    dropped: int
    timed_out: int
    unfinished: int
    shed: int  # no first token by the SLO's deadline_s: cancelled, answered 503
    attainment: float  # share of all requests meeting the SLO (0..1)
    ttft: dict[str, float | None]  # p50, p95, p99 over served requests
    e2e: dict[str, float | None]

    @property
    def missed(self) -> int:
        """Requests that did not meet the SLO."""
        return self.requests - round(self.attainment * self.requests)

    @staticmethod
    def of(r: RequestArrays, slo: recipe.SLO) -> Summary:
        served = r.status == SERVED
        n = len(r.status)

        def pct(values: Floats) -> dict[str, float | None]:
            v = values[served]
            if not len(v):
                return {"p50": None, "p95": None, "p99": None}
            p = np.percentile(v, [50, 95, 99])
            return {"p50": float(p[0]), "p95": float(p[1]), "p99": float(p[2])}

        return Summary(
            requests=n,
            served=int(served.sum()),
            dropped=int((r.status == DROPPED).sum()),
            timed_out=int((r.status == TIMED_OUT).sum()),
            unfinished=int((r.status == UNFINISHED).sum()),
            shed=int((r.status == SHED).sum()),
            attainment=float(r.met(slo).mean()) if n else 1.0,
            ttft=pct(r.ttft),
            e2e=pct(r.e2e),
        )


class Logged(NamedTuple):
    """One decision as the log keeps it: a fraction of a Decision's memory (a tick every few seconds
    for weeks adds up), with each signal's (name, value, proposed replicas), when the recipe
    scales workers the workers per replica (current, desired, reason), and the spare nodes asked."""

    t: float
    current: int
    desired: int
    bound_by: str
    reason: str
    proposals: tuple[tuple[str, float | None, int | None], ...]
    workers: tuple[int, int, str] | None = None
    spare_nodes: int | None = None  # the spare nodes the decision asked for (None: headroom_nodes)
    capacity_rps: float | None = None  # what the planner's model says one replica serves within the SLO

    @staticmethod
    def of(d: decision.Decision) -> Logged:
        props = tuple((p.signal, p.value, p.replicas) for p in d.proposals)
        w = d.workers
        cap = d.details.get("capacity_rps")
        return Logged(d.t, d.current, d.desired, d.bound_by, d.reason, props,
                      None if w is None else (w.current, w.desired, w.reason), d.spare_nodes,
                      None if cap is None else float(cap))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        out = {
            "t": self.t,
            "current": self.current,
            "desired": self.desired,
            "proposals": {name: n for name, _, n in self.proposals},
            "values": {name: v for name, v, _ in self.proposals},
            "bound_by": self.bound_by,
            "reason": self.reason,
        }
        if self.workers is not None:
            out["workers"] = dict(zip(("current", "desired", "reason"), self.workers, strict=True))
        if self.spare_nodes is not None:
            out["spare_nodes"] = self.spare_nodes
        if self.capacity_rps is not None:
            out["capacity_rps"] = self.capacity_rps
        return out


@dataclass(frozen=True, kw_only=True, eq=False)
class Timeline:
    """The cluster sampled at each controller tick (`workers`: running on ready replicas, when the
    recipe scales workers of a classic model)."""

    t: Floats
    desired: Ints
    ready: Ints
    starting: Ints
    pending: Ints
    nodes: Ints
    nodes_provisioning: Ints
    workers: Ints | None = None

    def to_json(self) -> dict[str, list[float] | list[int]]:
        return {k: v.tolist() for k in self.__dataclass_fields__ if (v := getattr(self, k)) is not None}


@dataclass(frozen=True, kw_only=True, eq=False)
class Run:
    """One policy's simulation: everything a comparison table, a JSON file or a report needs."""

    policy: str
    config: recipe.Recipe  # the recipe as the policy preset rewrote it
    slo: recipe.SLO
    horizon_s: float
    summary: Summary
    gpu_hours: float
    cost: float
    requests: RequestArrays
    timeline: Timeline
    decisions: tuple[Logged, ...]
    wall_s: float
    events: int
    node_timelines: tuple[dict[str, float], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    start_s: float = 0.0  # Unix time of t = 0 on the calendar (cluster.Options.start_s)

    @property
    def meets_slo(self) -> bool:
        """The share of all requests within the SLO's targets reached its percentile."""
        return self.summary.attainment >= self.slo.percentile / 100.0 - 1e-12

    @property
    def node_hours(self) -> float:
        return self.gpu_hours / self.config.node_pool.gpus

    @property
    def scale_events(self) -> int:
        """Times the desired replica count changed (the oracle's and fixed fleets' schedule included)."""
        return sum(1 for d in self.decisions if d.desired != d.current)

    def oracle_ratio(self, oracle_gpu_hours: float | None) -> float | None:
        """GPU-hours over the oracle's, only for a run that met its SLO (a miss has no ratio)."""
        if not self.meets_slo or not oracle_gpu_hours or not math.isfinite(oracle_gpu_hours):
            return None
        return self.gpu_hours / oracle_gpu_hours

    def brief(self) -> dict[str, Any]:
        """What a benchmark prints of a run: attainment, whether it met the SLO, GPU-hours, scale events."""
        return {"policy": self.policy, "attainment": round(self.summary.attainment, 5), "meets_slo": self.meets_slo,
                "gpu_hours": round(self.gpu_hours, 2), "scale_events": self.scale_events}  # fmt: skip

    def to_json(self, oracle_gpu_hours: float | None = None) -> dict[str, Any]:
        s = self.summary
        return {
            "policy": self.policy,
            "slo": self.slo.model_dump(),
            "horizon_s": self.horizon_s,
            "requests": s.requests,
            "served": s.served,
            "dropped": s.dropped,
            "timed_out": s.timed_out,
            "unfinished": s.unfinished,
            "shed": s.shed,
            "slo_attainment": s.attainment,
            "ttft_s": s.ttft,
            "e2e_s": s.e2e,
            "meets_slo": self.meets_slo,
            "gpu_hours": self.gpu_hours,
            "node_hours": self.node_hours,
            "cost": self.cost,
            "scale_events": self.scale_events,
            "oracle_ratio": self.oracle_ratio(oracle_gpu_hours),
            "wall_s": self.wall_s,
            "events": self.events,
            "timeline": self.timeline.to_json(),
            "decisions": [d.to_json() for d in self.decisions],
            "nodes": list(self.node_timelines),
        } | self.extra
