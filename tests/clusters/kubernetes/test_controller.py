"""KubernetesCluster on the fake API: observation, scale patches, retries, dry-run, leadership, changes by hand."""

from __future__ import annotations

import pytest

from swell import errors
from swell.clusters.kubernetes import controller, fake, pods, scalingrecipe
from tests.clusters.kubernetes.builders import node, pod, recipe_cr, target


async def no_sleep(_: float) -> None:
    return None


def cluster(api: fake.FakeApi, **kw: object) -> controller.KubernetesCluster:
    return controller.KubernetesCluster(api, scalingrecipe.parse(recipe_cr()), sleep=no_sleep, **kw)  # type: ignore[arg-type]


async def test_observe_reads_pods_through_the_scale_selector_and_the_pool_nodes(api: fake.FakeApi) -> None:
    api.add_target(target(), replicas=3, selector="app=web")
    api.add(pod("web-1", node="n1", phase="Running", ready=True, gpus=1))
    api.add(pod("web-2", node="n1", gpus=1))
    api.add(pod("web-3", gpus=1, unschedulable="0/1 nodes are available: 1 Insufficient nvidia.com/gpu."))
    api.add(pod("other", labels={"app": "other"}, node="n2", phase="Running", ready=True, gpus=1))
    api.add(
        pod(
            "swell-headroom-default-web-0",
            labels={pods.HEADROOM_LABEL: "web", pods.HEADROOM_NS_LABEL: "default"},
        )
    )
    api.add(node("n1", 2))
    api.add(node("n2", 2))
    api.add(node("cpu", 0, labels={"pool": "cpu"}))
    obs = await cluster(api).observe()
    assert obs.current == 3
    assert [(r.name, r.state) for r in obs.replicas] == [
        ("web-1", "ready"),
        ("web-2", "starting"),
        ("web-3", "pending"),
    ]
    assert obs.replicas[2].reason == "Unschedulable: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    assert [(n.name, n.gpus, n.used_gpus) for n in obs.nodes] == [("n1", 2, 2), ("n2", 2, 1)]
    assert [r.name for r in obs.headroom] == ["swell-headroom-default-web-0"]
    assert obs.external_change is None


async def test_a_target_without_selector_counts_its_status_replicas(api: fake.FakeApi) -> None:
    api.add_target(target(), replicas=2, selector="", observed=2)
    obs = await cluster(api).observe()
    assert [r.state for r in obs.replicas] == ["ready", "ready"]


async def test_scale_to_merge_patches_the_scale_and_records_an_event(api: fake.FakeApi) -> None:
    api.add_target(target(), replicas=1, selector="app=web")
    c = cluster(api)
    await c.observe()
    assert await c.scale_to(3, "signals ask for 3")
    assert api.target_replicas(target()) == 3 and c.last_applied == 3
    assert [(e["reason"], e["involvedObject"]["kind"]) for e in api.events] == [
        ("SuccessfulRescale", "ScalingRecipe")
    ]
    assert api.events[0]["message"] == "New size: 3 (was 1); reason: signals ask for 3"


@pytest.mark.parametrize("status", [409, 429, 500, 503, 0])
async def test_conflicts_throttling_5xx_and_no_answer_are_retried(api: fake.FakeApi, status: int) -> None:
    api.add_target(target(), replicas=1, selector="app=web")
    api.fail("patch_scale", status, status)
    assert await cluster(api).scale_to(2, "r")
    assert api.target_replicas(target()) == 2
    assert sum(1 for op, _ in api.calls if op == "patch_scale") == 3


async def test_retries_give_up_after_four_attempts_with_backoff(api: fake.FakeApi) -> None:
    api.add_target(target(), replicas=1, selector="app=web")
    api.fail("patch_scale", 503, 503, 503, 503)
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    c = controller.KubernetesCluster(api, scalingrecipe.parse(recipe_cr()), sleep=sleep)
    with pytest.raises(errors.KubernetesError):
        await c.scale_to(2, "r")
    assert waits == [0.25, 0.5, 1.0]
    assert api.target_replicas(target()) == 1
    assert api.events[-1]["reason"] == "FailedRescale" and api.events[-1]["type"] == "Warning"


async def test_forbidden_is_not_retried(api: fake.FakeApi) -> None:
    api.add_target(target(), replicas=1, selector="app=web")
    api.fail("patch_scale", 403)
    with pytest.raises(errors.KubernetesError, match="403"):
        await cluster(api).scale_to(2, "r")
    assert sum(1 for op, _ in api.calls if op == "patch_scale") == 1


async def test_dry_run_patches_nothing(api: fake.FakeApi) -> None:
    api.add_target(target(), replicas=1, selector="app=web")
    assert not await cluster(api, dry_run=True).scale_to(4, "r")
    assert api.target_replicas(target()) == 1
    assert not any(op == "patch_scale" for op, _ in api.calls)


async def test_a_controller_that_no_longer_leads_does_not_patch(api: fake.FakeApi) -> None:
    api.add_target(target(), replicas=1, selector="app=web")
    with pytest.raises(errors.ClusterError, match="not the leader"):
        await cluster(api, may_act=lambda: False).scale_to(4, "r")
    assert api.target_replicas(target()) == 1


async def test_a_count_changed_by_hand_is_noticed_once(api: fake.FakeApi) -> None:
    api.add_target(target(), replicas=2, selector="app=web")
    c = cluster(api, last_applied=2)
    assert (await c.observe()).external_change is None
    api.scales[("default", "Deployment", "web")]["spec"]["replicas"] = 5  # kubectl scale --replicas 5
    assert (await c.observe()).external_change == (2, 5)
    assert (await c.observe()).external_change is None  # taken as the new starting point
    assert c.last_applied == 5


async def test_a_missing_target_is_a_cluster_error(api: fake.FakeApi) -> None:
    with pytest.raises(errors.KubernetesError, match="not found"):
        await cluster(api).observe()


def costs(api: fake.FakeApi) -> dict[str, str]:
    """Each target pod's pod-deletion-cost annotation, where it has one."""
    out = {}
    for (_, name), p in sorted(api.pods.items()):
        cost = ((p.get("metadata") or {}).get("annotations") or {}).get(controller.DELETION_COST)
        if cost is not None:
            out[name] = cost
    return out


def three_on_two_nodes(api: fake.FakeApi, kind: str = "Deployment") -> None:
    """web-1 alone on n1, web-2 and web-3 on n2: all Ready, 1 GPU each on 2-GPU nodes."""
    ref = scalingrecipe.TargetRef(api_version="apps/v1", kind=kind, name="web", namespace="default")
    api.add_target(ref, replicas=3, selector="app=web")
    api.add(node("n1", 2))
    api.add(node("n2", 2))
    for name, where in (("web-1", "n1"), ("web-2", "n2"), ("web-3", "n2")):
        api.add(pod(name, node=where, phase="Running", ready=True, gpus=1))


async def test_a_scale_down_marks_the_pods_that_empty_a_node_with_the_lowest_deletion_cost(
    api: fake.FakeApi,
) -> None:
    """The ReplicaSet's own tie-break deletes from the node with the most pods (n2), which empties
    no node; the pod marked is the one whose leaving gives n1 back."""
    three_on_two_nodes(api)
    c = cluster(api)
    await c.observe()
    assert await c.scale_to(2, "r")
    assert costs(api) == {"web-1": controller.VICTIM_COST}
    assert api.target_replicas(target()) == 2
    order = [op for op, _ in api.calls if op in ("annotate_pod", "patch_scale")]
    assert order == ["annotate_pod", "patch_scale"], "the mark is there before the ReplicaSet chooses"


async def test_a_later_choice_clears_the_earlier_marks_and_a_scale_up_marks_nothing(api: fake.FakeApi) -> None:
    three_on_two_nodes(api)
    api.add(pod("web-4", node="n1", phase="Running", ready=True, gpus=1))  # n1 is now full too
    api.pods[("default", "web-3")]["metadata"]["annotations"] = {controller.DELETION_COST: controller.VICTIM_COST}
    api.pods[("default", "web-2")]["metadata"]["annotations"] = {controller.DELETION_COST: "100"}  # a user's own
    c = cluster(api)
    await c.observe()
    assert await c.scale_to(5, "up")  # a fifth pod not created yet: the ReplicaSet's business
    assert costs(api) == {"web-2": "100", "web-3": controller.VICTIM_COST}, "a scale-up touches no mark"
    await c.observe()
    assert await c.scale_to(2, "down to 2 of the 4 pods: one node's worth")
    # both nodes are full: one node's pair goes (n1's, the first of two equal ones); the earlier mark on
    # web-3 is cleared, and the user's own cost on web-2, not chosen, is left as it is
    assert costs(api) == {"web-1": controller.VICTIM_COST, "web-4": controller.VICTIM_COST, "web-2": "100"}


@pytest.mark.parametrize(
    ("kind", "dry_run", "failing", "marked", "scaled"),
    [
        ("StatefulSet", False, False, {}, 2),
        ("Deployment", True, False, {}, 3),
        ("Deployment", False, True, {}, 2),
    ],
    ids=[
        "a StatefulSet removes its highest ordinal whatever the cost: nothing marked",
        "a dry run marks nothing",
        "a pod that cannot be marked does not stop the scale-down",
    ],
)
async def test_when_no_pod_is_marked(api: fake.FakeApi, kind: str, dry_run: bool, failing: bool,
                                     marked: dict[str, str], scaled: int) -> None:  # fmt: skip
    three_on_two_nodes(api, kind)
    if failing:
        api.fail("annotate_pod", 403)
    cr = recipe_cr()
    cr["spec"]["scaleTargetRef"]["kind"] = kind
    c = controller.KubernetesCluster(api, scalingrecipe.parse(cr), sleep=no_sleep, dry_run=dry_run)
    await c.observe()
    await c.scale_to(2, "r")
    ref = scalingrecipe.TargetRef(api_version="apps/v1", kind=kind, name="web", namespace="default")
    assert costs(api) == marked and api.target_replicas(ref) == scaled
