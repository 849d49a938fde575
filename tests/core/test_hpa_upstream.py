"""The two cases of the Kubernetes HPA controller's own tests (replica_calculator_test.go) that
swell missed while the pod rules were opt-in: for Utilization metrics they now apply by default."""

from __future__ import annotations

import pytest

from swell.core import snapshot
from swell.core.policies import rules
from tests.conftest import make_recipe

CPU = {"name": "cpu", "kind": "utilization", "resource": "cpu", "target_type": "Utilization"}


def reading(values: dict[str, float | None]) -> snapshot.Reading:
    present = [v for v in values.values() if v is not None]
    return snapshot.Reading(value=sum(present) / len(present), per_replica=values)


@pytest.mark.parametrize(
    ("case", "target", "states", "values", "expected"),
    [
        # TestReplicaCalcMissingMetrics: 4 pods, 2 report (40 %, 9.5 % of a 1-CPU request), target
        # 100 %: the missing two count as at target -> 3 (counting only the reporting ones: 1).
        ("missing pod metrics", 100, ["ready"] * 4, {"p0": 40.0, "p1": 9.5}, 3),
        # TestReplicaCalcScaleUpUnreadyNoScale: the only ready pod at 40 % (133 % of 30 %), two
        # not ready: they count as 0, which would turn the scale-up into a scale-down -> no change
        # (counting only the ready one: 3 -> 2).
        ("unready pods", 30, ["ready", "starting", "starting"], {"p0": 40.0}, 3),
    ],
)
def test_upstream_hpa_cases_with_utilization_metrics(
    case: str, target: float, states: list[str], values: dict[str, float | None], expected: int
) -> None:
    rec = make_recipe(signals=[{**CPU, "target": target}])  # per_replica not set: the default
    sig = rec.autoscaling.signals[0]
    assert not sig.per_replica
    reps = tuple(snapshot.Replica(name=f"p{i}", state=s) for i, s in enumerate(states))  # type: ignore[arg-type]
    snap = snapshot.Snapshot(now=0, current=len(states), replicas=reps, signals={"cpu": reading(values)})
    n, note = rules.replicas_for(sig, snap.reading("cpu"), snap, rec.autoscaling.tolerance)
    assert n == expected, f"{case}: {note}"


def test_a_plain_gauge_without_per_replica_keeps_the_service_wide_rule() -> None:
    rec = make_recipe(signals=[{"name": "q", "kind": "gauge", "metric": "m", "target": 10}])
    reps = tuple(snapshot.Replica(name=f"p{i}", state="ready") for i in range(4))
    snap = snapshot.Snapshot(now=0, current=4, replicas=reps, signals={"q": reading({"p0": 4.0, "p1": 1.0})})
    n, _ = rules.replicas_for(rec.autoscaling.signals[0], snap.reading("q"), snap, rec.autoscaling.tolerance)
    assert n == 1  # ceil(4 ready x 2.5 / 10): the missing-pod rule is not applied
