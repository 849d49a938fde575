"""Watch-fed caches: pods and nodes listed once, then followed by their watch; listings answered
from the cache (label and nodeName selectors), other calls and unknown selectors passed through."""

from __future__ import annotations

import asyncio

import pytest

from swell.clusters.kubernetes import api, cache, controller, fake, scalingrecipe
from tests.clusters.kubernetes.builders import node, pod, recipe_cr, target


@pytest.mark.parametrize(
    ("text", "labels", "ok"),
    [
        ("app=web", {"app": "web"}, True),
        ("app=web,tier!=db", {"app": "web", "tier": "db"}, False),
        ("app in (a, web),!canary", {"app": "web"}, True),
        ("app notin (web)", {"app": "web"}, False),
        ("swell.dev/headroom", {"swell.dev/headroom": "x"}, True),
        ("", {}, True),
    ],
)
def test_label_selectors(text: str, labels: dict[str, str], ok: bool) -> None:
    pred = cache.selector(text)
    assert pred is not None and pred(labels) is ok


async def test_listings_come_from_the_watch_fed_cache() -> None:
    client = fake.FakeApi()
    client.add(pod("web-0", node="n1", phase="Running", ready=True, gpus=1))
    client.add(node("n1", 8))
    cached = cache.CachedApi(client)
    stop = asyncio.Event()
    task = asyncio.create_task(cached.run(stop))
    await asyncio.wait_for(cached.pods.synced.wait(), 2)
    await asyncio.wait_for(cached.nodes.synced.wait(), 2)
    client.calls.clear()

    new = pod("web-1", node="n1", phase="Pending")
    client.feeds["pods"].put_nowait({"type": "ADDED", "object": new})
    await asyncio.sleep(0.01)
    spec = scalingrecipe.parse(recipe_cr())
    client.add_target(target(), replicas=2, selector="app=web")
    for _ in range(3):  # three ticks of one recipe
        obs = await controller.KubernetesCluster(cached, spec).observe()
    assert sorted(r.name for r in obs.replicas) == ["web-0", "web-1"]
    assert [n.name for n in obs.nodes] == ["n1"]
    ops = [op for op, _ in client.calls]
    assert "list_pods" not in ops and "list_nodes" not in ops  # only get_scale reached the server
    assert ops.count("get_scale") == 3 and cached.requests["get_scale"] == 3

    client.feeds["pods"].put_nowait({"type": "DELETED", "object": new})
    await asyncio.sleep(0.01)
    assert [p["metadata"]["name"] for p in await cached.list_pods("default", labels="app=web")] == ["web-0"]
    assert await cached.list_pods("default", fields="status.phase=Running") is not None
    assert cached.requests["list_pods"] == 1  # a field selector it cannot evaluate went through
    stop.set()
    for q in client.feeds.values():
        q.put_nowait(None)
    await asyncio.wait_for(task, 2)


async def synced(
    client: fake.FakeApi, namespaces: list[str] | None = None
) -> tuple[cache.CachedApi, asyncio.Task[None], asyncio.Event]:
    cached = cache.CachedApi(client, namespaces)
    stop = asyncio.Event()
    task = asyncio.create_task(cached.run(stop))
    await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in cached.informers)), 2)
    client.calls.clear()
    return cached, task, stop


async def done(client: fake.FakeApi, task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    for q in client.feeds.values():
        q.put_nowait(None)
    await asyncio.wait_for(task, 2)


def gets(client: fake.FakeApi) -> int:
    return sum(op == "get_scale" for op, _ in client.calls)


async def test_the_replicas_of_deployments_come_from_the_watch_not_a_get_of_scale() -> None:
    client = fake.FakeApi()
    ref = target()
    client.add_target(ref, replicas=2, selector="app=web", observed=1)
    cached, task, stop = await synced(client)
    scale = await cached.get_scale(ref)
    assert (scale.replicas, scale.observed, scale.selector) == (2, 1, "app=web")
    (held,) = cached.targets["deployments"][0].objects.values()
    assert set(held) == {"metadata", "spec", "status"} and set(held["spec"]) == {"replicas", "selector"}
    assert gets(client) == 0 and cached.hits["get_scale"] == 1 and cached.requests["get_scale"] == 0

    client.scales[("default", "Deployment", "web")]["spec"]["replicas"] = 5  # changed by hand
    client.feeds["deployments"].put_nowait({"type": "MODIFIED", "object": client.workload(ref)})
    await asyncio.sleep(0.01)
    assert (await cached.get_scale(ref)).replicas == 5 and gets(client) == 0
    await done(client, task, stop)


async def test_the_scale_is_read_from_the_server_when_the_cache_cannot_answer() -> None:
    client = fake.FakeApi()
    web, late = target(), target("late")
    crd = scalingrecipe.TargetRef(api_version="example.com/v1", kind="Model", name="m", namespace="default")
    other_ns = target("web", namespace="elsewhere")
    for ref in (web, crd, other_ns):
        client.add_target(ref, replicas=2, selector="app=web")
    not_synced = cache.CachedApi(client)  # its informers never ran
    assert (await not_synced.get_scale(web)).replicas == 2 and gets(client) == 1
    assert not_synced.requests["get_scale"] == 1

    cached, task, stop = await synced(client, ["default"])
    client.add_target(late, replicas=4)  # created after the listing; its watch event not here yet
    assert (await cached.get_scale(late)).replicas == 4
    assert (await cached.get_scale(crd)).replicas == 2  # a kind not cached
    assert (await cached.get_scale(other_ns)).replicas == 2  # a namespace not watched
    assert gets(client) == 3 and cached.hits["get_scale"] == 0

    await cached.patch_scale(web, 3)  # until the watch brings swell's own patch: ask the server
    assert (await cached.get_scale(web)).replicas == 3 and gets(client) == 4
    client.feeds["deployments"].put_nowait({"type": "MODIFIED", "object": client.workload(web)})
    await asyncio.sleep(0.01)
    await cached.patch_scale(web, 4)
    client.feeds["deployments"].put_nowait({"type": "MODIFIED", "object": client.workload(web)})
    await asyncio.sleep(0.01)
    assert (await cached.get_scale(web)).replicas == 4 and gets(client) == 4  # the watch has it
    await done(client, task, stop)


async def test_a_watch_refused_leaves_the_scale_to_a_get() -> None:
    client = fake.FakeApi()
    client.add_target(target(), replicas=2, selector="app=web")
    client.fail("list_all", *([403] * 4))  # no list/watch grant (pods, nodes, deployments, statefulsets)
    cached = cache.CachedApi(client)
    stop = asyncio.Event()
    task = asyncio.create_task(cached.run(stop))
    await asyncio.sleep(0.05)
    assert (await cached.get_scale(target())).replicas == 2 and gets(client) == 1
    await done(client, task, stop)


def test_a_deployment_gives_the_scale_its_subresource_would() -> None:
    dep = {
        "metadata": {"resourceVersion": "7"},
        "spec": {
            "selector": {
                "matchLabels": {"tier": "gpu", "app": "web"},
                "matchExpressions": [
                    {"key": "track", "operator": "In", "values": ["stable", "canary"]},
                    {"key": "debug", "operator": "DoesNotExist"},
                ],
            }
        },
        "status": {"replicas": 2},
    }
    scale = api.scale_of_workload(dep)
    assert (scale.replicas, scale.observed, scale.version) == (1, 2, "7")  # no spec.replicas: 1
    assert scale.selector == "app=web,!debug,tier=gpu,track in (canary,stable)"
    pred = cache.selector(scale.selector)
    assert pred is not None and pred({"app": "web", "tier": "gpu", "track": "canary"})


async def test_pods_are_found_through_the_label_and_node_indexes() -> None:
    client = fake.FakeApi()
    client.add(pod("web-0", node="n1"))
    client.add(pod("web-1", node="n2"))
    client.add(pod("db-0", node="n1", labels={"app": "db"}))
    client.add(pod("web-x", node="n1", namespace="other"))
    cached, task, stop = await synced(client)

    def names(objs: list[api.Obj]) -> list[str]:
        return sorted(o["metadata"]["name"] for o in objs)

    assert names(await cached.list_pods("default", labels="app=web")) == ["web-0", "web-1"]
    assert names(await cached.list_pods(None, labels="app in (db,web)")) == [
        "db-0",
        "web-0",
        "web-1",
        "web-x",
    ]
    assert names(await cached.list_pods(None, fields="spec.nodeName=n1")) == ["db-0", "web-0", "web-x"]
    moved = pod("web-0", node="n2", labels={"app": "cache"})
    client.feeds["pods"].put_nowait({"type": "MODIFIED", "object": moved})
    await asyncio.sleep(0.01)
    assert names(await cached.list_pods("default", labels="app=web")) == ["web-1"]
    assert names(await cached.list_pods(None, fields="spec.nodeName=n1")) == ["db-0", "web-x"]
    assert cached.requests["list_pods"] == 0
    await done(client, task, stop)


async def test_a_relist_rebuilds_the_indexes_from_what_the_server_holds_now() -> None:
    client = fake.FakeApi()
    client.add(pod("web-0", node="n1"))
    inf = cache.Informer(client, "pods")
    await inf.relist()
    assert inf.by_node == {"n1": {("default", "web-0")}}
    client.pods.clear()  # gone while the watch was broken: the next list does not have it
    client.add(pod("web-1", node="n2"))
    await inf.relist()
    assert inf.by_node == {"n2": {("default", "web-1")}}
    assert set(inf.by_label) == {
        (k, v) for k, v in client.pods[("default", "web-1")]["metadata"]["labels"].items()
    }
    assert [o["metadata"]["name"] for o in inf.select([], node="n1")] == []
