"""The oracle: one replica's throughput at the SLO, whole nodes per minute, unreachable SLOs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from swell import recipe
from swell.clusters.sim import oracle
from swell.engines import presets

TINY = presets.get("tiny-cpu")
SIZES = (np.array([200]), np.array([200]))


def test_attainment_falls_as_the_rate_rises_and_capacity_sits_at_the_edge() -> None:
    slo = recipe.SLO(ttft_s=2.0, e2e_s=20.0, percentile=95)
    low, high = (oracle.attainment("llm", TINY, r, *SIZES, slo, seed=1) for r in (1.0, 20.0))
    assert low == 1.0 and high < 0.5
    cap = oracle.capacity("llm", TINY, *SIZES, slo, seed=1)
    assert 1.0 < cap < 20.0
    assert oracle.attainment("llm", TINY, cap, *SIZES, slo, seed=1) >= 0.95
    tighter = oracle.capacity("llm", TINY, *SIZES, recipe.SLO(ttft_s=0.5, e2e_s=20.0), seed=1)
    assert tighter < cap


def test_replicas_per_minute_fill_the_whole_nodes_they_are_billed_for() -> None:
    t = np.concatenate([np.linspace(0, 59, 60), np.linspace(60, 119.9, 600)])  # 1 req/s, then 10 req/s
    pool = recipe.NodePool(shape="x", gpus_per_node=4, max_nodes=9)
    o = oracle.compute(t, 120.0, capacity_rps=3.0, pool=pool, gpus_per_replica=1)
    assert o.replicas.tolist() == [4, 4]  # need 1 then 4: one 4-GPU node either way, so it holds 4
    assert o.gpu_hours == pytest.approx((1 + 1) * 4 * 60 / 3600)  # one 4-GPU node in each minute
    two = oracle.compute(t, 120.0, capacity_rps=3.0, pool=pool, gpus_per_replica=2)
    assert two.replicas.tolist() == [2, 4]  # 2 replicas a node
    assert two.gpu_hours == pytest.approx((1 + 2) * 4 * 60 / 3600)


@pytest.mark.parametrize(
    ("case", "kwargs", "expected"),
    [
        ("a smaller factor asks for more replicas", {"factor": 0.5}, [1, 7]),
        ("a larger factor asks for fewer", {"factor": 2.0}, [1, 2]),
        ("min_replicas is a floor", {"min_replicas": 3}, [3, 4]),
        ("max_replicas is a ceiling", {"max_replicas": 2}, [1, 2]),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_schedule_keeps_the_recipe_bounds_and_follows_the_factor(
    case: str, kwargs: dict[str, float], expected: list[int]
) -> None:
    t = np.concatenate([np.linspace(0, 59, 60), np.linspace(60, 119.9, 600)])  # 1 req/s, then 10 req/s
    pool = recipe.NodePool(shape="x", gpus_per_node=1, max_nodes=9)
    o = oracle.compute(t, 120.0, capacity_rps=3.0, pool=pool, gpus_per_replica=1, **kwargs)  # type: ignore[arg-type]
    assert o.replicas.tolist() == expected, case


def test_the_node_pool_bounds_the_schedule() -> None:
    t = np.linspace(0, 59.9, 600)  # 10 req/s
    pool = recipe.NodePool(shape="x", gpus_per_node=2, min_nodes=1, max_nodes=2)
    o = oracle.compute(t, 60.0, capacity_rps=1.0, pool=pool, gpus_per_replica=1)
    assert o.replicas.tolist() == [4]  # 10 wanted, 2 nodes of 2 hold 4
    idle = oracle.compute(np.array([]), 60.0, capacity_rps=1.0, pool=pool, gpus_per_replica=1)
    assert idle.replicas.tolist() == [2]  # no load, but min_nodes 1 is billed anyway: it holds 2
    assert idle.gpu_hours == pytest.approx(2 * 60 / 3600)


def test_an_slo_no_replica_can_meet_has_no_oracle() -> None:
    slo = recipe.SLO(e2e_s=0.01)
    assert oracle.capacity("llm", TINY, *SIZES, slo) == 0.0
    o = oracle.compute(np.array([1.0]), 60.0, 0.0, recipe.NodePool(shape="x", gpus_per_node=1), 1)
    assert not o.reachable and math.isnan(o.gpu_hours)
