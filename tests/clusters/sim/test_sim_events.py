"""The event loop: order by (time, priority, scheduling order), follow-ups, periodic events, stop."""

from __future__ import annotations

from typing import Any

import pytest

from swell.clusters.sim import events


def test_events_run_by_time_then_priority_then_scheduling_order() -> None:
    loop = events.Loop()
    seen: list[str] = []

    def note(t: float, label: Any) -> None:
        seen.append(f"{label}@{t:g}")

    loop.at(2.0, events.ARRIVAL, note, "b")
    loop.at(1.0, events.CONTROL, note, "late-priority")
    loop.at(1.0, events.NODE, note, "early-priority")
    loop.at(1.0, events.CONTROL, note, "second-scheduled")
    loop.run()
    assert seen == ["early-priority@1", "late-priority@1", "second-scheduled@1", "b@2"]


def test_handlers_return_follow_up_events() -> None:
    loop = events.Loop()
    ticks: list[float] = []

    def bounce(t: float, n: int) -> list[events.Event]:
        ticks.append(t)
        return [events.Event(t + 1.5, events.ENGINE, bounce, n - 1)] if n > 1 else []

    loop.at(0.0, events.ENGINE, bounce, 3)
    assert loop.run() == 3.0
    assert ticks == [0.0, 1.5, 3.0] and loop.processed == 3


def test_every_repeats_until_the_horizon_and_run_moves_time_there() -> None:
    loop = events.Loop()
    at: list[float] = []
    loop.every(0.0, 10.0, events.SCRAPE, at.append)
    assert loop.run(until=35.0) == 35.0
    assert at == [0.0, 10.0, 20.0, 30.0]
    loop.run(until=40.0)
    assert at[-1] == 40.0


def test_stop_returns_after_the_current_event_and_the_past_is_refused() -> None:
    loop = events.Loop()
    loop.every(0.0, 1.0, events.SAMPLE, lambda t: loop.stop() if t >= 5 else None)
    assert loop.run(until=100.0) == 5.0
    with pytest.raises(ValueError, match="in the past"):
        loop.at(1.0, events.NODE, lambda t, d: None)


def test_the_seed_fixes_the_random_stream() -> None:
    a, b, c = events.Loop(seed=7), events.Loop(seed=7), events.Loop(seed=8)
    draws = [[x.rng.random() for _ in range(3)] for x in (a, b, c)]
    assert draws[0] == draws[1] != draws[2]
