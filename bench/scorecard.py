"""The scorecard as a benchmark: every policy preset on the fixed suite, timed, printed as JSON.

Runs `swell.runtime.scorecard` (what `swell simulate --scorecard` runs) pinned to one core when
the machine allows, and prints JSON: per workload each run's SLO attainment, GPU-hours, ×oracle
(only where the SLO was met) and scale events; the summary per policy; wall and CPU seconds.
With --markdown it prints the tables docs/benchmarks.md carries instead.
    python bench/scorecard.py [--only azure-conv,diurnal] [--seed 0] [--markdown]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from typing import Any

from swell.clusters.sim import outcomes
from swell.runtime import scorecard


def rows(card: scorecard.Scorecard) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for res in card.results:
        comp = res.comparison
        if comp is None:
            out.append({"workload": res.entry.name, "skipped": res.skipped})
            continue
        ref = comp.oracle_gpu_hours
        runs = [*comp.runs, *comp.baselines]
        if comp.oracle is not None and comp.oracle.replayed is not None:
            runs.append(comp.oracle.replayed)
        out.append({
            "workload": res.entry.name,
            "requests": len(comp.arrivals),
            "start_replicas": comp.initial_replicas,
            "oracle_note": comp.oracle.note if comp.oracle is not None else None,
            "runs": [
                {"policy": r.policy, "attainment": round(r.summary.attainment, 5), "meets_slo": r.meets_slo,
                 "gpu_hours": round(r.gpu_hours, 2), "oracle_ratio": None if (x := r.oracle_ratio(ref)) is None
                 else round(x, 2), "scale_events": r.scale_events}
                for r in runs
            ],
        })  # fmt: skip
    return out


def markdown(data: dict[str, Any]) -> str:
    lines = []
    for w in data["workloads"]:
        if "skipped" in w:
            lines.append(f"**{w['workload']}**: skipped ({w['skipped']})\n")
            continue
        note = f"; oracle: {w['oracle_note']}" if w["oracle_note"] else ""
        lines.append(
            f"**{w['workload']}** ({w['requests']:,} requests, from {w['start_replicas']} replicas{note})\n"
        )
        lines.append("| run | SLO met | GPU-h | ×oracle | scale events |")
        lines.append("|---|---|---|---|---|")
        for r in w["runs"]:
            met = outcomes.percent(r["attainment"]) + ("" if r["meets_slo"] else " ✗")
            ratio = (
                "miss" if not r["meets_slo"] else (f"{r['oracle_ratio']:.2f}" if r["oracle_ratio"] else "—")
            )
            lines.append(f"| {r['policy']} | {met} | {r['gpu_hours']:.3g} | {ratio} | {r['scale_events']} |")
        lines.append("")
    lines.append("| policy | SLO met on | median ×oracle where met | worst attainment |")
    lines.append("|---|---|---|---|")
    for s in data["summary"]:
        ratio = "—" if s["median_ratio"] is None else f"{s['median_ratio']:.2f}"
        lines.append(
            f"| {s['policy']} | {s['met']}/{s['ran']} | {ratio} | {outcomes.percent(s['worst_attainment'])} |"
        )
    lines.append(f"\n(wall {data['wall_s']:.0f} s, CPU {data['cpu_s']:.0f} s)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="workloads, comma-separated (default: the whole suite)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", action="store_true", help="print the tables for docs/benchmarks.md")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    only = [n for n in args.only.split(",") if n]
    started, cpu0 = time.perf_counter(), time.process_time()

    def progress(entry: str, what: str, fraction: float) -> None:
        if fraction == 0.0:
            print(f"{entry}: {what}", file=sys.stderr, flush=True)

    card = scorecard.run(only=only, seed=args.seed, progress=progress)
    data = {
        "seed": args.seed,
        "workloads": rows(card),
        "summary": [s.__dict__ for s in card.standings()],
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu0,
    }
    print(markdown(data) if args.markdown else json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
