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


def _at(obj: dict, created: str | None = None, **conditions: str) -> dict:
    """`obj` with a creationTimestamp and True conditions at the given times."""
    if created:
        obj["metadata"]["creationTimestamp"] = created
    conds = obj.setdefault("status", {}).setdefault("conditions", [])
    for kind, when in conditions.items():
        conds[:] = [c for c in conds if c.get("type") != kind]
        conds.append({"type": kind, "status": "True", "lastTransitionTime": when})
    return obj


T0 = pods.timestamp("2026-12-06T01:00:00Z")


def test_a_bound_pod_reports_its_node_and_when_it_was_scheduled_and_became_ready() -> None:
    p = _at(pod("web-0", node="n1", phase="Running", ready=True), PodScheduled="2026-12-06T01:00:00Z",
            Ready="2026-12-06T01:02:30Z")  # fmt: skip
    r = pods.replica_of(p)
    assert (r.state, r.node, r.scheduled_at, r.ready_at) == ("ready", "n1", T0, T0 + 150.0)
    starting = pods.replica_of(
        _at(pod("web-1", node="n1", phase="Running"), PodScheduled="2026-12-06T01:00:00Z")
    )
    assert (starting.state, starting.node, starting.ready_at) == ("starting", "n1", None)
    pending = pods.replica_of(pod("web-2", unschedulable="0/1 nodes are available"))
    assert (pending.node, pending.scheduled_at) == ("", None)


@pytest.mark.parametrize(
    ("pod_created", "expect"),
    [
        pytest.param("2026-12-06T00:58:00Z", T0 - 120.0, id="a pod that waited for the node: the ask is its creation"),
        pytest.param("2026-12-06T01:05:00Z", None, id="only pods created after the node: the ask is unknown"),
    ],
)  # fmt: skip
def test_a_nodes_ask_is_read_from_the_pods_that_waited_for_it(pod_created: str, expect: float | None) -> None:
    n = _at(node("n1", 2), "2026-12-06T01:00:00Z", Ready="2026-12-06T01:03:00Z")
    waiting = _at(pod("web-0", node="n1", phase="Running", gpus=1), pod_created)
    info = pods.node_info(n, [waiting])
    assert (info.requested_at, info.ready_at) == (expect, T0 + 180.0)


def test_an_unreadable_time_is_no_time() -> None:
    assert pods.timestamp("yesterday") is None and pods.timestamp(None) is None
