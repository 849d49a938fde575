"""Status people can read, on the real control plane: the pause annotation holds the target while
the status keeps deciding (Ready=False, Paused), removing it resumes; metrics lost are a Warning
event and Ready=False with the HPA's reason."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e_k8s import env, gauges, workloads
from tests.support import prometheus as support_prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]


def test_pause_holds_the_target_and_the_status_says_why(
    control_plane: env.ControlPlane,
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
) -> None:
    pool = f"{namespace}-pool"
    nodes(pool, 1, 8)
    cluster.deployment(namespace, "llm", 1, pool=pool)
    metric.set(namespace, 6.0)  # asks for 3
    cluster.recipe(namespace, "llm", pool, prometheus.url, namespace)
    control_plane.kubectl("annotate", "scalingrecipe", "llm", "-n", namespace, "swell.dev/paused=true")
    controllers("solo", "--prometheus-url", prometheus.url)
    st = cluster.status_once(namespace, "llm", "a paused decision", lambda s: s.get("desiredReplicas") == 3)
    ready = cluster.condition(namespace, "llm", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Paused")
    assert st["currentReplicas"] == 1 and cluster.replicas(namespace, "llm")[0] == 1
    out = control_plane.kubectl("get", "scalingrecipe", "llm", "-n", namespace)
    assert "queue=6/2" in out

    control_plane.kubectl("annotate", "scalingrecipe", "llm", "-n", namespace, "swell.dev/paused-")
    env.wait_for("3 replicas once resumed", lambda: cluster.replicas(namespace, "llm")[0] == 3, timeout=30)
    env.wait_for("Ready", lambda: cluster.condition(namespace, "llm", "Ready").get("status") == "True")


def test_lost_metrics_are_a_warning_event_and_ready_false(
    cluster: workloads.Cluster,
    namespace: str,
    controllers: Callable[..., workloads.Controller],
) -> None:
    cluster.deployment(namespace, "llm", 1, pool="none")
    cluster.recipe(namespace, "llm", "none", "http://127.0.0.1:1", namespace)  # nothing listens there
    controllers("solo", "--prometheus-url", "http://127.0.0.1:1")
    env.wait_for(
        "Ready=False, FailedGetMetrics",
        lambda: cluster.condition(namespace, "llm", "Ready").get("reason") == "FailedGetMetrics",
    )

    def warned() -> list:
        events = cluster.core.list_namespaced_event(namespace, field_selector="involvedObject.name=llm").items
        return [e for e in events if e.reason == "FailedGetMetrics" and e.type == "Warning"]

    (event,) = env.wait_for("the Warning event", warned)
    assert "ScalingActive" in event.message
