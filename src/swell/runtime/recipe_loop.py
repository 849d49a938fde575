"""One ScalingRecipe's loop on Kubernetes: the RecipeLoop (the one loop's Cluster for that recipe)
and its scoped Prometheus source.

A RecipeLoop runs the same `control.loop.Controller` as local and sim over a KubernetesCluster and
a Scoped PrometheusSource; it starts from the policy state in the CR status and writes it back,
with conditions, events, headroom and, for TorchServe, the workers in each pod (the loop's
`WorkerControl`, `clusters.kubernetes.workers`): when something a reader acts on changed
(`status.what_changed`), else every `status_heartbeat_ticks` ticks, as the HPA writes its status
when it changes. The operator process around it (watch, lease,
/metrics) is `runtime.kubernetes`.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from swell import clock as clock_mod
from swell import errors, recipe
from swell.clusters.kubernetes import (
    api,
    buffers,
    controller,
    headroom,
    scalingrecipe,
    scope,
    status,
    telemetry,
)
from swell.clusters.kubernetes import workers as torchserve_workers
from swell.control import loop
from swell.core import decision, snapshot, world
from swell.core.policies import steps, workers
from swell.metrics import prometheus

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Options:
    identity: str
    namespace: str | None = None  # watch these namespaces (comma-separated); None: all
    headroom_namespace: str | None = None  # where placeholders live (swell's own); None: each recipe's
    prometheus_url: str | None = None  # for recipes that name no server
    dry_run: bool = False
    leader_elect: bool = True
    lease_namespace: str = "default"
    lease_name: str = "swell-controller"
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0
    resync_s: float = 30.0  # how often the ScalingRecipes are listed (the watch notices changes at once)
    host: str = "127.0.0.1"
    port: int = 8080  # /metrics and /healthz; 0: any free port
    metrics_secure: bool = False  # HTTPS, and /metrics only for tokens allowed to GET it
    metrics_cert_dir: str | None = None  # tls.crt and tls.key; default a self-signed certificate
    capacity_buffers: str = "auto"  # auto: a CapacityBuffer where the cluster serves the API; on; off
    any_namespace_queries: bool = False  # raw `query` signals may read other namespaces' series
    allowed_prometheus_urls: tuple[str, ...] = ()  # besides prometheus_url, what a recipe may name
    prometheus_auth: prometheus.Auth = field(default_factory=prometheus.Auth)  # headers, token or password files, TLS
    # the status is written when it changes, else after this many ticks (1: every tick); until
    # then a new leader would start from a policy state up to this many ticks old (times only)
    status_heartbeat_ticks: int = 8


class NoMetrics:
    """A recipe with no Prometheus server: every signal is no value, and says why."""

    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: object = None
    ) -> dict[str, snapshot.Reading]:
        why = "no Prometheus server: set autoscaling.metrics.prometheus_url or --prometheus-url"
        return {s.name: snapshot.Reading.missing(why) for s in sigs}


class Scoped:
    """A recipe's signals sent as the scoped PromQL (`scope.scoped_query`): its namespace, its
    metricLabels, GPU utilization by the target's pods; `last` keeps what was sent for the status."""

    def __init__(
        self, inner: prometheus.PrometheusSource, spec: scalingrecipe.Spec, any_namespace: bool
    ) -> None:
        self.inner, self.spec, self.any_namespace = inner, spec, any_namespace
        self.last: dict[str, str] = {}
        self.read_s: float | None = None  # how long the last read took (every query, concurrently)

    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: object = None
    ) -> dict[str, snapshot.Reading]:
        pods = [r.name for r in state.replicas] if isinstance(state, world.ClusterState) else []
        s = self.spec
        self.last = {
            sig.name: scope.scoped_query(
                sig,
                namespace=s.namespace,
                labels=s.metric_labels,
                pods=pods,
                resources=s.recipe.resources,
                any_namespace=self.any_namespace,
            )
            for sig in sigs
        }
        raw = [sig.model_copy(update={"kind": "promql", "query": self.last[sig.name]}) for sig in sigs]
        started = time.perf_counter()
        try:
            return await self.inner.read(raw, now, state)
        finally:
            self.read_s = time.perf_counter() - started


class RecipeLoop:
    """One ScalingRecipe: its Controller, target and signal source; the loop's `Cluster` itself."""

    def __init__(
        self,
        client: api.Api,
        spec: scalingrecipe.Spec,
        previous: api.Obj,
        opts: Options,
        may_act: Callable[[], bool],
        source: world.SignalSource,
    ) -> None:
        self.spec, self.opts, self.api = spec, opts, client
        self.previous = previous  # the status as last published (conditions, decisions)
        state = steps.State.from_json(previous.get("policyState") or {})
        self.controller = loop.Controller(spec.recipe, state=state)
        last = previous.get("lastAppliedReplicas")
        self.cluster = controller.KubernetesCluster(
            client,
            spec,
            dry_run=opts.dry_run or spec.paused,
            may_act=may_act,
            last_applied=last,
            headroom_namespace=opts.headroom_namespace,
        )
        preempted = int((previous.get("headroom") or {}).get("preemptions", 0))
        self.headroom = headroom.Headroom(client, preempted, home=opts.headroom_namespace)
        self.source = source
        # workers inside the pods (TorchServe's management API), and their memory where it can resize
        self.workers = (
            torchserve_workers.TorchServe(client, spec, dry_run=opts.dry_run or spec.paused, may_act=may_act)
            if spec.recipe.workers is not None and spec.recipe.service.engine == "torchserve"
            else None
        )
        self.obs: controller.Observation | None = None
        self.clock: clock_mod.Clock = clock_mod.SystemClock()
        self.next_due = 0.0
        self.scaled_at: str | None = previous.get("lastScaleTime")
        self.use_buffers = False  # headroom as a CapacityBuffer, not placeholder pods
        self.written: tuple[api.Obj, dict[str, float]] | None = None  # the status as last written
        self.unwritten = 0  # ticks since it was written
        self.spare: int | None = None  # spare nodes the last decision asked for (None: headroom_nodes)

    async def keep_spare(self, nodes: int | None) -> None:
        """Headroom (placeholders or a CapacityBuffer) for `nodes` spare nodes from this tick on;
        None: the recipe's headroom_nodes. Reconciled after the tick, with the status."""
        self.spare = nodes

    async def observe(self) -> world.ClusterState:
        self.obs = obs = await self.cluster.observe()
        if obs.external_change is not None:
            was, now_ = obs.external_change
            # A person (or another tool) set the count: start over from it instead of undoing it.
            # The stabilization windows now hold it, and the rate history restarts.
            self.controller.state = self.controller.state.restart_from(self.clock.now(), now_)
            await self.cluster.event(
                "ExternalRescale",
                f"replicas changed outside swell: {was} -> {now_}; swell starts over from {now_}",
                "Warning",
            )
        return world.ClusterState(current=obs.current, replicas=obs.replicas, nodes=obs.nodes)

    async def observe_workers(self) -> tuple[workers.Observed, ...] | None:
        """core.world.WorkerControl: each ready pod's TorchServe workers (None: no workers here)."""
        if self.workers is None or self.obs is None:
            return None
        return await self.workers.observe(self.obs.pods)

    async def set_workers(self, replica: str, count: int) -> None:
        if self.workers is not None:
            await self.workers.set_workers(replica, count)

    async def apply(self, d: decision.Decision) -> None:
        if await self.cluster.scale_to(d.desired, d.reason):
            self.scaled_at = controller.rfc3339(self.clock.now())

    async def tick(self, clock: clock_mod.Clock, metrics: telemetry.Metrics) -> None:
        self.clock, self.obs = clock, None
        error = ""
        done: loop.Tick | None = None
        try:
            done = await self.controller.tick(self, self.source, clock)
        except errors.SwellError as exc:
            error = str(exc)
            log.warning("%s/%s: %s", self.spec.namespace, self.spec.name, exc)
            if isinstance(exc, loop.ApplyFailed):
                done = exc.tick  # decided, then the patch failed (the tick forgot its rate effect)
        d = done.decision if done is not None else None
        readings = done.readings if done is not None else {}
        report = None
        if self.obs is not None and not error:
            want = headroom.wanted(self.spec.recipe, self.spare)
            leading = self.cluster.may_act() and not self.opts.dry_run and not self.spec.paused
            try:
                if self.use_buffers:
                    report = await buffers.reconcile(self.api, self.spec, want, act=leading)
                else:
                    report = await self.headroom.reconcile(self.spec, self.obs.headroom, want, act=leading)
            except errors.SwellError as exc:
                error = f"headroom: {exc}"
        body = self.status_body(d, readings, report, error, clock.now())
        read_s = None
        if isinstance(self.source, Scoped):  # this tick's read, once
            read_s, self.source.read_s = self.source.read_s, None
        metrics.record(self.spec, d, readings, report, body, error, read_s=read_s)
        if self.cluster.may_act():  # a controller that lost the lease mid-tick leaves the status be
            await self.failures(body)
            await self.publish(body)

    async def failures(self, body: api.Obj) -> None:
        """A Warning event when a condition turns False for a new reason (metrics lost, scale or
        headroom failing), as the HPA records FailedGetMetrics; not again every tick."""
        before = {c.get("type"): c for c in self.previous.get("conditions") or []}
        for c in body["conditions"]:
            if (
                c["type"] not in ("ScalingActive", "AbleToScale", "MetricsAvailable")
                or c["status"] != "False"
            ):
                continue
            if c["reason"] in ("DryRun", "Paused", "ScalingDisabled", "FailedScale"):
                continue  # chosen, or FailedRescale says it already
            old = before.get(c["type"]) or {}
            if (old.get("status"), old.get("reason")) != ("False", c["reason"]):
                await self.cluster.event(c["reason"], f"{c['type']}: {c['message']}", "Warning")

    def status_body(
        self,
        d: decision.Decision | None,
        readings: Mapping[str, snapshot.Reading],
        report: headroom.Report | None,
        error: str,
        now: float,
    ) -> api.Obj:
        prev, obs = self.previous, self.obs
        conds = status.conditions(
            d, readings, dry_run=self.opts.dry_run, error=error, paused=self.spec.paused
        )
        if self.workers is not None:
            conds.append(self.workers.condition())
        body: api.Obj = {
            "observedGeneration": self.spec.generation,
            "scaleTargetRef": f"{self.spec.target.kind}/{self.spec.target.name}",
            "conditions": status.merge_conditions(conds, prev.get("conditions") or [], now),
            "policyState": self.controller.state.to_json(),
            "lastAppliedReplicas": self.cluster.last_applied,
            "lastScaleTime": self.scaled_at,
            "controller": self.opts.identity,
            "dryRun": self.opts.dry_run,
        }
        if obs is not None:
            body |= {
                "currentReplicas": obs.current,
                "replicas": status.replicas_json(obs),
                "nodes": status.nodes_json(obs),
            }
            if obs.external_change is not None:
                body["lastExternalChange"] = {
                    "time": controller.rfc3339(now),
                    "from": obs.external_change[0],
                    "to": obs.external_change[1],
                }
        if d is not None:
            body["desiredReplicas"] = d.desired
            body["boundBy"] = d.bound_by
            body["lastDecisions"] = status.add_decision(prev.get("lastDecisions") or [], d)
            sent = getattr(self.source, "last", None)
            body["signals"] = status.signals_json(self.spec.recipe, d, readings, sent)
            body["signalSummary"] = status.signal_summary(self.spec.recipe, readings, d)
        if report is not None:
            body["headroom"] = report.to_json()
        if self.workers is not None:
            wanted = d.workers.desired if d is not None and d.workers is not None else None
            body["workers"] = self.workers.to_json(wanted)
        return body

    def news(self, shown: tuple[api.Obj, dict[str, float]]) -> str:
        """Why this tick's status is written ("" when it is not): the first write, a field a
        reader acts on changed, or the heartbeat is due."""
        if self.written is None:
            return "first"
        changed = status.what_changed(shown, self.written)
        if changed:
            return changed
        return "heartbeat" if self.unwritten + 1 >= max(1, self.opts.status_heartbeat_ticks) else ""

    async def publish(self, body: api.Obj) -> None:
        """Write the status if it is news; what it would say is kept either way (`previous`: the
        conditions' transition times, the decisions' counts carry on from it)."""
        s = self.spec
        shown = status.shown(body)
        why = self.news(shown)
        self.previous = self.previous | body
        if not why:
            self.unwritten += 1
            return
        try:
            await controller.retrying(
                lambda: self.api.patch_recipe_status(s.namespace, s.name, body), f"status of {s.name}"
            )
        except errors.KubernetesError as exc:
            log.warning("%s/%s: could not write the status: %s", s.namespace, s.name, exc)
            self.unwritten += 1
            return
        if self.written is None:  # spread the heartbeats of recipes that started together
            beat = max(1, self.opts.status_heartbeat_ticks)
            self.unwritten = zlib.crc32(f"{s.namespace}/{s.name}".encode()) % beat
        else:
            self.unwritten = 0
        self.written = shown
