"""The controller at scale on the real control plane: N ScalingRecipes (default 1,000), each on its
own Deployment, ticked every 15 s; reports the controller's CPU seconds per tick (all recipes) and
the API requests per tick that reach the API server, with the watch-fed caches and without.

Starts a private control plane from ../shared/k8s (as tests/e2e_k8s does), creates the objects
with kubectl, and runs swell's Runtime in this process (no leader election, no Prometheus: every
signal reads "no value" and holds, so the cost is swell's own). Prints JSON.
    python bench/k8s_scale.py [--recipes 1000] [--ticks 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


async def measure(kubeconfig: str, ticks: int, watch_cache: bool) -> dict[str, Any]:
    client = await api.KubeApi.connect(kubeconfig)
    served = cache.CachedApi(client)  # counts requests; with the cache off its informers never run
    stop = asyncio.Event()
    informers = asyncio.create_task(served.run(stop)) if watch_cache else None
    if informers is not None:
        await asyncio.wait_for(asyncio.gather(served.pods.synced.wait(), served.nodes.synced.wait()), 120)
    clock = clock_mod.ManualClock(time.time())
    opts = rt.Options(identity="bench", namespace=NS, leader_elect=False, port=0, resync_s=3600)
    r = rt.Runtime(served, opts, clock=clock)  # type: ignore[arg-type]
    await r.step()  # first tick: the listing, the workers, their first status
    cpu, wall, reqs = [], [], []
    for _ in range(ticks):
        clock.advance(15)
        before, t0, c0 = sum(served.requests.values()), time.monotonic(), time.process_time()
        await r.step()
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
        "requests_by_op_total": dict(served.requests),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", type=int, default=1000)
    ap.add_argument("--ticks", type=int, default=3)
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
            out = {"recipes": args.recipes, "create_s": round(created, 1), "runs": []}
            for watch in (True, False):
                out["runs"].append(asyncio.run(measure(cp.kubeconfig, args.ticks, watch)))
        finally:
            env.stop(cp)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
