"""The physical limit: the fewest GPU-hours with instant provisioning and perfect knowledge.

The engine model says how many requests per second one replica serves within the SLO (Poisson
arrivals of the workload's own request mix, by bisection). `compute` turns that into a schedule:
each minute gets ceil(rate / (capacity x factor)) replicas, rounded up to whole nodes (nodes are
what is billed) and kept within the recipe's replica and node bounds. The runtime replays such a
schedule through the simulator with instant provisioning and searches `factor` for the cheapest
schedule whose replay meets the SLO over the whole run (`swell.runtime.baselines`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swell import recipe
from swell.clusters.sim import outcomes, replicas
from swell.core import nodes as sizing

BUCKET_S = 60.0
PROBE_REQUESTS = 600
ALONE_RPS = 1e-4  # so slow that every request has the replica to itself


@dataclass(frozen=True, kw_only=True, eq=False)
class Oracle:
    """A schedule of replicas per bucket; after a replay, what it attained and what it cost.

    `gpu_hours` is the schedule's own whole-node estimate until `replayed` is set, then the replay's
    bill. `factor` < 1 means the schedule had to be raised above the engine model's sizing to meet
    the SLO in the replay (0.8: 25 % more capacity per bucket); > 1, the whole-run SLO allowed less."""

    capacity_rps: float  # one replica's throughput at the SLO
    bucket_s: float
    t: outcomes.Floats  # bucket starts
    replicas: outcomes.Ints  # replicas in each bucket
    gpu_hours: float  # NaN when the SLO is out of reach (see `reachable`)
    factor: float = 1.0
    replayed: outcomes.Run | None = None
    note: str = ""
    tried: tuple[tuple[float, float, float], ...] = ()  # (factor, attainment, GPU-hours) of each replay
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        return self.capacity_rps > 0 and math.isfinite(self.gpu_hours)

    @property
    def attainment(self) -> float | None:
        return None if self.replayed is None else self.replayed.summary.attainment

    def replicas_at(self, t: float) -> int:
        """The schedule's replicas at time t (the last bucket holds after the end)."""
        i = min(len(self.replicas) - 1, max(0, int(t // self.bucket_s)))
        return int(self.replicas[i])

    def to_json(self) -> dict[str, object]:
        return {"capacity_rps": self.capacity_rps, "gpu_hours": self.gpu_hours, "bucket_s": self.bucket_s,
                "replicas": self.replicas.tolist(), "factor": self.factor, "attainment": self.attainment,
                "note": self.note, "tried": [list(x) for x in self.tried]}  # fmt: skip


def attainment(
    kind: str,
    preset: object,
    rate: float,
    inputs: outcomes.Ints,
    outputs: outcomes.Ints,
    slo: recipe.SLO,
    seed: int,
    n: int = PROBE_REQUESTS,
) -> float:
    """SLO attainment of one replica under Poisson arrivals at `rate` of requests from the mix."""
    rnd = random.Random(seed)
    engine = replicas.make_engine(kind, preset, rnd)
    limit = engine.max_tokens()
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, n)
    times = np.cumsum(gaps).tolist()
    picks = [rnd.randrange(len(inputs)) for _ in range(n)]
    ttft: dict[int, float] = {}
    e2e: dict[int, float] = {}

    def settle(done: list[replicas.Done]) -> None:
        for d in done:
            if d.ok:
                ttft[d.rid] = d.e2e if d.ttft is None else d.ttft
                e2e[d.rid] = d.e2e

    for rid, (t, k) in enumerate(zip(times, picks, strict=True)):
        settle(engine.advance(t))
        inp = max(1, int(inputs[k]))
        if inp >= limit:
            continue
        engine.submit(t, rid, inp, max(1, min(int(outputs[k]), limit - inp)))
    while (nt := engine.next_event_time()) is not None:
        settle(engine.advance(nt))
    met = 0
    for rid in e2e:
        if (slo.ttft_s is None or ttft[rid] <= slo.ttft_s) and (slo.e2e_s is None or e2e[rid] <= slo.e2e_s):
            met += 1
    return met / n


def capacity(
    kind: str, preset: object, inputs: outcomes.Ints, outputs: outcomes.Ints, slo: recipe.SLO, seed: int = 0
) -> float:
    """The highest Poisson rate one replica serves with attainment >= the SLO's percentile.

    0.0 when the SLO is out of reach even for requests served one at a time (no replica count
    meets it: the oracle has no answer)."""
    goal = slo.percentile / 100.0

    def ok(rate: float) -> bool:
        return attainment(kind, preset, rate, inputs, outputs, slo, seed) >= goal

    if not ok(ALONE_RPS):
        return 0.0
    lo, hi = 0.0, 0.25
    while ok(hi):
        lo, hi = hi, hi * 2
        if hi > 1e6:
            return hi
    if lo == 0.0:
        while not ok(hi):
            hi /= 2
        lo, hi = hi, hi * 2
    for _ in range(8):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def compute(
    arrival_t: outcomes.Floats,
    horizon_s: float,
    capacity_rps: float,
    pool: recipe.NodePool,
    gpus_per_replica: int,
    bucket_s: float = BUCKET_S,
    *,
    factor: float = 1.0,
    min_replicas: int = 0,
    max_replicas: int | None = None,
) -> Oracle:
    """Replicas per bucket (ceil(rate / (capacity x factor)), whole nodes, within the bounds) and
    the GPU-hours of the whole nodes they take over [0, horizon_s]."""
    n = max(1, math.ceil(horizon_s / bucket_s))
    if capacity_rps <= 0:
        nan = np.full(n, -1, dtype=np.int64)
        return Oracle(
            capacity_rps=0.0,
            bucket_s=bucket_s,
            t=np.arange(n, dtype=np.float64) * bucket_s,
            replicas=nan,
            gpu_hours=math.nan,
        )
    edges = np.arange(n + 1, dtype=np.float64) * bucket_s
    counts = np.histogram(arrival_t, bins=edges)[0].astype(np.float64)
    widths = np.minimum(edges[1:], horizon_s) - edges[:-1]
    need = np.ceil(np.round(counts / np.maximum(widths, 1e-9) / (capacity_rps * factor), 9))
    each = max(1, sizing.per_node(gpus_per_replica, pool.gpus))
    top = sizing.capacity(pool, gpus_per_replica)
    if max_replicas is not None:
        top = min(top, max_replicas)
    nodes = np.clip(np.ceil(np.maximum(need, min_replicas) / each), pool.min_nodes, pool.max_nodes)
    reps = np.clip(nodes * each, min_replicas, top).astype(np.int64)  # fill the nodes that are billed
    nodes = np.ceil(reps / each)
    gpu_hours = float((np.maximum(nodes, pool.min_nodes) * widths).sum()) * pool.gpus / 3600.0
    return Oracle(
        capacity_rps=capacity_rps, bucket_s=bucket_s, t=edges[:-1], replicas=reps, gpu_hours=gpu_hours,
        factor=factor,
    )  # fmt: skip


def capacity_for(
    rec: recipe.Recipe, slo: recipe.SLO, inputs: outcomes.Ints, outputs: outcomes.Ints, seed: int = 0
) -> float:
    """One replica's throughput at the SLO for the recipe's engine and this request mix."""
    if len(inputs) == 0:
        return math.inf
    kind, preset = replicas.engine_factory(rec)
    return capacity(kind, preset, inputs, outputs, slo, seed)


def for_workload(
    rec: recipe.Recipe,
    slo: recipe.SLO,
    arrival_t: outcomes.Floats,
    inputs: outcomes.Ints,
    outputs: outcomes.Ints,
    horizon_s: float,
    seed: int = 0,
) -> Oracle:
    """The oracle's first schedule (factor 1) for a recipe's engine and SLO on these arrivals."""
    cap = capacity_for(rec, slo, inputs, outputs, seed)
    auto = rec.autoscaling
    return compute(arrival_t, horizon_s, cap, rec.node_pool, rec.resources.gpus,
                   min_replicas=auto.min_replicas, max_replicas=auto.max_replicas)  # fmt: skip
