"""The yardsticks every policy is judged against: fixed fleets and the replayed oracle.

`search_fixed` finds the best fixed fleet (the fewest whole nodes whose constant fleet meets the
SLO, replayed through the simulator) and runs the max fleet. `search_oracle` sizes the oracle's
schedule from the engine model, replays it with instant provisioning and searches the sizing
factor for the cheapest schedule whose replay meets the SLO over the whole run. Both only run
simulations: nothing here knows a policy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from swell import recipe
from swell.clusters.sim import cluster as cluster_mod
from swell.clusters.sim import nodes as sim_nodes
from swell.clusters.sim import oracle, outcomes
from swell.core import nodes as sizing
from swell.workload import arrivals as arrivals_mod

Progress = Callable[[str, float], None]
Simulate = Callable[..., outcomes.Run]
GROW = 1.25  # each step of the oracle's factor search
REFINE = 2  # bisection steps after the bracket is found
MAX_STEPS = 8


def meets(run: outcomes.Run) -> bool:
    """The run met its SLO: the share of all requests within the targets reached the percentile."""
    return run.summary.attainment >= run.slo.percentile / 100.0 - 1e-12


def instant(rec: recipe.Recipe) -> recipe.Recipe:
    """The recipe on a node pool whose nodes are ready, pulled and loaded the moment they are asked
    for, and removed the moment they are empty (the oracle's world)."""
    pool = rec.node_pool
    prov = pool.provisioning.model_copy(
        update={
            "node_boot_s": 0.0,
            "kubelet_s": 0.0,
            "gpu_driver_s": 0.0,
            "image_size_gb": 0.0,
            "model_load_s": 0.0,
        }
    )
    return rec.model_copy(
        update={"node_pool": pool.model_copy(update={"provisioning": prov, "unneeded_time_s": 0.0})}
    )


def whole_node_fleets(rec: recipe.Recipe) -> list[int]:
    """The fixed fleets worth trying: each count of whole nodes, filled, within the replica bounds."""
    auto, pool, gpr = rec.autoscaling, rec.node_pool, rec.resources.gpus
    each = max(1, sizing.per_node(gpr, pool.gpus))
    top = min(auto.max_replicas, sizing.capacity(pool, gpr))
    out = sorted({min(top, max(auto.min_replicas, 1, k * each)) for k in range(1, pool.max_nodes + 1)})
    return out or [max(1, auto.min_replicas)]


@dataclass(frozen=True, kw_only=True, eq=False)
class Fixed:
    best: outcomes.Run | None  # the smallest fixed fleet that meets the SLO; None: not even the max
    max_fleet: outcomes.Run
    tried: tuple[tuple[int, float, float], ...]  # (replicas, attainment, GPU-hours) of each fleet run

    @property
    def runs(self) -> tuple[outcomes.Run, ...]:
        return (self.max_fleet,) if self.best is None else (self.best, self.max_fleet)


def search_fixed(
    simulate: Simulate,
    rec: recipe.Recipe,
    arr: arrivals_mod.Arrivals,
    horizon_s: float,
    *,
    seed: int,
    options: cluster_mod.Options,
    progress: Progress | None = None,
) -> Fixed:
    """The max fleet, then bisection over whole-node fleets for the smallest that meets the SLO."""
    fleets = whole_node_fleets(rec)
    runs: dict[int, outcomes.Run] = {}

    def run(n: int) -> outcomes.Run:
        if n not in runs:
            opts = dataclasses.replace(options, initial_replicas=n)
            runs[n] = simulate(rec, arr, horizon_s=horizon_s, seed=seed, options=opts, progress=progress,
                               schedule=lambda _t, n=n: n, label=f"fixed {n}")  # fmt: skip
        return runs[n]

    top = run(fleets[-1])
    best: outcomes.Run | None = None
    if meets(top):
        lo, hi = 0, len(fleets) - 1  # fleets[hi] meets
        while lo < hi:
            mid = (lo + hi) // 2
            if meets(run(fleets[mid])):
                hi = mid
            else:
                lo = mid + 1
        best = run(fleets[hi])
    tried = tuple((n, r.summary.attainment, r.gpu_hours) for n, r in sorted(runs.items()))
    return Fixed(best=None if best is None else _relabel(best, "best fixed"), max_fleet=_relabel(top, "max fleet"),
                 tried=tried)  # fmt: skip


def _relabel(run: outcomes.Run, kind: str) -> outcomes.Run:
    n = int(run.timeline.desired[0]) if len(run.timeline.desired) else 0
    return dataclasses.replace(run, policy=f"{kind} ({n})")


def search_oracle(
    simulate: Simulate,
    rec: recipe.Recipe,
    arr: arrivals_mod.Arrivals,
    horizon_s: float,
    capacity_rps: float,
    *,
    seed: int,
    options: cluster_mod.Options,
    progress: Progress | None = None,
) -> oracle.Oracle:
    """The cheapest oracle schedule whose replay (instant provisioning) meets the SLO.

    Starts from the engine model's sizing (factor 1), moves the factor by GROW until the replay's
    verdict flips, then bisects REFINE times. Each replay starts from what its schedule asks for at
    t = 0 (the world is instant). Out of reach when even the schedule at the max fleet misses."""
    auto = rec.autoscaling
    fast = instant(rec)
    lead = auto.polling_interval_s + sim_nodes.SCAN_INTERVAL_S + rec.service.probes.readiness.period_s
    seen: dict[float, tuple[oracle.Oracle, outcomes.Run]] = {}

    def replay(f: float) -> tuple[oracle.Oracle, outcomes.Run]:
        if f not in seen:
            o = oracle.compute(arr.t, horizon_s, capacity_rps, rec.node_pool, rec.resources.gpus, factor=f,
                               min_replicas=auto.min_replicas, max_replicas=auto.max_replicas)  # fmt: skip
            same = next((r for q, r in seen.values() if np.array_equal(q.replicas, o.replicas)), None)
            plan = _ahead(o, lead)
            opts = dataclasses.replace(options, model_load_samples=(), initial_replicas=plan(0.0))
            r = same or simulate(fast, arr, horizon_s=horizon_s, seed=seed, options=opts, progress=progress,
                                 schedule=plan, label="oracle")  # fmt: skip
            seen[f] = (o, r)
        return seen[f]

    if capacity_rps <= 0:
        return oracle.compute(arr.t, horizon_s, 0.0, rec.node_pool, rec.resources.gpus)
    if not math.isfinite(capacity_rps):  # no requests at all: the floor is the schedule
        capacity_rps = 1e9
    good: float | None = None
    bad: float | None = None
    f = 1.0
    for _ in range(MAX_STEPS):
        o, r = replay(f)
        if meets(r):
            good = f if good is None else max(good, f)
            if bad is not None or o.replicas.max() <= max(auto.min_replicas, 0) or _at_floor(o, rec):
                break
            f *= GROW
        else:
            bad = f if bad is None else min(bad, f)
            if good is not None or _saturated(o, rec):
                break
            f /= GROW
    if good is not None and bad is not None:
        for _ in range(REFINE):
            mid = math.sqrt(good * bad)
            if meets(replay(mid)[1]):
                good = mid
            else:
                bad = mid
    tried = tuple(sorted((k, r.summary.attainment, r.gpu_hours) for k, (_, r) in seen.items()))
    if good is None:
        top_o, top_r = replay(min(seen))
        note = f"out of reach: {100 * top_r.summary.attainment:.1f} % at the max fleet"
        return dataclasses.replace(top_o, gpu_hours=math.nan, replayed=top_r, note=note, tried=tried)
    o, r = replay(good)
    best = dataclasses.replace(o, gpu_hours=r.gpu_hours, replayed=r, tried=tried)
    if good < 1.0:
        best = dataclasses.replace(
            best,
            note=f"raised {100 * (1 / good - 1):.0f} % above the engine model's sizing to meet the SLO in the replay",
        )
    elif good > 1.0:
        best = dataclasses.replace(
            best,
            note=f"{100 * (1 - 1 / good):.0f} % below the per-minute sizing: the SLO holds over the whole run",
        )
    return best


def start_of(o: oracle.Oracle, window_s: float) -> int | None:
    """The most the oracle's replayed schedule has ready within the first `window_s` (the time a new
    node takes to serve): the fair start for every run. Nothing a policy decides adds a node
    before then, so a start below it would decide the verdict before any policy acts."""
    if not o.reachable or not len(o.replicas):
        return None
    buckets = max(1, math.ceil(window_s / o.bucket_s))
    return int(o.replicas[:buckets].max())


def cheaper(o: oracle.Oracle, fixed: Fixed) -> oracle.Oracle:
    """A fixed fleet is also a schedule with perfect knowledge: when the best one meets the SLO for
    less than every varying schedule found, it is the oracle."""
    best = fixed.best
    if best is None or not o.reachable or best.gpu_hours >= o.gpu_hours:
        return o
    n = int(best.timeline.desired[0])
    return dataclasses.replace(
        o, replicas=np.full(len(o.replicas), n, dtype=np.int64), gpu_hours=best.gpu_hours,
        replayed=dataclasses.replace(best, policy="oracle"),
        note=f"a fixed fleet of {n} costs less than any varying schedule found",
    )  # fmt: skip


def _ahead(o: oracle.Oracle, lead_s: float) -> Callable[[float], int]:
    """Perfect knowledge: at t, the most the schedule needs until t + lead (a node and its replica
    still take a scan and a readiness probe to arrive)."""
    return lambda t: max(o.replicas_at(t), o.replicas_at(t + lead_s))


def _saturated(o: oracle.Oracle, rec: recipe.Recipe) -> bool:
    top = min(rec.autoscaling.max_replicas, sizing.capacity(rec.node_pool, rec.resources.gpus))
    return bool((o.replicas >= top).all())


def _at_floor(o: oracle.Oracle, rec: recipe.Recipe) -> bool:
    each = max(1, sizing.per_node(rec.resources.gpus, rec.node_pool.gpus))
    return bool((o.replicas <= max(rec.autoscaling.min_replicas, each)).all())
