"""Perfect reaction: what a policy that only reacts can reach on each scorecard workload, beside the
`swell` policy and the oracle, printed as JSON.

Perfect reaction knows each minute's need exactly when that minute comes (the oracle's sizing of
its arrivals) and nothing of the minutes after; what it asks for serves a node lead time later
(seed 000's provisioning: node and replica start, 16 min on the scorecard's recipe), what it gives
back goes after the pool's unneeded_time_s (10 min: its node is billed that long anyway).
`runtime.baselines.search_reaction` searches its headroom (capacity per minute above the oracle's
sizing) for the cheapest schedule whose replay meets the SLO, from the same fair start as every
scorecard run, and again with each minute's ask held 2 lead times (as a policy that keeps capacity
after a burst). Out of reach: no headroom up to the max fleet meets the SLO, so only foresight (a
schedule, a daily pattern) can. The oracle here is the replayed schedule alone (the scorecard also
lets a cheaper fixed fleet stand for it).
    python bench/reaction_bound.py [--only black-friday,servegen-busy] [--seed 0] [--markdown]
Workloads that replay the public traces are skipped (and said) when SWELL_TRACES has no traces.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from swell import errors
from swell.clusters.sim import oracle as oracle_mod
from swell.clusters.sim import outcomes
from swell.runtime import baselines, scorecard, sim
from swell.workload import rescale, spec


def reaction_row(bound: oracle_mod.Oracle, orc: oracle_mod.Oracle, hold_s: float) -> dict[str, Any]:
    run = bound.replayed
    ok = bound.reachable and run is not None
    return {
        "hold_s": hold_s,
        "meets_slo": ok,
        "attainment": None if run is None else round(run.summary.attainment, 5),
        "gpu_hours": round(run.gpu_hours, 2) if ok and run is not None else None,
        "oracle_ratio": round(bound.gpu_hours / orc.gpu_hours, 2) if ok and orc.reachable else None,
        "headroom": round(baselines.oracle_first(orc) / bound.factor - 1, 2) if ok else None,
        "note": bound.note,
        "tried": [[round(f, 3), round(a, 5), round(g, 2)] for f, a, g in bound.tried],
    }


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "| workload | swell | perfect reaction | perfect reaction, held 2 H | oracle |",
        "|---|---|---|---|---|",
    ]

    def cell(r: dict[str, Any]) -> str:
        if not r["meets_slo"]:
            best = max(t[1] for t in r["tried"])
            return f"out of reach (at most {outcomes.percent(best)})"
        return f"{r['gpu_hours']:.3g} GPU-h ({r['oracle_ratio']:.2f}×, headroom {100 * r['headroom']:+.0f} %)"

    for w in data["workloads"]:
        if "skipped" in w:
            lines.append(f"| {w['workload']} | skipped: {w['skipped']} | | | |")
            continue
        s = w["swell"]
        mine = outcomes.percent(s["attainment"]) + ("" if s["meets_slo"] else " ✗") + f" at {s['gpu_hours']:.3g}"
        short, long = w["reaction"][0], w["reaction"][-1]  # by hold; one when both holds are the same
        lines.append(f"| {w['workload']} (from {w['start']}) | {mine} | {cell(short)} | {cell(long)} "
                     f"| {w['oracle_gpu_hours']:.3g} |")  # fmt: skip
    lead = "" if data["lead_s"] is None else f"lead {data['lead_s']:.0f} s; "
    lines.append(f"\n({lead}wall {data['wall_s']:.0f} s, CPU {data['cpu_s']:.0f} s)")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="workloads, comma-separated (default: the whole suite)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", action="store_true", help="print the table docs/benchmarks.md carries")
    args = ap.parse_args()
    try:
        picked = scorecard.entries(args.only)
    except errors.RecipeError as exc:
        raise SystemExit(f"error: {exc}") from None
    t0, c0 = time.perf_counter(), time.process_time()
    rows: list[dict[str, Any]] = []
    lead_s: float | None = None
    for entry in picked:
        if why := scorecard.missing(entry):
            rows.append({"workload": entry.name, "skipped": why})
            continue
        rec = scorecard.entry_recipe(scorecard.base_recipe(), entry)
        lead_s = baselines.reaction_lead(rec)
        print(f"{entry.name}: oracle and swell ...", file=sys.stderr, flush=True)
        comp = sim.compare(rec, rescale.rescale(spec.parse(entry.workload)), ["swell"], seed=args.seed,
                           duration_s=entry.duration_s, with_baselines=False)  # fmt: skip
        orc, cap, start = comp.oracle, comp.capacity_rps, comp.initial_replicas
        assert orc is not None and cap is not None and start is not None  # compare sets them with the oracle on
        print(f"{entry.name}: perfect reaction ...", file=sys.stderr, flush=True)
        tries = baselines.reaction_tries(
            sim.simulate, rec, comp.arrivals, comp.horizon_s, cap, start=start, orc=orc, seed=args.seed,
            options=dataclasses.replace(sim.DEFAULT_OPTIONS, initial_replicas=start),
        )  # fmt: skip
        reaction = [reaction_row(bound, orc, hold_s) for hold_s, bound in tries]
        rows.append({
            "workload": entry.name, "start": start,
            "oracle_gpu_hours": round(orc.gpu_hours, 2), "oracle_attainment": orc.attainment,
            "swell": comp.runs[0].brief(), "reaction": reaction,
        })  # fmt: skip
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    data = {"seed": args.seed, "lead_s": None if lead_s is None else round(lead_s, 1), "workloads": rows,
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}  # fmt: skip
    print(markdown(data) if args.markdown else json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
