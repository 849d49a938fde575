"""Days of ServeGen m-small: the planner with its seasonal part, without it, the reactive rules and
the best fixed fleet, per day, printed as JSON.

The scorecard's runs last 1-6 hours, so the planner's seasonal part ("a day ago": the peak of the
same window yesterday, scaled to today's level; `core.forecast.seasonal`) never speaks there. This
replays whole days of the ServeGen m-small trace (Alibaba Bailian, 43 clients; the scorecard's
servegen-busy recipe: Llama 3 8B on A10s, 2-GPU nodes, seed 000's provisioning, SLO TTFT <= 5 s and
e2e <= 60 s for 99 % of requests, shed at 5 s; rate x0.0036) from the same fair start, and prints
per run and per day: SLO attainment, GPU-hours (the run's GPU-hours split by its node-seconds each
day) and scale events. The planner is run twice, the second time with the seasonal part off (an
ablation: `forecast.seasonal` patched to None in this process), to show what the daily pattern buys
on day 2 onward. The oracle is left out: its search replays the whole run about ten times.

    python bench/multiday.py [--start-day 10] [--days 2] [--scale 0.0036] [--seed 0]

Needs ../shared/traces (servegen/language/m-small); ~5 minutes a run and day pair on one core.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any
from unittest import mock

import numpy as np

from swell.clusters.sim import outcomes
from swell.core import forecast
from swell.runtime import scorecard, sim
from swell.workload import rescale, spec

DAY = 86400.0
ENTRY = "servegen-busy"  # its recipe (the scorecard's base with no overrides) and request mix


def per_day(run: outcomes.Run, days: int) -> list[dict[str, Any]]:
    """Attainment, GPU-hours and requests of each day of `run`."""
    met = run.requests.met(run.slo)
    arrival, tl = run.requests.arrival, run.timeline
    dt = np.diff(np.append(tl.t, run.horizon_s))
    node_s = tl.nodes * dt
    total = float(node_s.sum()) or 1.0
    out = []
    for d in range(days):
        m = (arrival >= d * DAY) & (arrival < (d + 1) * DAY)
        k = (tl.t >= d * DAY) & (tl.t < (d + 1) * DAY)
        n = int(m.sum())
        out.append({
            "day": d + 1,
            "requests": n,
            "attainment": round(float(met[m].mean()), 5) if n else None,
            "gpu_hours": round(run.gpu_hours * float(node_s[k].sum()) / total, 2),
            "scale_events": int(np.count_nonzero(np.diff(tl.desired[k]))) if k.sum() > 1 else 0,
        })  # fmt: skip
    return out


def row(label: str, run: outcomes.Run, days: int) -> dict[str, Any]:
    return {"run": label} | run.brief() | {"days": per_day(run, days)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--start-day", type=int, default=10, help="first day of the 14-day trace (0-based; default 10)"
    )
    ap.add_argument(
        "--days", type=int, default=2, help="days replayed (default 2; the seasonal part speaks from day 2)"
    )
    ap.add_argument(
        "--scale", type=float, default=0.0036, help="rate scale (default 0.0036, as servegen-busy)"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.days < 1 or not 0 <= args.start_day <= 13 or args.scale <= 0 or args.seed < 0:
        ap.error("--days must be at least 1, --start-day 0-13, --scale above 0, --seed at least 0")
    entry = next(e for e in scorecard.SUITE if e.name == ENTRY)
    rec = scorecard.entry_recipe(scorecard.base_recipe(), entry)
    start_s = int(args.start_day * DAY)
    workload = f"servegen:m-small,start={start_s},scale={args.scale:g}," + scorecard.CONV
    wl = rescale.rescale(spec.parse(workload))
    horizon = args.days * DAY
    t0, c0 = time.perf_counter(), time.process_time()

    def progress(what: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {what}", file=sys.stderr, flush=True)

    shown = {"at": 0.0}

    def running(name: str, share: float) -> None:  # sim.compare's progress: one line a minute at most
        if share >= 1.0 or time.perf_counter() - shown["at"] >= 60.0:
            shown["at"] = time.perf_counter()
            progress(f"  {name}: {share * 100:.0f} %")

    progress(f"{workload}, {args.days} day(s): swell, reactive, the best fixed fleet and the max fleet ...")
    comp = sim.compare(rec, wl, ["swell", "reactive"], seed=args.seed, duration_s=horizon, with_oracle=False,
                       with_baselines=True, progress=running)  # fmt: skip
    progress(f"swell without its seasonal part, from {comp.initial_replicas} replicas ...")
    start = dataclasses.replace(sim.DEFAULT_OPTIONS, initial_replicas=comp.initial_replicas)
    with mock.patch.object(forecast, "seasonal", return_value=None):
        ablation = sim.compare(rec, wl, ["swell"], seed=args.seed, duration_s=horizon, with_oracle=False,
                               with_baselines=False, options=start, progress=running)  # fmt: skip
    runs = [row(r.policy, r, args.days) for r in comp.runs]
    runs.insert(1, row("swell, seasonal part off", ablation.runs[0], args.days))
    runs += [row(b.policy, b, args.days) for b in comp.baselines]
    out = {
        "workload": workload,
        "days": args.days,
        "seed": args.seed,
        "initial_replicas": comp.initial_replicas,
        "requests": len(comp.arrivals.t),
        "runs": runs,
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
