"""The planner on the real control plane: a scheduled floor inside the node lead time is bought
as headroom sized from the plan (placeholder pods for the spare node), while the replicas take
only the GPUs a Ready node has; no replica waits Pending for the coming node. And a node in use is
used whole: its free GPU gets a replica once the one there is Ready."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e_k8s import env, gauges, workloads
from tests.support import prometheus as support_prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]


def _one_replica_no_load(
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
) -> tuple[str, str]:
    """One Ready node with 2 GPUs in a pool of the test's own, one replica of 'llm' on it, and vLLM's
    counters flat (served before, nothing now: a rate of 0): (the metrics' test label, the pool)."""
    test, pool = namespace, f"{namespace}-pool"
    nodes(pool, 1, 2)
    cluster.deployment(namespace, "llm", 1, pool=pool)
    metric.set(test, 0.0)
    for name in ("vllm:request_success_total", "vllm:prompt_tokens_total", "vllm:generation_tokens_total"):
        metric.series(test, name, 100.0)
    metric.series(test, "vllm:num_requests_waiting", 0.0, kind="gauge")
    return test, pool


def _status_when(
    cluster: workloads.Cluster,
    namespace: str,
    what: str,
    check: Callable[[dict[str, Any]], bool],
    timeout: float,
) -> dict[str, Any]:
    """The recipe's status once it holds replicas, decisions and headroom and `check` is true of it.
    The controller writes the status by parts, so a read between two writes may lack some: wait for
    a whole one rather than index into a half-written one."""

    def whole() -> dict[str, Any] | None:
        st = cluster.status(namespace, "llm")
        parts = all(isinstance(st.get(k), (dict, list)) for k in ("replicas", "lastDecisions", "headroom"))
        return st if parts and check(st) else None

    st = env.wait_for(what, whole, timeout=timeout)
    assert st is not None  # wait_for returns only a truthy value
    return st


def test_the_planners_spare_node_becomes_headroom_placeholders(
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
) -> None:
    test, pool = _one_replica_no_load(cluster, namespace, nodes, metric)
    # a floor of 4 replicas from 5 minutes on (UTC): inside H (the default pool's ~16 min lead)
    at = time.gmtime(time.time() + 300)
    peak = {"name": "peak", "start": f"{at.tm_min} {at.tm_hour} * * *", "end": f"{at.tm_min} {(at.tm_hour + 1) % 24} * * *",
            "min_replicas": 4}  # fmt: skip
    cluster.recipe(namespace, "llm", pool, prometheus.url, test, spec={"schedules": [peak]}, policy="planner",
                   max_replicas=6, target_utilization=0.6)  # fmt: skip
    controllers("solo", "--prometheus-url", prometheus.url)

    env.wait_for("the free GPU's replica", lambda: cluster.replicas(namespace, "llm")[0] == 2, timeout=60)
    # the 2 replicas the Ready node cannot hold: one spare node, held a minute (SPARE_HOLD_S), then
    # 2 placeholders (a node's worth of 1-GPU replicas), Pending until the node autoscaler adds it
    st = _status_when(
        cluster, namespace, "headroom for one spare node", lambda st: st["headroom"].get("desired") == 2, 120
    )
    assert st["replicas"].get("pending", 0) == 0, "no replica waits Pending for the coming node"
    assert cluster.replicas(namespace, "llm")[0] == 2
    reason = st["lastDecisions"][0]["reason"]  # newest first
    assert "2 more once spare nodes are ready" in reason
    assert "at 0.6 of its throughput" in reason  # the recipe's target_utilization, through the CRD
    placeholders = f"swell.dev/headroom=llm,swell.dev/headroom-namespace={namespace}"
    env.wait_for(
        "2 placeholder pods", lambda: len(cluster.pods("swell-system", placeholders)) == 2, timeout=30
    )

    nodes(pool, 1, 2)  # the node autoscaler's node arrives: replicas take it, the headroom goes
    env.wait_for("4 replicas", lambda: cluster.replicas(namespace, "llm")[0] == 4, timeout=60)
    env.wait_for(
        "no headroom left once the plan is placed",
        lambda: cluster.status(namespace, "llm").get("headroom", {}).get("desired") == 0,
        timeout=60,
    )


def test_the_planner_fills_the_free_gpu_of_a_node_in_use(
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
) -> None:
    """No load, one replica on a Ready 2-GPU node: the node is billed whole, so once that replica is
    Ready the planner asks for a second on the free GPU; the node is then full and nothing more
    comes (no Pending replica, no node asked for)."""
    test, pool = _one_replica_no_load(cluster, namespace, nodes, metric)
    cluster.recipe(namespace, "llm", pool, prometheus.url, test, policy="planner", max_replicas=6)
    controllers("solo", "--prometheus-url", prometheus.url)

    def both_ready(st: dict[str, Any]) -> bool:
        return bool(st["replicas"].get("ready") == 2)

    env.wait_for("the free GPU filled", lambda: cluster.replicas(namespace, "llm")[0] == 2, timeout=60)
    st = _status_when(cluster, namespace, "both replicas ready", both_ready, 60)
    reasons = [d.get("reason", "") for d in st["lastDecisions"]]
    assert any("1 free GPU(s) of nodes already billed filled" in r for r in reasons), reasons
    time.sleep(3)  # a few more ticks on a full node
    st = _status_when(cluster, namespace, "a status with both replicas ready", both_ready, 30)
    assert cluster.replicas(namespace, "llm")[0] == 2 and st["replicas"].get("pending", 0) == 0, st
    assert st["headroom"].get("desired", 0) == 0, "no node asked for"
    # vLLM's counters read, the gateway's and the abort counter never written (there is no swell
    # gateway on Kubernetes): the planner's load is read, and no metric is missing
    metrics = next(c for c in st["conditions"] if c["type"] == "MetricsAvailable")
    assert (metrics["status"], metrics["reason"]) == ("True", "AllSignalsRead"), metrics
