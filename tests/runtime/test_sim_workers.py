"""Worker scaling in a whole simulation: a load one worker cannot serve, with and without it."""

from __future__ import annotations

import json

import numpy as np

from swell.clusters.sim import report
from swell.runtime import sim
from swell.workload import arrivals, spec
from tests.clusters.sim.simhelp import classic_recipe

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
