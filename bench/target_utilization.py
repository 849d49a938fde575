"""The planner's cost/attainment dial: `autoscaling.target_utilization` swept over the scorecard's
workloads, SLO attainment and GPU-hours per value, printed as JSON.

The planner plans a replica at a share of its full throughput (0.7 for an LLM by default). A lower
share keeps headroom a surprise burst can use before new nodes serve; a higher one spends fewer
GPU-hours. Each run: the `swell` policy on the scorecard's recipe with the target set, from the
scorecard's fair start on seed 0 (its tables say "from N replicas"; on another seed the fair start
may differ: servegen-busy's is 4 on seed 2), the same arrivals for every value.
    python bench/target_utilization.py [--values 0.5,0.6,0.7,0.8] [--only black-friday,diurnal] [--seed 0]
Workloads that replay the public traces are skipped (and said) when SWELL_TRACES has no traces.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from swell import errors, recipe
from swell.runtime import scorecard, sim
from swell.workload import rescale, spec

STARTS = {"azure-conv": 6, "azure-code": 20, "servegen-busy": 6, "diurnal": 2, "black-friday": 2, "long-context": 6}


def targeted(base: recipe.Recipe, value: float) -> recipe.Recipe:
    data = base.model_dump(by_alias=True)
    data["autoscaling"] = {**data["autoscaling"], "policy": "swell", "target_utilization": value}
    return recipe.Recipe.model_validate(data)


def values_of(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"error: --values: {text!r} is not a comma-separated list of numbers") from None
    bad = [v for v in vals if not 0 < v <= 1]
    if not vals or bad:
        raise SystemExit(f"error: --values: each value must lie in (0, 1] (got {text!r})")
    return vals


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--values", default="0.5,0.6,0.7,0.8", help="targets, comma-separated (default 0.5,0.6,0.7,0.8)")
    ap.add_argument("--only", default="", help="workloads, comma-separated (default: the whole suite)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    vals = values_of(args.values)
    try:
        picked = scorecard.entries(args.only)
    except errors.RecipeError as exc:
        raise SystemExit(f"error: {exc}") from None
    t0, c0 = time.perf_counter(), time.process_time()
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for entry in picked:
        if why := scorecard.missing(entry):
            skipped[entry.name] = why
            continue
        base = scorecard.entry_recipe(scorecard.base_recipe(), entry)
        workload = rescale.rescale(spec.parse(entry.workload))
        for v in vals:
            print(f"{entry.name}: target_utilization {v:g} ...", file=sys.stderr, flush=True)
            opts = dataclasses.replace(sim.DEFAULT_OPTIONS, initial_replicas=STARTS[entry.name])
            comp = sim.compare(targeted(base, v), workload, ["swell"], seed=args.seed, duration_s=entry.duration_s,
                               options=opts, with_oracle=False, with_baselines=False)  # fmt: skip
            rows.append({"workload": entry.name, "target_utilization": v, "start": comp.initial_replicas}
                        | comp.runs[0].brief())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seed": args.seed, "runs": rows, "skipped": skipped,
                      "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
