"""Kubernetes runtime: `swell controller`, the operator process.

It watches ScalingRecipes (and lists them every resync), keeps one `recipe_loop.RecipeLoop` per
recipe, ticks them while it holds the Lease, and serves `/metrics` and `/healthz` via aiohttp.
Each recipe_loop.RecipeLoop is the one loop for its recipe (`runtime.recipe_loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp
from aiohttp import web

from swell import clock as clock_mod
from swell import errors
from swell.clusters.kubernetes import (
    api,
    buffers,
    headroom,
    lease,
    metrics_auth,
    pods,
    scalingrecipe,
    status,
    telemetry,
)
from swell.core import world
from swell.metrics import prometheus
from swell.runtime import recipe_loop

log = logging.getLogger(__name__)


WATCH_S = 300.0  # one watch request lasts this long, then the next begins
Options = recipe_loop.Options  # the operator's settings (defined beside the loop that reads them)


class Runtime:
    def __init__(
        self,
        client: api.Api,
        opts: Options,
        clock: clock_mod.Clock | None = None,
        sources: Callable[[scalingrecipe.Spec], world.SignalSource] | None = None,
    ) -> None:
        self.api, self.opts = client, opts
        self.sources = sources or self._prometheus
        self.clock = clock or clock_mod.SystemClock()
        self.elector = lease.Elector(
            client,
            lease.Settings(
                namespace=opts.lease_namespace,
                name=opts.lease_name,
                identity=opts.identity,
                lease_duration_s=opts.lease_duration_s,
                renew_deadline_s=opts.renew_deadline_s,
                retry_period_s=opts.retry_period_s,
            ),
        )
        self.loops: dict[tuple[str, str], recipe_loop.RecipeLoop] = {}
        self.invalid: dict[tuple[str, str], int] = {}  # recipes with errors -> generation reported
        self.metrics = telemetry.Metrics(opts.identity)
        self.alive_at = time.monotonic()
        self.port = opts.port
        self.guard: metrics_auth.Guard | None = None
        self._buffers: bool | None = None  # the cluster serves CapacityBuffers (None: not asked yet)
        self._session: aiohttp.ClientSession | None = None
        self._next_sync = 0.0
        self._wake = asyncio.Event()  # a watch event asks for a sync before the next pause ends

    @property
    def leading(self) -> bool:
        return self.elector.is_leader if self.opts.leader_elect else True

    async def sync(self) -> None:
        """List the ScalingRecipes: start, rebuild (spec changed) or drop their workers."""
        seen: set[tuple[str, str]] = set()
        listed = [o for ns in self.scopes for o in await self.api.list_recipes(ns)]
        for obj in listed:
            meta = obj.get("metadata") or {}
            key = (meta.get("namespace", ""), meta.get("name", ""))
            seen.add(key)
            old = self.loops.get(key)
            gen = int(meta.get("generation") or 0)
            if self.known(key, gen, scalingrecipe.is_paused(obj)):  # scaling it already, or reported invalid
                continue
            try:
                spec = scalingrecipe.parse(obj)
            except errors.RecipeError as exc:
                self.loops.pop(key, None)
                log.warning("%s", exc)
                message = "; ".join(str(p) for p in exc.problems)
                await self._refuse(key, gen, obj, "InvalidRecipe", message)
                continue
            refusal = self.refusal(spec)
            if refusal:
                self.loops.pop(key, None)
                log.warning("%s %s/%s: %s", scalingrecipe.KIND, key[0], key[1], refusal)
                await self._refuse(key, gen, obj, "PrometheusNotAllowed", refusal)
                continue
            self.invalid.pop(key, None)
            previous = obj.get("status") or {}
            w = recipe_loop.RecipeLoop(
                self.api, spec, previous, self.opts, lambda: self.leading, self.sources(spec)
            )
            if old is not None:  # same recipe, new spec: keep what the policy remembers
                w.controller.state, w.previous = old.controller.state, old.previous
                w.cluster.last_applied, w.headroom = old.cluster.last_applied, old.headroom
            self.loops[key] = w
            log.info("%s %s/%s: scaling %s", scalingrecipe.KIND, key[0], key[1], spec.target)
        for key in set(self.loops) - seen:
            del self.loops[key]
            self.metrics.forget(*key)
        await self._sweep(seen)

    @property
    def scopes(self) -> list[str | None]:
        """The namespaces watched (None: all of them)."""
        names = [n.strip() for n in (self.opts.namespace or "").split(",") if n.strip()]
        return list(names) if names else [None]

    async def _sweep(self, recipes: set[tuple[str, str]]) -> None:
        """Delete the placeholders of recipes that are gone: in swell's own namespace nothing owns
        them (an owner must live in the same namespace)."""
        home = self.opts.headroom_namespace
        if home is None or self.opts.dry_run or not self.leading:
            return
        watched = set(self.scopes)
        for p in await self.api.list_pods(home, labels=pods.HEADROOM_LABEL):
            meta = p.get("metadata") or {}
            labels = meta.get("labels") or {}
            key = (labels.get(pods.HEADROOM_NS_LABEL, ""), labels.get(pods.HEADROOM_LABEL, ""))
            if key not in recipes and (None in watched or key[0] in watched):
                log.info(
                    "deleting placeholder %s/%s: its ScalingRecipe %s/%s is gone",
                    home,
                    meta.get("name"),
                    *key,
                )
                with contextlib.suppress(errors.KubernetesError):
                    await self.api.delete_pod(home, meta.get("name", ""))

    def _prometheus(self, spec: scalingrecipe.Spec) -> world.SignalSource:
        """The recipe's Prometheus server, else the controller's; without either, no values."""
        url = spec.recipe.autoscaling.metrics.prometheus_url or self.opts.prometheus_url
        if not url:
            return recipe_loop.NoMetrics()
        if self._session is None:
            self._session = aiohttp.ClientSession()  # shared by every recipe's queries
        inner = prometheus.PrometheusSource(url, resources=spec.recipe.resources, session=self._session,
                                            auth=self.opts.prometheus_auth)  # fmt: skip
        return recipe_loop.Scoped(inner, spec, self.opts.any_namespace_queries)

    def refusal(self, spec: scalingrecipe.Spec) -> str:
        """Why the controller will not serve this recipe ("" if it will): a Prometheus server the
        operator did not allow (the controller would fetch any URL a recipe names otherwise)."""
        url = spec.recipe.autoscaling.metrics.prometheus_url
        allowed = {u.rstrip("/") for u in (self.opts.prometheus_url, *self.opts.allowed_prometheus_urls) if u}
        if url and url.rstrip("/") not in allowed:
            return (
                f"spec.autoscaling.metrics.prometheus_url: {url!r} is not one the operator allows "
                f"({', '.join(sorted(allowed)) or 'none'}; see --allow-prometheus-url): nothing is read or scaled"
            )
        return ""

    async def _refuse(self, key: tuple[str, str], gen: int, obj: api.Obj, reason: str, message: str) -> None:
        """ScalingActive=False with the reason (and Ready=False): no worker serves this generation."""
        cond = status.Condition(type="ScalingActive", status="False", reason=reason, message=message)
        prev = (obj.get("status") or {}).get("conditions") or []
        body = {
            "observedGeneration": gen,
            "conditions": status.merge_conditions([cond, status.ready([cond])], prev, self.clock.now()),
        }
        try:
            await self.api.patch_recipe_status(key[0], key[1], body)
            self.invalid[key] = gen
        except errors.KubernetesError as exc:
            log.warning("could not report the refused recipe %s/%s: %s", *key, exc)

    async def step(self) -> float:
        """One pass of the main loop; returns how long to wait before the next."""
        self.alive_at = time.monotonic()
        self.metrics.leader_child.set(1 if self.leading else 0)
        if not self.leading:
            for key in self.loops:
                self.metrics.forget(*key)  # a standby exports no decisions
            self.loops.clear()  # a later term starts from the CR status, as a fresh leader would
            self._next_sync = 0.0
            return self.opts.retry_period_s
        now = self.clock.now()
        if now >= self._next_sync:
            try:
                await self.sync()
            except errors.SwellError as exc:
                log.warning("cannot list %s: %s", scalingrecipe.PLURAL, exc)
            self._next_sync = now + self.opts.resync_s
        due = [w for w in self.loops.values() if w.next_due <= now]
        if self._buffers is None and any(headroom.may_want(w.spec.recipe) for w in due):
            self._buffers = await self._serves_buffers()
        for w in due:
            w.next_due = now + w.spec.recipe.autoscaling.polling_interval_s
            w.use_buffers = bool(self._buffers)
        await asyncio.gather(*(w.tick(self.clock, self.metrics) for w in due))
        nxt = min([w.next_due for w in self.loops.values()] + [self._next_sync])
        return max(0.05, min(nxt - self.clock.now(), self.opts.retry_period_s))

    async def _serves_buffers(self) -> bool:
        """Whether headroom goes into CapacityBuffers: --capacity-buffers on/off, or discovery."""
        if self.opts.capacity_buffers in ("on", "off"):
            return self.opts.capacity_buffers == "on"
        try:
            found = await self.api.serves(api.BUFFER_API, buffers.PLURAL)
        except errors.KubernetesError as exc:
            log.info("cannot discover %s (placeholder pods for headroom): %s", api.BUFFER_API, exc)
            return False
        log.info("headroom as %s", "CapacityBuffers" if found else "placeholder pods (no CapacityBuffer API)")
        return found

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def changed(self, event: api.Obj) -> bool:
        """Whether a watch event is news: a recipe added, deleted or with a new spec (the status
        writes of swell itself, and the ADDED events that open every watch, are not)."""
        meta = (event.get("object") or {}).get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event.get("type") == "DELETED":
            return key in self.loops or key in self.invalid
        obj = event.get("object") or {}
        return not self.known(key, int(meta.get("generation") or 0), scalingrecipe.is_paused(obj))

    def known(self, key: tuple[str, str], gen: int, paused: bool = False) -> bool:
        """This generation (and pause annotation, which leaves the generation be) of the recipe is
        handled: a worker scales it, or it was reported invalid."""
        w = self.loops.get(key)
        return (w is not None and w.spec.generation == gen and w.spec.paused == paused) or self.invalid.get(
            key
        ) == gen

    async def watch(self, stop: asyncio.Event) -> None:
        """Sync at once when a recipe is added, changed or deleted: one watch per namespace
        watched (a namespaced install may not watch them all)."""
        await asyncio.gather(*(self._watch(scope, stop) for scope in self.scopes))

    async def _watch(self, scope: str | None, stop: asyncio.Event) -> None:
        """One namespace's watch. The listing every resync_s stays, as the safety net and the only
        source while the watch fails (backoff to 60 s)."""
        backoff = self.opts.retry_period_s
        while not stop.is_set():
            try:
                async for event in self.api.watch_recipes(scope, WATCH_S):
                    backoff = self.opts.retry_period_s
                    if self.leading and self.changed(event):
                        self._next_sync = 0.0
                        self._wake.set()
            except errors.KubernetesError as exc:
                log.info("watching %s failed (listing every %g s meanwhile): %s", scalingrecipe.PLURAL,
                         self.opts.resync_s, exc)  # fmt: skip
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(2 * backoff, 60.0)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep up to `seconds`: less when stopped or woken by the watch."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in waits:
                t.cancel()
        self._wake.clear()

    async def run(self, stop: asyncio.Event) -> None:
        runner = await self._serve()
        elect = asyncio.create_task(self.elector.run(stop)) if self.opts.leader_elect else None
        watch = asyncio.create_task(self.watch(stop))
        try:
            while not stop.is_set():
                if elect is not None and elect.done():
                    elect.result()  # the election loop died: stop rather than sit as a mute standby
                if watch.done():
                    watch.result()  # only an unexpected error ends it: let it surface
                await self._pause(stop, await self.step())
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch
            if elect is not None:
                elect.cancel()  # it may be mid-wait, or the loop may have left on an error
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await elect
                await self.elector.release()
            await runner.cleanup()
            await self.close()

    async def _serve(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        tls = metrics_auth.tls_context(self.opts.metrics_cert_dir) if self.opts.metrics_secure else None
        self.guard = metrics_auth.Guard(self.api) if self.opts.metrics_secure else None
        site = web.TCPSite(runner, self.opts.host, self.opts.port, ssl_context=tls)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise errors.ClusterError(
                f"cannot serve /metrics on {self.opts.host}:{self.opts.port}: {exc}"
            ) from None
        if runner.addresses:
            self.port = int(runner.addresses[0][1])
        log.info("serving /metrics and /healthz on %s://%s:%d%s", "https" if tls else "http", self.opts.host,
                 self.port, " (/metrics for allowed tokens only)" if tls else "")  # fmt: skip
        return runner

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.guard is not None:
            code, why = await self.guard.check(request.headers.get("Authorization", ""), request.path)
            if code != 200:
                return web.Response(status=code, text=why + "\n")
        body, content_type = self.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _healthz(self, request: web.Request) -> web.Response:
        stale = time.monotonic() - self.alive_at
        limit = 3 * max(self.opts.resync_s, self.opts.retry_period_s) + 30
        if stale > limit:
            return web.Response(status=503, text=f"main loop stuck for {stale:.0f} s\n")
        role = "leader" if self.leading else "standby"
        return web.Response(text=f"ok ({role}, {len(self.loops)} recipe(s))\n")
