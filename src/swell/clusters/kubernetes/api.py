"""The Kubernetes API as swell needs it; the only module that imports the `kubernetes` client.

`Api` is the small protocol the controller, headroom and lease code talk to: JSON objects in and
out, every error an `errors.KubernetesError` carrying the HTTP status. `KubeApi` implements it with
the official client's asyncio API (`kubernetes.aio`), from a kubeconfig or in-cluster;
`fake.FakeApi` implements it in memory for unit tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import yaml
from kubernetes.aio import client, config
from kubernetes.aio.config import config_exception

from swell import errors
from swell.clusters.kubernetes import scalingrecipe

Obj = dict[str, Any]
TargetRef = scalingrecipe.TargetRef

RECIPES = f"/apis/{scalingrecipe.API_VERSION}"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True, kw_only=True)
class Scale:
    """The target's autoscaling/v1 Scale: asked-for replicas, observed replicas, pod selector."""

    replicas: int
    observed: int
    selector: str
    version: str = ""  # the target's resourceVersion when read ("" when not known)


class Api(Protocol):
    async def get_scale(self, ref: TargetRef) -> Scale: ...

    async def patch_scale(self, ref: TargetRef, replicas: int) -> Scale: ...

    async def list_pods(self, namespace: str | None, *, labels: str = "", fields: str = "") -> list[Obj]: ...

    async def create_pod(self, namespace: str, body: Obj) -> Obj: ...

    async def delete_pod(self, namespace: str, name: str) -> None: ...

    async def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        """Merge-patch a pod's annotations (None removes one)."""
        ...

    async def list_nodes(self, labels: str = "") -> list[Obj]: ...

    async def get_service(self, namespace: str, name: str) -> Obj | None:
        """A Service, or None where there is none of that name."""
        ...

    async def list_recipes(self, namespace: str | None) -> list[Obj]: ...

    async def patch_recipe_status(self, namespace: str, name: str, status: Obj) -> None: ...

    def watch_recipes(self, namespace: str | None, timeout_s: float) -> AsyncIterator[Obj]:
        """The ScalingRecipes' watch events ({"type", "object"}), beginning with an ADDED event
        for each that exists; ends after about `timeout_s` (the caller watches again)."""
        ...

    async def get_lease(self, namespace: str, name: str) -> Obj | None: ...

    async def create_lease(self, namespace: str, body: Obj) -> Obj: ...

    async def replace_lease(self, namespace: str, name: str, body: Obj) -> Obj: ...

    async def create_event(self, namespace: str, body: Obj) -> None: ...

    async def get_priority_class(self, name: str) -> Obj | None: ...

    async def serves(self, api_version: str, plural: str) -> bool: ...

    async def list_all(self, resource: str, namespace: str | None = None) -> tuple[list[Obj], str]:
        """Every object of `resource` (a key of RESOURCES) in `namespace` (None: all), and the
        list's resourceVersion to watch from."""
        ...

    def watch_all(
        self, resource: str, resource_version: str, timeout_s: float, namespace: str | None = None
    ) -> AsyncIterator[Obj]: ...

    async def patch_pod_resize(self, namespace: str, name: str, body: Obj) -> None:
        """Strategic-merge-patch a pod's `resize` subresource (Kubernetes >= 1.33)."""
        ...

    async def get_buffer(self, namespace: str, name: str) -> Obj | None: ...

    async def put_buffer(self, namespace: str, body: Obj, exists: bool) -> None: ...

    async def delete_buffer(self, namespace: str, name: str) -> None: ...

    async def review_token(self, token: str) -> Obj | None: ...

    async def may_get(self, user: Obj, path: str) -> bool: ...

    async def close(self) -> None: ...


BUFFER_API = "autoscaling.x-k8s.io/v1alpha1"  # CapacityBuffer: Cluster Autoscaler, Karpenter

# What the watch-fed caches may follow: resource -> its group version (pods and nodes for the
# replicas and the pool, Deployments and StatefulSets for the targets' replicas).
RESOURCES = {"pods": "v1", "nodes": "v1", "deployments": "apps/v1", "statefulsets": "apps/v1"}


def scale_of(obj: Obj) -> Scale:
    """An autoscaling/v1 Scale object -> Scale (a missing spec.replicas means 0, as the API does)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return Scale(
        replicas=int(spec.get("replicas") or 0),
        observed=int(status.get("replicas") or 0),
        selector=str(status.get("selector") or ""),
        version=str((obj.get("metadata") or {}).get("resourceVersion") or ""),
    )


def format_selector(sel: Obj | None) -> str:
    """A metav1.LabelSelector -> the string its scale subresource reports (what
    `metav1.FormatLabelSelector` writes: terms sorted by key, set values sorted)."""
    if not sel:
        return ""
    terms: list[tuple[str, str]] = [(k, f"{k}={v}") for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        key, op, values = e.get("key", ""), e.get("operator", ""), sorted(e.get("values") or [])
        text = {
            "In": f"{key} in ({','.join(values)})",
            "NotIn": f"{key} notin ({','.join(values)})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(op)
        if text is None:
            return ""  # an operator the API server would reject: let the caller read /scale
        terms.append((key, text))
    return ",".join(t for _, t in sorted(terms))


def scale_of_workload(obj: Obj) -> Scale:
    """A Deployment or StatefulSet -> the Scale its /scale subresource would return."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    replicas = spec.get("replicas")
    return Scale(
        replicas=1 if replicas is None else int(replicas),  # the API server defaults it to 1
        observed=int(status.get("replicas") or 0),
        selector=format_selector(spec.get("selector")),
        version=str((obj.get("metadata") or {}).get("resourceVersion") or ""),
    )


def _group_path(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def _check_kubeconfig(path: str) -> None:
    """A kubeconfig the client can read: YAML holding a mapping (the client's own reader fails on
    anything else with an error that names nothing)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise errors.ClusterError(f"kubeconfig {path}: not YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise errors.ClusterError(
            f"kubeconfig {path}: not a kubeconfig (expected a mapping with clusters, contexts and users, "
            f"got {type(data).__name__ if data is not None else 'an empty file'})"
        )


class KubeApi:
    """`Api` over the official client's asyncio API; raw paths, so any kind with /scale works."""

    def __init__(self, cfg: client.Configuration, *, timeout_s: float = 10.0) -> None:
        self._client = client.ApiClient(cfg)
        self._timeout = timeout_s
        self._plurals: dict[tuple[str, str], str] = {}

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeApi:
        """From `kubeconfig` (or $KUBECONFIG, ~/.kube/config), or in-cluster when run in a pod."""
        cfg = client.Configuration()
        try:
            if (
                kubeconfig is None
                and "KUBERNETES_SERVICE_HOST" in os.environ
                and not os.environ.get("KUBECONFIG")
            ):
                config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            else:
                path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
                where = path or os.path.expanduser("~/.kube/config")
                if not os.path.exists(where):
                    raise errors.ClusterError(
                        f"no kubeconfig at {where} (give --kubeconfig, set $KUBECONFIG, or run in a pod)"
                    )
                if os.path.isdir(where):
                    raise errors.ClusterError(f"kubeconfig {where}: a directory, not a kubeconfig file (--kubeconfig)")
                _check_kubeconfig(where)
                await config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=path, context=context, client_configuration=cfg
                )
        except (config_exception.ConfigException, OSError, ValueError) as exc:
            raise errors.ClusterError(f"cannot load the Kubernetes configuration: {exc}") from None
        except (TypeError, KeyError, AttributeError) as exc:  # the client's reader on a malformed file
            raise errors.ClusterError(f"cannot load the Kubernetes configuration: not a valid kubeconfig ({exc})") from None
        return cls(cfg)

    async def close(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout_s: float | None = None,
    ) -> Any:
        """The raw response (its body not read yet: a watch streams it)."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        m, url, hdrs, data, post = await self._client.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return await self._client.call_api(
            m, url, hdrs, data, post, _request_timeout=timeout_s or self._timeout
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        missing_ok: bool = False,
    ) -> Obj | None:
        try:
            resp = await self._send(method, path, query=query, body=body, content_type=content_type)
            raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError, client.ApiException) as exc:
            raise errors.KubernetesError(
                f"{method} {path}: no answer from the API server: {exc}", status=0
            ) from None
        if resp.status == 404 and missing_ok:
            return None
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"message": raw[:200].decode(errors="replace")}
        if resp.status >= 400:
            msg = payload.get("message") if isinstance(payload, dict) else None
            raise errors.KubernetesError(
                f"{method} {path}: HTTP {resp.status}: {msg or resp.reason}", status=resp.status
            )
        return payload if isinstance(payload, dict) else {}

    async def _plural(self, api_version: str, kind: str) -> str:
        """The resource name of `kind` from API discovery; checks it has a scale subresource."""
        key = (api_version, kind)
        if key not in self._plurals:
            doc = await self._call("GET", _group_path(api_version), missing_ok=True)
            if doc is None:
                raise errors.KubernetesError(f"the API server does not serve {api_version}", status=404)
            names = {r.get("name", "") for r in doc.get("resources", [])}
            for r in doc.get("resources", []):
                if r.get("kind") == kind and "/" not in r.get("name", ""):
                    if r["name"] + "/scale" not in names:
                        raise errors.KubernetesError(
                            f"{kind} ({api_version}) has no scale subresource", status=422
                        )
                    self._plurals[key] = r["name"]
                    break
            else:
                raise errors.KubernetesError(f"{api_version} has no kind {kind}", status=404)
        return self._plurals[key]

    async def _scale_path(self, ref: TargetRef) -> str:
        plural = await self._plural(ref.api_version, ref.kind)
        return f"{_group_path(ref.api_version)}/namespaces/{ref.namespace}/{plural}/{ref.name}/scale"

    async def get_scale(self, ref: TargetRef) -> Scale:
        obj = await self._call("GET", await self._scale_path(ref))
        return scale_of(obj or {})

    async def patch_scale(self, ref: TargetRef, replicas: int) -> Scale:
        body = {"spec": {"replicas": replicas}}
        obj = await self._call("PATCH", await self._scale_path(ref), body=body, content_type=MERGE_PATCH)
        return scale_of(obj or {})

    async def list_pods(self, namespace: str | None, *, labels: str = "", fields: str = "") -> list[Obj]:
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        query = [(k, v) for k, v in (("labelSelector", labels), ("fieldSelector", fields)) if v]
        return list((await self._call("GET", path, query=query) or {}).get("items", []))

    async def create_pod(self, namespace: str, body: Obj) -> Obj:
        return await self._call("POST", f"/api/v1/namespaces/{namespace}/pods", body=body) or {}

    async def delete_pod(self, namespace: str, name: str) -> None:
        await self._call("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", missing_ok=True)

    async def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        body = {"metadata": {"annotations": annotations}}
        await self._call("PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}", body=body, content_type=MERGE_PATCH)

    async def list_nodes(self, labels: str = "") -> list[Obj]:
        query = [("labelSelector", labels)] if labels else []
        return list((await self._call("GET", "/api/v1/nodes", query=query) or {}).get("items", []))

    async def get_service(self, namespace: str, name: str) -> Obj | None:
        return await self._call("GET", f"/api/v1/namespaces/{namespace}/services/{name}", missing_ok=True)

    async def list_recipes(self, namespace: str | None) -> list[Obj]:
        ns = f"/namespaces/{namespace}" if namespace else ""
        doc = await self._call("GET", f"{RECIPES}{ns}/{scalingrecipe.PLURAL}")
        return list((doc or {}).get("items", []))

    async def watch_recipes(self, namespace: str | None, timeout_s: float) -> AsyncIterator[Obj]:
        ns = f"/namespaces/{namespace}" if namespace else ""
        async for event in self._watch(f"{RECIPES}{ns}/{scalingrecipe.PLURAL}", timeout_s):
            yield event

    @staticmethod
    def _collection(resource: str, namespace: str | None) -> str:
        if resource not in RESOURCES:
            raise errors.KubernetesError(f"resource {resource!r}: not one of {sorted(RESOURCES)}", status=400)
        ns = f"/namespaces/{namespace}" if namespace else ""
        return f"{_group_path(RESOURCES[resource])}{ns}/{resource}"

    async def list_all(self, resource: str, namespace: str | None = None) -> tuple[list[Obj], str]:
        """Every object of `resource` in `namespace` (None: all; nodes have none), and the list's
        resourceVersion to watch from."""
        doc = await self._call("GET", self._collection(resource, namespace)) or {}
        return list(doc.get("items", [])), str((doc.get("metadata") or {}).get("resourceVersion", ""))

    async def watch_all(
        self, resource: str, resource_version: str, timeout_s: float, namespace: str | None = None
    ) -> AsyncIterator[Obj]:
        async for event in self._watch(self._collection(resource, namespace), timeout_s, resource_version):
            yield event

    async def _watch(self, path: str, timeout_s: float, resource_version: str = "") -> AsyncIterator[Obj]:
        query = [("watch", "true"), ("timeoutSeconds", str(max(1, round(timeout_s))))]
        if resource_version:
            query += [("resourceVersion", resource_version), ("allowWatchBookmarks", "true")]
        try:
            resp = await self._send("GET", path, query=query, timeout_s=timeout_s + 30)
            if resp.status >= 400:
                raw = await resp.read()
                raise errors.KubernetesError(
                    f"GET {path}?watch: HTTP {resp.status}: {raw[:200].decode(errors='replace')}",
                    status=resp.status,
                )
            async for line in resp.response.content:  # one JSON event per line
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":  # e.g. 410 Gone: the caller watches afresh
                    status = event.get("object") or {}
                    raise errors.KubernetesError(
                        f"watch {path}: {status.get('message', 'error')}", status=int(status.get("code") or 0)
                    )
                yield event
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, client.ApiException) as exc:
            raise errors.KubernetesError(f"watch {path}: {exc}", status=0) from None

    async def patch_recipe_status(self, namespace: str, name: str, status: Obj) -> None:
        path = f"{RECIPES}/namespaces/{namespace}/{scalingrecipe.PLURAL}/{name}/status"
        await self._call("PATCH", path, body={"status": status}, content_type=MERGE_PATCH)

    def _lease_path(self, namespace: str, name: str = "") -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        return f"{base}/{name}" if name else base

    async def get_lease(self, namespace: str, name: str) -> Obj | None:
        return await self._call("GET", self._lease_path(namespace, name), missing_ok=True)

    async def create_lease(self, namespace: str, body: Obj) -> Obj:
        return await self._call("POST", self._lease_path(namespace), body=body) or {}

    async def replace_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        return await self._call("PUT", self._lease_path(namespace, name), body=body) or {}

    async def create_event(self, namespace: str, body: Obj) -> None:
        await self._call("POST", f"/api/v1/namespaces/{namespace}/events", body=body)

    async def get_priority_class(self, name: str) -> Obj | None:
        return await self._call("GET", f"/apis/scheduling.k8s.io/v1/priorityclasses/{name}", missing_ok=True)

    async def serves(self, api_version: str, plural: str) -> bool:
        """Whether the API server serves `plural` in `api_version` (discovery)."""
        doc = await self._call("GET", _group_path(api_version), missing_ok=True)
        return doc is not None and any(r.get("name") == plural for r in doc.get("resources", []))

    async def patch_pod_resize(self, namespace: str, name: str, body: Obj) -> None:
        await self._call(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{name}/resize",
            body=body,
            content_type=STRATEGIC_PATCH,
        )

    def _buffer_path(self, namespace: str, name: str = "") -> str:
        path = f"/apis/{BUFFER_API}/namespaces/{namespace}/capacitybuffers"
        return f"{path}/{name}" if name else path

    async def get_buffer(self, namespace: str, name: str) -> Obj | None:
        return await self._call("GET", self._buffer_path(namespace, name), missing_ok=True)

    async def put_buffer(self, namespace: str, body: Obj, exists: bool) -> None:
        """Create the CapacityBuffer, or merge-patch its spec when it `exists`."""
        if exists:
            name = body["metadata"]["name"]
            patch = {"spec": body["spec"]}
            await self._call(
                "PATCH", self._buffer_path(namespace, name), body=patch, content_type=MERGE_PATCH
            )
        else:
            await self._call("POST", self._buffer_path(namespace), body=body)

    async def delete_buffer(self, namespace: str, name: str) -> None:
        await self._call("DELETE", self._buffer_path(namespace, name), missing_ok=True)

    async def review_token(self, token: str) -> Obj | None:
        """TokenReview: the user a bearer token belongs to, or None if it authenticates nobody."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        out = await self._call("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=body) or {}
        st = out.get("status") or {}
        return st.get("user") or {} if st.get("authenticated") else None

    async def may_get(self, user: Obj, path: str) -> bool:
        """SubjectAccessReview: may `user` (a TokenReview's user) GET the non-resource URL `path`?"""
        spec = {
            "user": user.get("username", ""),
            "groups": user.get("groups") or [],
            "uid": user.get("uid", ""),
            "extra": user.get("extra") or {},
            "nonResourceAttributes": {"path": path, "verb": "get"},
        }
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        out = await self._call("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=body) or {}
        return bool((out.get("status") or {}).get("allowed"))
