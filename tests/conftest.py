"""Shared test helpers: build recipes and snapshots tersely."""

from __future__ import annotations

from typing import Any

import pytest

from swell import recipe
from swell.core import snapshot


def make_recipe(**autoscaling: Any) -> recipe.Recipe:
    """An HPA recipe with one latency signal unless `signals` is given; keys override autoscaling."""
    auto: dict[str, Any] = {
        "policy": "hpa",
        "min_replicas": 1,
        "max_replicas": 10,
        "signals": [
            {"name": "latency", "kind": "gauge", "metric": "m", "target": 100, "target_type": "Value"}
        ],
    }
    schedules = autoscaling.pop("schedules", [])
    auto.update(autoscaling)
    return recipe.parse(
        {
            "service": {"name": "svc"},
            "autoscaling": auto,
            "schedules": schedules,
            "node_pool": {"shape": "local", "gpus_per_node": 64},
        }
    )


def snap(
    t: float,
    current: int,
    ready: int | None = None,
    starting: int = 0,
    pending: int = 0,
    **signals: float | None,
) -> snapshot.Snapshot:
    ready = current if ready is None else ready
    reps = [snapshot.Replica(name=f"r{i}", state="ready") for i in range(ready)]
    reps += [snapshot.Replica(name=f"s{i}", state="starting") for i in range(starting)]
    reps += [snapshot.Replica(name=f"p{i}", state="pending") for i in range(pending)]
    return snapshot.Snapshot(
        now=t,
        current=current,
        replicas=tuple(reps),
        signals={k: snapshot.Reading.of(v) for k, v in signals.items()},
    )


@pytest.fixture
def recipe_factory() -> Any:
    return make_recipe
