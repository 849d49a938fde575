"""Pods and nodes as the loop sees them: states with the scheduler's and kubelet's reasons."""

from __future__ import annotations

import pytest

from swell.clusters.kubernetes import pods
from tests.clusters.kubernetes.builders import node, pod

INSUFFICIENT = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."

CASES = {
    "unbound, scheduler gave up: pending with its message": (
        pod("a", unschedulable=INSUFFICIENT),
        ("pending", f"Unschedulable: {INSUFFICIENT}"),
    ),
    "unbound, scheduler not yet tried: pending": (pod("a"), ("pending", "waiting for the scheduler")),
    "bound, not started: starting": (pod("a", node="n1"), ("starting", "scheduled on n1, not started yet")),
    "bound, pulling: starting with the kubelet's reason": (
        pod("a", node="n1", waiting="ContainerCreating"),
        ("starting", "ContainerCreating"),
    ),
    "running, probe not passing: starting": (
        pod("a", node="n1", phase="Running"),
        ("starting", "running, not Ready yet"),
    ),
    "running and Ready: ready": (pod("a", node="n1", phase="Running", ready=True), ("ready", "")),
    "crash looping: failed, it will not get ready by itself": (
        pod("a", node="n1", phase="Running", waiting="CrashLoopBackOff"),
        ("failed", "CrashLoopBackOff"),
    ),
    "image cannot be pulled: failed": (
        pod("a", node="n1", waiting="ImagePullBackOff"),
        ("failed", "ImagePullBackOff"),
    ),
    "deletion requested: terminating, even if Ready": (
        pod("a", node="n1", phase="Running", ready=True, deleting=True),
        ("terminating", "Terminating"),
    ),
    "phase Failed: failed": (pod("a", node="n1", phase="Failed"), ("failed", "Failed")),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_replica_state_and_reason(case: tuple[dict, tuple[str, str]]) -> None:
    obj, (state, reason) = case
    r = pods.replica_of(obj)
    assert (r.name, r.state, r.reason) == ("a", state, reason)


def test_gpus_from_limits_requests_and_init_containers() -> None:
    p = pod("a", gpus=2)
    assert pods.pod_gpus(p) == 2
    p["spec"]["containers"].append({"name": "side", "resources": {"requests": {"nvidia.com/gpu": "1"}}})
    assert pods.pod_gpus(p) == 3
    p["spec"]["initContainers"] = [{"name": "init", "resources": {"limits": {"nvidia.com/gpu": "4"}}}]
    assert pods.pod_gpus(p) == 4  # the scheduler reserves the larger of the two


def test_node_counts_gpus_of_pods_that_hold_them() -> None:
    placeholder = pod("h", node="n1", gpus=1, labels={pods.HEADROOM_LABEL: "web"})
    held = [
        pod("a", node="n1", gpus=1, phase="Running", ready=True),
        pod("b", node="n1", gpus=1, deleting=True),  # Terminating still holds its GPU
        pod("c", node="n1", gpus=1, phase="Succeeded"),  # finished: does not
        placeholder,
    ]
    info = pods.node_info(node("n1", 4), held)
    assert (info.name, info.gpus, info.used_gpus, info.ready, info.headroom_pods) == ("n1", 4, 3, True, 1)
    assert not pods.node_info(node("n2", 4, ready=False), []).ready


def test_selector_and_gpu_nodes() -> None:
    assert pods.selector({"pool": "a10", "zone": "x"}) == "pool=a10,zone=x"
    assert pods.is_gpu_node(node("n1", 2)) and not pods.is_gpu_node(node("n2", 0))
