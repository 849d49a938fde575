"""Reading pods and nodes as the loop sees them: replica states with reasons, GPU nodes.

Pure functions over the API's JSON, so the same rules hold for the real API server and the fake:
a pod without a node is pending with the scheduler's own words (`Unschedulable: 0/3 nodes are
available: 3 Insufficient nvidia.com/gpu.`), a bound pod that is not Ready is starting, a pod that
cannot start by itself (CrashLoopBackOff, image pull errors) is failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from swell.core import snapshot

GPU = "nvidia.com/gpu"
HEADROOM_LABEL = "swell.dev/headroom"  # value: the ScalingRecipe's name
HEADROOM_NS_LABEL = "swell.dev/headroom-namespace"  # value: the ScalingRecipe's namespace
STUCK = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}

Obj = dict[str, Any]


def _conditions(obj: Obj) -> dict[str, Obj]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def timestamp(value: object) -> float | None:
    """An API server time (RFC 3339, `2026-12-06T01:06:01Z`) in seconds since the epoch; None when
    absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _since(conds: Mapping[str, Obj], kind: str) -> float | None:
    """When condition `kind` last became True (None: not True, or no time)."""
    c = conds.get(kind) or {}
    return timestamp(c.get("lastTransitionTime")) if c.get("status") == "True" else None


def replica_of(pod: Obj) -> snapshot.Replica:
    """One pod -> ready / starting / pending / terminating / failed, and why; for a bound pod its
    node, when it was scheduled (PodScheduled) and when it became Ready: the planner learns a
    replica's start from them, and its scale-down empties nodes by them."""
    replica = _state_of(pod)
    node = (pod.get("spec") or {}).get("nodeName") or ""
    if not node:
        return replica
    conds = _conditions(pod)
    ready_at = _since(conds, "Ready") if replica.state == "ready" else None
    return replace(replica, node=node, scheduled_at=_since(conds, "PodScheduled"), ready_at=ready_at)


def _state_of(pod: Obj) -> snapshot.Replica:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    name = meta.get("name", "")
    if meta.get("deletionTimestamp"):
        return snapshot.Replica(name=name, state="terminating", reason="Terminating")
    phase = status.get("phase") or "Pending"
    if phase in ("Failed", "Succeeded"):
        return snapshot.Replica(name=name, state="failed", reason=status.get("reason") or phase)
    conds = _conditions(pod)
    node = spec.get("nodeName")
    if not node:
        sched = conds.get("PodScheduled") or {}
        if sched.get("status") == "False":
            why = f"{sched.get('reason') or 'Unschedulable'}: {sched.get('message') or ''}".strip(": ")
        else:
            why = "waiting for the scheduler"
        return snapshot.Replica(name=name, state="pending", reason=why)
    if phase == "Running" and (conds.get("Ready") or {}).get("status") == "True":
        return snapshot.Replica(name=name, state="ready")
    waiting = [
        ((cs.get("state") or {}).get("waiting") or {}).get("reason") or ""
        for cs in status.get("containerStatuses") or []
    ]
    stuck = next((w for w in waiting if w in STUCK), None)
    if stuck:
        return snapshot.Replica(name=name, state="failed", reason=stuck)
    why = next((w for w in waiting if w), "")
    if not why:
        why = "running, not Ready yet" if phase == "Running" else f"scheduled on {node}, not started yet"
    return snapshot.Replica(name=name, state="starting", reason=why)


def _count(quantity: object) -> int:
    """An integer extended-resource quantity ("2") -> 2; anything unreadable counts as 0."""
    try:
        return int(str(quantity))
    except ValueError:
        return 0


def pod_gpus(pod: Obj) -> int:
    """GPUs the scheduler reserves for a pod: max(sum over containers, largest init container)."""

    def each(containers: Iterable[Obj]) -> list[int]:
        out = []
        for c in containers:
            res = c.get("resources") or {}
            req = (res.get("requests") or {}).get(GPU, (res.get("limits") or {}).get(GPU, 0))
            out.append(_count(req))
        return out

    spec = pod.get("spec") or {}
    return max(
        sum(each(spec.get("containers") or [])), max(each(spec.get("initContainers") or []), default=0)
    )


def holds_resources(pod: Obj) -> bool:
    """Pods the scheduler still counts on their node (Terminating ones too, until deleted)."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def node_info(node: Obj, pods: Iterable[Obj]) -> snapshot.NodeInfo:
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    ready = (_conditions(node).get("Ready") or {}).get("status") == "True" and not spec.get("unschedulable")
    held = [p for p in pods if holds_resources(p)]
    return snapshot.NodeInfo(
        name=meta.get("name", ""),
        gpus=_count((status.get("allocatable") or {}).get(GPU, 0)),
        used_gpus=sum(pod_gpus(p) for p in held),
        ready=ready,
        requested_at=_asked_at(meta, held),
        ready_at=_since(_conditions(node), "Ready") if ready else None,
        headroom_pods=sum(
            1 for p in held if HEADROOM_LABEL in ((p.get("metadata") or {}).get("labels") or {})
        ),
    )


def _asked_at(meta: Obj, pods: Iterable[Obj]) -> float | None:
    """When the node was asked for, as the API server shows it: the Node object appears only when
    its kubelet registers, after the machine booted, so the ask is taken from the pods that waited
    for it: the oldest pod on it created before the node was (a Pending replica or headroom
    placeholder, which the node autoscaler answered within seconds). None when no pod waited."""
    made = timestamp(meta.get("creationTimestamp"))
    if made is None:
        return None
    waited = [
        t for p in pods if (t := timestamp((p.get("metadata") or {}).get("creationTimestamp"))) is not None
    ]
    waited = [t for t in waited if t < made]
    return min(waited) if waited else None


def selector(labels: Mapping[str, str]) -> str:
    """A label selector string from equality matches."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def is_gpu_node(node: Obj) -> bool:
    return _count(((node.get("status") or {}).get("allocatable") or {}).get(GPU, 0)) > 0
