"""How much of its full-batch throughput an LLM replica serves within the SLO (capacity.UTILIZATION).

The planner sizes replicas by `capacity.rps`: UTILIZATION × the full-batch throughput of the engine
model for the request mix. This runs a fixed fleet of N replicas behind the simulated gateway (the
engine model, the real trace's request mix and arrivals, rate-scaled) at shares of the fleet's
full-batch rate and prints JSON: per case and fleet size the modelled full-batch rate, the SLO
attainment at each share, and the largest share that kept 99 % of requests within the
scorecard's SLO (TTFT ≤ 5 s, e2e ≤ 60 s, shed at the recipe's deadline).

    python bench/replica_capacity.py [--shares 0.5,0.6,0.7,0.8,0.9,1.0] [--replicas 1,2,4,8] [--duration 1800]

Needs ../shared/traces (the Azure LLM 2023 conversation trace); ~7 s a fleet size on one core.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np

from swell.control import profile
from swell.core import capacity
from swell.runtime import scorecard, sim
from swell.workload import rescale, spec, traces

CASES = ("azure-conv", "long-context")  # the scorecard's entries: one mix per engine preset


def mix_and_rate(workload: str, duration_s: float) -> tuple[capacity.Mix, float]:
    """The workload's mean request mix and its mean arrival rate over `duration_s`."""
    wl = rescale.rescale(spec.parse(workload))
    ins, outs, n = 0.0, 0.0, 0
    for b in wl.batches(np.random.default_rng(0), duration_s):
        ins, outs, n = ins + float(np.sum(b.input_tokens)), outs + float(np.sum(b.output_tokens)), n + len(b.t)
    return capacity.Mix(input_tokens=ins / n, output_tokens=outs / n), n / duration_s


def run(name: str, shares: list[float], duration_s: float, replicas: int = 1) -> dict[str, object]:
    entry = next(e for e in scorecard.SUITE if e.name == name)
    rec = scorecard.entry_recipe(scorecard.base_recipe(), entry)
    fixed = rec.autoscaling.model_copy(update={"min_replicas": replicas, "max_replicas": replicas})
    rec = rec.model_copy(update={"autoscaling": fixed})
    prof = profile.of(rec)
    assert prof is not None
    mix, rate = mix_and_rate(entry.workload, duration_s)
    full = replicas * capacity.rps(prof, mix, rec.slo.e2e_s, target=1.0)
    opts = dataclasses.replace(sim.DEFAULT_OPTIONS, initial_replicas=replicas)
    points = []
    for share in shares:
        wl = rescale.rescale(spec.parse(f"{entry.workload}:scale={share * full / rate:.5f}"))
        c = sim.compare(rec, wl, ["recipe"], duration_s=duration_s, options=opts, with_oracle=False,
                        with_baselines=False)  # fmt: skip
        att = c.runs[0].summary.attainment
        points.append({"share": share, "rps": round(share * full, 3), "attainment": round(att, 4)})
        print(f"  {name} x{replicas}: {share:.2f} of {full:.2f} req/s -> {att * 100:.1f} %", file=sys.stderr,
              flush=True)  # fmt: skip
    met = [p["share"] for p in points if float(p["attainment"]) >= 0.99]  # type: ignore[arg-type]
    return {
        "case": name,
        "replicas": replicas,
        "preset": rec.service.preset,
        "mix": {"input_tokens": round(mix.input_tokens), "output_tokens": round(mix.output_tokens)},
        "full_batch_rps": round(full, 3),
        "points": points,
        "largest_share_at_99pct": max(met) if met else None,
        "utilization_planned": capacity.UTILIZATION,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shares", default="0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0",
                    help="shares of the full-batch rate to run (comma-separated)")  # fmt: skip
    ap.add_argument("--duration", type=float, default=1800.0, help="simulated seconds per point")
    ap.add_argument("--replicas", default="1", help="fleet sizes behind one gateway (comma-separated)")
    args = ap.parse_args()
    try:
        shares = [float(x) for x in args.shares.split(",")]
    except ValueError:
        ap.error(f"--shares: expected numbers separated by commas, got {args.shares!r}")
    try:
        fleets = [int(x) for x in args.replicas.split(",")]
    except ValueError:
        ap.error(f"--replicas: expected whole numbers separated by commas, got {args.replicas!r}")
    if any(n < 1 or n > 20 for n in fleets):
        ap.error(f"--replicas: each fleet must be 1..20 replicas (the scorecard's max), got {args.replicas!r}")
    if not traces.traces_dir().is_dir():
        print(f"replica_capacity: needs the public trace files in {traces.traces_dir()}", file=sys.stderr)
        return 2
    t0 = time.process_time()
    out = [run(name, shares, args.duration, n) for name in CASES for n in fleets]
    print(json.dumps({"cases": out, "cpu_s": round(time.process_time() - t0, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
