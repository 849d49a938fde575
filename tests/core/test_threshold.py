"""KEDA / Corrino threshold policy: activation, cooldown to zero, fallback, no value is never zero.

Inputs apart from expectations; case ids read as specifications. A row's `before` ticks run
first, on the same recipe, each carrying its state to the next; only the row's own tick is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import pytest

from swell import recipe
from swell.core import decision, snapshot
from swell.core.policies import steps, threshold
from tests.conftest import make_recipe
from tests.core.ticks import Read, Tick, observe


@dataclass(frozen=True)
class Case:
    id: str
    _: KW_ONLY
    now: float
    current: int
    read: Mapping[str, Read]
    want: int
    bound: str
    auto: Mapping[str, Any] = field(default_factory=dict)  # over keda()'s
    start: steps.State = field(default_factory=steps.State)
    before: tuple[Tick, ...] = ()
    reason: tuple[str, ...] = ()  # words the reason must contain
    then: Mapping[str, Any] = field(default_factory=dict)  # fields of the state it returns


def keda(**kw: Any) -> recipe.Recipe:
    """Scale to zero after 60 s, activation over 0.5, fallback to 4 after 3 failed reads; 5 waiting per replica."""
    base: dict[str, Any] = {
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


def slow_fraction(target_type: str) -> dict[str, Any]:
    """Corrino's signal: the fraction of requests slower than 5 s over 5 min, target 0.5."""
    sig = {
        "name": "slow_requests",
        "kind": "histogram_fraction",
        "metric": "vllm:e2e_request_latency_seconds",
        "le": 5.0,
        "window_s": 300,
        "target": 0.5,
        "target_type": target_type,
    }
    return {"min_replicas": 1, "signals": [sig]}


def up_900_percent() -> dict[str, Any]:
    rule = {"stabilization_window_s": 0, "policies": [{"type": "Percent", "value": 900, "period_s": 15}]}
    return {"behavior": {"scale_up": rule}}


def two_signals() -> dict[str, Any]:
    """Two queues q and k, 5 per replica each, without a fallback."""
    sig = {"kind": "gauge", "aggregate": "sum", "target": 5, "target_type": "AverageValue"}
    return {
        "signals": [sig | {"name": "q", "metric": "w"}, sig | {"name": "k", "metric": "v"}],
        "fallback": None,
    }


def schedule_now(**bounds: int) -> dict[str, Any]:
    """A schedule in force at t = 1.8e9 (every minute until New Year) setting these bounds."""
    return {"schedules": [{"start": "* * * * *", "end": "0 0 1 1 *", "timezone": "UTC", **bounds}]}


NO_DOWN_WINDOW = {"behavior": {"scale_down": {"stabilization_window_s": 0}}}
FAILED_READS = tuple(Tick(float(t), 2, {"waiting": None}) for t in range(4))
BELOW_ACTIVATION = Tick(0.0, 0, {"waiting": 0.4})
ACTIVATED = Tick(1.0, 0, {"waiting": 3})
ACTIVE = Tick(0.0, 1, {"waiting": 2})
BUSY_Q = Tick(0.0, 2, {"q": 8, "k": 0})
Q_GONE = tuple(Tick(t, 2, {"q": None, "k": 0}) for t in (15.0, 30.0, 45.0, 60.0, 120.0))

CASES = [
    Case(
        "no data: a missing value long past the cooldown holds the count, never read as zero",
        now=100.0,
        current=3,
        read={"waiting": None},
        want=3,
        bound="no_data",
        start=steps.State(last_active=0.0),
        reason=("no value", "hold"),
    ),
    Case(
        "no data: a second missing value in a row still holds and says so",
        now=115.0,
        current=3,
        read={"waiting": None},
        want=3,
        bound="no_data",
        start=steps.State(last_active=0.0),
        before=(Tick(100.0, 3, {"waiting": None}),),
        reason=("no value", "hold"),
    ),
    Case(
        "fallback: not after one failed read",
        now=0.0,
        current=2,
        read={"waiting": None},
        want=2,
        bound="no_data",
        start=steps.State(last_active=0.0),
    ),
    Case(
        "fallback: not after two failed reads in a row",
        now=1.0,
        current=2,
        read={"waiting": None},
        want=2,
        bound="no_data",
        start=steps.State(last_active=0.0),
        before=FAILED_READS[:1],
    ),
    Case(
        "fallback: to fallback.replicas on the third failed read in a row",
        now=2.0,
        current=2,
        read={"waiting": None},
        want=4,
        bound="fallback",
        start=steps.State(last_active=0.0),
        before=FAILED_READS[:2],
    ),
    Case(
        "fallback: kept while the reads keep failing",
        now=3.0,
        current=2,
        read={"waiting": None},
        want=4,
        bound="fallback",
        start=steps.State(last_active=0.0),
        before=FAILED_READS[:3],
    ),
    Case(
        "fallback: ends on the first good read, which resets the failure count",
        now=5.0,
        current=4,
        read={"waiting": 12},
        want=4,
        bound="stabilization",
        start=steps.State(last_active=0.0),
        before=FAILED_READS,
        then={"failures": 0},
    ),
    Case(
        "fallback static: never to zero nor below a schedule's floor, and recorded for the rate policies",
        now=1_800_000_000.0,
        current=6,
        read={"waiting": None},
        want=5,
        bound="schedule",
        auto={"fallback": {"failure_threshold": 1, "replicas": 2, "behavior": "static"}, **NO_DOWN_WINDOW,
              **schedule_now(min_replicas=5)},
        reason=("fallback (static) asks for 2",),
        then={"down_events": ((1_800_000_000.0, 1),)},
    ),
    Case(
        "fallback default (currentReplicasIfHigher): up to fallback.replicas",
        now=2.0,
        current=2,
        read={"waiting": None},
        want=4,
        bound="fallback",
        start=steps.State(last_active=0.0),
        before=FAILED_READS[:2],
        reason=("currentReplicasIfHigher",),
    ),
    Case(
        "fallback default (currentReplicasIfHigher): never down on missing data",
        now=2.0,
        current=6,
        read={"waiting": None},
        want=6,
        bound="fallback",
        auto=NO_DOWN_WINDOW,
        start=steps.State(last_active=0.0),
        before=FAILED_READS[:2],
    ),
    Case(
        "fallback static: down to fallback.replicas once the scale-down window allows",
        now=2.0,
        current=6,
        read={"waiting": None},
        want=4,
        bound="fallback",
        auto={"fallback": {"failure_threshold": 3, "replicas": 4, "behavior": "static"}, **NO_DOWN_WINDOW},
        start=steps.State(last_active=0.0),
        before=FAILED_READS[:2],
    ),
    Case(
        "fallback static: a scale-down waits out the stabilization window, as KEDA's goes through the HPA",
        now=2.0,
        current=6,
        read={"waiting": None},
        want=6,
        bound="stabilization",
        auto={"fallback": {"failure_threshold": 3, "replicas": 4, "behavior": "static"}},
        start=steps.State(last_active=0.0),
        before=FAILED_READS[:2],
        reason=("fallback (static) asks for 4", "the stabilization window holds 6"),
    ),
    Case(
        "fallback currentReplicas: holds the count",
        now=2.0,
        current=2,
        read={"waiting": None},
        want=2,
        bound="fallback",
        auto={"fallback": {"failure_threshold": 3, "replicas": 4, "behavior": "currentReplicas"}},
        start=steps.State(last_active=0.0),
        before=FAILED_READS[:2],
    ),
    Case(
        "fallback currentReplicasIfLower: down to fallback.replicas from above",
        now=2.0,
        current=6,
        read={"waiting": None},
        want=4,
        bound="fallback",
        auto={"fallback": {"failure_threshold": 3, "replicas": 4, "behavior": "currentReplicasIfLower"},
              **NO_DOWN_WINDOW},
        start=steps.State(last_active=0.0),
        before=FAILED_READS[:2],
    ),
    Case(
        "fallback currentReplicasIfLower: never up from below",
        now=2.0,
        current=2,
        read={"waiting": None},
        want=2,
        bound="fallback",
        auto={"fallback": {"failure_threshold": 3, "replicas": 4, "behavior": "currentReplicasIfLower"}},
        start=steps.State(last_active=0.0),
        before=FAILED_READS[:2],
    ),
    Case(
        "at zero: below the activation threshold stays at zero",
        now=0.0,
        current=0,
        read={"waiting": 0.4},
        want=0,
        bound="cooldown",
    ),
    Case(
        "at zero: over the activation threshold scales from zero to one",
        now=1.0,
        current=0,
        read={"waiting": 3},
        want=1,
        bound="activation",
        before=(BELOW_ACTIVATION,),
    ),
    Case(
        "at zero: a signal's own activation threshold (5) holds where the recipe's (0.5) would not",
        now=0.0,
        current=0,
        read={"waiting": 3},
        want=0,
        bound="cooldown",
        auto={"signals": [{"name": "waiting", "kind": "gauge", "metric": "w", "aggregate": "sum", "target": 5,
                           "target_type": "AverageValue", "activation_threshold": 5}]},
    ),
    Case(
        "at zero: over a signal's own activation threshold scales from zero",
        now=0.0,
        current=0,
        read={"waiting": 6},
        want=1,
        bound="activation",
        auto={"signals": [{"name": "waiting", "kind": "gauge", "metric": "w", "aggregate": "sum", "target": 5,
                           "target_type": "AverageValue", "activation_threshold": 5}]},
    ),
    Case(
        "at zero: no value never activates",
        now=2.0,
        current=0,
        read={"waiting": None},
        want=0,
        bound="no_data",
        before=(BELOW_ACTIVATION, ACTIVATED),
    ),
    Case(
        "cooldown: idle for 30 s of 60 keeps the last replica",
        now=30.0,
        current=1,
        read={"waiting": 0},
        want=1,
        bound="stabilization",
        before=(ACTIVE,),
    ),
    Case(
        "cooldown: idle for 59 s of 60 keeps the last replica",
        now=59.0,
        current=1,
        read={"waiting": 0},
        want=1,
        bound="stabilization",
        before=(ACTIVE, Tick(30.0, 1, {"waiting": 0})),
    ),
    Case(
        "cooldown: idle for the whole 60 s scales to zero",
        now=60.0,
        current=1,
        read={"waiting": 0},
        want=0,
        bound="cooldown",
        before=(ACTIVE, Tick(30.0, 1, {"waiting": 0}), Tick(59.0, 1, {"waiting": 0})),
    ),
    *(
        Case(
            f"cooldown: a busy signal gone missing beside an idle one never scales to zero ({gone.t:g} s on)",
            now=gone.t,
            current=2,
            read=gone.read,
            want=2,
            bound="no_data",
            auto=two_signals(),
            before=(BUSY_Q, *Q_GONE[:i]),
        )
        for i, gone in enumerate(Q_GONE)
    ),
    Case(
        "cooldown: a partial reading of zero long past the cooldown never scales to zero",
        now=100.0,
        current=4,
        read={"waiting": snapshot.Reading(value=0.0, error="r2 unreachable", partial=True)},
        want=4,
        bound="metrics",
        auto={"fallback": None},
        start=steps.State(last_active=0.0),
    ),
    Case(
        "Corrino: a fraction with a Value target can reach max_replicas (ceil(6 x 0.9 / 0.5) = 11, cut to 8)",
        now=0.0,
        current=6,
        read={"slow_requests": 0.9},
        want=8,
        bound="max",
        auto=slow_fraction("Value") | up_900_percent(),
    ),
    Case(
        "Corrino: with KEDA's default AverageValue a fraction asks ceil(1.0 / 0.5) = 2 at most, whatever the load",
        now=0.0,
        current=1,
        read={"slow_requests": 1.0},
        want=2,
        bound="metrics",
        auto=slow_fraction("AverageValue"),
    ),
    Case(
        "schedule: a cap of zero scales straight to zero, past a rate policy of 1 pod per 60 s",
        now=1_800_000_000.0,
        current=5,
        read={"waiting": 40},
        want=0,
        bound="schedule",
        auto={
            "behavior": {
                "scale_down": {
                    "stabilization_window_s": 0,
                    "policies": [{"type": "Pods", "value": 1, "period_s": 60}],
                }
            },
            **schedule_now(max_replicas=0),
        },
    ),
]


def _run(c: Case) -> tuple[decision.Decision, steps.State]:
    rec, state = keda(**c.auto), c.start
    for earlier in c.before:
        _, state = threshold.decide(rec, observe(earlier), state)
    return threshold.decide(rec, observe(Tick(c.now, c.current, c.read)), state)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_threshold_rules(case: Case) -> None:
    d, state = _run(case)
    assert (d.desired, d.bound_by) == (case.want, case.bound)
    assert [w for w in case.reason if w not in d.reason] == [], d.reason
    assert {k: getattr(state, k) for k in case.then} == case.then
