"""The yardsticks every policy is judged against: fixed fleets, the replayed oracle, perfect reaction.

`search_fixed` finds the best fixed fleet (the fewest whole nodes whose constant fleet meets the
SLO, replayed through the simulator) and runs the max fleet. `search_oracle` sizes the oracle's
schedule from the engine model, replays it with instant provisioning and searches the sizing
factor for the cheapest schedule whose replay meets the SLO over the whole run. `search_reaction`
does the same for a schedule that knows each minute's need only when it comes and gets capacity a
lead time later: what reacting perfectly can do, the yardstick between a policy and the oracle.
All only run simulations: nothing here knows a policy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from swell import recipe
from swell.clusters.sim import cluster as cluster_mod
from swell.clusters.sim import nodes as sim_nodes
from swell.clusters.sim import oracle, outcomes
from swell.core import leadtime
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


def instant(rec: recipe.Recipe, *, keep_unneeded: bool = False) -> recipe.Recipe:
    """The recipe on a node pool whose nodes are ready, pulled and loaded the moment they are asked
    for, and removed the moment they are empty (the oracle's world); with `keep_unneeded`, still
    billed for the pool's unneeded_time_s after they empty (perfect reaction's world: the node
    autoscaler it works with is the real one)."""
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
    unneeded = pool.unneeded_time_s if keep_unneeded else 0.0
    return rec.model_copy(
        update={"node_pool": pool.model_copy(update={"provisioning": prov, "unneeded_time_s": unneeded})}
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
    lead = _instant_lead(rec)
    return _search(simulate, rec, instant(rec), arr, horizon_s, capacity_rps, lambda o: _ahead(o, lead),
                   label="oracle", seed=seed, options=options, progress=progress)  # fmt: skip


def search_reaction(
    simulate: Simulate,
    rec: recipe.Recipe,
    arr: arrivals_mod.Arrivals,
    horizon_s: float,
    capacity_rps: float,
    *,
    start: int,
    lead_s: float,
    hold_s: float = 0.0,
    first: float = 1.0,
    seed: int,
    options: cluster_mod.Options,
    progress: Progress | None = None,
) -> oracle.Oracle:
    """Perfect reaction: the cheapest schedule that knows each minute's need exactly when it comes
    (the oracle's sizing, nothing of the minutes after) and gets what it asks for `lead_s` later
    (`behind`), whose replay meets the SLO. Its factor below the oracle's is the headroom a policy
    that only reacts needs on this workload; out of reach when no headroom up to the max fleet (or
    within twice the oracle's search steps) meets the SLO: the lead time, not the sizing, decides. `first`: the factor to start from (the
    oracle's saves replays)."""
    lead = _instant_lead(rec)
    return _search(simulate, rec, instant(rec, keep_unneeded=True), arr, horizon_s, capacity_rps,
                   lambda o: behind(o, lead_s + lead, start, hold_s), label="perfect reaction", first=first,
                   start=start, steps=2 * MAX_STEPS, seed=seed, options=options, progress=progress)  # fmt: skip


REACTION_HOLD = 2.0  # the held variant keeps each ask this many lead times (the planner holds a peak 2 H)


def reaction_holds(rec: recipe.Recipe, lead_s: float) -> tuple[float, float]:
    """The holds perfect reaction is tried with: the pool's unneeded_time_s (a replica given back
    sooner saves nothing, its node is billed that long after it empties, and one kept there comes
    back without the lead time) and REACTION_HOLD lead times (a peak held as the planner holds it)."""
    return rec.node_pool.unneeded_time_s, max(rec.node_pool.unneeded_time_s, REACTION_HOLD * lead_s)


def reaction_lead(rec: recipe.Recipe) -> float:
    """The lead time perfect reaction waits: the recipe's node lead and replica start, the planner's
    H before it learns any."""
    return leadtime.LeadTimes.of(rec.node_pool).horizon_s


def oracle_first(orc: oracle.Oracle | None) -> float:
    """The factor a reaction search starts from: the oracle's, where it reached the SLO (saves replays)."""
    return orc.factor if orc is not None and orc.reachable else 1.0


def reaction_tries(
    simulate: Simulate,
    rec: recipe.Recipe,
    arr: arrivals_mod.Arrivals,
    horizon_s: float,
    capacity_rps: float,
    *,
    start: int,
    orc: oracle.Oracle | None,
    seed: int,
    options: cluster_mod.Options,
    progress: Progress | None = None,
) -> list[tuple[float, oracle.Oracle]]:
    """(hold, search) of perfect reaction for each distinct hold of `reaction_holds`, over
    `reaction_lead`, each search starting from the oracle's factor."""
    lead_s = reaction_lead(rec)
    return [
        (hold_s, search_reaction(simulate, rec, arr, horizon_s, capacity_rps, start=start, lead_s=lead_s,
                                 hold_s=hold_s, first=oracle_first(orc), seed=seed, options=options,
                                 progress=progress))
        for hold_s in sorted(set(reaction_holds(rec, lead_s)))
    ]  # fmt: skip


def reaction_run(
    rec: recipe.Recipe, tries: Sequence[tuple[float, oracle.Oracle]], orc: oracle.Oracle | None
) -> outcomes.Run:
    """Perfect reaction as a baseline run: of `tries` (`reaction_tries`: each ask held while its
    node is billed after it empties anyway, and REACTION_HOLD lead times), the cheaper that meets
    the SLO (else the one that came closer), labelled with its headroom over the oracle's sizing;
    `extra["about"]` says what it is."""
    done = [(h, b) for h, b in tries if b.replayed is not None]
    met = [(h, b) for h, b in done if b.reachable]
    hold, best = (
        min(met, key=lambda x: x[1].gpu_hours) if met
        else max(done, key=lambda x: x[1].replayed.summary.attainment)  # type: ignore[union-attr]
    )  # fmt: skip
    run = best.replayed
    assert run is not None  # capacity_rps > 0: every search replays
    headroom = oracle_first(orc) / best.factor - 1
    tag = "out of reach" if not met else f"+{100 * headroom:.0f} %" if headroom > 0.005 else "no headroom"
    about = (f"each minute's load known when it comes, capacity {reaction_lead(rec) / 60:.0f} min after it is asked for, "
             f"each ask held {hold / 60:.0f} min; {best.note or 'the oracle sizing'}")  # fmt: skip
    return dataclasses.replace(run, policy=f"perfect reaction ({tag})", extra={**run.extra, "about": about})


def _instant_lead(rec: recipe.Recipe) -> float:
    """What even the instant world takes to put a replica to work: a decision, a node scan, a
    readiness probe."""
    auto = rec.autoscaling
    return auto.polling_interval_s + sim_nodes.SCAN_INTERVAL_S + rec.service.probes.readiness.period_s


def _search(
    simulate: Simulate,
    rec: recipe.Recipe,
    world: recipe.Recipe,
    arr: arrivals_mod.Arrivals,
    horizon_s: float,
    capacity_rps: float,
    plan_of: Callable[[oracle.Oracle], Callable[[float], int]],
    *,
    label: str,
    seed: int,
    options: cluster_mod.Options,
    progress: Progress | None,
    first: float = 1.0,
    start: int | None = None,
    steps: int = MAX_STEPS,
) -> oracle.Oracle:
    """The factor search shared by the oracle and perfect reaction: the oracle's per-minute sizing
    at each factor, replayed in `world` (an instant one) through `plan_of`, from `start` replicas
    (None: what the plan asks at t = 0)."""
    auto = rec.autoscaling
    seen: dict[float, tuple[oracle.Oracle, outcomes.Run]] = {}

    def replay(f: float) -> tuple[oracle.Oracle, outcomes.Run]:
        if f not in seen:
            o = oracle.compute(arr.t, horizon_s, capacity_rps, rec.node_pool, rec.resources.gpus, factor=f,
                               min_replicas=auto.min_replicas, max_replicas=auto.max_replicas)  # fmt: skip
            same = next((r for q, r in seen.values() if np.array_equal(q.replicas, o.replicas)), None)
            plan = plan_of(o)
            at0 = plan(0.0) if start is None else start
            opts = dataclasses.replace(options, model_load_samples=(), initial_replicas=at0)
            r = same or simulate(world, arr, horizon_s=horizon_s, seed=seed, options=opts, progress=progress,
                                 schedule=plan, label=label)  # fmt: skip
            seen[f] = (o, r)
        return seen[f]

    if capacity_rps <= 0:
        return oracle.compute(arr.t, horizon_s, 0.0, rec.node_pool, rec.resources.gpus)
    if not math.isfinite(capacity_rps):  # no requests at all: the floor is the schedule
        capacity_rps = 1e9
    good: float | None = None
    bad: float | None = None
    f = first
    for _ in range(steps):
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
        where = "at the max fleet" if _saturated(top_o, rec) else f"with the most capacity tried (factor {min(seen):.3g})"
        note = f"out of reach: {100 * top_r.summary.attainment:.1f} % {where}"
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


def behind(o: oracle.Oracle, lead_s: float, start: int, hold_s: float = 0.0) -> Callable[[float], int]:
    """Perfect reaction to the schedule's need: what is asked at t arrives at t + lead_s, what is
    given back goes at once, so the fleet at t is the lesser of the ask now and the ask lead_s ago
    (`start` before the run began). With `hold_s` each ask is the most the need asked over the last
    hold_s (a peak held, as a policy that keeps capacity after a burst does)."""

    def asked(s: float) -> int:
        if s < 0:
            return start
        if hold_s <= 0:
            return o.replicas_at(s)
        last = len(o.replicas) - 1
        i1 = min(last, int(s // o.bucket_s))
        i0 = min(i1, max(0, int((s - hold_s) // o.bucket_s)))
        return int(o.replicas[i0 : i1 + 1].max())

    return lambda t: min(asked(t), asked(t - lead_s))


def _saturated(o: oracle.Oracle, rec: recipe.Recipe) -> bool:
    top = min(rec.autoscaling.max_replicas, sizing.capacity(rec.node_pool, rec.resources.gpus))
    return bool((o.replicas >= top).all())


def _at_floor(o: oracle.Oracle, rec: recipe.Recipe) -> bool:
    each = max(1, sizing.per_node(rec.resources.gpus, rec.node_pool.gpus))
    return bool((o.replicas <= max(rec.autoscaling.min_replicas, each)).all())
