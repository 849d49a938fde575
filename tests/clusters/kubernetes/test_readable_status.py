"""Status people can read: kstatus Ready, the one-line signal summary, Warning events when a
condition turns False, and the pause annotation (decide and report, act on nothing)."""

from __future__ import annotations

from swell import clock as clock_mod
from swell.clusters.kubernetes import fake, headroom
from tests.clusters.kubernetes.builders import recipe_cr, target
from tests.clusters.kubernetes.test_runtime import Signals, runtime, setup, status


def conds(api: fake.FakeApi) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status(api)["conditions"]}


async def test_lost_metrics_are_a_warning_event_once_and_ready_false() -> None:
    api = fake.FakeApi()
    setup(api)
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    r = runtime(api, sig, clock)
    for _ in range(3):  # no value, three ticks
        await r.step()
        clock.advance(1)
    assert conds(api)["Ready"] == ("False", "FailedGetMetrics")
    assert status(api)["signalSummary"] == "queue=-/2"
    warned = [e for e in api.events if e["reason"] == "FailedGetMetrics"]
    assert len(warned) == 1 and warned[0]["type"] == "Warning"


async def test_a_paused_recipe_decides_and_reports_but_acts_on_nothing() -> None:
    api = fake.FakeApi()
    api.priority_classes[headroom.PRIORITY_CLASS] = headroom.priority_class()
    cr = recipe_cr(headroom_nodes=1)
    cr["metadata"]["annotations"] = {"swell.dev/paused": "true"}
    api.add(cr)
    api.add_target(target(), replicas=1, selector="app=web")
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    sig.values["queue"] = 6.0
    r = runtime(api, sig, clock)
    await r.step()
    assert api.target_replicas(target()) == 1 and not api.pods  # no scale, no placeholders
    assert status(api)["desiredReplicas"] == 3  # still decided and shown
    assert conds(api)["AbleToScale"] == ("False", "Paused") and conds(api)["Ready"] == ("False", "Paused")

    del api.recipes[("default", "web")]["metadata"]["annotations"]  # unpaused: same generation
    assert r.changed({"type": "MODIFIED", "object": api.recipes[("default", "web")]})
    r._next_sync = 0.0
    clock.advance(1)
    await r.step()
    assert api.target_replicas(target()) == 3
    assert conds(api)["Ready"] == ("True", "Scaling")
