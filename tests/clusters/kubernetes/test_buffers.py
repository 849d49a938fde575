"""Headroom as a CapacityBuffer where the cluster serves the API (found by discovery), sized by
the same count as the placeholders; placeholder pods elsewhere."""

from __future__ import annotations

from swell import clock as clock_mod
from swell.clusters.kubernetes import api, fake, headroom
from swell.runtime import kubernetes as rt
from tests.clusters.kubernetes.test_runtime import Signals, setup, status


def runtime(client: fake.FakeApi, **opts: object) -> rt.Runtime:
    o = rt.Options(identity="a", leader_elect=False, port=0, prometheus_url="http://127.0.0.1:1", **opts)  # type: ignore[arg-type]
    return rt.Runtime(client, o, clock=clock_mod.ManualClock(1000), sources=lambda spec: Signals())


async def test_a_capacity_buffer_instead_of_placeholders_where_the_api_is_served() -> None:
    client = fake.FakeApi()
    client.served.add((api.BUFFER_API, "capacitybuffers"))
    setup(client, headroom_nodes=1)
    r = runtime(client)
    await r.step()
    buf = client.buffers[("default", "swell-web")]
    assert buf["kind"] == "CapacityBuffer" and buf["apiVersion"] == "autoscaling.x-k8s.io/v1alpha1"
    assert buf["spec"] == {
        "scalableRef": {"apiGroup": "apps", "kind": "Deployment", "name": "web"},
        "replicas": 2,
    }
    assert buf["metadata"]["ownerReferences"][0]["kind"] == "ScalingRecipe"
    assert not [k for k in client.pods if "headroom" in k[1]]  # no placeholder pods
    assert "CapacityBuffer swell-web" in status(client)["headroom"]["reason"]


async def test_placeholder_pods_where_it_is_not_served() -> None:
    client = fake.FakeApi()
    client.priority_classes[headroom.PRIORITY_CLASS] = headroom.priority_class()
    setup(client, headroom_nodes=1)
    await runtime(client).step()
    assert not client.buffers
    assert len([k for k in client.pods if "headroom" in k[1]]) == 2
