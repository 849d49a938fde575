"""The simulated gateway's deadline (slo.deadline_s) and the client's timeout: what they end, and
that the work they end leaves the replica."""

from __future__ import annotations

import numpy as np
import pytest

from swell.clusters.sim import cluster, events, outcomes
from swell.core import load
from swell.metrics import gateway
from tests.clusters.sim.simhelp import sim_recipe
from tests.clusters.sim.test_sim_cluster import feed, make

ONE = {"min_replicas": 1, "max_replicas": 1, "signals": []}
BURST = [0.01 * i for i in range(400)]  # 400 requests in 4 s at one replica serving ~20 a second


def run(deadline_s: float | None) -> tuple[cluster.SimCluster, outcomes.RequestArrays]:
    rec = sim_recipe(autoscaling=ONE, slo={"ttft_s": 1.0, "e2e_s": 30.0, "deadline_s": deadline_s})
    loop, c, _ = make(rec, sigs=load.signals())  # the planner's reads: the gateway's requests by code
    c.start(0.0)
    feed(c, BURST, inp=200, out=50)
    for t in range(1, 300):
        loop.at(float(t), events.SCRAPE, lambda now, _: c.scrape(now))
    loop.run(until=300.0)
    c.finish(300.0)
    return c, c.requests.arrays()


def test_without_a_deadline_the_burst_queues_and_every_request_is_served_late() -> None:
    _, r = run(None)
    assert (r.status == outcomes.SERVED).all()
    assert np.median(r.ttft) > 5.0  # FIFO: most wait behind the burst, far past the 1 s TTFT SLO


def test_a_deadline_sheds_what_has_no_first_token_and_the_rest_meets_the_slo() -> None:
    c, r = run(1.0)
    shed = r.status == outcomes.SHED
    served = r.status == outcomes.SERVED
    assert shed.sum() > 0 and served.sum() > 0 and (shed | served).all()
    assert (r.ttft[served] <= 1.0 + 1e-9).all()  # what was served was answering by the deadline
    _, fifo = run(None)
    assert r.met(c.rec.slo).sum() > fifo.met(c.rec.slo).sum()  # shedding serves more within the SLO
    summary = outcomes.Summary.of(r, c.rec.slo)
    assert summary.shed == int(shed.sum()) and summary.attainment < 1.0  # a shed request is a miss
    rep = next(iter(c.replicas.values()))
    assert rep.engine is not None and rep.engine.gauges(300.0)[:2] == (0, 0)  # no shed work left behind


def test_shed_requests_are_answered_503s_in_the_gateways_request_counter() -> None:
    """As the local gateway counts them: the planner reads demand from every code."""
    c, r = run(1.0)
    by_code = {
        dict(labels).get("code"): series.newest()[1]  # type: ignore[index]
        for labels, series in c.emitter.store.select(gateway.REQUESTS, {})
    }
    assert by_code == {"200": float((r.status == outcomes.SERVED).sum()),
                       "503": float((r.status == outcomes.SHED).sum())}  # fmt: skip


@pytest.mark.parametrize("deadline_s", [None, 5.0])
def test_a_request_the_client_gave_up_on_leaves_the_replica(deadline_s: float | None) -> None:
    rec = sim_recipe(autoscaling=ONE, slo={"ttft_s": 1.0, "e2e_s": 30.0, "deadline_s": deadline_s})
    loop, c, _ = make(rec, cluster.Options(request_timeout_s=3.0))
    c.start(0.0)
    feed(c, [0.0, 0.0], out=1500)  # generations (~7 s) longer than the client waits
    loop.run(until=4.0)
    assert c.requests.arrays().status.tolist() == [outcomes.TIMED_OUT] * 2
    rep = next(iter(c.replicas.values()))
    assert rep.engine is not None and rep.engine.gauges(4.0)[:2] == (0, 0) and not rep.live
