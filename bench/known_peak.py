"""A known peak declared in the recipe: the scorecard's black-friday workload with and without a
schedule window over its surge, for the planner (`swell`) and the reactive rules, printed as JSON.

Black-friday's surge (minute 40, x6 over 15 minutes) rises faster than a GPU node's lead time
(~16 minutes with seed 000's provisioning), so no causal policy serves it from a warm start of 2
replicas. A user who knows the date declares it as a schedule (a CronHPA-style window with
`min_replicas`); the planner plans a scheduled floor that starts within its lead time H now, so the
nodes are Ready when the window opens, while the reactive rules apply the floor only from its start.
A third pair: the windows `swell simulate --suggest-schedule` finds from the runs without one
(`runtime/suggest.py`: the lead-bound episodes, floors lowered by bisection while the replay meets).
Each run: SLO attainment, GPU-hours and scale events, on the scorecard's recipe and fair start.
    python bench/known_peak.py [--min-replicas 8] [--start "40 0 * * *"] [--end "0 2 * * *"] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from swell import recipe
from swell.runtime import scorecard, sim
from swell.workload import rescale, spec

ENTRY = "black-friday"
START_REPLICAS = 2  # the scorecard's fair start for this workload (`--initial-replicas auto`)


def scheduled(base: recipe.Recipe, start: str, end: str, min_replicas: int) -> recipe.Recipe:
    """The recipe with one schedule window; the simulator's clock starts at 00:00 UTC."""
    data = base.model_dump(by_alias=True)
    data["schedules"] = [{"name": "black-friday", "start": start, "end": end, "min_replicas": min_replicas}]
    return recipe.Recipe.model_validate(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min-replicas", type=int, default=8, help="the window's floor (default 8)")
    ap.add_argument("--start", default="40 0 * * *", help="cron: when the window opens (default 00:40)")
    ap.add_argument("--end", default="0 2 * * *", help="cron: when it closes (default 02:00)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    entry = next(e for e in scorecard.SUITE if e.name == ENTRY)
    plain = scorecard.entry_recipe(scorecard.base_recipe(), entry)
    known = scheduled(plain, args.start, args.end, args.min_replicas)
    workload = rescale.rescale(spec.parse(entry.workload))
    opts = dataclasses.replace(sim.DEFAULT_OPTIONS, initial_replicas=START_REPLICAS)
    runs: list[dict[str, Any]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    suggested: list[dict[str, Any]] = []
    for label, rec in (("no schedule", plain), ("schedule", known)):
        more = " and the schedules they suggest" if label == "no schedule" else ""
        print(f"{ENTRY}, {label}: swell and reactive{more} ...", file=sys.stderr, flush=True)
        comp = sim.compare(rec, workload, ["swell", "reactive"], seed=args.seed, duration_s=entry.duration_s,
                           options=opts, with_oracle=False, with_baselines=False,
                           with_suggestions=label == "no schedule")  # fmt: skip
        runs.extend({"recipe": label} | r.brief() for r in comp.runs)
        for x in comp.suggestions:
            if x.after is not None:
                runs.append({"recipe": "suggested schedule"} | x.after.brief() | {"policy": x.policy})
            suggested.append({"policy": x.policy, "schedules": x.to_json()["schedules"], "replays": len(x.tried),
                              "checked": x.to_json()["checked"]})
    out = {
        "workload": entry.workload,
        "schedule": {"start": args.start, "end": args.end, "min_replicas": args.min_replicas},
        "seed": args.seed,
        "runs": runs,
        "suggested": suggested,
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
