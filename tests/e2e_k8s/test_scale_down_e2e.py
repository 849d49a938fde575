"""A scale-down on the real control plane, under deploy/'s RBAC: before the ReplicaSet chooses, the
controller marks the pod whose leaving empties a node with the lowest pod-deletion-cost.

The control plane here is v1.20, whose ReplicaSet does not read the cost yet (Kubernetes 1.22 does):
there its own tie-break deletes from the node with the most pods, and the marked pod stays,
carrying the mark. On 1.22 or later the marked pod is the one that goes. Either way the mark was
written through the controller's own RBAC (the `controllers` fixture fails on any 403)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from swell.clusters.kubernetes import controller
from tests.e2e_k8s import env, gauges, workloads
from tests.support import prometheus as support_prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]


def test_a_scale_down_marks_the_pod_that_empties_a_node(
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
) -> None:
    test, pool = namespace, f"{namespace}-pool"
    nodes(pool, 2, 2)  # two 2-GPU nodes: three 1-GPU replicas sit two and one
    cluster.deployment(namespace, "llm", 3, pool=pool)
    metric.set(test, 6.0)  # 6 waiting, 2 per replica -> 3 replicas
    cluster.recipe(namespace, "llm", pool, prometheus.url, test,
                   behavior={"scale_down": {"stabilization_window_s": 0}})  # fmt: skip
    controllers("solo", "--prometheus-url", prometheus.url)
    env.wait_for("3 ready replicas", lambda: cluster.replicas(namespace, "llm") == (3, 3), timeout=40)
    where = {p.metadata.name: p.spec.node_name for p in cluster.pods(namespace, "app=llm")}
    per_node = Counter(where.values())
    assert sorted(per_node.values()) == [1, 2], where
    (lone,) = [name for name, n in where.items() if per_node[n] == 1]

    metric.set(test, 4.0)  # -> 2 replicas: one pod goes; the lone one gives its node back
    env.wait_for("2 replicas asked for", lambda: cluster.replicas(namespace, "llm")[0] == 2, timeout=40)

    def settled() -> list[str]:
        live = [p for p in cluster.pods(namespace, "app=llm") if p.metadata.deletion_timestamp is None]
        return [p.metadata.name for p in live] if len(live) == 2 else []

    left = env.wait_for("2 pods left", settled, timeout=40)
    if lone in left:  # v1.20: the ReplicaSet chose by its own rules; the mark is there all the same
        pod = next(p for p in cluster.pods(namespace, "app=llm") if p.metadata.name == lone)
        assert (pod.metadata.annotations or {}).get(controller.DELETION_COST) == controller.VICTIM_COST
    marked = [p.metadata.name for p in cluster.pods(namespace, "app=llm")
              if (p.metadata.annotations or {}).get(controller.DELETION_COST) == controller.VICTIM_COST]  # fmt: skip
    assert marked in ([], [lone]), "only the pod that empties a node is marked"
