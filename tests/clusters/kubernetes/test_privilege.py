"""Least privilege in the runtime: placeholders only in swell's own namespace (and removed when
their recipe goes), recipes read only in the namespaces watched."""

from __future__ import annotations

import aiohttp

from swell import clock as clock_mod
from swell.clusters.kubernetes import fake, headroom, pods
from swell.runtime import kubernetes as rt
from tests.clusters.kubernetes.builders import node, pod, recipe_cr, target
from tests.clusters.kubernetes.test_runtime import Signals


def runtime(api: fake.FakeApi, **opts: object) -> rt.Runtime:
    o = rt.Options(identity="a", leader_elect=False, port=0, prometheus_url="http://127.0.0.1:1", **opts)  # type: ignore[arg-type]
    return rt.Runtime(api, o, clock=clock_mod.ManualClock(1000), sources=lambda spec: Signals())


async def test_placeholders_live_in_swells_namespace_and_go_with_their_recipe() -> None:
    api = fake.FakeApi()
    api.priority_classes[headroom.PRIORITY_CLASS] = headroom.priority_class()
    api.add(recipe_cr(namespace="team-a", headroom_nodes=1))
    api.add_target(target(namespace="team-a"), replicas=1, selector="app=web")
    api.add(pod("web-0", namespace="team-a", node="n1", phase="Running", ready=True, gpus=1))
    api.add(node("n1", 8))
    r = runtime(api, headroom_namespace="swell-system")
    await r.step()
    made = sorted(api.pods)
    assert [k for k in made if "headroom" in k[1]] == [
        ("swell-system", "swell-headroom-team-a-web-0"),
        ("swell-system", "swell-headroom-team-a-web-1"),
    ]
    p = api.pods[("swell-system", "swell-headroom-team-a-web-0")]
    assert "ownerReferences" not in p["metadata"]  # an owner in another namespace would have it deleted
    assert p["metadata"]["labels"][pods.HEADROOM_NS_LABEL] == "team-a"
    assert api.recipes[("team-a", "web")]["status"]["headroom"]["desired"] == 2
    creates = [args[0] for op, args in api.calls if op == "create_pod"]
    assert creates == ["swell-system", "swell-system"]

    del api.recipes[("team-a", "web")]
    r._next_sync = 0.0
    await r.step()
    assert not [k for k in api.pods if "headroom" in k[1]]


async def test_only_the_namespaces_watched_are_listed() -> None:
    api = fake.FakeApi()
    api.add(recipe_cr(namespace="a"))
    api.add(recipe_cr(namespace="b"))
    api.add(recipe_cr(namespace="c"))
    r = runtime(api, namespace="a,b")
    await r.sync()
    assert sorted(r.loops) == [("a", "web"), ("b", "web")]
    assert [args[0] for op, args in api.calls if op == "list_recipes"] == ["a", "b"]


async def test_metrics_over_https_only_for_tokens_allowed_to_get_them() -> None:
    api = fake.FakeApi()
    api.tokens = {
        "reader": {"username": "system:serviceaccount:monitoring:prometheus"},
        "nobody": {"username": "eve"},
    }
    api.allowed_urls = {("system:serviceaccount:monitoring:prometheus", "/metrics")}
    opts = rt.Options(identity="a", port=0, leader_elect=False, metrics_secure=True, retry_period_s=0.05)
    r = rt.Runtime(api, opts, clock=clock_mod.ManualClock(1000), sources=lambda spec: Signals())
    runner = await r._serve()
    got = {}
    try:
        async with aiohttp.ClientSession() as http:
            for who in ("", "Bearer unknown", "Bearer nobody", "Bearer reader", "Bearer reader"):
                async with http.get(
                    f"https://127.0.0.1:{r.port}/metrics",
                    headers={"Authorization": who} if who else {},
                    ssl=False,
                ) as resp:
                    got[who] = (resp.status, await resp.text())
            async with http.get(f"https://127.0.0.1:{r.port}/healthz", ssl=False) as resp:
                health = resp.status
    finally:
        await runner.cleanup()
    assert {k: v[0] for k, v in got.items()} == {
        "": 401,
        "Bearer unknown": 401,
        "Bearer nobody": 403,
        "Bearer reader": 200,
    }
    assert "swell-metrics-reader" in got["Bearer nobody"][1]
    assert "swell_leader" in got["Bearer reader"][1]
    assert health == 200  # probes need no token
    assert [op for op, _ in api.calls].count("review_token") == 3  # a yes is cached


def test_outside_a_pod_the_metrics_listen_on_loopback_only() -> None:
    assert rt.Options(identity="a").host == "127.0.0.1"
