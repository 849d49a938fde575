"""Builders for the Kubernetes unit tests: pods, nodes and ScalingRecipes as the API returns them."""

from __future__ import annotations

from typing import Any

from swell.clusters.kubernetes import scalingrecipe

Obj = dict[str, Any]


def pod(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    node: str | None = None,
    phase: str = "Pending",
    ready: bool = False,
    gpus: int = 0,
    unschedulable: str = "",
    waiting: str = "",
    deleting: bool = False,
    namespace: str = "default",
    ip: str = "",
    ports: dict[str, int] | None = None,
) -> Obj:
    conditions = []
    if unschedulable:
        conditions.append(
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}
        )
    if ready:
        conditions.append({"type": "Ready", "status": "True"})
    res = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    status: Obj = {"phase": phase, "conditions": conditions}
    if ip:
        status["podIP"] = ip
    if waiting:
        status["containerStatuses"] = [{"name": "c", "state": {"waiting": {"reason": waiting}}}]
    meta: Obj = {"name": name, "namespace": namespace, "labels": labels or {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: Obj = {"containers": [{"name": "c", "image": "x", "resources": res}]}
    if ports:
        spec["containers"][0]["ports"] = [{"name": n, "containerPort": p} for n, p in ports.items()]
    if node:
        spec["nodeName"] = node
    return {"kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def node(name: str, gpus: int, labels: dict[str, str] | None = None, ready: bool = True) -> Obj:
    alloc = {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": str(gpus)}
    return {
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {"pool": "a"}},
        "spec": {},
        "status": {
            "allocatable": alloc,
            "capacity": alloc,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def recipe_cr(name: str = "web", namespace: str = "default", **autoscaling: Any) -> Obj:
    """A ScalingRecipe object for an HPA recipe on one gauge; keys override autoscaling."""
    auto: Obj = {
        "policy": "hpa",
        "min_replicas": 1,
        "max_replicas": 6,
        "polling_interval_s": 1,
        "signals": [
            {"name": "queue", "kind": "gauge", "metric": "q", "target": 2, "target_type": "AverageValue"}
        ],
        "metrics": {"source": "prometheus", "prometheus_url": "http://127.0.0.1:1"},
    }
    auto.update(autoscaling)
    return {
        "apiVersion": scalingrecipe.API_VERSION,
        "kind": scalingrecipe.KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "placement": {"nodeSelector": {"pool": "a"}},
            "resources": {"gpus": 1},
            "node_pool": {"gpus_per_node": 2, "max_nodes": 4},
            "autoscaling": auto,
        },
    }


def target(name: str = "web", namespace: str = "default") -> scalingrecipe.TargetRef:
    return scalingrecipe.TargetRef(api_version="apps/v1", kind="Deployment", name=name, namespace=namespace)
