"""Pods and nodes from watch-fed caches, not listed every tick (what client-go's informers do).

An Informer lists a resource once, then follows its watch from that resourceVersion (bookmarks
keep it current; 410 Gone or a broken watch: list again). CachedApi answers `list_pods` and
`list_nodes` from the informers once they have synced (label selectors, `spec.nodeName=` field
selectors), and passes every other call, and any selector it cannot evaluate, to the API server.
It counts the requests that reach the server, by operation.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from swell import errors
from swell.clusters.kubernetes import api

log = logging.getLogger(__name__)
Obj = dict[str, Any]
WATCH_S = 300.0


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


class Informer:
    """One resource ("pods" or "nodes"), kept current by list + watch."""

    def __init__(self, client: api.Api, resource: str, retry_s: float = 1.0) -> None:
        self.api, self.resource, self.retry_s = client, resource, retry_s
        self.objects: dict[tuple[str, str], Obj] = {}
        self.synced = asyncio.Event()
        self.version = ""

    def apply(self, event: Obj) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            self.objects[_key(obj)] = obj
        elif kind == "DELETED":
            self.objects.pop(_key(obj), None)
        if rv:
            self.version = str(rv)

    async def relist(self) -> None:
        items, self.version = await self.api.list_all(self.resource)
        self.objects = {_key(o): o for o in items}
        self.synced.set()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.retry_s
        while not stop.is_set():
            try:
                if not self.version:
                    await self.relist()
                async for event in self.api.watch_all(self.resource, self.version, WATCH_S):
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


class CachedApi:
    """An Api whose pod and node listings come from watch-fed caches."""

    def __init__(self, client: api.Api) -> None:
        self.api = client
        self.pods = Informer(client, "pods")
        self.nodes = Informer(client, "nodes")
        self.requests: collections.Counter[str] = collections.Counter()  # reached the API server

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.api, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.requests[name] += 1
            return attr(*args, **kwargs)

        return counted

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self.pods.run(stop), self.nodes.run(stop))

    @staticmethod
    def _match(objs: Iterable[Obj], labels: str) -> list[Obj] | None:
        pred = selector(labels)
        if pred is None:
            return None
        return [o for o in objs if pred(((o.get("metadata") or {}).get("labels")) or {})]

    async def list_pods(self, namespace: str | None, *, labels: str = "", fields: str = "") -> list[Obj]:
        node = re.fullmatch(r"spec\.nodeName=([\w.-]+)", fields) if fields else None
        if self.pods.synced.is_set() and (not fields or node):
            objs = [
                o
                for (ns, _), o in list(self.pods.objects.items())
                if (namespace is None or ns == namespace)
                and (node is None or (o.get("spec") or {}).get("nodeName") == node.group(1))
            ]
            found = self._match(objs, labels)
            if found is not None:
                return found
        self.requests["list_pods"] += 1
        return await self.api.list_pods(namespace, labels=labels, fields=fields)

    async def list_nodes(self, labels: str = "") -> list[Obj]:
        if self.nodes.synced.is_set():
            found = self._match(list(self.nodes.objects.values()), labels)
            if found is not None:
                return found
        self.requests["list_nodes"] += 1
        return await self.api.list_nodes(labels)
