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


def test_replicas_per_minute_are_rounded_up_to_whole_nodes() -> None:
    t = np.concatenate([np.linspace(0, 59, 60), np.linspace(60, 119.9, 600)])  # 1 req/s, then 10 req/s
    pool = recipe.NodePool(shape="x", gpus_per_node=4, max_nodes=9)
    o = oracle.compute(t, 120.0, capacity_rps=3.0, pool=pool, gpus_per_replica=1)
    assert o.replicas.tolist() == [1, 4]
    assert o.gpu_hours == pytest.approx((1 + 1) * 4 * 60 / 3600)  # one 4-GPU node in each minute
    two = oracle.compute(t, 120.0, capacity_rps=3.0, pool=pool, gpus_per_replica=2)
    assert two.gpu_hours == pytest.approx((1 + 2) * 4 * 60 / 3600)  # 2 replicas a node


def test_an_slo_no_replica_can_meet_has_no_oracle() -> None:
    slo = recipe.SLO(e2e_s=0.01)
    assert oracle.capacity("llm", TINY, *SIZES, slo) == 0.0
    o = oracle.compute(np.array([1.0]), 60.0, 0.0, recipe.NodePool(shape="x", gpus_per_node=1), 1)
    assert not o.reachable and math.isnan(o.gpu_hours)
