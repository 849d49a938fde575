"""Watch-fed caches: pods and nodes listed once, then followed by their watch; listings answered
from the cache (label and nodeName selectors), other calls and unknown selectors passed through."""

from __future__ import annotations

import asyncio

import pytest

from swell.clusters.kubernetes import cache, controller, fake, scalingrecipe
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
        obs = await controller.KubernetesCluster(cached, spec).observe()  # type: ignore[arg-type]
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
