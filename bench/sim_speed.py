"""Simulator speed: the Azure conversation trace on a 20-replica cluster, and 14 days of ServeGen.

Pinned to one core, each case times the simulation apart from drawing the workload and the
oracle, and prints JSON: wall time, requests per second, events, speed-up over real time.
    python bench/sim_speed.py [--case azure|azure-autoscale|servegen|all] [--servegen-scale 0.001]
                              [--deadline-s 2]
With --deadline-s the recipe sheds requests with no first token by then (`slo.deadline_s`, as the
scorecard's does): one more event per request.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

from swell import recipe
from swell.clusters.sim import oracle
from swell.runtime import sim
from swell.workload import arrivals, spec


def chat_recipe(min_replicas: int, max_replicas: int, deadline_s: float | None = None) -> recipe.Recipe:
    """Llama 3 8B on H100s (one GPU per replica), 8-GPU nodes: a typical chat service."""
    return recipe.parse(
        {
            "service": {"name": "chat", "engine": "simulated-llm", "preset": "llama3-8b-h100"},
            "resources": {"gpus": 1},
            "autoscaling": {
                "min_replicas": min_replicas,
                "max_replicas": max_replicas,
                "signals": [
                    {"name": "running", "kind": "gauge", "metric": "vllm:num_requests_running", "target": 32,
                     "target_type": "AverageValue", "aggregate": "sum"},
                ],
            },
            "node_pool": {"shape": "BM.GPU.H100.8", "max_nodes": 3, "price_per_gpu_hour": 4.0},
            "slo": {"ttft_s": 2.0, "e2e_s": 30.0, "percentile": 95, "deadline_s": deadline_s},
        }
    )  # fmt: skip


def one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to cpu {cpu}"
    return "not pinned (no sched_setaffinity)"


def case(
    name: str, rec: recipe.Recipe, workload: str, policy: str, horizon_s: float | None = None
) -> dict[str, Any]:
    w = spec.parse(workload)
    horizon = sim.horizon_of(w, horizon_s)
    t0 = time.perf_counter()
    arr = arrivals.collect(w, seed=0, horizon_s=horizon)
    t1 = time.perf_counter()
    run = sim.simulate(rec, arr, horizon_s=horizon, policy=policy, seed=0)
    t2 = time.perf_counter()
    oracle.for_workload(rec, sim.slo_of(rec), arr.t, arr.input_tokens, arr.output_tokens, horizon)
    t3 = time.perf_counter()
    sim_s = t2 - t1
    return {
        "case": name,
        "workload": workload,
        "policy": policy,
        "replicas": f"{rec.autoscaling.min_replicas}-{rec.autoscaling.max_replicas}",
        "requests": len(arr),
        "simulated_s": horizon,
        "workload_s": round(t1 - t0, 3),
        "simulate_s": round(sim_s, 3),
        "oracle_s": round(t3 - t2, 3),
        "requests_per_s": round(len(arr) / sim_s),
        "speedup_over_real_time": round(horizon / sim_s),
        "events": run.events,
        "events_per_s": round(run.events / sim_s),
        "metric_samples": run.extra.get("samples"),
        "decisions": len(run.decisions),
        "slo_attainment": round(run.summary.attainment, 4),
        "gpu_hours": round(run.gpu_hours, 2),
        "peak_replicas": int(run.timeline.desired.max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="all", choices=["azure", "azure-autoscale", "servegen", "all"])
    ap.add_argument("--servegen-scale", type=float, default=0.001)
    ap.add_argument("--servegen-days", type=float, default=14.0)
    ap.add_argument("--deadline-s", type=float, default=None, help="shed at this deadline (slo.deadline_s)")
    args = ap.parse_args()
    dl = args.deadline_s
    pinned = one_core()
    out: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(), "cpu": pinned,
                           "deadline_s": dl}  # fmt: skip
    results = []
    if args.case in ("azure", "all"):
        results.append(case("azure-conv, 20 replicas", chat_recipe(20, 20, dl), "azure-conv", "recipe"))
    if args.case in ("azure-autoscale", "all"):
        results.append(case("azure-conv, reactive 1-20", chat_recipe(1, 20, dl), "azure-conv", "reactive"))
    if args.case in ("servegen", "all"):
        days = args.servegen_days
        results.append(
            case(
                f"servegen m-small, {days:g} days, rate x{args.servegen_scale:g}, reactive 1-20",
                chat_recipe(1, 20, dl),
                f"servegen:m-small,scale={args.servegen_scale:g}",
                "reactive",
                horizon_s=days * 86400.0,
            )
        )
    out["results"] = results
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
