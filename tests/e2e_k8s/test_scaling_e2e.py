"""`swell controller` on the real control plane, under deploy/'s RBAC, with a real Prometheus:
scale up on a metric; headroom placeholders held, preempted by a real replica, and a replica that
does not fit reported Pending with the scheduler's reason; a Prometheus outage holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e_k8s import env, gauges, workloads
from tests.support import prometheus as support_prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]


def test_scales_a_deployment_up_on_a_prometheus_metric(
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
) -> None:
    test = namespace
    nodes(f"{test}-pool", 1, 8)
    cluster.deployment(namespace, "llm", 1, pool=f"{test}-pool")
    metric.set(test, 6.0)  # 6 waiting, 2 per replica -> 3 replicas
    cluster.recipe(namespace, "llm", f"{test}-pool", prometheus.url, test)
    ctl = controllers("solo", "--prometheus-url", prometheus.url)
    env.wait_for("3 ready replicas", lambda: cluster.replicas(namespace, "llm") == (3, 3), timeout=40)

    st = cluster.status_once(
        namespace, "llm", "the status after the scale-up", lambda s: s.get("replicas", {}).get("ready") == 3
    )
    assert (st["currentReplicas"], st["desiredReplicas"], st["boundBy"]) in {
        (3, 3, "metrics"),
        (3, 3, "tolerance"),
    }
    (sig,) = st["signals"]
    assert sig["value"] == 6.0 and sig["query"] == (
        f'avg(avg_over_time(e2e_queue{{namespace="{namespace}",service="llm",test="{test}"}}[2s]))'
    )
    assert cluster.condition(namespace, "llm", "MetricsAvailable")["status"] == "True"
    assert cluster.condition(namespace, "llm", "ScalingActive")["status"] == "True"
    assert any(d["desired"] == 3 and d["current"] == 1 for d in st["lastDecisions"])
    events = cluster.core.list_namespaced_event(namespace, field_selector="involvedObject.name=llm").items
    assert any(e.reason == "SuccessfulRescale" and "New size: 3" in e.message for e in events)
    assert ctl.sample("swell_desired_replicas", recipe="llm") == 3
    assert ctl.sample("swell_signal_value", recipe="llm", signal="queue") == 6.0
    assert (ctl.sample("swell_decisions_total", recipe="llm", bound_by="metrics") or 0) >= 1
    assert ctl.sample("swell_leader", identity="solo") == 1
    assert (ctl.sample("swell_signal_read_seconds_count", namespace=namespace, recipe="llm") or 0) >= 1  # real reads, timed


WIDGETS = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.e2e.swell.dev"},
    "spec": {
        "group": "e2e.swell.dev",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
            }
        ],
    },
}


def test_scales_a_custom_resource_through_its_scale_subresource(
    control_plane: env.ControlPlane,
    cluster: workloads.Cluster,
    namespace: str,
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
    tmp_path: Path,
) -> None:
    """Anything with a scale subresource (InferenceService, LeaderWorkerSet...): found by discovery."""
    (tmp_path / "crd.json").write_text(json.dumps(WIDGETS))
    control_plane.kubectl("apply", "-f", str(tmp_path / "crd.json"))
    control_plane.kubectl("wait", "--for=condition=established", "--timeout=30s", "crd/widgets.e2e.swell.dev")
    widget = {
        "apiVersion": "e2e.swell.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"replicas": 1},
    }
    cluster.custom.create_namespaced_custom_object("e2e.swell.dev", "v1", namespace, "widgets", widget)
    metric.set(namespace, 6.0, service="w")
    # listing only every 10 minutes: the recipe, created once the controller leads, reaches it by
    # the watch on ScalingRecipes (a streamed watch request to the real API server)
    ctl = controllers("solo", "--resync", "600", "--allow-prometheus-url", prometheus.url)
    env.wait_for("the controller leading", lambda: ctl.sample("swell_leader", identity="solo") == 1)
    ref = {"apiVersion": "e2e.swell.dev/v1", "kind": "Widget", "name": "w"}
    cluster.recipe(namespace, "w", "none", prometheus.url, namespace, target=ref)

    def replicas() -> int:
        obj = cluster.custom.get_namespaced_custom_object("e2e.swell.dev", "v1", namespace, "widgets", "w")
        return int(obj["spec"]["replicas"])

    env.wait_for("the Widget scaled to 3", lambda: replicas() == 3, timeout=30)
    st = cluster.status_once(
        namespace, "w", "the status after the scale", lambda s: s.get("desiredReplicas") == 3
    )
    assert st["scaleTargetRef"] == "Widget/w"


def test_headroom_is_preempted_by_a_replica_and_a_replica_that_does_not_fit_is_reported(
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
) -> None:
    test, pool = namespace, f"{namespace}-pool"
    nodes(pool, 1, 2)  # room for two 1-GPU pods
    cluster.deployment(namespace, "llm", 1, pool=pool)
    metric.set(test, 2.0)  # 1 replica
    cluster.recipe(namespace, "llm", pool, prometheus.url, test, headroom_nodes=1)  # 2 placeholders
    controllers("solo", "--prometheus-url", prometheus.url)
    placeholders = f"swell.dev/headroom=llm,swell.dev/headroom-namespace={namespace}"  # in swell-system

    def headroom(running: int, pending: int) -> bool:
        h = cluster.status(namespace, "llm").get("headroom", {})
        return (h.get("running"), h.get("pending")) == (running, pending)

    env.wait_for("one placeholder on the node, one Pending", lambda: headroom(1, 1), timeout=30)
    held = next(p for p in cluster.pods("swell-system", placeholders) if p.spec.node_name)
    assert held.spec.priority == -10 and held.spec.containers[0].resources.limits == {"nvidia.com/gpu": "1"}
    h = cluster.status(namespace, "llm")["headroom"]
    assert "Insufficient nvidia.com/gpu" in h["reason"] and "node autoscaler" in h["reason"]

    metric.set(test, 4.0)  # 2 replicas: the new one takes the placeholder's GPU
    env.wait_for("2 ready replicas", lambda: cluster.replicas(namespace, "llm") == (2, 2), timeout=40)
    env.wait_for(
        "the preemption counted", lambda: cluster.status(namespace, "llm")["headroom"]["preemptions"] >= 1
    )
    env.wait_for("both placeholders Pending", lambda: headroom(0, 2), timeout=20)
    assert all(p.metadata.uid != held.metadata.uid for p in cluster.pods("swell-system", placeholders))

    metric.set(test, 6.0)  # 3 replicas on a 2-GPU pool: one stays Pending
    env.wait_for("3 asked for", lambda: cluster.replicas(namespace, "llm")[0] == 3, timeout=30)

    def pending_reported() -> list[dict]:
        rs = cluster.status(namespace, "llm").get("replicas", {})
        return [
            p for p in rs.get("notReady", []) if p["state"] == "pending" and "Unschedulable" in p["reason"]
        ]

    (pending,) = env.wait_for("the Pending replica in the status", pending_reported, timeout=30)
    assert "Insufficient nvidia.com/gpu" in pending["reason"]
    st = cluster.status(namespace, "llm")
    assert (st["replicas"]["ready"], st["replicas"]["pending"]) == (2, 1)
    assert (st["nodes"]["gpus"], st["nodes"]["usedGpus"]) == (2, 2)


def test_a_prometheus_outage_holds_the_replicas(
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    controllers: Callable[..., workloads.Controller],
    tmp_path: Path,
) -> None:
    test, pool = namespace, f"{namespace}-pool"
    with support_prometheus.running(tmp_path) as own:
        own.set_targets({"gauges": f"127.0.0.1:{metric.port}"})
        nodes(pool, 1, 8)
        cluster.deployment(namespace, "llm", 1, pool=pool)
        metric.set(test, 6.0)
        down = {"stabilization_window_s": 0, "policies": [{"type": "Percent", "value": 100, "period_s": 1}]}
        no_stabilization = {"scale_down": down}
        cluster.recipe(namespace, "llm", pool, own.url, test, behavior=no_stabilization)
        controllers("solo", "--allow-prometheus-url", own.url)
        env.wait_for("3 replicas", lambda: cluster.replicas(namespace, "llm")[0] == 3, timeout=40)

        own.stop()
        metric.set(test, 0.0)  # were it read, it would scale to 1 at once (no down-stabilization)
        env.wait_for(
            "MetricsAvailable=False",
            lambda: cluster.condition(namespace, "llm", "MetricsAvailable").get("status") == "False",
            timeout=20,
        )
        held = env.wait_for(
            "5 ticks without data",
            lambda: (
                (d := cluster.status(namespace, "llm")["lastDecisions"][0])["boundBy"] == "no_data"
                and d["count"] >= 5
                and d
            ),
            timeout=30,
        )
        assert cluster.replicas(namespace, "llm")[0] == 3 and held["desired"] == 3
        cond = cluster.condition(namespace, "llm", "MetricsAvailable")
        assert "prometheus unreachable" in cond["message"]
        assert cluster.condition(namespace, "llm", "ScalingActive")["reason"] == "FailedGetMetrics"
        assert "value" not in cluster.status(namespace, "llm")["signals"][0]  # no value, not 0

        own.start()  # back, and it reads 0: now the scale-down is right
        env.wait_for(
            "the scale-down on real data", lambda: cluster.replicas(namespace, "llm")[0] == 1, timeout=40
        )
