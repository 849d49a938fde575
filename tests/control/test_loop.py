"""The loop with fake boundaries: ticks, applies only changes, keeps a bounded history, survives errors."""

from __future__ import annotations

import asyncio

import pytest

from swell import clock, errors
from swell.control import fakes, history, loop
from tests.conftest import make_recipe


async def test_ticks_apply_changes_and_log_every_decision() -> None:
    rec = make_recipe(max_replicas=6)
    ctl = loop.Controller(rec)
    cluster = fakes.FakeCluster(current=1)
    source = fakes.FakeSource([{"latency": 50}, {"latency": 300}, {"latency": 100}])
    clk = clock.ManualClock(1000.0)
    got = []
    for _ in range(3):
        d = (await ctl.tick(cluster, source, clk)).decision
        got.append((d.current, d.desired, d.bound_by))
        clk.advance(15)
    assert got == [(1, 1, "metrics"), (1, 3, "metrics"), (3, 3, "tolerance")]
    assert cluster.applied == [3]
    assert [e.decision.desired for e in ctl.history] == [1, 3, 3]
    entry = ctl.history.last()
    assert entry is not None and entry.to_json()["signals"] == {"latency": 100}


async def test_a_failing_source_is_no_value_for_every_signal() -> None:
    class Broken:
        async def read(self, *args: object) -> dict:
            raise errors.MetricsError("connection refused")

    ctl = loop.Controller(make_recipe())
    t = await ctl.tick(fakes.FakeCluster(current=3), Broken(), clock.ManualClock())
    d = t.decision
    assert not t.applied and all(not r.ok for r in t.readings.values())
    assert (d.desired, d.bound_by) == (3, "no_data") and "connection refused" in d.reason


async def test_run_stops_on_the_event_and_counts_bound_by() -> None:
    rec = make_recipe(polling_interval_s=0.01)
    ctl = loop.Controller(rec, history=history.History(maxlen=5))
    stop = asyncio.Event()
    cluster, source = fakes.FakeCluster(current=2), fakes.FakeSource([{"latency": 100}])
    task = asyncio.create_task(ctl.run(cluster, source, clock.SystemClock(), stop))
    while ctl.history.total < 8:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(ctl.history) == 5 and ctl.history.total >= 8
    assert sum(ctl.history.by_bound.values()) == ctl.history.total


def test_history_json_state_roundtrip_for_durable_controllers() -> None:
    from swell.core.policies import steps

    st = steps.State(recommendations=((1.0, 3),), up_events=((2.0, 1),), failures=2, last_active=5.0)
    assert steps.State.from_json(st.to_json()) == st


async def test_a_failed_apply_leaves_no_scale_event_for_the_rate_policies() -> None:
    class Refusing(fakes.FakeCluster):
        async def apply(self, d: object) -> None:
            raise errors.ClusterError("409 conflict")

    ctl = loop.Controller(make_recipe(max_replicas=20))
    cluster = Refusing(current=1)
    with pytest.raises(errors.ClusterError, match="409") as failed:
        await ctl.tick(cluster, fakes.FakeSource([{"latency": 1000}]), clock.ManualClock(100.0))
    assert isinstance(failed.value, loop.ApplyFailed)  # what was decided travels with the error
    assert failed.value.tick.decision.desired == 5 and not failed.value.tick.applied
    assert ctl.state.up_events == ()  # the next tick may still add +4 pods
    t = await ctl.tick(
        fakes.FakeCluster(current=1), fakes.FakeSource([{"latency": 1000}]), clock.ManualClock(101.0)
    )
    assert t.applied
    d = t.decision
    assert d.desired == 5


async def test_an_unexpected_error_in_a_tick_does_not_stop_the_loop() -> None:
    class Flaky:
        calls = 0

        async def read(self, sigs: object, now: float, state: object) -> dict:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise KeyError("bug")
            return {"latency": fakes.snapshot.Reading.of(100.0)}

    ctl = loop.Controller(make_recipe(polling_interval_s=0.01))
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(fakes.FakeCluster(current=2), Flaky(), clock.SystemClock(), stop))
    while ctl.history.total < 2:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert Flaky.calls >= 3
