"""The status is written when something a reader acts on changed, else every N ticks (the
heartbeat); what it would say is kept in between (decision counts, transition times)."""

from __future__ import annotations

from typing import Any

from swell import clock as clock_mod
from swell.clusters.kubernetes import controller, fake, status
from swell.runtime import kubernetes as rt
from tests.clusters.kubernetes.builders import target
from tests.clusters.kubernetes.test_runtime import Signals, setup


def writes(api: fake.FakeApi) -> int:
    return sum(op == "patch_recipe_status" for op, _ in api.calls)


def runtime(api: fake.FakeApi, sig: Signals, clock: clock_mod.ManualClock, beat: int) -> rt.Runtime:
    o = rt.Options(
        identity="a",
        leader_elect=False,
        port=0,
        prometheus_url="http://127.0.0.1:1",
        status_heartbeat_ticks=beat,
    )
    return rt.Runtime(api, o, clock=clock, sources=lambda spec: sig)


async def ticks(r: rt.Runtime, clock: clock_mod.ManualClock, n: int) -> None:
    for _ in range(n):
        clock.advance(1)
        await r.step()


async def test_a_steady_status_is_not_written_again_until_something_a_reader_acts_on_changes(
    api: fake.FakeApi,
) -> None:
    setup(api, replicas=3)
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    sig.values["queue"] = 6.0  # 3 replicas at 2 each: holds
    r = runtime(api, sig, clock, beat=100)
    await r.step()
    assert writes(api) == 1  # the first tick always writes
    await ticks(r, clock, 5)
    assert writes(api) == 1  # only times and counts changed
    sig.values["queue"] = 6.1  # within 5 %: the written 6.0 still reads true
    await ticks(r, clock, 1)
    assert writes(api) == 1
    sig.values["queue"] = 6.6  # 10 %: written at once (and still 3 replicas)
    await ticks(r, clock, 1)
    assert writes(api) == 2 and api.target_replicas(target()) == 3
    assert api.recipes[("default", "web")]["status"]["signals"][0]["value"] == 6.6
    sig.values["queue"] = None  # the value is lost: MetricsAvailable turns False, written at once
    await ticks(r, clock, 1)
    st = api.recipes[("default", "web")]["status"]
    assert writes(api) == 3 and "value" not in st["signals"][0]
    assert {c["type"]: c["status"] for c in st["conditions"]}["MetricsAvailable"] == "False"


async def test_a_new_desired_count_is_written_in_the_tick_that_decides_it(api: fake.FakeApi) -> None:
    setup(api, replicas=1)
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    sig.values["queue"] = 2.0
    r = runtime(api, sig, clock, beat=100)
    await ticks(r, clock, 3)
    assert writes(api) == 1
    sig.values["queue"] = 6.0  # wants 3
    await ticks(r, clock, 1)
    st = api.recipes[("default", "web")]["status"]
    assert writes(api) == 2 and (st["desiredReplicas"], st["lastAppliedReplicas"]) == (3, 3)


async def test_the_heartbeat_writes_an_unchanged_status_with_the_counts_of_every_tick(
    api: fake.FakeApi,
) -> None:
    setup(api, replicas=3)
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    sig.values["queue"] = 6.0
    r = runtime(api, sig, clock, beat=4)
    await r.step()
    n = 0
    while writes(api) == 1:  # the first heartbeat comes within 4 ticks (spread across recipes)
        await ticks(r, clock, 1)
        n += 1
        assert n <= 4, "no heartbeat within 4 ticks"
    await ticks(r, clock, 3)
    assert writes(api) == 2  # 3 ticks since the heartbeat: not yet
    await ticks(r, clock, 1)
    assert writes(api) == 3  # the 4th
    head = api.recipes[("default", "web")]["status"]["lastDecisions"][0]
    assert head["count"] == 1 + n + 4  # every tick counted, written or not
    assert head["time"] == controller.rfc3339(clock.now())  # the last tick's


async def test_a_failed_write_is_tried_again_the_next_tick(api: fake.FakeApi) -> None:
    setup(api, replicas=3)
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    sig.values["queue"] = 6.0
    r = runtime(api, sig, clock, beat=100)
    api.fail("patch_recipe_status", 500, 500, 500, 500)  # every retry of the first tick
    await r.step()
    assert "status" not in api.recipes[("default", "web")]
    await ticks(r, clock, 1)
    assert api.recipes[("default", "web")]["status"]["currentReplicas"] == 3


def test_what_changed_names_the_field_and_ignores_times_counts_and_messages() -> None:
    def body(
        value: float | None, *, t: str, count: int, message: str, reason: str = "ValidMetricFound"
    ) -> dict[str, Any]:
        sig: dict[str, Any] = {"name": "queue", "target": 2}
        if value is not None:
            sig["value"] = value
        return {
            "currentReplicas": 3,
            "conditions": [
                {
                    "type": "ScalingActive",
                    "status": "True",
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": t,
                }
            ],
            "lastDecisions": [{"time": t, "current": 3, "desired": 3, "boundBy": "metrics", "count": count}],
            "policyState": {"recommendations": [[1.0, 3], [2.0, 3]], "last_active": 5.0},
            "signals": [sig],
            "signalSummary": f"queue={value}/2",
        }

    old = status.shown(body(6.0, t="a", count=1, message="x"))
    same = body(6.2, t="b", count=9, message="y") | {
        "policyState": {"recommendations": [[9.0, 3]], "last_active": 9.0}
    }
    assert status.what_changed(status.shown(same), old) == ""
    assert (
        status.what_changed(status.shown(body(7.0, t="a", count=1, message="x")), old)
        == "signals.queue.value"
    )
    assert status.what_changed(status.shown(body(None, t="a", count=1, message="x")), old) == "signals"
    changed = body(6.0, t="a", count=1, message="x", reason="FailedGetMetrics")
    assert status.what_changed(status.shown(changed), old) == "conditions"
    window = body(6.0, t="a", count=1, message="x") | {
        "policyState": {"recommendations": [[3.0, 2]], "last_active": 5.0}
    }
    assert status.what_changed(status.shown(window), old) == "policyState"
