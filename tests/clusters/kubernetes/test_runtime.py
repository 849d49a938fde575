"""The Kubernetes runtime on the fake API: scale on signals, status, failover without a burst,
outages, invalid recipes, standby, dry-run, changes by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import aiohttp
import pytest

import swell
from swell import clock as clock_mod
from swell import recipe
from swell.clusters.kubernetes import fake, headroom, pods
from swell.core import load, snapshot
from swell.runtime import kubernetes as rt
from tests.clusters.kubernetes.builders import node, pod, recipe_cr, target


class Signals:
    """A signal source whose values the test sets; None is "no value"."""

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {}

    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: object = None
    ) -> Mapping[str, snapshot.Reading]:
        return {s.name: snapshot.Reading.of(self.values.get(s.name), "prometheus unreachable") for s in sigs}


def setup(api: fake.FakeApi, replicas: int = 1, **auto: object) -> None:
    api.add(recipe_cr(**auto))
    api.add_target(target(), replicas=replicas, selector="app=web")
    for i in range(replicas):
        api.add(pod(f"web-{i}", node="n1", phase="Running", ready=True, gpus=1))
    api.add(node("n1", 8))


def runtime(
    api: fake.FakeApi, sig: Signals, clock: clock_mod.ManualClock, who: str = "a", **opts: object
) -> rt.Runtime:
    opts.setdefault("prometheus_url", "http://127.0.0.1:1")  # the recipes' server: allowed
    opts.setdefault("status_heartbeat_ticks", 1)  # the status every tick (its own tests: test_status_writes)
    o = rt.Options(identity=who, leader_elect=False, port=0, **opts)  # type: ignore[arg-type]
    return rt.Runtime(api, o, clock=clock, sources=lambda spec: sig)


def status(api: fake.FakeApi) -> dict:
    return api.recipes[("default", "web")]["status"]


async def test_scales_up_on_a_signal_and_publishes_the_status(api: fake.FakeApi) -> None:
    setup(api)
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    sig.values["queue"] = 6.0  # AverageValue 2 per replica -> 3
    await runtime(api, sig, clock).step()
    assert api.target_replicas(target()) == 3
    st = status(api)
    assert (st["currentReplicas"], st["desiredReplicas"], st["boundBy"]) == (1, 3, "metrics")
    assert {"name": "queue", "value": 6.0, "target": 2, "proposal": 3}.items() <= st["signals"][0].items()
    assert st["signals"][0]["query"] == "avg(avg_over_time(q[1m]))"
    assert st["signalSummary"] == "queue=6/2"
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "Ready": "True",
        "AbleToScale": "True",
        "ScalingActive": "True",
        "ScalingLimited": "False",
        "MetricsAvailable": "True",
    }
    assert st["lastAppliedReplicas"] == 3 and st["policyState"]["up_events"] == [[1000.0, 2]]
    assert st["replicas"]["ready"] == 1 and st["nodes"]["gpus"] == 8
    assert [e["reason"] for e in api.events] == ["SuccessfulRescale"]


ONE_PER_MINUTE = {
    "scale_up": {"stabilization_window_s": 0, "policies": [{"type": "Pods", "value": 1, "period_s": 60}]}
}


async def test_a_new_leader_carries_on_from_the_status_without_a_burst(api: fake.FakeApi) -> None:
    setup(api, behavior=ONE_PER_MINUTE)
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    sig.values["queue"] = 12.0  # wants 6; the rate policy allows one pod a minute
    await runtime(api, sig, clock, who="a").step()
    assert api.target_replicas(target()) == 2
    clock.advance(10)
    await runtime(api, sig, clock, who="b").step()  # a fresh process: only the CR status to go on
    assert api.target_replicas(target()) == 2  # the minute is not over
    assert status(api)["boundBy"] == "rate"
    clock.advance(50)
    await runtime(api, sig, clock, who="c").step()
    assert api.target_replicas(target()) == 3
    fresh = fake.FakeApi()  # the same takeover without the kept state: a second pod within the minute
    setup(fresh, replicas=2, behavior=ONE_PER_MINUTE)
    await runtime(fresh, sig, clock_mod.ManualClock(1010), who="b").step()
    assert fresh.target_replicas(target()) == 3


async def test_prometheus_outage_holds_and_says_so(api: fake.FakeApi) -> None:
    setup(api, replicas=3)
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    r = runtime(api, sig, clock)
    for _ in range(5):  # no value is never zero: no scale-down, however long
        await r.step()
        clock.advance(1)
    assert api.target_replicas(target()) == 3
    st = status(api)
    cond = {c["type"]: c for c in st["conditions"]}
    assert cond["MetricsAvailable"]["status"] == "False"
    assert "prometheus unreachable" in cond["MetricsAvailable"]["message"]
    assert st["boundBy"] == "no_data" and st["lastDecisions"][0]["count"] == 5
    assert "value" not in st["signals"][0] and st["signals"][0]["error"] == "prometheus unreachable"


async def test_the_fallback_is_honoured_after_failed_reads(api: fake.FakeApi) -> None:
    setup(api, replicas=1, policy="threshold", fallback={"failure_threshold": 3, "replicas": 4})
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    r = runtime(api, sig, clock)
    for _ in range(3):
        await r.step()
        clock.advance(1)
    assert api.target_replicas(target()) == 4 and status(api)["boundBy"] == "fallback"


async def test_an_invalid_recipe_is_reported_in_its_status(api: fake.FakeApi) -> None:
    api.add(recipe_cr(min_replicas=9, max_replicas=2))
    r = runtime(api, Signals(), clock_mod.ManualClock(1000))
    await r.step()
    assert not r.loops
    cond = status(api)["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("ScalingActive", "False", "InvalidRecipe")
    assert "spec.autoscaling.min_replicas" in cond["message"]


async def test_a_standby_does_nothing(api: fake.FakeApi) -> None:
    setup(api)
    api.leases[("default", "swell-controller")] = {
        "metadata": {"name": "swell-controller", "resourceVersion": "1"},
        "spec": {"holderIdentity": "other", "leaseDurationSeconds": 15},
    }
    sig = Signals()
    sig.values["queue"] = 6.0
    o = rt.Options(identity="b", prometheus_url="http://127.0.0.1:1", port=0)
    r = rt.Runtime(api, o, clock=clock_mod.ManualClock(1000), sources=lambda spec: sig)
    await r.elector.try_acquire_or_renew()
    await r.step()
    assert api.target_replicas(target()) == 1 and "status" not in api.recipes[("default", "web")]


async def test_dry_run_decides_and_publishes_but_patches_nothing(api: fake.FakeApi) -> None:
    setup(api, headroom_nodes=1)
    sig = Signals()
    sig.values["queue"] = 6.0
    await runtime(api, sig, clock_mod.ManualClock(1000), dry_run=True).step()
    assert api.target_replicas(target()) == 1
    st = status(api)
    assert st["desiredReplicas"] == 3 and st["dryRun"]
    assert next(c for c in st["conditions"] if c["type"] == "AbleToScale")["reason"] == "DryRun"
    assert not any(n.startswith("swell-headroom") for _, n in api.pods)


async def test_a_count_set_by_hand_is_noticed_and_not_undone_at_once(api: fake.FakeApi) -> None:
    setup(api, replicas=2)
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    sig.values["queue"] = 4.0  # wants 2
    r = runtime(api, sig, clock)
    await r.step()
    api.scales[("default", "Deployment", "web")]["spec"]["replicas"] = 5  # kubectl scale --replicas=5
    clock.advance(1)
    await r.step()
    assert api.target_replicas(target()) == 5  # held for the down-stabilization window
    assert {"from": 2, "to": 5}.items() <= status(api)["lastExternalChange"].items()
    assert [e["reason"] for e in api.events] == ["ExternalRescale"]
    clock.advance(301)
    await r.step()
    assert api.target_replicas(target()) == 2  # then the signals rule again


async def test_headroom_placeholders_follow_the_recipe(api: fake.FakeApi) -> None:
    setup(api, headroom_nodes=1)
    api.priority_classes[headroom.PRIORITY_CLASS] = headroom.priority_class()
    sig = Signals()
    sig.values["queue"] = 2.0
    await runtime(api, sig, clock_mod.ManualClock(1000)).step()
    names = sorted(n for (_, n), p in api.pods.items() if pods.HEADROOM_LABEL in p["metadata"]["labels"])
    assert names == ["swell-headroom-default-web-0", "swell-headroom-default-web-1"]
    assert status(api)["headroom"]["desired"] == 2


@pytest.mark.parametrize("polls", [1.0, 5.0])
async def test_each_recipe_ticks_on_its_own_polling_interval(api: fake.FakeApi, polls: float) -> None:
    setup(api, polling_interval_s=polls)
    clock = clock_mod.ManualClock(1000)
    r = runtime(api, Signals(), clock)
    for _ in range(10):
        await r.step()
        clock.advance(1)
    ticks = sum(1 for op, _ in api.calls if op == "get_scale")
    assert ticks == (10 if polls == 1.0 else 2)


async def test_run_leads_serves_metrics_and_healthz_and_releases_the_lease(api: fake.FakeApi) -> None:
    setup(api)
    sig = Signals()
    sig.values["queue"] = 6.0
    opts = rt.Options(identity="a", prometheus_url="http://127.0.0.1:1", host="127.0.0.1", port=0, retry_period_s=0.05, renew_deadline_s=0.5,
                      lease_duration_s=1, resync_s=0.05)  # fmt: skip
    r = rt.Runtime(api, opts, sources=lambda spec: sig)
    stop = asyncio.Event()
    task = asyncio.create_task(r.run(stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if api.target_replicas(target()) == 3:
            break
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{r.port}/metrics") as resp:
            text = await resp.text()
        async with http.get(f"http://127.0.0.1:{r.port}/healthz") as resp:
            health = (resp.status, await resp.text())
    stop.set()
    await asyncio.wait_for(task, 5)
    assert api.target_replicas(target()) == 3
    assert 'swell_desired_replicas{namespace="default",recipe="web"} 3.0' in text
    assert 'swell_signal_value{namespace="default",recipe="web",signal="queue"} 6.0' in text
    assert 'swell_decisions_total{bound_by="metrics",namespace="default",recipe="web"}' in text
    assert 'swell_leader{identity="a"} 1.0' in text
    assert health == (200, "ok (leader, 1 recipe(s))\n")
    assert api.leases[("default", "swell-controller")]["spec"]["holderIdentity"] == ""  # released


async def test_losing_the_lease_drops_the_workers_and_their_metrics(api: fake.FakeApi) -> None:
    setup(api)
    sig = Signals()
    sig.values["queue"] = 2.0
    r = rt.Runtime(
        api,
        rt.Options(identity="a", prometheus_url="http://127.0.0.1:1", port=0),
        clock=clock_mod.ManualClock(1000),
        sources=lambda s: sig,
    )
    await r.elector.try_acquire_or_renew()
    await r.step()
    assert r.loops and b"swell_desired_replicas{" in r.metrics.exposition()[0]
    r.elector._renewed = -1e9  # the renew deadline passed long ago
    await r.step()
    assert not r.loops and b"swell_desired_replicas{" not in r.metrics.exposition()[0]
    assert b'swell_leader{identity="a"} 0.0' in r.metrics.exposition()[0]


async def test_the_watch_picks_up_added_changed_and_deleted_recipes_without_waiting_for_a_resync(
    api: fake.FakeApi,
) -> None:
    api.add_target(target(), replicas=1, selector="app=web")
    api.add(pod("web-0", node="n1", phase="Running", ready=True, gpus=1))
    api.add(node("n1", 8))
    sig = Signals()
    sig.values["queue"] = 6.0  # wants 3
    opts = rt.Options(identity="a", prometheus_url="http://127.0.0.1:1", port=0, host="127.0.0.1", leader_elect=False, retry_period_s=0.05,
                      resync_s=3600, status_heartbeat_ticks=1)  # fmt: skip  # one listing at start, then only the watch
    r = rt.Runtime(api, opts, sources=lambda spec: sig)
    stop = asyncio.Event()
    task = asyncio.create_task(r.run(stop))

    async def until(what: str, ok: object) -> None:
        for _ in range(200):
            if ok():  # type: ignore[operator]
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    try:
        await until("the first listing", lambda: any(op == "list_recipes" for op, _ in api.calls))
        api.add(recipe_cr())  # after the listing: only the watch can tell
        await until("the new recipe scaled its target", lambda: api.target_replicas(target()) == 3)
        await until(
            "a few status writes", lambda: sum(op == "patch_recipe_status" for op, _ in api.calls) >= 3
        )
        lists = sum(op == "list_recipes" for op, _ in api.calls)
        assert lists == 2  # the start, the added recipe; swell's own status writes are no news
        changed = recipe_cr(max_replicas=2)
        changed["metadata"]["generation"] = 2
        api.add(changed)
        await until("the new spec in force", lambda: r.loops[("default", "web")].spec.generation == 2)
        api.delete_recipe("default", "web")
        await until("the recipe dropped", lambda: not r.loops)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_a_failing_watch_leaves_the_periodic_listing(api: fake.FakeApi) -> None:
    setup(api)
    sig = Signals()
    sig.values["queue"] = 6.0
    api.fail("watch_recipes", 403, 403, 403)
    opts = rt.Options(identity="a", prometheus_url="http://127.0.0.1:1", port=0, host="127.0.0.1", leader_elect=False, retry_period_s=0.05,
                      resync_s=0.1)  # fmt: skip
    r = rt.Runtime(api, opts, sources=lambda spec: sig)
    stop = asyncio.Event()
    task = asyncio.create_task(r.run(stop))
    try:
        for _ in range(200):
            if api.target_replicas(target()) == 3:
                break
            await asyncio.sleep(0.02)
        assert api.target_replicas(target()) == 3
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert not task.exception()


async def test_the_planners_nodes_ahead_become_headroom_placeholders(api: fake.FakeApi) -> None:
    """A known peak of 6 replicas within the lead time, one ready 2-GPU node holding 1 of them:
    the free GPU takes a replica now, and the 2 nodes the other 4 need are asked for as headroom
    (2 placeholders each), not as Pending replicas."""
    cr = recipe_cr(policy="planner")
    cr["spec"]["schedules"] = [{"name": "peak", "start": "0 10 * * *", "end": "0 11 * * *", "min_replicas": 6}]
    api.add(cr)
    api.add_target(target(), replicas=1, selector="app=web")
    api.add(pod("web-0", node="n1", phase="Running", ready=True, gpus=1))
    api.add(node("n1", 2))
    api.priority_classes[headroom.PRIORITY_CLASS] = headroom.priority_class()
    sig = Signals()
    sig.values |= {load.REQUESTS: 0.5, load.WAITING: 0.0}
    clock = clock_mod.ManualClock(10 * 3600.0 - 120.0)
    rt_ = runtime(api, sig, clock)
    await rt_.step()
    assert status(api)["headroom"]["desired"] == 0, "a need not yet held for a minute buys no node"
    clock.advance(60.0)
    await rt_.step()
    st = status(api)
    assert api.target_replicas(target()) == 2, st
    assert st["headroom"]["desired"] == 4
    held = [p for p in api.pods.values() if pods.HEADROOM_LABEL in p["metadata"]["labels"]]
    assert len(held) == 4
    assert "4 more once spare nodes are ready" in st["lastDecisions"][-1]["reason"]


async def test_metrics_carry_the_bounds_the_pause_failed_reads_and_the_version(api: fake.FakeApi) -> None:
    """What kube-state-metrics shows of an HPA (min and max) and KEDA of its scalers (errors), per recipe."""
    setup(api, min_replicas=1, max_replicas=6)
    sig, clock = Signals(), clock_mod.ManualClock(1000)
    r = runtime(api, sig, clock)
    for value in (None, None, 4.0):  # two ticks without a value, then one with
        sig.values["queue"] = value
        await r.step()
        clock.advance(1)
    text = r.metrics.exposition()[0].decode()
    labels = 'namespace="default",recipe="web"'
    assert f"swell_min_replicas{{{labels}}} 1.0" in text and f"swell_max_replicas{{{labels}}} 6.0" in text
    assert f"swell_paused{{{labels}}} 0.0" in text
    assert f'swell_signal_read_errors_total{{{labels},signal="queue"}} 2.0' in text
    assert f'swell_build_info{{version="{swell.__version__}"}} 1.0' in text
