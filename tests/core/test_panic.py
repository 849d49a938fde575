"""Knative KPA panic mode and the swell default policy's use of it."""

from __future__ import annotations

from typing import Any

from swell.core import signals
from swell.core.policies import panic, steps, swell_default
from tests.conftest import make_recipe, snap

CONC = [
    {
        "name": "concurrency",
        "kind": "gauge",
        "metric": "c",
        "aggregate": "sum",
        "target": 10,
        "target_type": "AverageValue",
        "window_s": 60,
    }
]


def kpa(policy: str = "panic", **kw: Any) -> Any:
    return make_recipe(
        policy=policy,
        min_replicas=1,
        max_replicas=50,
        signals=CONC,
        panic={"signal": "concurrency", "stable_window_s": 60, "panic_window_s": 6},
        **kw,
    )


def tick(
    rec: Any, t: float, current: int, stable: float, quick: float, state: steps.State, fn: Any = panic.decide
):
    s = snap(t, current, concurrency=stable, **{})
    s = type(s)(
        now=s.now,
        current=s.current,
        replicas=s.replicas,
        signals={**s.signals, "concurrency" + signals.PANIC_SUFFIX: type(s.signals["concurrency"]).of(quick)},
    )
    return fn(rec, s, state)


def test_panic_window_over_twice_capacity_scales_at_once_and_never_down_while_panicking() -> None:
    rec = kpa()
    d, state = tick(rec, 0.0, 2, stable=20, quick=20, state=steps.State())
    assert (d.desired, d.bound_by) == (2, "metrics")
    d, state = tick(rec, 2.0, 2, stable=25, quick=80, state=state)  # panic asks 8 = 4x the 2 ready
    assert (d.desired, d.bound_by) == (8, "panic")
    d, state = tick(rec, 4.0, 8, stable=30, quick=30, state=state)  # surge over: stable would give 3
    assert (d.desired, d.bound_by) == (8, "panic")
    d, state = tick(rec, 62.0, 8, stable=30, quick=30, state=state)  # exactly one stable window later
    assert d.desired == 8
    d, state = tick(rec, 63.0, 8, stable=30, quick=30, state=state)  # strictly after it (Knative)
    assert (d.desired, d.bound_by) == (4, "metrics")  # scale down limited to ready / 2 per tick


def test_swell_policy_uses_the_panic_window_when_configured() -> None:
    rec = kpa(policy="swell")
    d, state = tick(rec, 0.0, 2, stable=20, quick=20, state=steps.State(), fn=swell_default.decide)
    d, state = tick(rec, 2.0, 2, stable=25, quick=80, state=state, fn=swell_default.decide)
    assert d.desired == 6 and d.bound_by == "rate"  # panic wants 8; +4 pods per 15 s allows 6
    d, state = tick(rec, 20.0, 6, stable=30, quick=30, state=state, fn=swell_default.decide)
    assert d.desired == 8 and d.bound_by == "panic"


def test_a_partial_reading_never_scales_down_in_the_kpa() -> None:
    from swell.core import snapshot

    rec = kpa()
    s = snap(0.0, 6, concurrency=10)
    partial = snapshot.Reading(value=10.0, error="r3 unreachable", partial=True)
    s = type(s)(now=0.0, current=6, replicas=s.replicas, signals={"concurrency": partial})
    d, _ = panic.decide(rec, s, steps.State())
    assert d.desired == 6


def test_while_panicking_the_stable_need_counts_when_it_is_the_larger() -> None:
    rec = kpa()
    d, state = tick(rec, 0.0, 2, stable=20, quick=60, state=steps.State())  # panic: 6 for 2 ready
    assert (d.desired, d.bound_by) == (6, "panic")
    d, state = tick(rec, 2.0, 6, stable=150, quick=60, state=state)  # stable asks 15, panic 6
    assert (d.desired, d.bound_by) == (15, "panic")  # max(stable 15, panic 6, highest so far 6)


def test_swell_does_not_scale_down_a_fleet_that_is_still_starting() -> None:
    from swell.core.policies import swell_default as sd

    rec = make_recipe(
        policy="swell",
        min_replicas=1,
        max_replicas=10,
        signals=[{"name": "kv", "kind": "gauge", "metric": "k", "target": 0.8}],
        behavior={
            "scale_down": {
                "stabilization_window_s": 0,
                "policies": [{"type": "Percent", "value": 100, "period_s": 15}],
            }
        },
    )
    d, _ = sd.decide(rec, snap(0.0, 6, ready=0, starting=6, kv=0.9), steps.State())
    assert d.desired == 6  # the HPA would ask ceil(0.9/0.8 x 0 ready) = 0 -> 1
