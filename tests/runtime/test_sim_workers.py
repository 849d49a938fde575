"""Worker scaling in a whole simulation: a load one worker cannot serve, with and without it, and
with the workers a replica's memory holds."""

from __future__ import annotations

import json

import numpy as np

from swell import recipe
from swell.clusters.sim import report
from swell.runtime import sim
from swell.workload import arrivals, spec
from tests.clusters.sim.simhelp import FAST_NODES, classic_recipe, sim_recipe

HORIZON_S = 120.0
LOAD = "constant:rate=150,input=10,output=10"  # ~1.8 workers' worth at 12 ms a request


def test_scaling_workers_serves_a_load_one_worker_cannot_with_better_latency() -> None:
    a = arrivals.collect(spec.parse(LOAD), seed=0, horizon_s=HORIZON_S)
    scaled = sim.simulate(classic_recipe(4), a, horizon_s=HORIZON_S, seed=0)
    single = sim.simulate(classic_recipe(1), a, horizon_s=HORIZON_S, seed=0)

    tl = scaled.timeline
    assert tl.workers is not None and single.timeline.workers is not None
    under_load = tl.t <= HORIZON_S
    assert tl.workers[under_load].max() > 1 and tl.workers[under_load].mean() > 1.0
    assert (single.timeline.workers == 1).all()
    assert max(d.workers[1] for d in scaled.decisions if d.workers is not None) > 1

    s, one = scaled.summary, single.summary
    for q in ("p50", "p95"):
        with_workers, without = s.e2e[q], one.e2e[q]
        assert with_workers is not None and without is not None and with_workers < without
    assert s.attainment > one.attainment

    out = json.loads(json.dumps(scaled.to_json()))
    assert out["timeline"]["workers"] == tl.workers.tolist()
    first = out["decisions"][0]["workers"]
    assert first["current"] == 1 and first["desired"] > 1 and "queue" in first["reason"]
    assert np.array_equal(scaled.requests.arrival, single.requests.arrival)


def test_the_report_shows_the_workers_and_their_decisions() -> None:
    a = arrivals.collect(spec.parse(LOAD), seed=0, horizon_s=60.0)
    run = sim.simulate(classic_recipe(4), a, horizon_s=60.0, seed=0)
    assert "workers 1 → 3: queue" in report.decisions_html(run)
    fig = report.policy_figure(run, a.t, None)
    labels = fig.axes[1].get_legend_handles_labels()[1]
    assert "workers (all replicas)" in labels and fig.axes[1].get_ylabel() == "replicas, workers"


def memory_recipe(memory_gib: float) -> recipe.Recipe:
    """Replicas of 1 GPU on nodes up in about a minute, scaled on the requests waiting at them (20
    each); 1-4 workers of 400 MiB (the prior: the simulator measures no memory) inside each."""
    waiting = {"name": "waiting", "kind": "gauge", "metric": "vllm:num_requests_waiting",
               "aggregate": "avg", "target": 20, "target_type": "AverageValue", "window_s": 30}  # fmt: skip
    return sim_recipe(
        service={"preset": "resnet50-t4"},
        resources={"gpus": 1, "memory_gib": memory_gib},
        node_pool=FAST_NODES,
        autoscaling={"min_replicas": 1, "max_replicas": 4, "polling_interval_s": 5, "signals": [waiting]},
        workers={
            "min_workers": 1,
            "max_workers": 4,
            "target_queue_per_worker": 2,
            "memory_per_worker_mib": 400,
        },
        slo={"ttft_s": 0.5, "e2e_s": 0.5},
    )


def test_past_what_memory_holds_the_loop_adds_replicas_instead_of_workers() -> None:
    # up to 130 req/s: ~1.6 workers' worth at 12 ms a request
    a = arrivals.collect(
        spec.parse("ramp:from=10,to=130,over=120s,hold=180s,input=10,output=10"), seed=1, horizon_s=300
    )
    roomy = sim.simulate(memory_recipe(4.0), a, horizon_s=300, seed=1)  # 4 GiB holds 4 workers
    tight = sim.simulate(memory_recipe(0.5), a, horizon_s=300, seed=1)  # 0.5 GiB holds 1
    per_replica = {
        name: run.timeline.workers / np.maximum(run.timeline.ready, 1)
        for name, run in (("roomy", roomy), ("tight", tight))
    }
    assert per_replica["roomy"].max() > 1, "with room the queue grows the workers"
    assert per_replica["tight"].max() == 1, "0.5 GiB never runs a second 400 MiB worker"
    capped = [d.workers[2] for d in tight.decisions if d.workers is not None]
    assert any("memory 0.5 GiB allows 1 worker at 419 MB each (memory_per_worker_mib)" in r for r in capped)
    assert tight.timeline.ready.mean() >= roomy.timeline.ready.mean() + 1, "replicas instead of workers"
    assert tight.timeline.ready.max() > roomy.timeline.ready.max()
