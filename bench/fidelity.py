"""Fidelity: the same short workload through real simulated-llm replicas and through the simulator.

The local cluster (real `python -m swell.servers.simulated_llm` processes, the gateway, the
control loop on the wall clock, load from swell.loadgen over HTTP) and the simulator
(swell.runtime.sim, virtual time) run the same recipe, engine preset and arrivals; this prints,
per latency metric (TTFT and e2e p50/p95), the real value, the simulated one and the relative
error, and both replica-count timelines on a common 1 s grid with their mean absolute difference.

    python bench/fidelity.py [--workload black-friday:...] [--time-scale 0.1] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from swell import recipe
from swell.clusters.sim import cluster as sim_cluster
from swell.clusters.sim import outcomes
from swell.loadgen import options, runner
from swell.runtime import local, sim
from swell.servers import openai_api
from swell.workload import arrivals, patterns, prompts, shapes, spec

WORKLOAD = "black-friday:base=1,surge=6,start=15s,ramp=5s,plateau=35s,decay=3s"
DURATION_S = 90.0
SHORT_WORKLOAD = "black-friday:base=1,surge=6,start=6s,ramp=2s,plateau=14s,decay=2s"
SHORT_DURATION_S = 40.0
SHAPE = shapes.Shape(input_mean=64, input_stddev=16, output_mean=24, output_stddev=6, maximum=256)


def fidelity_recipe(time_scale: float, model_load_s: float, max_replicas: int = 3) -> recipe.Recipe:
    """One recipe for both places: simulated-llm on tiny-cpu slowed down, scaled on running requests."""
    return recipe.Recipe.model_validate(
        {
            "service": {
                "name": "fidelity",
                "engine": "simulated-llm",
                "preset": "tiny-cpu",
                "args": ["--time-scale", f"{time_scale:g}"],
                # local probes every min(0.1 s, period_s) until the first success, the simulator
                # (like a kubelet) every period_s: 0.1 s makes them the same
                "probes": {"readiness": {"period_s": 0.1}},
            },
            "resources": {"gpus": 0, "cpu": 1},
            "autoscaling": {
                "min_replicas": 1,
                "max_replicas": max_replicas,
                "policy": "hpa",
                "polling_interval_s": 1.0,
                "metrics": {"scrape_interval_s": 1.0},
                "signals": [
                    {
                        "name": "running",
                        "kind": "gauge",
                        "metric": "vllm:num_requests_running",
                        "aggregate": "sum",
                        "window_s": 5.0,
                        "target": 3,
                        "target_type": "AverageValue",
                    }
                ],
                "behavior": {
                    "scale_up": {
                        "stabilization_window_s": 0,
                        "policies": [{"type": "Pods", "value": 4, "period_s": 1}],
                    },
                    "scale_down": {
                        "stabilization_window_s": 10,
                        "policies": [{"type": "Pods", "value": 1, "period_s": 5}],
                    },
                },
            },
            "node_pool": {
                "shape": "local",
                "gpus_per_node": max_replicas,
                "min_nodes": 1,
                "max_nodes": 1,
                "provisioning": {
                    "node_boot_s": 0,
                    "kubelet_s": 0,
                    "gpu_driver_s": 0,
                    "image_size_gb": 0,
                    "model_load_s": model_load_s,
                },
            },
            "local": {"port": 0, "cpu_slots": max_replicas, "grace_period_s": 5, "drain_timeout_s": 30},
        }
    )


@dataclasses.dataclass(frozen=True)
class Fixed:
    """Arrivals drawn once, replayed as they are (the loadgen's Workload protocol)."""

    arr: arrivals.Arrivals
    horizon_s: float

    @property
    def description(self) -> str:
        return f"{len(self.arr)} fixed arrivals"

    @property
    def natural_duration_s(self) -> float | None:
        return self.horizon_s

    def batches(self, rng: np.random.Generator, horizon_s: float) -> Iterator[arrivals.Arrivals]:
        yield self.arr[self.arr.t < horizon_s]


def server_input_tokens(arr: arrivals.Arrivals, seed: int) -> arrivals.Arrivals:
    """The prompt lengths the server will count: the loadgen's prompts (same RNG, same order) at
    openai_api's 4 characters a token, so both sides run the same request sizes."""
    rng = np.random.default_rng(seed + 1)  # swell.loadgen.sender.Sender's prompt RNG
    counted = [openai_api.estimate_tokens(prompts.prompt(n, rng)) for n in arr.input_tokens.tolist()]
    return dataclasses.replace(arr, input_tokens=np.asarray(counted, dtype=arr.input_tokens.dtype))


def percentiles(values: np.ndarray) -> dict[str, float | None]:
    v = values[np.isfinite(values)]
    if not len(v):
        return {"p50": None, "p95": None}
    p50, p95 = np.percentile(v, [50, 95])
    return {"p50": float(p50), "p95": float(p95)}


def order_ci(values: np.ndarray, q: float, z: float = 1.96) -> tuple[float, float] | None:
    """A distribution-free ~95 % interval for the q-quantile: the order statistics at the ranks a
    binomial(n, q) count reaches at +-z standard deviations. It says how much of an error is
    sampling (a few requests near the percentile) rather than the model."""
    v = np.sort(values[np.isfinite(values)])
    n = len(v)
    if not n:
        return None
    half = z * math.sqrt(n * q * (1 - q))
    lo, hi = max(0, math.floor(n * q - half) - 1), min(n - 1, math.ceil(n * q + half) - 1)
    return float(v[lo]), float(v[hi])


def step_sample(t: list[float], values: list[int], grid: np.ndarray) -> list[int]:
    """The value last recorded at or before each grid time (the first one before any)."""
    if not t:
        return [0] * len(grid)
    idx = np.searchsorted(np.asarray(t), grid, side="right") - 1
    return [int(values[max(0, i)]) for i in idx]


async def run_local(rec: recipe.Recipe, arr: arrivals.Arrivals, horizon: float, seed: int) -> dict[str, Any]:
    async with local.LocalRuntime(rec, port=0) as rt:
        while not any(r.state == "ready" for r in rt.cluster.manager.replicas()):
            await asyncio.sleep(0.05)
        # The simulator scrapes at t = 0, 1, 2 ... and decides right after; start the load just
        # after a controller tick so the real ticks fall at the same offsets (else a random phase
        # of up to one polling interval shifts every decision).
        last = rt.history.last()
        while rt.history.last() is last:
            await asyncio.sleep(0.005)
        initial_ready = [r for r in rt.cluster.manager.replicas() if r.state == "ready"]
        initial_target = rt.cluster.target
        opts = options.Options(
            url=rt.endpoint,
            protocol="openai-completions",
            model=rec.service.name,
            workload=Fixed(arr, horizon),
            duration_s=horizon,
            timeout_s=120.0,
            seed=seed,
        )
        t0 = time.time()
        cpu0 = time.process_time()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        child0 = usage.ru_utime + usage.ru_stime
        result = await runner.run(opts)
        cpu = time.process_time() - cpu0
        created: dict[str, float] = {}
        starts = []
        ready: set[str] = {r.name for r in initial_ready}
        t, n_ready = [0.0], [len(ready)]
        for e in rt.cluster.manager.events:  # the ready count changes exactly when these happen
            if e.t < t0:
                continue
            if e.kind == "created":
                created[e.replica] = e.t
            elif e.kind == "ready" and e.replica in created:
                starts.append(e.t - created.pop(e.replica))
            if e.kind == "ready":
                ready.add(e.replica)
            elif e.kind in ("unready", "draining", "exited", "stopped"):
                ready.discard(e.replica)
            t.append(e.t - t0)
            n_ready.append(len(ready))
        decisions = [e.decision for e in rt.history if e.decision.t >= t0]
        ticks = [0.0] + [d.t - t0 for d in decisions]
    child = resource.getrusage(resource.RUSAGE_CHILDREN)  # the replicas, stopped and reaped by now
    replicas_cpu = child.ru_utime + child.ru_stime - child0
    recs = result.records
    ok = [r for r in recs if r.ok]
    return {
        "index": np.array([r.index for r in ok], dtype=np.int64),
        "ttft": np.array([r.ttft_s if r.ttft_s is not None else math.nan for r in ok]),
        "e2e": np.array([r.e2e_s for r in ok]),
        "sent": len(recs),
        "failed": sum(1 for r in recs if not r.ok),
        "send_lag_p95_s": float(np.percentile([r.lag_s or 0.0 for r in recs], 95)) if recs else None,
        # sampled right after each tick, as the simulator's rows are (after its decision is applied:
        # a drain starts within milliseconds, a new replica is ready 0.2 s later at the earliest)
        "ready": (ticks, step_sample(t, n_ready, np.asarray(ticks) + 0.1)),
        "desired": (ticks, [initial_target] + [d.desired for d in decisions]),
        "replica_start_s": [round(s, 3) for s in starts],
        "changes": [(round(d.t - t0, 1), d.current, d.desired) for d in decisions if d.desired != d.current],
        "cpu_s": {"runtime_gateway_loadgen": round(cpu, 2), "replicas": round(replicas_cpu, 2)},
    }


def run_sim(rec: recipe.Recipe, arr: arrivals.Arrivals, horizon: float, seed: int) -> dict[str, Any]:
    run = sim.simulate(
        rec, arr, horizon_s=horizon, seed=seed, options=sim_cluster.Options(request_timeout_s=120.0)
    )
    req = run.requests
    served = req.status == outcomes.SERVED
    tl = run.timeline
    changes = [(round(d.t, 1), d.current, d.desired) for d in run.decisions if d.desired != d.current]
    first = max(1, rec.autoscaling.min_replicas)
    return {
        "index": np.flatnonzero(served),
        "ttft": req.ttft[served],
        "e2e": req.e2e[served],
        "sent": len(req.status),
        "failed": int((~served).sum()),
        # rows are taken at each tick after its decision; the warm start holds min_replicas at t = 0
        "ready": ([0.0, *tl.t.tolist()], [first, *tl.ready.tolist()]),
        "desired": ([0.0, *tl.t.tolist()], [first, *tl.desired.tolist()]),
        "changes": changes,
    }


def compare(real: dict[str, Any], simulated: dict[str, Any], horizon: float) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for kind in ("ttft", "e2e"):
        pr, ps = percentiles(real[kind]), percentiles(simulated[kind])
        for q in ("p50", "p95"):
            r, s = pr[q], ps[q]
            err = None if r is None or s is None or r == 0 else (s - r) / r
            ci = order_ci(real[kind], int(q[1:]) / 100)
            metrics[f"{kind}_{q}"] = {
                "real_s": None if r is None else round(r, 4),
                "sim_s": None if s is None else round(s, 4),
                "rel_error": None if err is None else round(err, 4),
                "real_ci95_s": None if ci is None else [round(ci[0], 4), round(ci[1], 4)],
                "sim_within_ci": None if ci is None or s is None else ci[0] <= s <= ci[1],
            }
    # mid-tick: tick k is at t = k in the simulator and k + a few ms on the wall clock
    grid = np.arange(0.5, horizon, 1.0)
    timelines: dict[str, Any] = {"grid_s": [0.5, 1.0]}
    for key in ("ready", "desired"):
        a = step_sample(real[key][0], real[key][1], grid)
        b = step_sample(simulated[key][0], simulated[key][1], grid)
        timelines[key] = {
            "real": a,
            "sim": b,
            "mean_abs_diff": round(float(np.mean(np.abs(np.subtract(a, b)))), 3),
            "peak": {"real": max(a), "sim": max(b)},
            "replica_seconds": {"real": int(sum(a)), "sim": int(sum(b))},
        }
    worst = max(abs(m["rel_error"]) for m in metrics.values() if m["rel_error"] is not None)
    return {
        "metrics": metrics,
        "max_abs_rel_error": round(worst, 4),
        "per_request": paired(real, simulated),
        "timelines": timelines,
    }


def paired(real: dict[str, Any], simulated: dict[str, Any]) -> dict[str, Any]:
    """Request by request (same arrival in both runs): real minus simulated, median and p95 of |.|."""
    both, ri, si = np.intersect1d(real["index"], simulated["index"], return_indices=True)
    out: dict[str, Any] = {"requests": len(both)}
    for kind in ("ttft", "e2e"):
        d = real[kind][ri] - simulated[kind][si]
        d = d[np.isfinite(d)]
        if len(d):
            out[kind] = {
                "median_diff_s": round(float(np.median(d)), 4),
                "p95_abs_diff_s": round(float(np.percentile(np.abs(d), 95)), 4),
            }
    return out


async def measure(a: argparse.Namespace) -> dict[str, Any]:
    workload = spec.parse(a.workload, shape=SHAPE)
    assert isinstance(workload, patterns.OpenLoop)
    horizon = sim.horizon_of(workload, a.duration)
    arr = arrivals.collect(workload, seed=a.seed, horizon_s=horizon)
    rec = fidelity_recipe(a.time_scale, a.model_load)
    started = time.perf_counter()
    real = await run_local(rec, arr, horizon, a.seed)
    local_wall = time.perf_counter() - started
    started = time.perf_counter()
    simulated = run_sim(rec, server_input_tokens(arr, a.seed), horizon, a.seed)
    sim_wall = time.perf_counter() - started
    out = compare(real, simulated, horizon)
    return {
        "workload": a.workload,
        "horizon_s": horizon,
        "requests": len(arr),
        "time_scale": a.time_scale,
        "sim_model_load_s": a.model_load,
        **out,
        "real": {
            k: real[k] for k in ("sent", "failed", "send_lag_p95_s", "replica_start_s", "changes", "cpu_s")
        },
        "sim": {k: simulated[k] for k in ("sent", "failed", "changes")},
        "wall_s": {"local": round(local_wall, 1), "sim": round(sim_wall, 2)},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default=WORKLOAD, help=f"an open-loop pattern (default {WORKLOAD})")
    p.add_argument("--duration", type=float, default=DURATION_S, help="seconds of load")
    p.add_argument("--short", action="store_true", help=f"the 40 s workload the test runs ({SHORT_WORKLOAD})")
    p.add_argument("--time-scale", type=float, default=0.1, help="simulated-llm --time-scale (tiny-cpu)")
    p.add_argument(
        "--model-load", type=float, default=0.2, help="the simulator's model_load_s (process start)"
    )
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.short:
        a.workload, a.duration = SHORT_WORKLOAD, SHORT_DURATION_S
    result = asyncio.run(measure(a))
    print(
        json.dumps(
            {
                "benchmark": "fidelity",
                "command": "python bench/fidelity.py " + " ".join(sys.argv[1:]),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "loadavg": [round(x, 2) for x in os.getloadavg()],
                },
                **result,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
