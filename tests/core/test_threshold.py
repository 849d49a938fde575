"""KEDA / Corrino threshold policy: activation, cooldown to zero, fallback, no value is never zero."""

from __future__ import annotations

from swell.core.policies import steps, threshold
from tests.conftest import make_recipe, snap


def keda(**kw: object) -> object:
    base = {
        "policy": "threshold",
        "min_replicas": 0,
        "max_replicas": 8,
        "cooldown_s": 60,
        "activation_threshold": 0.5,
        "fallback": {"failure_threshold": 3, "replicas": 4},
        "signals": [
            {
                "name": "waiting",
                "kind": "gauge",
                "metric": "w",
                "aggregate": "sum",
                "target": 5,
                "target_type": "AverageValue",
            }
        ],
    }
    base.update(kw)
    return make_recipe(**base)


def test_a_missing_value_is_never_read_as_zero() -> None:
    rec = keda()
    state = steps.State(last_active=0.0)
    for t in (100.0, 115.0):  # long past the cooldown: a zero would scale to 0
        d, state = threshold.decide(rec, snap(t, 3, waiting=None), state)
        assert (d.desired, d.bound_by) == (3, "no_data")
        assert "no value" in d.reason and "hold" in d.reason


def test_fallback_after_three_failed_reads_in_a_row() -> None:
    rec = keda()
    state = steps.State(last_active=0.0)
    got = []
    for t in range(4):
        d, state = threshold.decide(rec, snap(float(t), 2, waiting=None), state)
        got.append((d.desired, d.bound_by))
    assert got == [(2, "no_data"), (2, "no_data"), (4, "fallback"), (4, "fallback")]
    d, state = threshold.decide(rec, snap(5.0, 4, waiting=12), state)
    assert state.failures == 0 and d.bound_by != "fallback"


def test_activation_from_zero_and_staying_at_zero_below_it() -> None:
    rec = keda()
    d, state = threshold.decide(rec, snap(0.0, 0, waiting=0.4), steps.State())
    assert (d.desired, d.bound_by) == (0, "cooldown")
    d, state = threshold.decide(rec, snap(1.0, 0, waiting=3), state)
    assert (d.desired, d.bound_by) == (1, "activation")
    d, _ = threshold.decide(rec, snap(2.0, 0, waiting=None), state)
    assert d.desired == 0  # no value never activates either


def test_to_zero_only_after_the_cooldown() -> None:
    rec = keda()
    state = steps.State()
    d, state = threshold.decide(rec, snap(0.0, 1, waiting=2), state)  # active
    d, state = threshold.decide(rec, snap(30.0, 1, waiting=0), state)
    assert d.desired == 1
    d, state = threshold.decide(rec, snap(59.0, 1, waiting=0), state)
    assert d.desired == 1
    d, state = threshold.decide(rec, snap(60.0, 1, waiting=0), state)
    assert (d.desired, d.bound_by) == (0, "cooldown")


def test_corrino_fraction_with_a_value_target_can_reach_max_replicas() -> None:
    sig = {
        "name": "slow_requests",
        "kind": "histogram_fraction",
        "metric": "vllm:e2e_request_latency_seconds",
        "le": 5.0,
        "window_s": 300,
        "target": 0.5,
        "target_type": "Value",
    }
    rec = keda(
        min_replicas=1,
        signals=[sig],
        behavior={
            "scale_up": {
                "stabilization_window_s": 0,
                "policies": [{"type": "Percent", "value": 900, "period_s": 15}],
            }
        },
    )
    d, _ = threshold.decide(rec, snap(0.0, 6, slow_requests=0.9), steps.State())
    assert d.desired == 8  # ceil(6 x 0.9 / 0.5) = 11, cut to max 8
    avg = keda(min_replicas=1, signals=[sig | {"target_type": "AverageValue"}])
    d, _ = threshold.decide(avg, snap(0.0, 1, slow_requests=1.0), steps.State())
    assert d.desired == 2  # the KEDA default: ceil(1.0 / 0.5) = 2 at most, whatever the load


def _two_signals() -> object:
    return keda(
        signals=[
            {
                "name": "q",
                "kind": "gauge",
                "metric": "w",
                "aggregate": "sum",
                "target": 5,
                "target_type": "AverageValue",
            },
            {
                "name": "k",
                "kind": "gauge",
                "metric": "v",
                "aggregate": "sum",
                "target": 5,
                "target_type": "AverageValue",
            },
        ],
        fallback=None,
    )


def test_a_signal_without_value_never_lets_the_cooldown_scale_to_zero() -> None:
    rec = _two_signals()
    d, state = threshold.decide(rec, snap(0.0, 2, q=8, k=0), steps.State())
    for t in (15.0, 30.0, 45.0, 60.0, 120.0):  # the busy signal went missing, the other is idle
        d, state = threshold.decide(rec, snap(t, 2, q=None, k=0), state)
        assert d.desired == 2 and d.bound_by == "no_data", t


def test_a_partial_reading_never_lets_the_cooldown_scale_to_zero() -> None:
    from swell.core import snapshot

    rec = keda(fallback=None)
    state = steps.State(last_active=0.0)
    base = snap(100.0, 4)
    partial = snapshot.Reading(value=0.0, error="r2 unreachable", partial=True)
    s = snapshot.Snapshot(now=100.0, current=4, replicas=base.replicas, signals={"waiting": partial})
    d, _ = threshold.decide(rec, s, state)
    assert d.desired == 4


def test_fallback_never_goes_to_zero_nor_below_a_schedule_floor() -> None:
    rec = keda(
        fallback={"failure_threshold": 1, "replicas": 2},
        schedules=[{"start": "* * * * *", "end": "0 0 1 1 *", "timezone": "UTC", "min_replicas": 5}],
    )
    d, state = threshold.decide(rec, snap(1_800_000_000.0, 6, waiting=None), steps.State())
    assert (d.desired, d.bound_by) == (5, "fallback")
    assert state.down_events  # the rate policies know about it


def test_a_schedule_cap_of_zero_scales_straight_to_zero() -> None:
    rec = keda(
        behavior={
            "scale_down": {
                "stabilization_window_s": 0,
                "policies": [{"type": "Pods", "value": 1, "period_s": 60}],
            }
        },
        schedules=[{"start": "* * * * *", "end": "0 0 1 1 *", "timezone": "UTC", "max_replicas": 0}],
    )
    d, _ = threshold.decide(rec, snap(1_800_000_000.0, 5, waiting=40), steps.State())
    assert (d.desired, d.bound_by) == (0, "schedule")
