"""Pods, nodes and the targets' replicas from watch-fed caches, not read every tick (what
client-go's informers do).

An Informer lists a resource once, then follows its watch from that resourceVersion (bookmarks
keep it current; 410 Gone or a broken watch: list again). CachedApi answers `list_pods` and
`list_nodes` from the informers once they have synced (label selectors, `spec.nodeName=` field
selectors), and `get_scale` of a Deployment or StatefulSet from the Deployments and StatefulSets
of the namespaces watched. It passes every other call to the API server, and so any selector it
cannot evaluate, a target of another kind, one not in the cache, or a cache not synced (yet, or
because the watch fails, e.g. without the `list`/`watch` grant). It counts the requests that reach
the server, by operation, and the reads it answered itself (`hits`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from swell import errors
from swell.clusters.kubernetes import api

log = logging.getLogger(__name__)
Obj = dict[str, Any]
WATCH_S = 300.0


def _labels(obj: Obj | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def _node(obj: Obj | None) -> str:
    return str(((obj or {}).get("spec") or {}).get("nodeName") or "")


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


K = TypeVar("K")


def _unindex(index: dict[K, set[tuple[str, str]]], term: K, key: tuple[str, str]) -> None:
    keys = index.get(term)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[term]


class Informer:
    """One resource (a key of `api.RESOURCES`) in one namespace (None: all), kept current by
    list + watch."""

    def __init__(
        self,
        client: api.Api,
        resource: str,
        retry_s: float = 1.0,
        namespace: str | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.api, self.resource, self.retry_s, self.namespace = client, resource, retry_s, namespace
        self.on_change = on_change  # called after each list and each event applied
        self.objects: dict[tuple[str, str], Obj] = {}
        self.by_label: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (label, value) -> keys
        self.by_node: dict[str, set[tuple[str, str]]] = {}  # spec.nodeName -> keys (pods)
        self.synced = asyncio.Event()
        self.version = ""

    def _put(self, key: tuple[str, str], obj: Obj | None) -> None:
        """Store `obj` under `key` (None: remove it), keeping the indexes."""
        old = self.objects.pop(key, None)
        if old is not None:
            for kv in _labels(old).items():
                _unindex(self.by_label, kv, key)
            _unindex(self.by_node, _node(old), key)
        if obj is not None:
            self.objects[key] = obj
            for kv in _labels(obj).items():
                self.by_label.setdefault(kv, set()).add(key)
            self.by_node.setdefault(_node(obj), set()).add(key)

    def apply(self, event: Obj) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            self._put(_key(obj), self._trim(obj))
        elif kind == "DELETED":
            self._put(_key(obj), None)
        if rv:
            self.version = str(rv)
        if self.on_change is not None and kind in ("ADDED", "MODIFIED", "DELETED"):
            self.on_change()

    def _trim(self, obj: Obj) -> Obj:
        """What is kept of an object: all of a pod or node; of a Deployment or StatefulSet only
        what its scale says (its pod template is most of its size, and unused here)."""
        if self.resource not in CACHED_KINDS.values():
            return obj
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        return {
            "metadata": {k: meta[k] for k in ("name", "namespace", "resourceVersion") if k in meta},
            "spec": {k: spec[k] for k in ("replicas", "selector") if k in spec},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)},
        }

    async def relist(self) -> None:
        items, self.version = await self.api.list_all(self.resource, self.namespace)
        self.objects, self.by_label, self.by_node = {}, {}, {}
        for o in items:
            self._put(_key(o), self._trim(o))
        self.synced.set()
        if self.on_change is not None:
            self.on_change()

    def select(self, terms: list[Term], namespace: str | None = None, node: str | None = None) -> list[Obj]:
        """The objects in `namespace` (None: any) on `node` (None: any) whose labels match
        `terms`; the node, or an equality or `in` term, narrows the search through an index.
        Sorted by (namespace, name), whichever index answered: the status compares lists."""
        keys: Iterable[tuple[str, str]] = self.objects if node is None else self.by_node.get(node, ())
        for op, key, values in terms if node is None else ():
            if op in ("=", "in"):
                keys = set().union(*(self.by_label.get((key, v), ()) for v in values))
                break
        out = []
        for k in keys:
            obj = self.objects.get(k)
            if (
                obj is not None
                and (namespace is None or k[0] == namespace)
                and (node is None or _node(obj) == node)
                and matches(terms, _labels(obj))
            ):
                out.append(obj)
        return sorted(out, key=_key)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.retry_s
        while not stop.is_set():
            try:
                if not self.version:
                    await self.relist()
                async for event in self.api.watch_all(self.resource, self.version, WATCH_S, self.namespace):
                    self.apply(event)
                    backoff = self.retry_s
            except errors.KubernetesError as exc:
                if exc.status == 410:  # too old: list again
                    self.version = ""
                    continue
                log.info("watching %s failed (read from the API server meanwhile): %s", self.resource, exc)
                self.synced.clear()
                self.version = ""
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(2 * backoff, 60.0)


_TERM = re.compile(
    r"^\s*(?:(?P<not>!)\s*(?P<nk>[\w./-]+)|(?P<k>[\w./-]+)\s*(?:(?P<op>==|!=|=)\s*(?P<v>[\w./-]*)"
    r"|\s+(?P<set>in|notin)\s*\((?P<vals>[^)]*)\))?)\s*$"
)


Term = tuple[str, str, frozenset[str]]  # (op, key, values): =, !=, in, notin, exists, absent


def parse_selector(text: str) -> list[Term] | None:
    """A label selector string -> its terms; None if it cannot be parsed here."""
    terms: list[Term] = []
    for part in re.split(r",(?![^(]*\))", text or ""):
        if not part.strip():
            continue
        m = _TERM.match(part)
        if not m:
            return None
        if m.group("not"):
            terms.append(("absent", m.group("nk"), frozenset()))
        elif m.group("op"):
            terms.append(("!=" if m.group("op") == "!=" else "=", m.group("k"), frozenset([m.group("v")])))
        elif m.group("set"):
            terms.append(
                (m.group("set"), m.group("k"), frozenset(x.strip() for x in m.group("vals").split(",")))
            )
        else:
            terms.append(("exists", m.group("k"), frozenset()))
    return terms


def matches(terms: list[Term], labels: dict[str, str]) -> bool:
    for op, key, values in terms:
        have = labels.get(key)
        ok = {
            "=": have in values,
            "in": have in values,
            "!=": have not in values,
            "notin": have not in values,
            "exists": key in labels,
            "absent": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def selector(text: str) -> Callable[[dict[str, str]], bool] | None:
    """A label selector string -> a predicate on labels; None if it cannot be parsed here."""
    terms = parse_selector(text)
    return None if terms is None else (lambda labels: matches(terms, labels))


# The target kinds read from a cache: (apiVersion, kind) -> resource.
CACHED_KINDS = {("apps/v1", "Deployment"): "deployments", ("apps/v1", "StatefulSet"): "statefulsets"}


class CachedApi:
    """An Api whose pod and node listings, and Deployments' and StatefulSets' scale, come from
    watch-fed caches. `namespaces`: where the targets live (None: every namespace, one watch
    each for Deployments and StatefulSets; else one per namespace, as a namespaced install may
    only list there)."""

    def __init__(self, client: api.Api, namespaces: Sequence[str] | None = None) -> None:
        self.api = client
        self.pods = Informer(client, "pods")
        self.nodes = Informer(client, "nodes")
        scopes: list[str | None] = list(namespaces) if namespaces else [None]
        self.targets: dict[str, list[Informer]] = {
            r: [Informer(client, r, namespace=ns) for ns in scopes] for r in CACHED_KINDS.values()
        }
        self.requests: collections.Counter[str] = collections.Counter()  # reached the API server
        self.hits: collections.Counter[str] = collections.Counter()  # answered from a cache
        self._patched: dict[api.TargetRef, str] = {}  # resourceVersion of swell's last /scale patch

    @property
    def informers(self) -> list[Informer]:
        return [self.pods, self.nodes, *(i for group in self.targets.values() for i in group)]

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.api, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.requests[name] += 1
            return attr(*args, **kwargs)

        return counted

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(i.run(stop) for i in self.informers))

    def _cached_target(self, ref: api.TargetRef) -> Obj | None:
        """The target as its synced cache holds it; None when not cached (kind, namespace, not
        synced, not there, or older than swell's own last patch of its scale)."""
        resource = CACHED_KINDS.get((ref.api_version, ref.kind))
        if resource is None:
            return None
        for inf in self.targets[resource]:
            if inf.namespace in (None, ref.namespace) and inf.synced.is_set():
                obj = inf.objects.get((ref.namespace, ref.name))
                patched = self._patched.pop(ref, None)
                version = str((obj or {}).get("metadata", {}).get("resourceVersion") or "")
                if obj is None or (patched is not None and version != patched):
                    return None  # the watch may not have brought swell's own patch yet: ask
                return obj
        return None

    async def get_scale(self, ref: api.TargetRef) -> api.Scale:
        obj = self._cached_target(ref)
        if obj is not None:
            self.hits["get_scale"] += 1
            return api.scale_of_workload(obj)
        self.requests["get_scale"] += 1
        return await self.api.get_scale(ref)

    async def patch_scale(self, ref: api.TargetRef, replicas: int) -> api.Scale:
        self.requests["patch_scale"] += 1
        scale = await self.api.patch_scale(ref, replicas)
        if scale.version:
            self._patched[ref] = scale.version
        return scale

    async def list_pods(self, namespace: str | None, *, labels: str = "", fields: str = "") -> list[Obj]:
        node = re.fullmatch(r"spec\.nodeName=([\w.-]+)", fields) if fields else None
        terms = parse_selector(labels)
        if self.pods.synced.is_set() and (not fields or node) and terms is not None:
            found = self.pods.select(terms, namespace, node.group(1) if node else None)
            self.hits["list_pods"] += 1
            return found
        self.requests["list_pods"] += 1
        return await self.api.list_pods(namespace, labels=labels, fields=fields)

    async def list_nodes(self, labels: str = "") -> list[Obj]:
        terms = parse_selector(labels)
        if self.nodes.synced.is_set() and terms is not None:
            self.hits["list_nodes"] += 1
            return self.nodes.select(terms)
        self.requests["list_nodes"] += 1
        return await self.api.list_nodes(labels)
