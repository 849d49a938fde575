"""Headroom placeholders: how many, what they request, reconciling them, counting preemptions."""

from __future__ import annotations

import pytest

from swell import errors
from swell.clusters.kubernetes import fake, headroom, pods, scalingrecipe
from tests.clusters.kubernetes.builders import recipe_cr


def spec(**auto: object) -> scalingrecipe.Spec:
    return scalingrecipe.parse(recipe_cr(**auto))


def test_one_spare_node_is_a_nodes_worth_of_replicas() -> None:
    s = spec(headroom_nodes=1)  # 1 GPU per replica, 2 GPUs per node
    assert headroom.wanted(s.recipe) == 2
    assert headroom.wanted(s.recipe, spare_nodes=3) == 6  # the hook a forecaster drives
    assert headroom.wanted(spec().recipe) == 0


def test_placeholder_requests_like_a_replica_at_negative_priority() -> None:
    body = headroom.pod(spec(headroom_nodes=1), 1)
    assert body["metadata"]["name"] == "swell-headroom-default-web-1"
    assert body["metadata"]["labels"][pods.HEADROOM_LABEL] == "web"
    assert body["metadata"]["ownerReferences"][0] == {
        "apiVersion": "swell.dev/v1alpha1",
        "kind": "ScalingRecipe",
        "name": "web",
        "uid": "uid-web",
        "controller": True,
    }
    ps = body["spec"]
    assert ps["priorityClassName"] == headroom.PRIORITY_CLASS and ps["terminationGracePeriodSeconds"] == 0
    assert ps["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert ps["nodeSelector"] == {"pool": "a"}
    assert ps["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    pc = headroom.priority_class()
    assert pc["value"] < 0 and pc["preemptionPolicy"] == "Never" and not pc["globalDefault"]


async def reconcile(
    api: fake.FakeApi, h: headroom.Headroom, s: scalingrecipe.Spec, want: int
) -> headroom.Report:
    seen = tuple(
        pods.replica_of(p) for p in await api.list_pods("default", labels=f"{pods.HEADROOM_LABEL}=web")
    )
    return await h.reconcile(s, seen, want, act=True)


async def test_reconcile_creates_and_deletes_to_the_wanted_count(api: fake.FakeApi) -> None:
    api.priority_classes[headroom.PRIORITY_CLASS] = headroom.priority_class()
    s, h = spec(headroom_nodes=1), headroom.Headroom(api)
    report = await reconcile(api, h, s, 2)
    assert sorted(n for _, n in api.pods) == ["swell-headroom-default-web-0", "swell-headroom-default-web-1"]
    assert (report.desired, report.running, report.pending) == (2, 0, 0)
    await reconcile(api, h, s, 1)
    assert sorted(n for _, n in api.pods) == ["swell-headroom-default-web-0"]
    assert h.preemptions == 0  # deleting our own placeholder is no preemption


async def test_a_preempted_placeholder_is_counted_and_recreated(api: fake.FakeApi) -> None:
    api.priority_classes[headroom.PRIORITY_CLASS] = headroom.priority_class()
    s, h = spec(headroom_nodes=1), headroom.Headroom(api)
    await reconcile(api, h, s, 1)
    api.pods[("default", "swell-headroom-default-web-0")]["spec"]["nodeName"] = "n1"  # bound
    await reconcile(api, h, s, 1)
    del api.pods[("default", "swell-headroom-default-web-0")]  # the scheduler preempted it
    report = await reconcile(api, h, s, 1)
    assert report.preemptions == 1
    assert ("default", "swell-headroom-default-web-0") in api.pods  # back, Pending: asks for a node
    api.pods[("default", "swell-headroom-default-web-0")]["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes"}
    ]
    report = await reconcile(api, h, s, 1)
    assert report.pending == 1 and "node autoscaler should add a node" in report.reason


async def test_without_the_priority_class_no_placeholder_is_created(api: fake.FakeApi) -> None:
    with pytest.raises(errors.ClusterError, match="PriorityClass swell-headroom is missing"):
        await reconcile(api, headroom.Headroom(api), spec(headroom_nodes=1), 2)
    assert not api.pods


async def test_a_standby_only_reports(api: fake.FakeApi) -> None:
    report = await headroom.Headroom(api).reconcile(spec(headroom_nodes=1), (), 2, act=False)
    assert not api.pods and report.desired == 2 and report.running == 0
