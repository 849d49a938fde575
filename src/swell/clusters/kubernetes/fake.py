"""An in-memory `api.Api` for unit tests: scale targets, pods, nodes, recipes, leases, events.

It keeps the API server's rules that the controller relies on: merge patches on status, Lease
updates that fail with 409 when the resourceVersion is stale, 404 for what is not there, 409 for
a pod name that is taken. `fail(op, 503, 409)` makes the next calls of `op` fail with those
statuses, so retries and outages can be tested without a server.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from typing import Any

from swell import errors
from swell.clusters.kubernetes import api, scalingrecipe

Obj = dict[str, Any]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _labels_match(obj: Obj, selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, eq, value = term.partition("=")
        if (labels.get(key) != value) if eq else (key not in labels):  # `key` alone: the label exists
            return False
    return True


class FakeApi:
    def __init__(self) -> None:
        self.scales: dict[tuple[str, str, str], Obj] = {}  # (namespace, kind, name) -> scale
        self.pods: dict[tuple[str, str], Obj] = {}
        self.nodes: dict[str, Obj] = {}
        self.recipes: dict[tuple[str, str], Obj] = {}
        self.leases: dict[tuple[str, str], Obj] = {}
        self.priority_classes: dict[str, Obj] = {}
        self.buffers: dict[tuple[str, str], Obj] = {}  # CapacityBuffers
        self.services: dict[tuple[str, str], Obj] = {}  # (namespace, name) -> Service
        self.feeds: dict[str, asyncio.Queue[Obj | None]] = {}  # watch_all events, per resource
        self.served: set[tuple[str, str]] = set()  # (api_version, plural) discovery finds
        self.tokens: dict[str, Obj] = {}  # bearer token -> the user a TokenReview returns
        self.allowed_urls: set[tuple[str, str]] = set()  # (username, path) a SubjectAccessReview allows
        self.events: list[Obj] = []
        self.calls: list[tuple[str, Any]] = []
        self._failures: dict[str, deque[int]] = defaultdict(deque)
        self._rv = itertools.count(1)
        self._watchers: list[asyncio.Queue[Obj]] = []

    # -- test helpers -----------------------------------------------------------------------

    def fail(self, op: str, *statuses: int) -> None:
        """The next len(statuses) calls of method `op` fail with these HTTP statuses."""
        self._failures[op].extend(statuses)

    async def _enter(self, op: str, *args: Any) -> None:
        await asyncio.sleep(0)  # a real server answers later: lets concurrent callers interleave
        self.calls.append((op, args))
        if self._failures[op]:
            status = self._failures[op].popleft()
            raise errors.KubernetesError(f"{op}: HTTP {status} (injected)", status=status)

    def add_target(
        self, ref: api.TargetRef, replicas: int, selector: str = "", observed: int | None = None
    ) -> None:
        self.scales[(ref.namespace, ref.kind, ref.name)] = {
            "metadata": {
                "name": ref.name,
                "namespace": ref.namespace,
                "resourceVersion": str(next(self._rv)),
            },
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas if observed is None else observed, "selector": selector},
        }

    def workload(self, ref: api.TargetRef) -> Obj:
        """The target as a Deployment or StatefulSet object (what a list or watch returns)."""
        scale = self._scale(ref)
        labels = dict(
            term.split("=", 1) for term in filter(None, scale["status"]["selector"].split(",")) if "=" in term
        )
        return {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "metadata": copy.deepcopy(scale["metadata"]),
            "spec": {
                "replicas": scale["spec"]["replicas"],
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
            "status": {"replicas": scale["status"]["replicas"]},
        }

    def target_replicas(self, ref: api.TargetRef) -> int:
        return int(self.scales[(ref.namespace, ref.kind, ref.name)]["spec"]["replicas"])

    def add(self, obj: Obj) -> Obj:
        """Store a pod, node or ScalingRecipe by its kind."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("resourceVersion", str(next(self._rv)))
        kind, name, ns = obj.get("kind"), meta["name"], meta.get("namespace", "default")
        if kind == "Node":
            self.nodes[name] = obj
        elif kind == scalingrecipe.KIND:
            meta.setdefault("namespace", ns)
            meta.setdefault("generation", 1)
            kind_of_change = "MODIFIED" if (ns, name) in self.recipes else "ADDED"
            self.recipes[(ns, name)] = obj
            self._notify(kind_of_change, obj)
        else:
            meta.setdefault("namespace", ns)
            self.pods[(ns, name)] = obj
        return obj

    # -- api.Api ----------------------------------------------------------------------------

    def _scale(self, ref: api.TargetRef) -> Obj:
        try:
            return self.scales[(ref.namespace, ref.kind, ref.name)]
        except KeyError:
            raise errors.KubernetesError(f"{ref} not found", status=404) from None

    async def get_scale(self, ref: api.TargetRef) -> api.Scale:
        await self._enter("get_scale", ref)
        return api.scale_of(self._scale(ref))

    async def patch_scale(self, ref: api.TargetRef, replicas: int) -> api.Scale:
        await self._enter("patch_scale", ref, replicas)
        scale = self._scale(ref)
        scale["spec"]["replicas"] = replicas
        scale.setdefault("metadata", {})["resourceVersion"] = str(next(self._rv))
        return api.scale_of(scale)

    async def list_pods(self, namespace: str | None, *, labels: str = "", fields: str = "") -> list[Obj]:
        await self._enter("list_pods", namespace, labels, fields)
        node = fields.removeprefix("spec.nodeName=") if fields.startswith("spec.nodeName=") else None
        return [
            copy.deepcopy(p)
            for (ns, _), p in sorted(self.pods.items())
            if (namespace is None or ns == namespace)
            and _labels_match(p, labels)
            and (node is None or (p.get("spec") or {}).get("nodeName") == node)
        ]

    async def create_pod(self, namespace: str, body: Obj) -> Obj:
        await self._enter("create_pod", namespace, body)
        name = body["metadata"]["name"]
        if (namespace, name) in self.pods:
            raise errors.KubernetesError(f"pod {name} already exists", status=409)
        obj = merge_patch({"metadata": {"namespace": namespace}, "status": {"phase": "Pending"}}, body)
        return self.add(obj)

    async def delete_pod(self, namespace: str, name: str) -> None:
        await self._enter("delete_pod", namespace, name)
        self.pods.pop((namespace, name), None)

    async def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        await self._enter("annotate_pod", namespace, name, dict(annotations))
        pod = self.pods.get((namespace, name))
        if pod is None:
            raise errors.KubernetesError(f"pods/{name}: HTTP 404 (not found)", status=404)
        self.pods[(namespace, name)] = merge_patch(pod, {"metadata": {"annotations": annotations}})

    async def list_nodes(self, labels: str = "") -> list[Obj]:
        await self._enter("list_nodes", labels)
        return [copy.deepcopy(n) for _, n in sorted(self.nodes.items()) if _labels_match(n, labels)]

    async def get_service(self, namespace: str, name: str) -> Obj | None:
        await self._enter("get_service", namespace, name)
        svc = self.services.get((namespace, name))
        return copy.deepcopy(svc) if svc is not None else None

    async def list_all(self, resource: str, namespace: str | None = None) -> tuple[list[Obj], str]:
        """Pods, nodes, or the targets of that kind (Deployments, StatefulSets) as objects."""
        await self._enter("list_all", resource, namespace)
        kinds = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
        if resource in kinds:
            refs = [
                api.TargetRef(api_version="apps/v1", kind=kind, name=name, namespace=ns)
                for (ns, kind, name) in sorted(self.scales)
                if kind == kinds[resource] and namespace in (None, ns)
            ]
            return [self.workload(r) for r in refs], str(next(self._rv))
        store = self.pods if resource == "pods" else self.nodes
        items = [
            o
            for _, o in sorted(store.items())
            if namespace in (None, (o.get("metadata") or {}).get("namespace"))
        ]
        return copy.deepcopy(items), str(next(self._rv))

    async def watch_all(
        self, resource: str, resource_version: str, timeout_s: float, namespace: str | None = None
    ) -> AsyncIterator[Obj]:
        """The events a test puts in `feeds[resource]`; ends when the queue yields None."""
        await self._enter("watch_all", resource, resource_version, namespace)
        q = self.feeds.setdefault(resource, asyncio.Queue())
        while (event := await q.get()) is not None:
            yield event

    async def list_recipes(self, namespace: str | None) -> list[Obj]:
        await self._enter("list_recipes", namespace)
        return [copy.deepcopy(r) for (ns, _), r in sorted(self.recipes.items()) if namespace in (None, ns)]

    def delete_recipe(self, namespace: str, name: str) -> None:
        self._notify("DELETED", self.recipes.pop((namespace, name)))

    def _notify(self, kind: str, obj: Obj) -> None:
        for q in self._watchers:
            q.put_nowait({"type": kind, "object": copy.deepcopy(obj)})

    async def watch_recipes(self, namespace: str | None, timeout_s: float) -> AsyncIterator[Obj]:
        await self._enter("watch_recipes", namespace)
        q: asyncio.Queue[Obj] = asyncio.Queue()
        for _, r in sorted(self.recipes.items()):
            q.put_nowait({"type": "ADDED", "object": copy.deepcopy(r)})
        self._watchers.append(q)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    event = await q.get()
                    if namespace in (None, event["object"]["metadata"]["namespace"]):
                        yield event
        except TimeoutError:
            return
        finally:
            self._watchers.remove(q)

    async def patch_recipe_status(self, namespace: str, name: str, status: Obj) -> None:
        await self._enter("patch_recipe_status", namespace, name, status)
        obj = self.recipes.get((namespace, name))
        if obj is None:
            raise errors.KubernetesError(f"{scalingrecipe.KIND} {namespace}/{name} not found", status=404)
        obj["status"] = merge_patch(obj.get("status") or {}, status)
        self._notify("MODIFIED", obj)  # as the API server does: a status write is a change too

    async def get_lease(self, namespace: str, name: str) -> Obj | None:
        await self._enter("get_lease", namespace, name)
        lease = self.leases.get((namespace, name))
        return copy.deepcopy(lease) if lease else None

    async def create_lease(self, namespace: str, body: Obj) -> Obj:
        await self._enter("create_lease", namespace, body)
        key = (namespace, body["metadata"]["name"])
        if key in self.leases:
            raise errors.KubernetesError(f"lease {key[1]} already exists", status=409)
        obj = merge_patch(
            body, {"metadata": {"namespace": namespace, "resourceVersion": str(next(self._rv))}}
        )
        self.leases[key] = obj
        return copy.deepcopy(obj)

    async def replace_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        await self._enter("replace_lease", namespace, name, body)
        old = self.leases.get((namespace, name))
        if old is None:
            raise errors.KubernetesError(f"lease {name} not found", status=404)
        if (body.get("metadata") or {}).get("resourceVersion") != old["metadata"]["resourceVersion"]:
            raise errors.KubernetesError(f"lease {name}: the object has been modified", status=409)
        obj = merge_patch(body, {"metadata": {"resourceVersion": str(next(self._rv))}})
        self.leases[(namespace, name)] = obj
        return copy.deepcopy(obj)

    async def create_event(self, namespace: str, body: Obj) -> None:
        await self._enter("create_event", namespace, body)
        self.events.append(copy.deepcopy(body))

    async def get_priority_class(self, name: str) -> Obj | None:
        await self._enter("get_priority_class", name)
        return copy.deepcopy(self.priority_classes.get(name))

    async def serves(self, api_version: str, plural: str) -> bool:
        await self._enter("serves", api_version, plural)
        return (api_version, plural) in self.served

    async def patch_pod_resize(self, namespace: str, name: str, body: Obj) -> None:
        """The `resize` subresource where discovery finds it (`served` has ("v1", "pods/resize")):
        each container's resources merged by name, as a strategic merge patch does; else 404."""
        await self._enter("patch_pod_resize", namespace, name, copy.deepcopy(body))
        pod = self.pods.get((namespace, name))
        if pod is None or ("v1", "pods/resize") not in self.served:
            raise errors.KubernetesError(f"pods/{name}/resize: HTTP 404 (not found)", status=404)
        have = {c.get("name"): c for c in pod.setdefault("spec", {}).setdefault("containers", [])}
        for c in (body.get("spec") or {}).get("containers") or []:
            if c.get("name") not in have:
                raise errors.KubernetesError(f"pods/{name}/resize: no container {c.get('name')}", status=422)
            have[c["name"]]["resources"] = merge_patch(
                have[c["name"]].get("resources") or {}, c.get("resources") or {}
            )

    async def get_buffer(self, namespace: str, name: str) -> Obj | None:
        await self._enter("get_buffer", namespace, name)
        return copy.deepcopy(self.buffers.get((namespace, name)))

    async def put_buffer(self, namespace: str, body: Obj, exists: bool) -> None:
        await self._enter("put_buffer", namespace, exists)
        key = (namespace, body["metadata"]["name"])
        if exists:
            self.buffers[key] = merge_patch(self.buffers[key], {"spec": body["spec"]})
        else:
            if key in self.buffers:
                raise errors.KubernetesError(f"capacitybuffer {key[1]} exists", status=409)
            self.buffers[key] = copy.deepcopy(body)

    async def delete_buffer(self, namespace: str, name: str) -> None:
        await self._enter("delete_buffer", namespace, name)
        self.buffers.pop((namespace, name), None)

    async def review_token(self, token: str) -> Obj | None:
        await self._enter("review_token")
        user = self.tokens.get(token)
        return copy.deepcopy(user) if user is not None else None

    async def may_get(self, user: Obj, path: str) -> bool:
        await self._enter("may_get", user.get("username"), path)
        return (user.get("username", ""), path) in self.allowed_urls

    async def close(self) -> None:
        self.calls.append(("close", ()))
