"""The ready pods behind a Service, kept current from a pod watch: where swell's gateway sends
requests on Kubernetes (Knative's activator and KEDA's HTTP interceptor find theirs the same way).

A pod is an endpoint while it is Ready, has an IP and is not being deleted, as the EndpointSlice
controller counts serving endpoints. The Service's selector picks the pods; the Service port's
`targetPort` (a number, or the name of a container port) is their port. Each change goes to a
`Routing` (the gateway): a pod being deleted takes no new request, and those it holds finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from swell import errors
from swell.clusters.kubernetes import api, cache

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class Routing(Protocol):
    """What the endpoints are handed to (swell's gateway)."""

    def add_backend(self, name: str, url: str) -> None: ...

    def remove_backend(self, name: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Target:
    """The pods a Service selects, and the port its requests go to on each."""

    namespace: str
    service: str
    selector: Mapping[str, str]
    port: int | str  # a number, or the name of a container port
    scheme: str = "http"

    def describe(self) -> str:
        sel = ",".join(f"{k}={v}" for k, v in sorted(self.selector.items()))
        return f"service {self.namespace}/{self.service} (pods {sel}, port {self.port})"


def target_of(svc: Obj, port: str | None = None) -> Target:
    """The Target of a Service object. `port`: the Service port to use, by name or number (None:
    the only one, else the one named `http`). Raises ClusterError naming what is missing."""
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    where = f"service {meta.get('namespace', '')}/{meta.get('name', '')}"
    selector = spec.get("selector") or {}
    if not selector:
        raise errors.ClusterError(
            f"{where} has no selector: its endpoints are not pods swell can follow (give it a selector)"
        )
    ports = list(spec.get("ports") or [])
    if not ports:
        raise errors.ClusterError(f"{where} has no ports")
    names = ", ".join(str(p.get("name") or p.get("port")) for p in ports)
    if port is not None:
        chosen = [p for p in ports if port in (str(p.get("name") or ""), str(p.get("port")))]
        if not chosen:
            raise errors.ClusterError(f"{where} has no port {port!r} (it has {names})")
    else:
        chosen = ports if len(ports) == 1 else [p for p in ports if p.get("name") == "http"]
        if not chosen:
            raise errors.ClusterError(f"{where} has ports {names}: name the one to use (--service-port)")
    p = chosen[0]
    target = p.get("targetPort", p.get("port"))
    return Target(
        namespace=str(meta.get("namespace", "")),
        service=str(meta.get("name", "")),
        selector=dict(selector),
        port=int(target) if isinstance(target, int) or str(target).isdigit() else str(target),
        scheme="https" if str(p.get("appProtocol") or p.get("name") or "").lower() == "https" else "http",
    )


def serving(pod: Obj) -> bool:
    """Whether a pod takes new requests: Ready, with an IP, not being deleted."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp") or not status.get("podIP"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def pod_port(pod: Obj, port: int | str) -> int | None:
    """The number `port` means on this pod (a name: its container port of that name)."""
    if isinstance(port, int):
        return port
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") == port and p.get("containerPort"):
                return int(p["containerPort"])
    return None


def urls(pods: list[Obj], target: Target) -> dict[str, str]:
    """{pod name: base URL} of the serving pods (an IPv6 address in brackets)."""
    out = {}
    for pod in pods:
        number = pod_port(pod, target.port)
        if not serving(pod) or number is None:
            continue
        ip = str(pod["status"]["podIP"])
        host = f"[{ip}]" if ":" in ip else ip
        out[str(pod["metadata"]["name"])] = f"{target.scheme}://{host}:{number}"
    return out


class Endpoints:
    """Keeps a Routing's backends equal to a Target's serving pods, from one pod watch in the
    Target's namespace (a watch that breaks is listed again; the backends stay meanwhile)."""

    def __init__(self, client: api.Api, target: Target, routing: Routing, retry_s: float = 1.0) -> None:
        self.target, self.routing = target, routing
        self.terms: list[cache.Term] = [("=", k, frozenset([v])) for k, v in target.selector.items()]
        self.informer = cache.Informer(client, "pods", retry_s, target.namespace, on_change=self.sync)
        self.current: dict[str, str] = {}
        self.changed = asyncio.Event()  # set at each change of the backends (tests and logs wait on it)
        self.portless: set[str] = set()  # ready pods without the target's port, said once each

    def sync(self) -> None:
        pods = self.informer.select(self.terms, self.target.namespace)
        want = urls(pods, self.target)
        for pod in pods:
            name = str(pod["metadata"]["name"])
            if serving(pod) and name not in want and name not in self.portless:
                self.portless.add(name)
                log.warning("pod %s is ready but has no container port named %r: no requests go to it "
                            "(name the port in the pod template, or give --service-port)", name, self.target.port)  # fmt: skip
        for name in sorted(set(self.current) - set(want)):
            self.routing.remove_backend(name)
            log.info("pod %s left %s: no new requests to it", name, self.target.service)
        for name, url in sorted(want.items()):
            if self.current.get(name) != url:
                self.routing.add_backend(name, url)
                log.info("pod %s serves %s at %s", name, self.target.service, url)
        if want != self.current:
            self.current = want
            self.changed.set()
            self.changed = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        await self.informer.run(stop)

