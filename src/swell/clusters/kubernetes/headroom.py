"""Node pre-provisioning by headroom: low-priority placeholder pods that hold spare GPU capacity.

Pause pods request what a replica requests, at a negative priority, so the node autoscaler adds
GPU nodes before replicas need them; a real replica preempts one and starts at once, and the
placeholder, Pending again, asks for the next node. N: `autoscaling.headroom_nodes` nodes' worth.
Placeholders live in swell's own namespace (`home`), so the controller creates pods nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from swell import errors, recipe
from swell.clusters.kubernetes import api, pods, scalingrecipe, workers
from swell.core import load, nodes, snapshot

log = logging.getLogger(__name__)

PRIORITY_CLASS = "swell-headroom"
PRIORITY = -10
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"


def priority_class() -> api.Obj:
    """The PriorityClass placeholders run at: below every real pod (default 0), never preempting."""
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": PRIORITY_CLASS, "labels": {"app.kubernetes.io/part-of": "swell"}},
        "value": PRIORITY,
        "globalDefault": False,
        "preemptionPolicy": "Never",
        "description": "swell headroom placeholders: keep spare GPU nodes warm; any real pod preempts them.",
    }


def wanted(rec: recipe.Recipe, spare_nodes: int | None = None) -> int:
    """Placeholder pods for `spare_nodes` (default: the recipe's headroom_nodes) spare nodes."""
    n = rec.autoscaling.headroom_nodes if spare_nodes is None else spare_nodes
    return n * max(1, nodes.per_node(rec.resources.gpus, rec.node_pool.gpus))


def may_want(rec: recipe.Recipe) -> bool:
    """Whether the recipe can ask for headroom: spare nodes in the recipe, or a policy that plans
    nodes ahead (the planner's `Decision.spare_nodes`)."""
    return rec.autoscaling.headroom_nodes > 0 or rec.autoscaling.policy in load.POLICIES


def pod_name(spec: scalingrecipe.Spec, index: int) -> str:
    return f"swell-headroom-{spec.namespace}-{scalingrecipe.service_name(spec.name)}-{index}"


def resources(rec: recipe.Recipe) -> api.Obj:
    """Requests and limits of one replica, as the rendered Deployment asks for them."""
    req: dict[str, str] = {"cpu": f"{rec.resources.cpu:g}", "memory": workers.gib(rec.resources.memory_gib)}
    lim: dict[str, str] = {}
    if rec.resources.gpus:
        req[pods.GPU] = lim[pods.GPU] = str(rec.resources.gpus)
    return {"requests": req, "limits": lim} if lim else {"requests": req}


def default_tolerations(rec: recipe.Recipe) -> list[api.Obj]:
    """GPU nodes usually carry an nvidia.com/gpu taint; replicas and placeholders tolerate it."""
    return [{"key": pods.GPU, "operator": "Exists", "effect": "NoSchedule"}] if rec.resources.gpus else []


def pod(spec: scalingrecipe.Spec, index: int, home: str | None = None) -> api.Obj:
    """Placeholder pod `index`, in namespace `home` (default: the recipe's). In the recipe's own
    namespace the ScalingRecipe owns it; elsewhere (an owner in another namespace would have the
    garbage collector delete it) the runtime removes the placeholders of recipes that are gone."""
    tolerations = list(spec.placement.tolerations) or default_tolerations(spec.recipe)
    body: api.Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(spec, index),
            "namespace": home or spec.namespace,
            "labels": {
                pods.HEADROOM_LABEL: spec.name,
                pods.HEADROOM_NS_LABEL: spec.namespace,
                "app.kubernetes.io/managed-by": "swell",
            },
        },
        "spec": {
            "priorityClassName": PRIORITY_CLASS,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [{"name": "pause", "image": PAUSE_IMAGE, "resources": resources(spec.recipe)}],
        },
    }
    if spec.uid and (home or spec.namespace) == spec.namespace:
        body["metadata"]["ownerReferences"] = [
            {
                "apiVersion": scalingrecipe.API_VERSION,
                "kind": scalingrecipe.KIND,
                "name": spec.name,
                "uid": spec.uid,
                "controller": True,
            }
        ]
    if spec.placement.node_selector:
        body["spec"]["nodeSelector"] = dict(spec.placement.node_selector)
    if tolerations:
        body["spec"]["tolerations"] = tolerations
    return body


@dataclass(frozen=True, kw_only=True)
class Report:
    desired: int
    running: int
    pending: int
    preemptions: int  # placeholders that went away without swell deleting them, in total
    reason: str

    def to_json(self) -> api.Obj:
        return {
            "desired": self.desired,
            "running": self.running,
            "pending": self.pending,
            "preemptions": self.preemptions,
            "reason": self.reason,
        }


class Headroom:
    """Keeps one ScalingRecipe's placeholders at the wanted count and notices preemptions."""

    def __init__(self, client: api.Api, preemptions: int = 0, home: str | None = None) -> None:
        self.api = client
        self.home = home  # the namespace placeholders live in (None: each recipe's own)
        self.preemptions = preemptions
        self._placed: set[str] = set()  # placeholders that were bound to a node last time
        self._deleted: set[str] = set()  # placeholders swell itself deleted
        self._class_checked = False

    def _count_preempted(self, seen: Iterable[snapshot.Replica]) -> None:
        alive = {r.name for r in seen if r.state != "terminating"}
        gone = self._placed - alive - self._deleted
        if gone:
            log.info("headroom placeholders preempted: %s", ", ".join(sorted(gone)))
            self.preemptions += len(gone)
        self._placed = {r.name for r in seen if r.state in ("ready", "starting")}
        self._deleted &= {r.name for r in seen}

    async def reconcile(
        self, spec: scalingrecipe.Spec, seen: tuple[snapshot.Replica, ...], want: int, *, act: bool
    ) -> Report:
        """Create missing and delete surplus placeholders (only when `act`); report their state."""
        self._count_preempted(seen)
        names = {pod_name(spec, i) for i in range(want)}
        have = {r.name: r for r in seen}
        if act:
            missing = sorted(names - have.keys())
            if missing:
                await self._ensure_priority_class()
            for name in missing:
                index = int(name.rsplit("-", 1)[1])
                try:
                    await self.api.create_pod(self.home or spec.namespace, pod(spec, index, self.home))
                except errors.KubernetesError as exc:
                    if exc.status != 409:  # 409: the preempted one is still terminating
                        raise
            for name, r in sorted(have.items()):
                if (name not in names or r.state == "failed") and r.state != "terminating":
                    self._deleted.add(name)
                    await self.api.delete_pod(self.home or spec.namespace, name)
        running = sum(1 for n, r in have.items() if n in names and r.state in ("ready", "starting"))
        waiting = [r for n, r in have.items() if n in names and r.state == "pending"]
        reason = f"{running} of {want} placeholder(s) hold spare capacity"
        if waiting:
            reason += f"; {len(waiting)} pending ({waiting[0].reason}): the node autoscaler should add a node"
        return Report(
            desired=want, running=running, pending=len(waiting), preemptions=self.preemptions, reason=reason
        )

    async def _ensure_priority_class(self) -> None:
        if self._class_checked:
            return
        if await self.api.get_priority_class(PRIORITY_CLASS) is None:
            raise errors.ClusterError(
                f"PriorityClass {PRIORITY_CLASS} is missing: install it with deploy/ "
                "(kubectl apply -k deploy/), or placeholders would run at normal priority"
            )
        self._class_checked = True
