"""Two services in one Prometheus, each scaling on its own load only: the controller's queries carry
the recipe's namespace and its service's labels, and a raw query stays in its namespace."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.e2e_k8s import env, gauges, kubelet, workloads
from tests.support import prometheus as support_prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]


@pytest.fixture
def other_namespace(cluster: workloads.Cluster) -> Iterator[str]:
    name = f"{kubelet.PREFIX}other-{uuid.uuid4().hex[:4]}"
    cluster.namespace(name)
    yield name
    cluster.core.delete_namespace(name)


def queue(**labels: str) -> dict:
    return {"name": "queue", "kind": "gauge", "metric": "e2e_queue", "labels": labels, "window_s": 2,
            "target": 2, "target_type": "AverageValue"}  # fmt: skip


def test_two_services_in_one_prometheus_each_scale_on_their_own_load(
    cluster: workloads.Cluster,
    namespace: str,
    other_namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
) -> None:
    pool = f"{namespace}-pool"
    nodes(pool, 1, 8)
    for name in ("a", "b", "c"):
        cluster.deployment(namespace, name, 1, pool=pool)
    metric.set(namespace, 6.0, service="a")  # a: 3 replicas
    metric.set(namespace, 2.0, service="b")  # b: 1
    metric.set(namespace, 2.0, service="c")  # c: 1
    metric.set(other_namespace, 40.0, service="a")  # another team's series with the same names
    metric.set(other_namespace, 40.0, service="c")
    cluster.recipe(namespace, "a", pool, prometheus.url, namespace, signals=[queue()])
    cluster.recipe(namespace, "b", pool, prometheus.url, namespace, signals=[queue()])
    raw = {"name": "queue", "kind": "promql", "query": 'sum(e2e_queue{service="c"})', "target": 2,
           "target_type": "AverageValue"}  # fmt: skip
    cluster.recipe(namespace, "c", pool, prometheus.url, namespace, signals=[raw])
    controllers("solo", "--prometheus-url", prometheus.url)
    env.wait_for("a at 3 replicas", lambda: cluster.replicas(namespace, "a")[0] == 3, timeout=40)

    def read(name: str) -> dict:
        return cluster.status_once(
            namespace, name, f"{name}'s signal read", lambda s: "value" in (s.get("signals") or [{}])[0]
        )

    a, b, c = read("a"), read("b"), read("c")
    assert (a["signals"][0]["value"], b["signals"][0]["value"], c["signals"][0]["value"]) == (6.0, 2.0, 2.0)
    assert f'namespace="{namespace}",service="b"' in b["signals"][0]["query"]
    assert c["signals"][0]["query"] == f'sum(e2e_queue{{namespace="{namespace}",service="c"}})'
    assert (b["desiredReplicas"], c["desiredReplicas"]) == (1, 1)
    assert cluster.replicas(namespace, "b")[0] == 1 and cluster.replicas(namespace, "c")[0] == 1


def test_a_prometheus_the_operator_did_not_allow_is_refused(
    cluster: workloads.Cluster,
    namespace: str,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
) -> None:
    cluster.deployment(namespace, "llm", 1, pool="none")
    cluster.recipe(namespace, "llm", "none", "http://169.254.169.254/latest", namespace)
    controllers("solo", "--prometheus-url", prometheus.url)

    def refused() -> dict:
        return cluster.condition(namespace, "llm", "ScalingActive")

    cond = env.wait_for(
        "the refusal", lambda: refused().get("reason") == "PrometheusNotAllowed" and refused()
    )
    assert cond["status"] == "False" and "169.254.169.254" in cond["message"]
