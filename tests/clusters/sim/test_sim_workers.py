"""Workers inside simulated classic-model replicas: the floor, resizes and the worker start time."""

from __future__ import annotations

import numpy as np

from swell.clusters.sim import cluster, events
from swell.core import signals, windows
from swell.workload import arrivals
from tests.clusters.sim.simhelp import classic_recipe, sim_recipe


def make(max_workers: int = 4, start_s: float = 5.0) -> tuple[events.Loop, cluster.Cluster]:
    rec = classic_recipe(max_workers, workers={"worker_start_s": start_s})
    loop = events.Loop(seed=0)
    c = cluster.SimCluster(rec, loop, windows.Store(), signals.required(rec.autoscaling))
    c.start(0.0)
    return loop, c


def test_a_replica_starts_at_min_workers_and_reports_its_queue() -> None:
    loop, c = make()
    n = 10
    c.feed(iter([arrivals.Arrivals(t=np.zeros(n), input_tokens=np.ones(n, dtype=np.int64),
                                   output_tokens=np.ones(n, dtype=np.int64))]))  # fmt: skip
    loop.run(until=0.0)
    obs = c.worker_infos(0.0)
    assert obs is not None and [(o.replica, o.workers, o.queue) for o in obs] == [("replica-1", 1, n)]
    assert c.running_workers() == 1
    loop.run(until=60.0)
    obs = c.worker_infos(60.0)
    assert obs is not None and obs[0].queue == 0


def test_more_workers_run_after_the_start_time_fewer_at_once() -> None:
    loop, c = make(start_s=5.0)
    c.resize_workers(0.0, "replica-1", 3)
    obs = c.worker_infos(0.0)
    assert obs is not None and obs[0].workers == 3  # set: what the next decision compares with
    loop.run(until=4.9)
    assert c.running_workers() == 1
    loop.run(until=5.0)
    assert c.running_workers() == 3
    c.resize_workers(6.0, "replica-1", 2)
    assert c.running_workers() == 2


def test_a_smaller_decision_wins_over_a_start_still_under_way() -> None:
    loop, c = make(start_s=10.0)
    c.resize_workers(0.0, "replica-1", 4)
    c.resize_workers(2.0, "replica-1", 2)
    loop.run(until=11.0)
    assert c.running_workers() == 2
    c.resize_workers(11.0, "replica-1", 3)
    c.resize_workers(12.0, "replica-1", 1)
    loop.run(until=30.0)
    assert c.running_workers() == 1


def test_a_zero_start_time_resizes_at_once() -> None:
    loop, c = make(start_s=0.0)
    c.resize_workers(0.0, "replica-1", 4)
    loop.run(until=0.0)
    assert c.running_workers() == 4


def test_llm_replicas_and_recipes_without_workers_have_no_worker_control() -> None:
    for rec in (
        sim_recipe(workers={"min_workers": 1, "max_workers": 2}),
        classic_recipe().model_copy(update={"workers": None}),
    ):
        loop = events.Loop(seed=0)
        c = cluster.SimCluster(rec, loop, windows.Store(), signals.required(rec.autoscaling))
        c.start(0.0)
        assert c.worker_infos(0.0) is None
