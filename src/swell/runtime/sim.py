"""The simulator's wiring: the one loop's tick driving a simulated cluster in virtual time.

`simulate(recipe, arrivals, policy)` runs one policy: the event loop scrapes the replicas into
metric windows at the recipe's scrape interval, and every polling interval runs the very
`Controller.tick` that local and Kubernetes run (observe, read, decide, apply, workers) on a
ManualClock, driven without an event loop (the simulated world never suspends). `compare` runs
several policies on the very same arrivals, plus the baselines and the oracle. Nothing
policy-specific lives here.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from swell import clock, errors, recipe
from swell.clusters.sim import cluster as cluster_mod
from swell.clusters.sim import events, oracle, outcomes
from swell.control import history, loop, profile
from swell.core import signals, windows
from swell.core.policies import presets
from swell.runtime import baselines, suggest
from swell.workload import arrivals as arrivals_mod

DEFAULT_SLO = recipe.SLO(ttft_s=2.0, percentile=95.0)
BATCH = 4096
# A simulation steps through every second of its horizon and keeps every request: a day takes
# seconds to minutes and a million requests about a gigabyte. Past these bounds a run would not
# end in any useful time (or would run out of memory): a typo like --duration 1e12.
MAX_HORIZON_S = 31 * 86400.0
MAX_REQUESTS = 10_000_000
DEFAULT_OPTIONS = cluster_mod.Options()
Progress = Callable[[str, float], None]
Schedule = Callable[[float], int]


def slo_of(rec: recipe.Recipe) -> recipe.SLO:
    """The recipe's SLO, or a 2 s TTFT at p95 when it sets no latency target."""
    return rec.slo if (rec.slo.ttft_s is not None or rec.slo.e2e_s is not None) else DEFAULT_SLO


def policy_recipe(rec: recipe.Recipe, name: str) -> recipe.Recipe:
    """The recipe scaled by a named preset; bad names are a RecipeError listing the known ones."""
    if why := presets.setting_problem(name):
        raise errors.RecipeError("--compare", [errors.Problem(path="--compare", value=name, rule=why)])
    out = presets.apply(name, rec)
    raw = [s.name for s in out.autoscaling.signals if s.kind == "promql"]
    if raw:
        raise errors.RecipeError(
            "recipe",
            [errors.Problem(path="autoscaling.signals", value=raw,
                            rule=f"policy {name!r}: a raw PromQL query cannot be evaluated in the simulator; "
                                 "declare the signal by kind (gauge, ratio, histogram_fraction, ...)")],
        )  # fmt: skip
    return out


def _batches(a: arrivals_mod.Arrivals) -> Iterator[arrivals_mod.Arrivals]:
    for lo in range(0, len(a), BATCH):
        yield a[lo : lo + BATCH]


def simulate(
    rec: recipe.Recipe,
    arrivals: arrivals_mod.Arrivals,
    *,
    horizon_s: float,
    policy: str = "recipe",
    seed: int = 0,
    options: cluster_mod.Options = DEFAULT_OPTIONS,
    progress: Progress | None = None,
    schedule: Schedule | None = None,
    label: str | None = None,
) -> outcomes.Run:
    """Run one policy over `arrivals` until `horizon_s` (then let in-flight requests finish).

    With `schedule` (time -> replicas) no policy decides: the cluster is scaled to what the
    schedule says at each tick (the fixed fleets and the oracle's replay). `label` names the run."""
    started = time.perf_counter()
    name = label or policy
    rec = recipe.as_one_machine(rec)
    prec = rec if schedule is not None else policy_recipe(rec, policy)
    auto = prec.autoscaling
    sigs = signals.required(auto, prec.slo) if schedule is None else []
    scrape_s = auto.metrics.scrape_interval_s
    store = windows.Store(retention_s=signals.retention_s(auto, sigs), wanted=signals.metric_names(sigs))
    ev = events.Loop(seed)
    sim = cluster_mod.SimCluster(prec, ev, store, sigs, options)
    decisions: list[outcomes.Logged] = []
    hist = history.History(maxlen=1)
    hist.listen(lambda e: decisions.append(outcomes.Logged.of(e.decision)))
    ctrl = loop.Controller(prec, history=hist, epoch_s=options.start_s)
    vclock = clock.ManualClock()
    rows: list[tuple[float, int, int, int, int, int, int]] = []
    worker_rows: list[int] = []
    step_pct = max(horizon_s / 100.0, auto.polling_interval_s)
    marks = {"next": 0.0}

    def tick(now: float) -> None:
        vclock.set(now)
        if schedule is not None:
            want = schedule(now)
            if want != sim.target:
                decisions.append(outcomes.Logged(now, sim.target, want, "schedule", "as scheduled", ()))
                sim.set_target(now, want)
        else:
            loop.drive(ctrl.tick(sim, sim, vclock))
        if sim.worker_control:
            worker_rows.append(sim.running_workers())
        c = sim.counts()
        rows.append(
            (now, sim.target, c["ready"], c["starting"], c["pending"], c["nodes"], c["nodes_provisioning"])
        )
        if progress is not None and now >= marks["next"]:
            marks["next"] = now + step_pct
            progress(name, min(1.0, now / horizon_s))
        if now >= horizon_s and sim.requests.in_flight == 0:
            ev.stop()

    sim.start(0.0)
    sim.feed(_batches(arrivals))
    if schedule is None:  # a schedule reads no metrics
        ev.every(0.0, scrape_s, events.SCRAPE, sim.scrape)
    ev.every(auto.polling_interval_s, auto.polling_interval_s, events.CONTROL, tick)
    end = ev.run(until=horizon_s + options.request_timeout_s)
    sim.finish(end)
    if progress is not None:
        progress(name, 1.0)
    gpu_hours = sim.pool.gpu_seconds(0.0, horizon_s) / 3600.0
    req = sim.requests.arrays()
    slo = slo_of(prec)
    cols = list(zip(*rows, strict=True)) if rows else [()] * 7
    timeline = outcomes.Timeline(
        t=np.asarray(cols[0], dtype=np.float64),
        **{k: np.asarray(cols[i + 1], dtype=np.int64)
           for i, k in enumerate(("desired", "ready", "starting", "pending", "nodes", "nodes_provisioning"))},
        workers=np.asarray(worker_rows, dtype=np.int64) if sim.worker_control else None,
    )  # fmt: skip
    nodes = tuple({"name": n.name, **n.timeline} for n in (*sim.pool.gone, *sim.pool.nodes.values()))
    return outcomes.Run(
        policy=name,
        config=prec,
        slo=slo,
        horizon_s=horizon_s,
        summary=outcomes.Summary.of(req, slo),
        gpu_hours=gpu_hours,
        cost=gpu_hours * prec.node_pool.price_per_gpu_hour,
        requests=req,
        timeline=timeline,
        decisions=tuple(decisions),
        wall_s=time.perf_counter() - started,
        events=ev.processed,
        node_timelines=nodes,  # type: ignore[arg-type]
        start_s=options.start_s,
        extra={"samples": sim.emitter.samples, "nodes_given_up": sim.pool.given_up},
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class Comparison:
    """Policies, baselines (best fixed fleet, max fleet) and the replayed oracle on one set of arrivals."""

    runs: tuple[outcomes.Run, ...]
    oracle: oracle.Oracle | None
    arrivals: arrivals_mod.Arrivals
    horizon_s: float
    workload: str
    seed: int
    baselines: tuple[outcomes.Run, ...] = ()
    initial_replicas: int | None = None
    capacity_rps: float | None = None
    warnings: tuple[str, ...] = ()
    suggestions: tuple[suggest.Suggestion, ...] = ()  # schedule windows for the runs that missed (--suggest-schedule)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def start_s(self) -> float:
        """Unix time of t = 0 on the calendar: the runs' (cluster.Options.start_s, the same for all)."""
        return self.runs[0].start_s if self.runs else 0.0

    @property
    def oracle_gpu_hours(self) -> float | None:
        o = self.oracle
        return o.gpu_hours if o is not None and o.reachable else None

    def to_json(self) -> dict[str, object]:
        o = self.oracle
        ref = self.oracle_gpu_hours
        orc: dict[str, object] | None = None
        if o is not None:
            orc = o.to_json()
            if o.replayed is not None:
                orc["replay"] = {k: v for k, v in o.replayed.to_json(ref).items() if k != "decisions"}
        return {
            "workload": self.workload,
            "seed": self.seed,
            "horizon_s": self.horizon_s,
            "requests": len(self.arrivals),
            "initial_replicas": self.initial_replicas,
            "start": cluster_mod.start_text(self.start_s),
            "capacity_rps": self.capacity_rps,
            "warnings": list(self.warnings),
            "oracle": orc,
            "policies": [r.to_json(ref) for r in self.runs],
            "baselines": [r.to_json(ref) for r in self.baselines],
            "suggested_schedules": [x.to_json() for x in self.suggestions],
        } | self.extra


def horizon_of(workload: arrivals_mod.Workload, duration_s: float | None) -> float:
    """How long to offer load: --duration, else the workload's own length."""
    days = f"{MAX_HORIZON_S / 86400:g} days (the simulator steps through every second)"
    if duration_s is not None:
        if not duration_s > 0:  # NaN too
            raise errors.RecipeError(
                "--duration", [errors.Problem(path="--duration", value=duration_s, rule="must be a time > 0")]
            )
        if duration_s > MAX_HORIZON_S:  # infinity too
            rule = f"at most {days}"
            raise errors.RecipeError("--duration", [errors.Problem(path="--duration", value=duration_s, rule=rule)])
        return duration_s
    natural = workload.natural_duration_s
    if natural is None:
        raise errors.RecipeError(
            "--workload",
            [errors.Problem(path="duration", value=None,
                            rule=f"'{workload.description}' never ends by itself: give --duration (e.g. 10m)")],
        )  # fmt: skip
    if natural > MAX_HORIZON_S:
        raise errors.RecipeError(
            "--workload",
            [errors.Problem(path="duration", value=natural,
                            rule=f"'{workload.description}' lasts longer than {days}: give --duration")],
        )  # fmt: skip
    return natural


def draw(workload: arrivals_mod.Workload, *, seed: int, horizon_s: float) -> arrivals_mod.Arrivals:
    """All arrivals of `workload` before `horizon_s`; a RecipeError, before memory runs out, past
    MAX_REQUESTS, and for a workload that offers no request at all (nothing to scale for)."""
    parts, count = [], 0
    for batch in workload.batches(arrivals_mod.generator(seed), horizon_s):
        count += len(batch)
        if count > MAX_REQUESTS:
            raise errors.RecipeError(
                "--workload",
                [errors.Problem(path="requests", value=f"more than {MAX_REQUESTS:,} by t = {float(batch.t[-1]):.0f} s",
                                rule=f"'{workload.description}' offers more requests than a simulation holds "
                                     f"({MAX_REQUESTS:,}): give a shorter --duration or a lower rate or --scale")],
            )  # fmt: skip
        parts.append(batch)
    if not count:
        raise errors.RecipeError(
            "--workload",
            [errors.Problem(path="requests", value=0,
                            rule=f"'{workload.description}' offers no request within {horizon_s:g} s (a rate of 0, "
                                 "a start past the trace's end, or a --scale or --speedup that leaves none)")],
        )  # fmt: skip
    return arrivals_mod.concat(parts)


def _minutes(arrival_t: arrivals_mod.FloatArray, end_s: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Minute edges from 0 up to (not including) `end_s`, and the arrivals in each minute between them."""
    edges = np.arange(0.0, end_s, 60.0)
    if len(edges) < 2:
        return edges, np.zeros(0, dtype=np.int64)
    return edges, np.histogram(arrival_t, bins=edges)[0]


def busiest_minute(arrival_t: arrivals_mod.FloatArray, horizon_s: float) -> float:
    """When the minute with the most arrivals starts (0 without arrivals)."""
    if not len(arrival_t):
        return 0.0
    edges, counts = _minutes(arrival_t, horizon_s + 60.0)
    return float(edges[int(np.argmax(counts))])


def opening_rate(arrival_t: arrivals_mod.FloatArray, window_s: float) -> float:
    """The busiest minute's arrival rate within the first `window_s` (req/s)."""
    _, counts = _minutes(arrival_t, max(60.0, window_s) + 1e-9)
    if not len(counts) or not len(arrival_t):
        return 0.0
    return float(counts.max()) / 60.0


def replicas_for(rec: recipe.Recipe, rate: float, capacity_rps: float) -> int:
    """Replicas `rate` needs by the engine model, within the recipe's bounds (not rounded to whole
    nodes: a fleet below a node's worth may serve it, on a node billed whole)."""
    auto = rec.autoscaling
    floor = cluster_mod.fewest(auto)
    if capacity_rps <= 0 or not math.isfinite(capacity_rps):
        return floor
    return min(auto.max_replicas, max(floor, math.ceil(rate / capacity_rps - 1e-9)))


def opening_need(
    rec: recipe.Recipe,
    arr: arrivals_mod.Arrivals,
    horizon_s: float,
    capacity_rps: float,
    window_s: float = 60.0,
) -> int:
    """The fleet the busiest minute within the first `window_s` needs by the engine model (whole
    nodes, within the recipe's bounds)."""
    auto = rec.autoscaling
    floor = cluster_mod.fewest(auto)
    if capacity_rps <= 0:
        return floor
    cap = capacity_rps if math.isfinite(capacity_rps) else 1e9
    o = oracle.compute(arr.t, horizon_s, cap, rec.node_pool, rec.resources.gpus,
                       min_replicas=floor, max_replicas=auto.max_replicas)  # fmt: skip
    return int(o.replicas[: max(1, math.ceil(window_s / o.bucket_s))].max())


def compare(
    rec: recipe.Recipe,
    workload: arrivals_mod.Workload,
    policies: Sequence[str],
    *,
    seed: int = 0,
    duration_s: float | None = None,
    options: cluster_mod.Options = DEFAULT_OPTIONS,
    with_oracle: bool = True,
    with_baselines: bool = True,
    with_reaction: bool = False,
    with_suggestions: bool = False,
    progress: Progress | None = None,
) -> Comparison:
    """Every policy on the same arrivals (drawn once from the seed), the best fixed fleet, the max
    fleet and the replayed oracle, all from the same starting fleet; `with_reaction` adds perfect
    reaction (`baselines.reaction_tries` and `reaction_run`: each minute's load known when it comes, capacity a node
    lead time later) to the baselines. `with_suggestions`: for each policy that missed the SLO,
    schedule windows over the surges it met a lead time late (`suggest.suggest`, a few replays
    each); without it, a warning names such surges.

    `options.initial_replicas` None means auto: what the arrivals need before a new node could serve
    (the node lead time), as the oracle's replayed schedule has it (bursts included), else as the
    engine model sizes it."""
    rec = recipe.as_one_machine(rec)
    for name in policies:
        policy_recipe(rec, name)  # fail on a bad name before any work
    horizon = horizon_of(workload, duration_s)
    arr = draw(workload, seed=seed, horizon_s=horizon)
    slo = slo_of(rec)
    if progress is not None:
        progress("capacity", 0.0)
    cap = oracle.capacity_for(rec, slo, arr.input_tokens, arr.output_tokens, seed)
    orc = None
    if with_oracle:
        orc = baselines.search_oracle(simulate, rec, arr, horizon, cap, seed=seed, options=options,
                                      progress=progress)  # fmt: skip
    lead = rec.node_pool.provisioning.cold_replica_s
    window = min(horizon, max(60.0, lead))
    auto_start = (baselines.start_of(orc, window) if orc is not None else None) or opening_need(
        rec, arr, horizon, cap, window
    )
    warnings: list[str] = []
    start = options.initial_replicas
    if start is None:
        start = auto_start
    elif start < auto_start and start < (need := replicas_for(rec, opening_rate(arr.t, window), cap)):
        warnings.append(
            f"the trace starts hot: its first {window / 60:.0f} min need {need} replicas at its busiest minute "
            f"(before then no new node can serve), the fleet starts with {start}"
        )
    peak = busiest_minute(arr.t, horizon)
    if rec.resources.gpus > 0 and lead > peak:
        warnings.append(
            f"a new node serves {lead / 60:.0f} min after it is asked for (boot, kubelet, GPU driver, image "
            f"pull, model load) but the busiest minute starts at minute {peak / 60:.0f}: no node asked for "
            "after the start arrives in time for it, so policies differ only within the nodes they start "
            "with; give a longer workload (--duration, a later surge) or more min_nodes"
        )
    if cap <= 0:
        warnings.append(f"one replica cannot meet the SLO ({slo_text(slo)}) even one request at a time")
    for name in policies:
        if why := profile.e2e_warning(policy_recipe(rec, name)):
            warnings.append(f"{name}: {why}")
    opts = dataclasses.replace(options, initial_replicas=start)
    runs = tuple(
        simulate(rec, arr, horizon_s=horizon, policy=p, seed=seed, options=opts, progress=progress)
        for p in policies
    )
    missed = [(p, r) for p, r in zip(policies, runs, strict=True) if with_suggestions and not r.meets_slo]
    check = None
    if missed:  # other arrivals of the workload, unless it replays a trace (every seed brings the same)
        other = arrivals_mod.collect(workload, seed=seed + 1, horizon_s=horizon)
        check = None if np.array_equal(other.t, arr.t) else (seed + 1, other)
    suggestions = tuple(
        suggest.suggest(simulate, rec, arr, r, policy=p, horizon_s=horizon, seed=seed, options=opts,
                        progress=progress, check=check)
        for p, r in missed
    )  # fmt: skip
    if not with_suggestions:
        warnings += [w for w in (suggest.lead_bound_note(p, r) for p, r in zip(policies, runs, strict=True)) if w]
    fixed = None
    if with_baselines:
        fixed = baselines.search_fixed(
            simulate, rec, arr, horizon, seed=seed, options=opts, progress=progress
        )
    reaction: tuple[outcomes.Run, ...] = ()
    if with_reaction and 0 < cap < math.inf:
        tries = baselines.reaction_tries(simulate, rec, arr, horizon, cap, start=start, orc=orc, seed=seed,
                                         options=opts, progress=progress)  # fmt: skip
        reaction = (baselines.reaction_run(rec, tries, orc),)
    if fixed is not None and orc is not None:
        orc = baselines.cheaper(orc, fixed)
    return Comparison(
        runs=runs,
        oracle=orc,
        arrivals=arr,
        horizon_s=horizon,
        workload=workload.description,
        seed=seed,
        baselines=(() if fixed is None else fixed.runs) + reaction,
        initial_replicas=start,
        capacity_rps=cap,
        warnings=tuple(warnings),
        suggestions=suggestions,
    )


def slo_text(slo: recipe.SLO) -> str:
    """'TTFT ≤ 2 s and e2e ≤ 30 s for 95 %'."""
    parts = [f"TTFT ≤ {slo.ttft_s:g} s" if slo.ttft_s else "", f"e2e ≤ {slo.e2e_s:g} s" if slo.e2e_s else ""]
    return " and ".join(p for p in parts if p) + f" for {slo.percentile:g} %"
