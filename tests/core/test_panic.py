"""Knative KPA panic mode and the reactive rules (swell's default before the planner), panic window included.

Inputs apart from expectations; case ids read as specifications. A row's `before` ticks run
first, on the same recipe, each carrying its state to the next; only the row's own tick is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import pytest

from swell.core import decision, signals, snapshot
from swell.core.policies import panic, reactive, steps
from tests.conftest import make_recipe
from tests.core.ticks import Read, Tick, observe

DECIDE = {panic.NAME: panic.decide, reactive.NAME: reactive.decide}


@dataclass(frozen=True)
class Case:
    id: str
    _: KW_ONLY
    now: float
    current: int
    read: Mapping[str, Read]
    want: int
    bound: str
    auto: Mapping[str, Any]  # the recipe's autoscaling, its policy included
    ready: int | None = None
    starting: int = 0
    before: tuple[Tick, ...] = ()


def kpa(policy: str = "panic") -> dict[str, Any]:
    """Concurrency 10 per replica, a 60 s stable and a 6 s panic window, 1 to 50 replicas."""
    concurrency = {
        "name": "concurrency",
        "kind": "gauge",
        "metric": "c",
        "aggregate": "sum",
        "target": 10,
        "target_type": "AverageValue",
        "window_s": 60,
    }
    return {
        "policy": policy,
        "min_replicas": 1,
        "max_replicas": 50,
        "signals": [concurrency],
        "panic": {"signal": "concurrency", "stable_window_s": 60, "panic_window_s": 6},
    }


def kv_cache_down_at_once() -> dict[str, Any]:
    """The reactive rules on a KV-cache gauge (target 0.8), 1 to 10 replicas, scale-down neither held nor limited."""
    rule = {"stabilization_window_s": 0, "policies": [{"type": "Percent", "value": 100, "period_s": 15}]}
    return {
        "policy": "reactive",
        "min_replicas": 1,
        "max_replicas": 10,
        "signals": [{"name": "kv", "kind": "gauge", "metric": "k", "target": 0.8}],
        "behavior": {"scale_down": rule},
    }


def windows(stable: float, quick: float) -> dict[str, Read]:
    """Concurrency over the stable window and over the panic window."""
    return {"concurrency": stable, "concurrency" + signals.PANIC_SUFFIX: quick}


CALM = Tick(0.0, 2, windows(stable=20, quick=20))
SURGE = Tick(2.0, 2, windows(stable=25, quick=80))
OVER = Tick(4.0, 8, windows(stable=30, quick=30))
A_WINDOW_LATER = Tick(62.0, 8, windows(stable=30, quick=30))

def delayed(delay_s: float) -> dict[str, Any]:
    """kpa() with Knative's scale-down-delay."""
    auto = kpa()
    return auto | {"panic": auto["panic"] | {"scale_down_delay_s": delay_s}}


BUSY_8 = Tick(0.0, 8, windows(stable=80, quick=80))  # 8 needed by 8 ready: no panic

CASES = [
    Case(
        "scale-down delay: a lower count waits until it has held the delay",
        now=100.0,
        current=8,
        read=windows(stable=30, quick=30),
        want=8,
        bound="stabilization",
        auto=delayed(600),
        before=(BUSY_8,),
    ),
    Case(
        "scale-down delay: once the delay has passed the count goes down (at most halved a tick)",
        now=700.0,
        current=8,
        read=windows(stable=30, quick=30),
        want=4,
        bound="metrics",
        auto=delayed(600),
        before=(BUSY_8,),
    ),
    Case(
        "scale-down delay 0 (Knative's default): down at once",
        now=100.0,
        current=8,
        read=windows(stable=30, quick=30),
        want=4,
        bound="metrics",
        auto=delayed(0),
        before=(BUSY_8,),
    ),
    Case(
        "scale-down delay: a scale-up is never delayed",
        now=100.0,
        current=8,
        read=windows(stable=120, quick=120),
        want=12,
        bound="metrics",
        auto=delayed(600),
        before=(BUSY_8,),
    ),
    Case(
        "stable: 20 in flight at 10 per replica keeps 2",
        now=0.0,
        current=2,
        read=windows(stable=20, quick=20),
        want=2,
        bound="metrics",
        auto=kpa(),
    ),
    Case(
        "panic: a panic window asking 4x the 2 ready scales to its need at once",
        now=2.0,
        current=2,
        read=windows(stable=25, quick=80),
        want=8,
        bound="panic",
        auto=kpa(),
        before=(CALM,),
    ),
    Case(
        "panic: no scale-down while panicking, though the stable window asks for 3",
        now=4.0,
        current=8,
        read=windows(stable=30, quick=30),
        want=8,
        bound="panic",
        auto=kpa(),
        before=(CALM, SURGE),
    ),
    Case(
        "panic: still on exactly one stable window after the last crossing",
        now=62.0,
        current=8,
        read=windows(stable=30, quick=30),
        want=8,
        bound="panic",
        auto=kpa(),
        before=(CALM, SURGE, OVER),
    ),
    Case(
        "panic ends strictly after a stable window (Knative); the scale-down is limited to ready / 2 per tick",
        now=63.0,
        current=8,
        read=windows(stable=30, quick=30),
        want=4,
        bound="metrics",
        auto=kpa(),
        before=(CALM, SURGE, OVER, A_WINDOW_LATER),
    ),
    Case(
        "panic: a panic window asking 3x the 2 ready starts panic mode at 6",
        now=0.0,
        current=2,
        read=windows(stable=20, quick=60),
        want=6,
        bound="panic",
        auto=kpa(),
    ),
    Case(
        "panic: the stable need counts when it is the larger (max of stable 15, panic 6, highest so far 6)",
        now=2.0,
        current=6,
        read=windows(stable=150, quick=60),
        want=15,
        bound="panic",
        auto=kpa(),
        before=(Tick(0.0, 2, windows(stable=20, quick=60)),),
    ),
    Case(
        "partial data: a partial reading never scales the KPA down",
        now=0.0,
        current=6,
        read={"concurrency": snapshot.Reading(value=10.0, error="r3 unreachable", partial=True)},
        want=6,
        bound="metrics",
        auto=kpa(),
    ),
    Case(
        "reactive: a surge in the panic window scales up within the rate policies (panic wants 8, +4 pods per 15 s allow 6)",
        now=2.0,
        current=2,
        read=windows(stable=25, quick=80),
        want=6,
        bound="rate",
        auto=kpa("reactive"),
        before=(CALM,),
    ),
    Case(
        "reactive: still panicking, the rest of the panic need once the rate policies allow it",
        now=20.0,
        current=6,
        read=windows(stable=30, quick=30),
        want=8,
        bound="panic",
        auto=kpa("reactive"),
        before=(CALM, SURGE),
    ),
    Case(
        "reactive: a fleet still starting is not scaled down (the HPA would ask ceil(0.9 / 0.8 x 0 ready) = 0 -> 1)",
        now=0.0,
        current=6,
        read={"kv": 0.9},
        want=6,
        bound="metrics",
        auto=kv_cache_down_at_once(),
        ready=0,
        starting=6,
    ),
]


def _run(c: Case) -> decision.Decision:
    rec, state = make_recipe(**c.auto), steps.State()
    decide = DECIDE[rec.autoscaling.policy]
    for earlier in c.before:
        _, state = decide(rec, observe(earlier), state)
    d, _ = decide(rec, observe(Tick(c.now, c.current, c.read, c.ready, c.starting)), state)
    return d


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_panic_and_reactive_rules(case: Case) -> None:
    d = _run(case)
    assert (d.desired, d.bound_by) == (case.want, case.bound)
