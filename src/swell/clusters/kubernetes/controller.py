"""One ScalingRecipe's target on Kubernetes: observe its pods and nodes, patch its scale.

`observe` reads the scale subresource, the target's pods (by the scale's selector), the pool's
nodes and the headroom pods; `scale_to` merge-patches `…/scale` with retries, only while leading
and never in dry-run. A count changed outside swell is noticed, not fought blindly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from swell import errors
from swell.clusters.kubernetes import api, pods, scalingrecipe
from swell.core import nodes as nodes_mod
from swell.core import snapshot

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUSES = frozenset({0, 409, 429, 500, 502, 503, 504})  # 0: no answer at all
COMPONENT = "swell-controller"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"  # the ReplicaSet deletes the lowest first
VICTIM_COST = str(-(2**31))  # the lowest there is: swell's choice goes before any cost a user set
# (Kubernetes >= 1.22, PodDeletionCost beta; it ranks after unscheduled, Pending and not-Ready pods)
COST_KINDS = frozenset({("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet")})  # the ReplicaSet reads it


async def retrying(
    call: Callable[[], Awaitable[T]],
    what: str,
    *,
    attempts: int = 4,
    base_s: float = 0.25,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `call`; on a conflict, throttling, 5xx or no answer wait base·2^i and try again."""
    for i in range(attempts):
        try:
            return await call()
        except errors.KubernetesError as exc:
            if exc.status not in RETRY_STATUSES or i == attempts - 1:
                raise
            log.info("%s failed (HTTP %s), retry %d of %d", what, exc.status, i + 1, attempts - 1)
            await sleep(base_s * 2**i)
    raise AssertionError("unreachable")  # the loop returns or raises


@dataclass(frozen=True, kw_only=True)
class Observation:
    current: int  # the target's spec.replicas
    observed: int  # its status.replicas
    replicas: tuple[snapshot.Replica, ...]
    nodes: tuple[snapshot.NodeInfo, ...]
    headroom: tuple[snapshot.Replica, ...]  # placeholder pods, as replica states
    external_change: tuple[int, int] | None = None  # (what swell had set, what it is now)
    pods: tuple[api.Obj, ...] = ()  # the target's pods as read (IPs and ports: workers.TorchServe)


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class KubernetesCluster:
    """The target of one ScalingRecipe. Not a `control.loop.Cluster` itself (that type lives above
    this layer): the runtime adapts `observe` and `scale_to` to it."""

    def __init__(
        self,
        client: api.Api,
        spec: scalingrecipe.Spec,
        *,
        dry_run: bool = False,
        may_act: Callable[[], bool] = lambda: True,
        last_applied: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        headroom_namespace: str | None = None,
    ) -> None:
        self.api = client
        self.headroom_namespace = headroom_namespace or spec.namespace
        self.spec = spec
        self.dry_run = dry_run
        self.may_act = may_act
        self.last_applied = last_applied
        self._sleep = sleep
        self._seen: tuple[tuple[snapshot.Replica, ...], tuple[api.Obj, ...]] = ((), ())  # the last observe's pods

    async def _call(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        return await retrying(call, what, sleep=self._sleep)

    async def observe(self) -> Observation:
        ref = self.spec.target
        scale = await self._call(lambda: self.api.get_scale(ref), f"get scale of {ref}")
        (target_pods, found), nodes, headroom = await asyncio.gather(
            self._target_pods(scale), self._nodes(), self._headroom_pods()
        )
        change = None
        if self.last_applied is not None and scale.replicas != self.last_applied:
            change = (self.last_applied, scale.replicas)
            log.warning(
                "%s: replicas changed outside swell, %d -> %d; taking %d as the new starting point",
                ref,
                self.last_applied,
                scale.replicas,
                scale.replicas,
            )
        self.last_applied = scale.replicas
        self._seen = (target_pods, found)
        return Observation(
            current=scale.replicas,
            observed=scale.observed,
            replicas=target_pods,
            nodes=nodes,
            headroom=headroom,
            external_change=change,
            pods=found,
        )

    async def _target_pods(
        self, scale: api.Scale
    ) -> tuple[tuple[snapshot.Replica, ...], tuple[api.Obj, ...]]:
        """The target's replicas, and its pods as read (none without a selector)."""
        if not scale.selector:
            # A custom resource without labelSelectorPath: count what its status reports as ready.
            why = "no pod selector on the scale subresource: counted from status.replicas"
            return tuple(
                snapshot.Replica(name=f"replica-{i}", state="ready", reason=why)
                for i in range(scale.observed)
            ), ()
        ns = self.spec.namespace
        found = await self._call(
            lambda: self.api.list_pods(ns, labels=scale.selector), f"list pods of {self.spec.target}"
        )
        own = tuple(
            p for p in found if pods.HEADROOM_LABEL not in ((p.get("metadata") or {}).get("labels") or {})
        )
        return tuple(pods.replica_of(p) for p in own), own

    async def _nodes(self) -> tuple[snapshot.NodeInfo, ...]:
        labels = pods.selector(self.spec.placement.node_selector)
        if not labels and self.spec.recipe.resources.gpus == 0:
            return ()  # a CPU service without a pool selector: nodes say nothing about it
        found = await self._call(lambda: self.api.list_nodes(labels), "list nodes")
        if not labels:
            found = [n for n in found if pods.is_gpu_node(n)]

        async def pods_on(node: api.Obj) -> list[api.Obj]:
            name = (node.get("metadata") or {}).get("name", "")
            return await self._call(
                lambda: self.api.list_pods(None, fields=f"spec.nodeName={name}"), f"list pods on {name}"
            )

        on_node = await asyncio.gather(*(pods_on(n) for n in found))
        return tuple(pods.node_info(n, p) for n, p in zip(found, on_node, strict=True))

    async def _headroom_pods(self) -> tuple[snapshot.Replica, ...]:
        label = f"{pods.HEADROOM_LABEL}={self.spec.name},{pods.HEADROOM_NS_LABEL}={self.spec.namespace}"
        found = await self._call(
            lambda: self.api.list_pods(self.headroom_namespace, labels=label), "list headroom pods"
        )
        return tuple(pods.replica_of(p) for p in found)

    async def scale_to(self, replicas: int, reason: str) -> bool:
        """Patch the target's scale; False when nothing was patched (dry-run). Raises ClusterError."""
        ref = self.spec.target
        if self.dry_run:
            log.info("dry run: would scale %s to %d (%s)", ref, replicas, reason)
            return False
        if not self.may_act():
            raise errors.ClusterError(f"not the leader (any more): {ref} left as it is")
        old = self.last_applied
        if old is not None and replicas < old:
            await self._mark_victims(replicas)
        try:
            await self._call(lambda: self.api.patch_scale(ref, replicas), f"scale {ref}")
        except errors.KubernetesError as exc:
            await self.event(
                "FailedRescale", f"New size: {replicas}; reason: {reason}; error: {exc}", "Warning"
            )
            raise
        self.last_applied = replicas
        await self.event("SuccessfulRescale", f"New size: {replicas} (was {old}); reason: {reason}")
        return True

    async def _mark_victims(self, replicas: int) -> None:
        """Before a scale-down to `replicas`: the pods to go (those alive beyond it) get the lowest pod-deletion-cost, chosen as the
        simulator chooses (`core.nodes.victims`: Pending first, then the emptiest nodes' pods), so the
        ReplicaSet empties nodes instead of thinning them (its own tie-break deletes from the node
        with the most pods); marks left from an earlier choice are cleared. Best effort: a pod that
        cannot be marked is logged, and the scale-down goes ahead."""
        ref = self.spec.target
        if (ref.api_version, ref.kind) not in COST_KINDS:
            return
        seen, found = self._seen
        alive = sum(1 for r in seen if r.state in ("pending", "starting", "ready"))
        chosen = set(nodes_mod.victims(seen, alive - replicas))

        async def mark(name: str, value: str | None) -> None:
            note = {DELETION_COST: value}
            try:
                await self._call(lambda: self.api.annotate_pod(self.spec.namespace, name, note), f"mark pod {name}")
            except errors.KubernetesError as exc:
                log.warning("%s: pod %s: pod-deletion-cost not set (%s); the ReplicaSet chooses", ref, name, exc)

        for pod in found:
            meta = pod.get("metadata") or {}
            name, marked = meta.get("name", ""), (meta.get("annotations") or {}).get(DELETION_COST) == VICTIM_COST
            if (name in chosen) != marked:
                await mark(name, VICTIM_COST if name in chosen else None)

    async def event(self, reason: str, message: str, kind: str = "Normal") -> None:
        """A Kubernetes Event on the ScalingRecipe (best effort: `kubectl describe` shows them)."""
        s, now = self.spec, rfc3339(time.time())
        body = {
            "metadata": {"generateName": f"{s.name}.", "namespace": s.namespace},
            "involvedObject": {
                "apiVersion": scalingrecipe.API_VERSION,
                "kind": scalingrecipe.KIND,
                "name": s.name,
                "namespace": s.namespace,
                "uid": s.uid,
            },
            "reason": reason,
            "message": message[:1000],
            "type": kind,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.api.create_event(s.namespace, body)
        except errors.KubernetesError as exc:
            log.warning("could not record event %s on %s/%s: %s", reason, s.namespace, s.name, exc)
