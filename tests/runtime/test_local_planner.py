"""The planner on the local cluster: real simulated-llm replica processes, the gateway and the
embedded metrics, through a load step and back. Locally the lead time is a replica's start and
the nodes are the machine's slots, so the plan is replicas only (no spare nodes); the recent peak
is kept per minute, held 2 H once its minute has passed, then halves every 10 s, so the way down
takes about a minute of wall time."""

from __future__ import annotations

import asyncio
import time

import pytest

from swell import recipe
from swell.control import profile
from swell.core import capacity
from swell.loadgen import options, runner
from swell.runtime import local
from swell.workload import patterns, rates, shapes
from tests.clusters.local import helpers
from tests.clusters.local.helpers import no_replica_left  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SHAPE = shapes.Shape(input_mean=64, input_stddev=0, output_mean=32, output_stddev=0)


def planner_recipe() -> recipe.Recipe:
    return recipe.parse(
        {
            "service": {"name": "chat", "engine": "simulated-llm", "preset": "tiny-cpu"},
            "resources": {"gpus": 0, "cpu": 0.25},
            "autoscaling": {
                "policy": "planner",
                "min_replicas": 1,
                "max_replicas": 3,
                "polling_interval_s": 1,
                "metrics": {"scrape_interval_s": 0.5},
                "signals": [
                    {
                        "name": "waiting",
                        "kind": "gauge",
                        "metric": "vllm:num_requests_waiting",
                        "aggregate": "sum",
                        "target": 4,
                        "target_type": "AverageValue",
                        "window_s": 5,
                    }
                ],
            },
            "slo": {"ttft_s": 2.0, "e2e_s": 10.0},
            # the prior for a replica's start here (learned from the replicas that start)
            "node_pool": {"provisioning": {"model_load_s": 2}},
            "local": {"port": 0, "cpu_slots": 4, "grace_period_s": 5},
        }
    )


async def test_the_planner_scales_real_replicas_through_a_load_step_and_back() -> None:
    rec = planner_recipe()
    prof = profile.of(rec)
    assert prof is not None, "the engine has a capacity model for the planner"
    per = capacity.rps(prof, capacity.Mix(input_tokens=64, output_tokens=32), rec.slo.e2e_s)
    # a fifth of one replica, then 1.5 replicas' worth for 30 s, then a fifth again
    step = rates.Steps(starts=(0.0, 10.0, 40.0), rates=(0.2 * per, 1.5 * per, 0.2 * per), last_s=600.0)
    async with local.LocalRuntime(rec, port=0) as rt:
        await helpers.wait_until(
            lambda: any(r.state == "ready" for r in rt.cluster.manager.replicas()), "a replica"
        )
        stop = asyncio.Event()
        o = options.Options(url=rt.endpoint, protocol="openai-completions", model=rec.service.name, seed=1,
                            workload=patterns.OpenLoop(schedule=step, shape=SHAPE), duration_s=600.0,
                            timeout_s=60.0)  # fmt: skip
        load = asyncio.ensure_future(runner.run(o, stop=stop))
        began = time.monotonic()
        # up during the step: a scale-up in the first seconds, on the prior mix of 1,000/250 tokens
        # before the first answers tell 64/32, is not the step's, and the load must reach the step
        await helpers.wait_until(lambda: time.monotonic() - began >= 10.0 and rt.cluster.target >= 2,
                                 "the step's scale-up", timeout_s=40)  # fmt: skip
        # back to one once the held peak has decayed (about a minute), the light load still running
        await helpers.wait_until(lambda: rt.cluster.target == 1, "the way back to one", timeout_s=240)
        await helpers.wait_until(lambda: len(rt.cluster.manager.replicas()) == 1, "the drained replica gone")
        stop.set()
        result = await load
    ds = [e.decision for e in rt.history]
    assert all(d.policy == "swell" for d in ds)
    up = next(d for d in ds if d.desired > d.current)
    assert "forecast" in up.reason and "req/s per replica" in up.reason
    assert up.details["capacity_rps"] > 0 and up.details["nodes_planned"] == 0
    assert "replica start" in up.reason, "the lead time here is a replica's start, no node"
    down = [d for d in ds if d.desired < d.current]
    assert down and all(d.spare_nodes is None for d in ds), "locally there are no spare nodes"
    assert result.summary.sent > 50 and result.summary.failed == 0, result.summary
