"""TorchServe under a load step: workers inside one replica vs replicas of one worker.

Runs swell's local runtime (gateway, scraping, the control loop) in this process over real
TorchServe replicas serving the built-in example model (SWELL_TS_ROUNDS SHA-256 rounds of CPU a
request), and sends an open-loop load to the gateway on 127.0.0.1: `--base` req/s, a step to
`--step` req/s for `--step-s` seconds, then `--base` again. Modes:

  workers   one replica; the loop sizes its workers 1..N on the queue (TorchServe's management API)
  replicas  replicas of one worker each, 1..N, scaled by the loop on the gateway's concurrency
  both      replicas 1..N/2, each with workers 1..2

For each: requests, failures, throughput and p50/p99 latency during the step, the CPU seconds of
every TorchServe process (launcher, Java, workers: reaped children of this process, so workers
stopped on the way count too), the resident memory of those processes (sampled every 0.5 s: peak
and mean over the step) and the most workers / replicas seen. Prints JSON.

    python bench/torchserve_workers.py [--modes workers,replicas] [--step 25] [--step-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from swell import recipe
from swell.clusters.local.guard import descendants
from swell.runtime import local

PAGE = os.sysconf("SC_PAGE_SIZE")
CONCURRENCY = "swell_gateway_concurrency_seconds_total"


def build(mode: str, most: int, rounds: int) -> recipe.Recipe:
    per_replica_workers = {"workers": most, "replicas": 1, "both": 2}[mode]
    replicas = {"workers": 1, "replicas": most, "both": max(1, most // 2)}[mode]
    data: dict[str, Any] = {
        "service": {"name": "digest", "engine": "torchserve", "env": {"SWELL_TS_ROUNDS": str(rounds)}},
        "resources": {"cpu": 1, "memory_gib": 2},
        "autoscaling": {
            "min_replicas": 1,
            "max_replicas": replicas,
            "policy": "reactive",  # the rules this was measured with (swell's before the planner)
            "polling_interval_s": 1,
            "metrics": {"scrape_interval_s": 1},
            "signals": [
                {"name": "concurrency", "kind": "rate", "metric": CONCURRENCY, "window_s": 5,
                 "target": 1, "target_type": "AverageValue"},
            ],
            "behavior": {
                "scale_up": {"stabilization_window_s": 0, "policies": [{"type": "Pods", "value": 4, "period_s": 1}]},
                "scale_down": {"stabilization_window_s": 10, "policies": [{"type": "Pods", "value": 1, "period_s": 2}]},
            },
        },
        "local": {"port": 0, "cpu_slots": max(replicas, 1), "grace_period_s": 5, "drain_timeout_s": 10},
    }  # fmt: skip
    if per_replica_workers > 1:
        data["workers"] = {
            "min_workers": 1,
            "max_workers": per_replica_workers,
            "target_queue_per_worker": 1,
            "scale_down_stabilization_s": 10,
        }
    return recipe.parse(data)


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            continue
    return total


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


async def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    rec = build(mode, args.most, args.rounds)
    cpu_before = children_cpu_s()
    failures: list[str] = []  # the first few failed answers, as sent
    load_before = os.getloadavg()[0]
    results: list[tuple[float, float, int, str]] = []  # (sent at, latency s, status, phase)
    samples: list[tuple[float, int, int, int, int]] = []  # (t, rss, workers/replica, ready, target)
    with tempfile.TemporaryDirectory(prefix="swell-bench-ts-") as tmp:
        started = time.monotonic()
        async with local.LocalRuntime(rec, run_dir=Path(tmp)) as rt:
            while not any(r.state == "ready" for r in rt.cluster.manager.replicas()):
                if time.monotonic() - started > 120:
                    raise SystemExit(f"{mode}: no ready replica within 120 s")
                await asyncio.sleep(0.1)
            ready_after = time.monotonic() - started
            stop_sampling = asyncio.Event()

            async def sample() -> None:
                t0 = time.monotonic()
                while not stop_sampling.is_set():
                    ready = sum(1 for r in rt.cluster.manager.replicas() if r.state == "ready")
                    w = rt.controller.state.workers or 1
                    samples.append(
                        (
                            time.monotonic() - t0,
                            rss_bytes(descendants(os.getpid())),
                            w,
                            ready,
                            rt.cluster.target,
                        )
                    )
                    await asyncio.sleep(0.5)

            sampler = asyncio.ensure_future(sample())
            timeout = aiohttp.ClientTimeout(total=60)
            conn = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(timeout=timeout, connector=conn) as s:

                async def one(n: int, phase: str, t0: float) -> None:
                    sent = time.monotonic()
                    try:
                        async with s.post(f"{rt.endpoint}/predictions/digest", data=b"request %d" % n) as r:
                            body = await r.read()
                            code = r.status
                            if code != 200 and len(failures) < 3:
                                failures.append(f"{code} {body[:160].decode(errors='replace')}")
                    except (aiohttp.ClientError, TimeoutError):
                        code = 0
                    results.append((sent - t0, time.monotonic() - sent, code, phase))

                phases = [
                    ("base", args.base, args.base_s),
                    ("step", args.step, args.step_s),
                    ("after", args.base, args.after_s),
                ]
                tasks: list[asyncio.Task[None]] = []
                t0 = time.monotonic()
                n, at = 0, 0.0
                for phase, rate, secs in phases:
                    end = at + secs
                    while at < end:
                        delay = t0 + at - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.append(asyncio.ensure_future(one(n, phase, t0)))
                        n += 1
                        at += 1.0 / rate
                await asyncio.gather(*tasks)
            stop_sampling.set()
            await sampler
        # the runtime has stopped: every TorchServe process has been reaped below this one
        cpu = children_cpu_s() - cpu_before
    step_lat = [lat for _, lat, code, ph in results if ph == "step" and code == 200]
    step_start, step_end = args.base_s, args.base_s + args.step_s
    in_step = [x for x in samples if step_start <= x[0] <= step_end]
    total_ok = sum(1 for r in results if r[2] == 200)
    return {
        "mode": mode,
        "ready_after_s": round(ready_after, 2),
        "requests": len(results),
        "failed": len(results) - total_ok,
        "first_failures": failures,
        "load_avg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "failed_by_status": dict(sorted(Counter(str(r[2]) for r in results if r[2] != 200).items())),
        "step_throughput_rps": round(len(step_lat) / args.step_s, 1),
        "step_p50_ms": round(1000 * (pct(step_lat, 50) or 0), 1),
        "step_p99_ms": round(1000 * (pct(step_lat, 99) or 0), 1),
        "all_p50_ms": round(1000 * (pct([r[1] for r in results if r[2] == 200], 50) or 0), 1),
        "server_cpu_s": round(cpu, 1),
        "server_cpu_ms_per_request": round(1000 * cpu / max(1, total_ok), 2),
        "rss_peak_mb": round(max((x[1] for x in samples), default=0) / 2**20),
        "rss_step_mean_mb": round(statistics.fmean(x[1] for x in in_step) / 2**20) if in_step else None,
        "most_workers_per_replica": max((x[2] for x in samples), default=0),
        "most_ready_replicas": max((x[3] for x in samples), default=0),
        "most_replicas_asked": max((x[4] for x in samples), default=0),
    }


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modes", default="workers,replicas", help="workers, replicas, both (comma-separated)")
    p.add_argument("--most", type=int, default=4, help="the most workers (or replicas) in all")
    p.add_argument(
        "--rounds", type=int, default=30000, help="SHA-256 rounds a request (~10 ms per 30,000 here)"
    )
    p.add_argument("--base", type=float, default=5.0, help="req/s before and after the step")
    p.add_argument("--step", type=float, default=25.0, help="req/s during the step")
    p.add_argument("--base-s", type=float, default=5.0)
    p.add_argument("--step-s", type=float, default=30.0)
    p.add_argument("--after-s", type=float, default=10.0)
    args = p.parse_args()
    out = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load": {"base_rps": args.base, "step_rps": args.step, "step_s": args.step_s, "rounds": args.rounds},
        "runs": [await run_mode(m.strip(), args) for m in args.modes.split(",") if m.strip()],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
