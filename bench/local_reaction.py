"""Reaction time of the local cluster: from a load step to a new replica serving traffic.

For each policy, in one run and on the same engine: start the service with one replica, send a
quiet load, step it up, and time (1) the decision delay, from the step to the first scale-up
decision, (2) the replica start, from that decision to the new replica passing readiness, and
(3) the first request routed to it. Policies: the recipe's own (default: swell's embedded
llama-cpp recipe, gateway concurrency, 1 s polling, panic window) and a hpa-latency-style
HPA (average latency = rate(sum) / rate(count) over 1 m, Value target, 15 s sync, 10 s scrape).
Prints JSON.

    python bench/local_reaction.py [--quiet-rps 0.5] [--step-rps 4] [--before 20] [--after 90]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from swell import recipe
from swell.cli import up
from swell.cli.demo import hpa_latency
from swell.loadgen import options, runner
from swell.runtime import local
from swell.workload import patterns, rates, shapes


async def measure(rec: recipe.Recipe, label: str, a: argparse.Namespace) -> dict[str, Any]:
    shape = shapes.Shape(input_mean=48, input_stddev=16, output_mean=24, output_stddev=8, maximum=128)
    total = a.before + a.after
    schedule = rates.Steps(starts=(0.0, a.before), rates=(a.quiet_rps, a.step_rps), last_s=a.after)
    async with local.LocalRuntime(rec, port=0) as rt:
        while not any(r.state == "ready" for r in rt.cluster.manager.replicas()):
            await asyncio.sleep(0.05)
        opts = options.Options(
            url=rt.endpoint,
            protocol="openai-chat",
            workload=patterns.OpenLoop(schedule=schedule, shape=shape),
            duration_s=total,
            timeout_s=120.0,
            ignore_eos=True,
        )
        stop = asyncio.Event()
        load = asyncio.ensure_future(runner.run(opts, stop=stop))
        t_step = time.time() + a.before
        t_serving: float | None = None
        new: str | None = None
        while not load.done():
            if new is None and time.time() >= t_step:  # the first replica asked for after the step
                new = next((r.name for r in rt.cluster.manager.replicas() if r.created_at >= t_step), None)
            if new is not None and t_serving is None and rt.cluster.gateway.routed.get(new, 0) > 0:
                t_serving = time.time()
                if not a.full:
                    stop.set()
            await asyncio.sleep(0.02)
        result = await load
        changes = [e.decision for e in rt.history if e.decision.desired > e.decision.current]
        ups = [d for d in changes if d.t >= t_step]
        info = next((r for r in rt.cluster.manager.replicas() if r.name == new), None)
        ready_at = info.ready_at if info else None
        decided = ups[0].t if ups else None

        def since(t: float | None, start: float | None, digits: int = 2) -> float | None:
            return None if t is None or start is None else round(t - start, digits)

        return {
            "policy": label,
            "decision_delay_s": since(decided, t_step),
            "replica_start_s": since(ready_at, decided),
            "first_request_after_ready_s": since(t_serving, ready_at, 3),
            "reaction_s": since(t_serving, t_step),
            "first_decision": ups[0].reason if ups else "no scale-up within the run",
            "signal_at_decision": {p.signal: p.value for p in ups[0].proposals} if ups else {},
            "replicas_at_step": ups[0].current if ups else None,
            "scale_ups_before_step": len(changes) - len(ups),
            "polling_interval_s": rec.autoscaling.polling_interval_s,
            "requests": result.summary.sent,
            "failed": result.summary.failed,
        }


async def run(a: argparse.Namespace) -> list[dict[str, Any]]:
    rec = up.load_recipe(Path(a.recipe) if a.recipe else None)
    out = []
    for _ in range(a.repeats):
        out.append(await measure(rec, f"recipe ({rec.autoscaling.policy})", a))
        out.append(await measure(hpa_latency(rec, a.latency_target), "hpa-latency-style", a))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", help="recipe file (default: the embedded llama-cpp recipe)")
    p.add_argument("--quiet-rps", type=float, default=0.5)
    p.add_argument("--step-rps", type=float, default=4.0)
    p.add_argument("--before", type=float, default=20.0, help="seconds of quiet load before the step")
    p.add_argument("--after", type=float, default=90.0, help="at most this many seconds after the step")
    p.add_argument("--latency-target", type=float, default=2.0, help="HPA target average latency, s")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--full", action="store_true", help="keep the load on after the new replica serves")
    a = p.parse_args()
    results = asyncio.run(run(a))
    print(
        json.dumps(
            {
                "benchmark": "local_reaction",
                "command": "python bench/local_reaction.py " + " ".join(sys.argv[1:]),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "load": {"quiet_rps": a.quiet_rps, "step_rps": a.step_rps, "before_s": a.before},
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
