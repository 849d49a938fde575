"""The controller at scale on the real control plane: N ScalingRecipes (default 1,000), each on its
own Deployment, ticked every 15 s; reports the controller's CPU seconds per tick (all recipes) and
the API requests per tick that reach the API server, with the watch-fed caches and without.

Starts a private control plane from ../shared/k8s (as tests/e2e_k8s does), creates the objects
with kubectl, and runs swell's Runtime in this process (no leader election, no Prometheus: every
signal reads "no value" and holds, so the cost is swell's own). Prints JSON.
    python bench/k8s_scale.py [--recipes 1000] [--ticks 8] [--heartbeat 8] [--resync 3600]
        [--cached-only] [--profile FILE]
--heartbeat: the controller's --status-heartbeat-ticks (a recipe's status is written when it
changes, else every N ticks); --ticks a multiple of it averages over whole heartbeats.
--resync: seconds between listings of every recipe (the controller's --resync, 30 by default;
here an hour, so the ticks alone are measured).
--profile: cProfile of the measured ticks with the caches (pstats file; the top 25 by own time
are printed to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e_k8s import env

from swell import clock as clock_mod
from swell.clusters.kubernetes import api, cache
from swell.runtime import kubernetes as rt

NS = "bench"


def objects(n: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for i in range(n):
        name = f"svc-{i:04d}"
        items.append({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "pause"}]}}},
        })  # fmt: skip
        items.append({
            "apiVersion": "swell.dev/v1alpha1", "kind": "ScalingRecipe", "metadata": {"name": name, "namespace": NS},
            "spec": {"scaleTargetRef": {"name": name}, "resources": {"gpus": 0, "cpu": 0.1, "memory_gib": 0.1},
                     "autoscaling": {"min_replicas": 1, "max_replicas": 4, "polling_interval_s": 15,
                                     "signals": [{"name": "q", "kind": "gauge", "metric": "queue", "target": 2}]}},
        })  # fmt: skip
    return {"apiVersion": "v1", "kind": "List", "items": items}


async def measure(
    kubeconfig: str,
    ticks: int,
    watch_cache: bool,
    heartbeat: int,
    profile: cProfile.Profile | None,
    resync_s: float = 3600,
) -> dict[str, Any]:
    client = await api.KubeApi.connect(kubeconfig)
    # counts requests; with the cache off its informers never run (every read goes to the server)
    served = cache.CachedApi(client, [NS])
    stop = asyncio.Event()
    informers = asyncio.create_task(served.run(stop)) if watch_cache else None
    if informers is not None:
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in served.informers)), 120)
    clock = clock_mod.ManualClock(time.time())
    opts = rt.Options(
        identity="bench",
        namespace=NS,
        leader_elect=False,
        port=0,
        resync_s=resync_s,
        status_heartbeat_ticks=heartbeat,
    )
    r = rt.Runtime(served, opts, clock=clock)
    await r.step()  # first tick: the listing, the workers, their first status
    cpu, wall, reqs = [], [], []
    for _ in range(ticks):
        clock.advance(15)
        before, t0, c0 = sum(served.requests.values()), time.monotonic(), time.process_time()
        if profile is not None:
            profile.enable()
        await r.step()
        if profile is not None:
            profile.disable()
        cpu.append(time.process_time() - c0)
        wall.append(time.monotonic() - t0)
        reqs.append(sum(served.requests.values()) - before)
    stop.set()
    if informers is not None:
        informers.cancel()
        await asyncio.gather(informers, return_exceptions=True)
    await r.close()
    await client.close()
    per_tick = sum(cpu) / ticks
    return {
        "watch_cache": watch_cache,
        "recipe_loops": len(r.loops),
        "cpu_s_per_tick": round(per_tick, 3),
        "core_share_at_15s": round(per_tick / 15, 3),
        "wall_s_per_tick": round(sum(wall) / ticks, 3),
        "api_requests_per_tick": sum(reqs) / ticks,
        "api_requests_by_tick": reqs,
        "requests_by_op_total": dict(served.requests),
        "cache_hits_by_op_total": dict(served.hits),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", type=int, default=1000)
    ap.add_argument("--ticks", type=int, default=8)
    ap.add_argument("--heartbeat", type=int, default=rt.Options(identity="").status_heartbeat_ticks)
    ap.add_argument("--resync", type=float, default=3600.0)
    ap.add_argument("--cached-only", action="store_true", help="skip the run without the caches (slow)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the ticks with the caches into FILE")
    args = ap.parse_args()
    why = env.missing()
    if why:
        sys.exit(f"no control plane: {why}")
    with tempfile.TemporaryDirectory() as tmp:
        cp = env.start(Path(tmp) / "run")
        try:
            root = Path(__file__).resolve().parents[1]
            cp.kubectl("apply", "-f", str(root / "deploy" / "base" / "crd.yaml"))
            env.wait_for(
                "the CRD", lambda: "scalingrecipes" in cp.kubectl("api-resources", "--api-group=swell.dev")
            )
            cp.kubectl("create", "namespace", NS)
            path = Path(tmp) / "objects.json"
            path.write_text(json.dumps(objects(args.recipes)))
            t0 = time.monotonic()
            cp.kubectl("create", "-f", str(path), "-o", "name")
            created = time.monotonic() - t0
            out = {"recipes": args.recipes, "heartbeat_ticks": args.heartbeat, "resync_s": args.resync,
                   "create_s": round(created, 1),
                   "runs": []}  # fmt: skip
            prof = cProfile.Profile() if args.profile else None
            for watch in (True,) if args.cached_only else (True, False):
                run = measure(
                    cp.kubeconfig, args.ticks, watch, args.heartbeat, prof if watch else None, args.resync
                )
                out["runs"].append(asyncio.run(run))
        finally:
            env.stop(cp)
    if prof is not None:
        prof.dump_stats(args.profile)
        pstats.Stats(args.profile, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
