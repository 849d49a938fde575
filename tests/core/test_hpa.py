"""The HPA policy against the Kubernetes HPA's rules and documented examples.

Inputs apart from expectations; case ids read as specifications.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import pytest

from swell.core import snapshot
from swell.core.policies import hpa, rules, schedule, steps
from tests.conftest import make_recipe, snap


@dataclass(frozen=True)
class Case:
    id: str
    _: KW_ONLY
    current: int
    value: float | None
    want: int
    bound: str
    ready: int | None = None
    starting: int = 0
    auto: dict[str, Any] = field(default_factory=dict)
    history: tuple[tuple[float, int], ...] = ()
    now: float = 1000.0


def down_at_once() -> dict[str, Any]:
    """A behavior that lets a scale-down through at once: no stabilization, 100 % per 15 s."""
    rule = {"stabilization_window_s": 0, "policies": [{"type": "Percent", "value": 100, "period_s": 15}]}
    return {"behavior": {"scale_down": rule}}


CASES = [
    # desired = ceil(ready x value / target), target 100
    Case(
        "scale up: value twice the target doubles the replicas (HPA docs: 200m vs 100m)",
        current=2,
        value=200,
        want=4,
        bound="metrics",
        auto=down_at_once(),
    ),
    Case(
        "scale down: half the target halves the replicas once nothing holds it (HPA docs: 50m vs 100m)",
        current=4,
        value=50,
        want=2,
        bound="metrics",
        auto=down_at_once(),
    ),
    Case("no change: within the 10 % tolerance", current=4, value=109, want=4, bound="tolerance"),
    Case("scale up: just outside the tolerance", current=4, value=111, want=5, bound="metrics"),
    Case(
        "no change: per-direction tolerance (down 0.3) keeps a 25 % drop",
        current=4,
        value=75,
        want=4,
        bound="tolerance",
        auto={"tolerance": {"up": 0.1, "down": 0.3}},
    ),
    Case(
        "scale down: held by the 300 s stabilization window of a fresh controller", current=4, value=50, want=4, bound="stabilization"
    ),
    Case(
        "scale down: to the highest recommendation of the last 300 s",
        current=6,
        value=50,
        want=5,
        bound="stabilization",
        history=((800.0, 5), (900.0, 4)),
    ),
    Case(
        "scale down: recommendations older than 300 s no longer hold it",
        current=6,
        value=50,
        want=3,
        bound="metrics",
        history=((600.0, 6), (650.0, 6)),
    ),
    Case(
        "scale up: limited to +4 pods or +100 % per 15 s, whichever is more (default Max)", current=1, value=1000, want=5, bound="rate"
    ),
    Case(
        "scale up: selectPolicy Min takes the smaller of +4 pods and +100 %",
        current=1,
        value=1000,
        want=2,
        bound="rate",
        auto={
            "behavior": {
                "scale_up": {
                    "stabilization_window_s": 0,
                    "select_policy": "Min",
                    "policies": [
                        {"type": "Pods", "value": 4, "period_s": 15},
                        {"type": "Percent", "value": 100, "period_s": 15},
                    ],
                }
            }
        },
    ),
    Case(
        "scale up: selectPolicy Disabled never scales up",
        current=2,
        value=1000,
        want=2,
        bound="disabled",
        auto={
            "behavior": {
                "scale_up": {
                    "stabilization_window_s": 0,
                    "select_policy": "Disabled",
                    "policies": [{"type": "Pods", "value": 4, "period_s": 15}],
                }
            }
        },
    ),
    Case(
        "scale down: 10 % per 60 s beats 4 pods when there are 80 (HPA docs example)",
        current=80,
        value=10,
        want=72,
        bound="rate",
        auto={
            "max_replicas": 100,
            "behavior": {
                "scale_down": {
                    "stabilization_window_s": 0,
                    "policies": [
                        {"type": "Pods", "value": 4, "period_s": 60},
                        {"type": "Percent", "value": 10, "period_s": 60},
                    ],
                }
            },
        },
    ),
    Case(
        "scale down: 4 pods per 60 s beat 10 % when there are 20 (HPA docs example)",
        current=20,
        value=10,
        want=16,
        bound="rate",
        auto={
            "max_replicas": 100,
            "behavior": {
                "scale_down": {
                    "stabilization_window_s": 0,
                    "policies": [
                        {"type": "Pods", "value": 4, "period_s": 60},
                        {"type": "Percent", "value": 10, "period_s": 60},
                    ],
                }
            },
        },
    ),
    Case("scale up: cut to max_replicas", current=8, value=200, want=10, bound="max"),
    Case(
        "scale down: raised to min_replicas",
        current=4,
        value=1,
        want=2,
        bound="min",
        auto={
            "min_replicas": 2,
            "behavior": {
                "scale_down": {
                    "stabilization_window_s": 0,
                    "policies": [{"type": "Percent", "value": 100, "period_s": 15}],
                }
            },
        },
    ),
    Case("no data: a signal without value holds the count", current=4, value=None, want=4, bound="no_data"),
    Case("count above max: brought to max before metrics are read", current=12, value=100, want=10, bound="max"),
    Case(
        "ready replicas only: 2 ready of 4 at 3x target ask for 6", current=4, value=300, want=6, bound="metrics", ready=2, starting=2
    ),
]


def _run(c: Case) -> tuple[int, str]:
    rec = make_recipe(**c.auto)
    s = snap(c.now, c.current, ready=c.ready, starting=c.starting, latency=c.value)
    state = steps.State(recommendations=c.history)
    d, _ = hpa.decide(rec, s, state)
    return d.desired, d.bound_by


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hpa_rules(case: Case) -> None:
    assert _run(case) == (case.want, case.bound)


def test_target_scaled_to_zero_by_a_person_disables_scaling() -> None:
    d, _ = hpa.decide(make_recipe(), snap(0, 0, latency=500), steps.State())
    assert (d.desired, d.bound_by) == (0, "disabled")


def test_two_signals_take_the_max_and_partial_data_never_scales_down() -> None:
    two = [
        {"name": "a", "kind": "gauge", "metric": "m", "target": 10},
        {"name": "b", "kind": "gauge", "metric": "n", "target": 10},
    ]
    rec = make_recipe(
        signals=two,
        behavior={
            "scale_down": {
                "stabilization_window_s": 0,
                "policies": [{"type": "Percent", "value": 100, "period_s": 15}],
            }
        },
    )
    up, _ = hpa.decide(rec, snap(0, 4, a=20, b=5), steps.State())
    assert up.desired == 8 and {p.signal: p.replicas for p in up.proposals} == {"a": 8, "b": 2}
    held, _ = hpa.decide(rec, snap(0, 4, a=None, b=5), steps.State())
    assert (held.desired, held.bound_by) == (4, "no_data")
    assert "no scale-down on partial data" in held.reason
    grows, _ = hpa.decide(rec, snap(0, 4, a=None, b=20), steps.State())
    assert grows.desired == 8


def test_average_value_target_divides_the_total_by_the_target() -> None:
    rec = make_recipe(
        signals=[
            {
                "name": "q",
                "kind": "gauge",
                "metric": "w",
                "aggregate": "sum",
                "target": 5,
                "target_type": "AverageValue",
            }
        ]
    )
    d, _ = hpa.decide(rec, snap(0, 4, q=33), steps.State())
    assert d.desired == 7  # ceil(33 / 5), whatever the current count
    limited, _ = hpa.decide(rec, snap(0, 2, q=33), steps.State())
    assert (limited.desired, limited.bound_by) == (6, "rate")  # +4 pods per 15 s


def _per_replica(values: dict[str, float | None]) -> snapshot.Reading:
    present = [v for v in values.values() if v is not None]
    return snapshot.Reading(value=sum(present) / len(present), per_replica=values)


def test_per_replica_scale_down_counts_a_missing_replica_at_the_target() -> None:
    rec = make_recipe(
        signals=[{"name": "c", "kind": "gauge", "metric": "m", "target": 10, "per_replica": True}],
        behavior={
            "scale_down": {
                "stabilization_window_s": 0,
                "policies": [{"type": "Percent", "value": 100, "period_s": 15}],
            }
        },
    )
    base = snap(0, 4)
    s = snapshot.Snapshot(
        now=0,
        current=4,
        replicas=base.replicas,
        signals={"c": _per_replica({"r0": 2.0, "r1": 2.0, "r2": 2.0, "r3": None})},
    )
    d, _ = hpa.decide(rec, s, steps.State())
    # without r3 the ratio is 0.2 -> 1 replica; with r3 at the target: (2+2+2+10)/4/10 = 0.4 -> ceil(1.6) = 2
    assert d.desired == 2


def test_per_replica_scale_up_counts_not_ready_replicas_as_zero() -> None:
    rec = make_recipe(
        signals=[{"name": "c", "kind": "gauge", "metric": "m", "target": 10, "per_replica": True}]
    )
    base = snap(0, 4, ready=2, starting=2)
    s = snapshot.Snapshot(
        now=0, current=4, replicas=base.replicas, signals={"c": _per_replica({"r0": 30.0, "r1": 30.0})}
    )
    d, _ = hpa.decide(rec, s, steps.State())
    # ratio 3.0 over 2 ready would ask 6; with the 2 starting at 0: 60/4/10 = 1.5 -> ceil(6) = 6
    assert d.desired == 6
    s2 = snapshot.Snapshot(
        now=0, current=4, replicas=base.replicas, signals={"c": _per_replica({"r0": 12.0, "r1": 12.0})}
    )
    d2, _ = hpa.decide(rec, s2, steps.State())
    # 1.2 alone would scale up; counting the starting ones at 0 it is 0.6 < 1: no change
    assert d2.desired == 4


def test_trajectory_scale_up_then_down_follows_the_hpa_behavior() -> None:
    """Latency 4.5x the target from t=30 to t=135 (ticks every 15 s), then 0.4x; load spreads over replicas."""
    rec = make_recipe()
    state, current, seen = steps.State(), 1, {}
    for t in range(0, 600, 15):
        total = 450.0 if 30 <= t < 150 else 40.0
        d, state = hpa.decide(rec, snap(float(t), current, latency=total / current), state)
        current = d.desired
        seen[t] = (current, d.bound_by)
    # up at once (+4 pods allowed per 15 s), then within tolerance at 90 per replica
    assert seen[15] == (1, "metrics") and seen[30] == (5, "metrics") and seen[45] == (5, "tolerance")
    # the last high recommendation (t=135) holds the count for 300 s, then straight to min (100 %/15 s)
    assert all(seen[t] == (5, "stabilization") for t in range(150, 435, 15))
    assert seen[435] == (1, "metrics")
    assert all(seen[t][0] == 1 for t in range(435, 600, 15))


def test_every_policy_the_recipe_names_exists() -> None:
    import typing

    from swell import recipe
    from swell.core import policies

    assert set(typing.get_args(recipe.PolicyName)) == set(policies.POLICIES)


def test_a_recipe_without_signals_holds_and_says_so() -> None:
    """The reactive rules on a recipe that declares no signal (the planner's fallback for an engine
    it has no model of): a hold that names the cause, not an empty list of missing signals."""
    d = rules.wanted_or_hold(snap(0.0, 2), (), "reactive")
    assert not isinstance(d, int)
    assert (d.desired, d.bound_by, d.reason) == (2, "no_data", "the recipe has no signals: hold")


@pytest.mark.parametrize(
    ("current", "lo", "hi", "says"),
    [
        (1, 5, 9, "1 replica is below the floor of 5"),
        (3, 5, 9, "3 replicas are below the floor of 5"),
        (7, 1, 4, "7 replicas exceed the cap of 4"),
    ],
    ids=["one replica", "replicas below", "replicas above"],
)
def test_a_count_out_of_bounds_is_brought_back_and_said(current: int, lo: int, hi: int, says: str) -> None:
    b = schedule.Bounds(lo=lo, hi=hi, active=(), floor_raised=False, cap_lowered=False)
    d = rules.out_of_bounds(snap(0.0, current), b, "hpa")
    assert d is not None and (d.desired, d.reason) == (min(max(current, lo), hi), says)
