"""TorchServe workers inside a recipe's pods on Kubernetes: `core.world.WorkerControl`'s cluster side.

Each ready pod's workers are read with `GET http://{podIP}:{port}/models/{model}` and set with
`PUT …?min_worker=N&max_worker=N` (the port: the container port named `management`, which
`swell render` writes), only while leading and never in dry-run. Where the API server offers the
pod `resize` subresource (Kubernetes >= 1.33, found by discovery), the container's memory request
and limit follow the workers in place (base + workers x per worker: grown before workers are
added, shrunk after they stop). Where it does not, a pod runs at most the workers its memory limit
holds, and the replicas scale instead; the status says so (condition `InPlaceResize`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from swell import errors
from swell.clusters.kubernetes import api, controller, pods, scalingrecipe, status
from swell.core.policies import workers
from swell.engines import torchserve

log = logging.getLogger(__name__)
Obj = dict[str, Any]

PORT_NAME = "management"  # the container port swell reaches TorchServe's management API on
RESIZE = "pods/resize"  # the subresource discovery looks for in GET /api/v1
MIB = 2**20
# One Python worker of the built-in handler-only model: `memoryUsage` 231,407,616 bytes (221 MiB)
# in GET /models/NAME, 226 MB resident, measured on this machine (TorchServe 0.12, torch 2.13 CPU).
# A worker's own memoryUsage, where TorchServe reports one (> 0), is used instead.
WORKER_MIB = 220
# The Java frontend: 155 MiB resident when idle here; 512 MiB leaves room for its heap under load.
BASE_MIB = 512
TIMEOUT_S = 5.0  # one management API call
DRAIN_S = 5.0  # before fewer workers: wait at most this long for the model's queue to empty
SHOWN = status.SHOWN_PODS

_QUANTITY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(?:[eE]([-+]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?")
_UNITS = {
    None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip


def memory_bytes(quantity: object) -> int | None:
    """A Kubernetes memory quantity ("4Gi", "4096Mi", "4G", "1e9") in bytes; None if unreadable."""
    m = _QUANTITY.fullmatch(str(quantity).strip())
    if m is None:
        return None
    number, exponent, unit = m.groups()
    return math.ceil(float(number) * 10.0 ** int(exponent or 0) * _UNITS[unit])


def mib(n_bytes: float) -> str:
    return f"{math.ceil(n_bytes / MIB)}Mi"


def gib(n: float) -> str:
    """GiB as a memory quantity: "2Gi", "0.5Gi"; bytes where Python would write an exponent
    (1e-05Gi is no quantity: an exponent and a binary suffix do not combine)."""
    text = f"{n:g}"
    return f"{text}Gi" if "e" not in text else str(math.ceil(n * 2**30))


@dataclass(frozen=True, kw_only=True)
class Target:
    """A ready pod's TorchServe: where its management API answers, and its container's memory."""

    pod: str
    namespace: str
    url: str  # http://{podIP}:{port}
    container: str
    memory: int | None  # bytes: the container's memory limit (else its request); None: none set


def target_of(pod: Obj) -> Target | None:
    """The management API of a ready pod with a container port named `management`; else None."""
    if pods.replica_of(pod).state != "ready":
        return None
    meta, spec, st = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ip = str(st.get("podIP") or "")
    for c in spec.get("containers") or []:
        port = next(
            (p.get("containerPort") for p in c.get("ports") or [] if p.get("name") == PORT_NAME), None
        )
        if port is None or not ip:
            continue
        res = c.get("resources") or {}
        mem = (res.get("limits") or {}).get("memory", (res.get("requests") or {}).get("memory"))
        host = f"[{ip}]" if ":" in ip else ip
        return Target(
            pod=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            url=f"http://{host}:{port}",
            container=str(c.get("name", "")),
            memory=memory_bytes(mem) if mem is not None else None,
        )
    return None


class TorchServe:
    """The workers of one ScalingRecipe's TorchServe pods (engine `torchserve`)."""

    def __init__(
        self,
        client: api.Api,
        spec: scalingrecipe.Spec,
        *,
        dry_run: bool,
        may_act: Callable[[], bool],
        timeout_s: float = TIMEOUT_S,
        drain_s: float = DRAIN_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.api, self.spec = client, spec
        self.model = spec.recipe.service.name  # the model's name in /models/NAME and /predictions/NAME
        self.dry_run, self.may_act = dry_run, may_act
        self.timeout_s, self.drain_s, self._sleep = timeout_s, drain_s, sleep
        self.resize: bool | None = None  # pods/resize served; None: not known (yet)
        self.targets: dict[str, Target] = {}  # ready pods with a management port, last observed
        self.seen: dict[str, torchserve.ModelStatus] = {}  # what each answered
        self.problems: dict[str, str] = {}  # pod -> why its workers could not be read or set

    # ---- discovery -------------------------------------------------------------------------

    async def discover(self) -> bool | None:
        """Whether the API server offers pods/resize (`GET /api/v1` lists it), asked once."""
        if self.resize is None:
            try:
                self.resize = await self.api.serves("v1", RESIZE)
            except errors.KubernetesError as exc:
                log.info("cannot discover %s (asked again next tick): %s", RESIZE, exc)
        return self.resize

    # ---- observe ---------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))

    async def _read(self, session: aiohttp.ClientSession, t: Target) -> torchserve.ModelStatus:
        url = f"{t.url}/models/{self.model}"
        try:
            async with session.get(url) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise errors.ClusterError(f"GET {url}: HTTP {resp.status} {text[:200]}")
            return torchserve.model_status(json.loads(text))
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise errors.ClusterError(f"GET {url}: {exc or type(exc).__name__}") from None

    async def observe(self, pod_objs: Iterable[Obj]) -> tuple[workers.Observed, ...]:
        """Each ready pod's workers and queue (TorchServe's requests waiting for a worker); a pod
        whose management API does not answer is left out, and the status says why."""
        await self.discover()
        self.targets = {t.pod: t for t in map(target_of, pod_objs) if t is not None}
        order = sorted(self.targets)
        async with self._session() as session:
            got = await asyncio.gather(
                *(self._read(session, self.targets[p]) for p in order), return_exceptions=True
            )
        self.seen, self.problems = {}, {}
        out = []
        for name, g in zip(order, got, strict=True):
            if isinstance(g, errors.SwellError):
                self.problems[name] = str(g)
                continue
            if isinstance(g, BaseException):
                raise g
            self.seen[name] = g
            out.append(
                workers.Observed(
                    replica=name,
                    workers=g.workers,
                    queue=float(g.pending),
                    worker_memory_bytes=g.worker_memory_bytes,
                    # the frontend cannot be measured from outside the pod: the estimate BASE_MIB
                    base_memory_bytes=float(BASE_MIB * MIB),
                )
            )
        return tuple(out)

    # ---- memory ----------------------------------------------------------------------------

    def per_worker(self, pod: str) -> float:
        """Bytes one worker takes: as TorchServe measured it in this pod, else the recipe's
        `workers.memory_per_worker_mib`, else WORKER_MIB."""
        seen = self.seen.get(pod)
        if seen is not None and seen.worker_memory_bytes:
            return seen.worker_memory_bytes
        cfg = self.spec.recipe.workers
        return (cfg.memory_per_worker_mib if cfg and cfg.memory_per_worker_mib else WORKER_MIB) * MIB

    def memory_for(self, pod: str, count: int) -> float:
        """The container's memory for `count` workers: the frontend's plus each worker's."""
        return BASE_MIB * MIB + count * self.per_worker(pod)

    def cap(self, pod: str) -> int | None:
        """The workers the pod's memory limit holds (at least 1); None: no limit known."""
        t = self.targets.get(pod)
        if t is None or t.memory is None:
            return None
        return max(1, workers.fitting(t.memory, BASE_MIB * MIB, self.per_worker(pod)))

    def resize_body(self, pod: str, count: int) -> Obj:
        """The strategic merge patch of the pod's `resize` subresource for `count` workers."""
        t = self.targets[pod]
        mem = mib(self.memory_for(pod, count))
        return {
            "spec": {
                "containers": [
                    {
                        "name": t.container,
                        "resources": {"requests": {"memory": mem}, "limits": {"memory": mem}},
                    }
                ]
            }
        }

    async def _resize(self, pod: str, count: int) -> None:
        t, body = self.targets[pod], self.resize_body(pod, count)
        await controller.retrying(lambda: self.api.patch_pod_resize(t.namespace, pod, body), f"resize {pod}")
        self.targets[pod] = replace(
            t, memory=memory_bytes(body["spec"]["containers"][0]["resources"]["limits"]["memory"])
        )

    # ---- set -------------------------------------------------------------------------------

    async def set_workers(self, pod: str, count: int) -> None:
        """`count` workers on the pod (capped by its memory limit where nothing resizes it).

        More: the memory is resized first (where the API offers it), then the PUT returns at once
        (TorchServe starts the workers in the background). Fewer: the gateway that drains a replica
        locally is not in a pod's path, and taking the pod out of its Service would need write
        access to pods/status, which swell's role does not have; so swell waits (at most DRAIN_S)
        until the model's queue is empty, stops the workers with a synchronous PUT, then shrinks
        the memory. A failure is logged and shown in the status; the next tick tries again."""
        t = self.targets.get(pod)
        if t is None:
            return  # not ready any more, or no management port: the next tick observes without it
        want = count
        if not self.resize and (cap := self.cap(pod)) is not None:
            want = min(want, cap)
        seen = self.seen.get(pod)
        have = seen.workers if seen is not None else None
        if want == have:
            return  # capped at what it runs
        if self.dry_run:
            log.info("dry run: would set %s to %d workers (runs %s)", pod, want, have)
            return
        if not self.may_act():
            raise errors.ClusterError(f"not the leader (any more): the workers of {pod} are left as they are")
        fewer = have is not None and want < have
        try:
            if self.resize and not fewer:
                await self._resize(pod, want)
            async with self._session() as session:
                if fewer:
                    await self._drain(session, t)
                await self._put(session, t, want, synchronous=fewer)
            if self.resize and fewer:
                await self._resize(pod, want)
        except errors.SwellError as exc:
            self.problems[pod] = f"setting {want} workers: {exc}"
            log.warning("%s/%s: %s", t.namespace, pod, self.problems[pod])
            return
        self.seen[pod] = torchserve.ModelStatus(
            workers=want, pending=0, worker_memory_bytes=seen.worker_memory_bytes if seen else None
        )
        self.problems.pop(pod, None)

    async def _drain(self, session: aiohttp.ClientSession, t: Target) -> None:
        waited = 0.0
        while waited < self.drain_s:
            try:
                if (await self._read(session, t)).pending == 0:
                    return
            except errors.SwellError:
                return  # the PUT says what is wrong
            await self._sleep(0.05)
            waited += 0.05

    async def _put(self, session: aiohttp.ClientSession, t: Target, count: int, *, synchronous: bool) -> None:
        url = f"{t.url}/models/{self.model}"
        params = {"min_worker": str(count), "max_worker": str(count), "synchronous": str(synchronous).lower()}
        try:
            async with session.put(url, params=params) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    raise errors.ClusterError(f"PUT {url}: HTTP {resp.status} {text[:200]}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise errors.ClusterError(f"PUT {url}: {exc or type(exc).__name__}") from None

    # ---- status ----------------------------------------------------------------------------

    def sizing(self) -> str:
        return f"{BASE_MIB}Mi + per worker what TorchServe measures (until then {WORKER_MIB}Mi)"

    def condition(self) -> status.Condition:
        """`InPlaceResize`: whether the pods' memory can follow their workers."""
        if self.resize is None:
            return status.Condition(
                type="InPlaceResize",
                status="Unknown",
                reason="DiscoveryFailed",
                message=f"could not ask the API server whether it offers {RESIZE} yet",
            )
        if self.resize:
            return status.Condition(
                type="InPlaceResize",
                status="True",
                reason="ResizeSubresource",
                message=f"the API server offers {RESIZE}: each pod's memory request and limit follow "
                f"its workers in place ({self.sizing()})",
            )
        return status.Condition(
            type="InPlaceResize",
            status="False",
            reason="NoResizeSubresource",
            message=f"the API server has no {RESIZE} (Kubernetes < 1.33): workers are capped at what "
            f"the pod's memory limit allows ({self.sizing()}); replicas scale instead",
        )

    def to_json(self, desired: int | None = None) -> Obj:
        """status.workers: the count per pod decided, and per pod the workers, the memory and the
        workers it holds (without resize), and why it could not be read or set."""
        shown = []
        for name in sorted(self.targets.keys() | self.problems.keys())[:SHOWN]:
            row: Obj = {"pod": name}
            if name in self.seen:
                row["workers"] = self.seen[name].workers
            t = self.targets.get(name)
            if t is not None and t.memory is not None:
                row["memory"] = mib(t.memory)
                if not self.resize:
                    row["maxWorkers"] = self.cap(name)
            if name in self.problems:
                row["error"] = self.problems[name][:300]
            shown.append(row)
        out: Obj = {"model": self.model, "inPlaceResize": self.resize, "pods": shown}
        if desired is not None:
            out["desired"] = desired
        return out
