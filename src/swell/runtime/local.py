"""Local runtime: the control loop driving a LocalCluster on the wall clock, fed by scraped metrics.

Every `autoscaling.metrics.scrape_interval_s` the replicas' /metrics (the ready ones, and those
failing readiness since, which may still be serving) and the gateway's own are scraped into
in-memory windows (EmbeddedSource), or, when the recipe names a Prometheus server, a file_sd file
lists them for it and the signals are read through its HTTP API. Every `polling_interval_s` the
Controller reads the signals, decides and scales the cluster.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from swell import clock as clock_mod
from swell import errors, recipe
from swell.clusters.local import cluster as cluster_mod
from swell.clusters.local import gateway as gateway_mod
from swell.clusters.local import replicas as replicas_mod
from swell.control import history as history_mod
from swell.control import loop
from swell.core import leadtime, signals, snapshot, world
from swell.core.policies import plan_state, steps
from swell.metrics import embedded, prometheus
from swell.metrics import gateway as gateway_names

log = logging.getLogger(__name__)
GATEWAY_TARGET = gateway_names.GATEWAY_TARGET


@dataclass(frozen=True, kw_only=True)
class Point:
    """Replica counts at one moment (the demo's and the report's replicas-over-time line)."""

    t: float
    target: int
    ready: int
    starting: int
    pending: int


@dataclass(frozen=True, kw_only=True)
class Status:
    """Everything the live status screen shows."""

    endpoint: str
    run_dir: Path
    target: int
    replicas: tuple[replicas_mod.ReplicaInfo, ...]
    gateway: gateway_mod.Stats
    last: history_mod.Entry | None
    signals: Mapping[str, snapshot.Reading] = field(default_factory=dict)
    events: tuple[replicas_mod.Event, ...] = ()


# What a running service cannot take on (made into its slot pool, its gateway's socket, its metrics
# source), and what is rolled onto its replicas (anything a replica's process is started from).
SLOTS, SOCKET = "the machine's device slots are made from it", "the gateway's server is made from it"
FIXED = {"service.name": "it names the service and its replicas", "resources.": SLOTS, "node_pool.": SLOTS,
         "local.gpu_ids": SLOTS, "local.cpu_slots": SLOTS, "local.host": SOCKET, "local.port": SOCKET,
         "local.max_request_mb": SOCKET, "local.max_connections": SOCKET, "local.header_timeout_s": SOCKET,
         "local.read_timeout_s": SOCKET, "autoscaling.metrics.": "the metrics source is made from it"}  # fmt: skip
ROLLED = ("service.",)


@dataclass(frozen=True, kw_only=True)
class Applied:
    """What `apply_recipe` changed, path by path, and whether the replicas are being rolled."""

    changed: tuple[str, ...]
    rolled: bool


class LocalRuntime(cluster_mod.StartStop):
    def __init__(
        self,
        rec: recipe.Recipe,
        *,
        policy: str | None = None,
        port: int | None = None,
        run_dir: Path | None = None,
        initial: int | None = None,
        clock: clock_mod.Clock | None = None,
        file_sd: Path | None = None,
        give_up_after: int | None = None,
    ) -> None:
        self.recipe = rec
        self.clock = clock or clock_mod.SystemClock()
        self.cluster = cluster_mod.LocalCluster(rec, run_dir=run_dir, port=port, initial=initial)
        # the planner's lead time here is a replica's start: no node to ask for
        lead = plan_state.PlanState(lead=leadtime.LeadTimes.on_one_machine(rec.node_pool))
        self.controller = loop.Controller(rec, policy=policy, state=steps.State(plan=lead))
        self.timeline: deque[Point] = deque(maxlen=50_000)
        m = rec.autoscaling.metrics
        self.embedded: embedded.EmbeddedSource | None = None
        self.source: world.SignalSource
        if m.source == "prometheus":
            assert m.prometheus_url is not None
            auth = prometheus.Auth.from_env()  # SWELL_PROMETHEUS_BEARER_TOKEN_FILE, ... (docs/local.md)
            if problems := auth.problems(prefix=prometheus.ENV):
                raise errors.RecipeError("the environment", problems)
            self.source = prometheus.PrometheusSource(m.prometheus_url, resources=rec.resources, auth=auth)
        else:
            retention = signals.retention_s(rec.autoscaling, self.controller.signals)
            wanted = signals.metric_names(self.controller.signals)
            self.embedded = self.source = embedded.EmbeddedSource(
                rec.resources, retention_s=retention, wanted=wanted
            )
        self.sd_file = file_sd or self.cluster.run_dir / "file_sd.json"
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sd_written = ""
        self.failure: str | None = None  # why the runtime stopped on its own, if it did
        # stop once a replica failed to start this many times in a row and none was ever ready
        self.give_up_after = give_up_after

    @property
    def endpoint(self) -> str:
        return self.cluster.endpoint

    @property
    def history(self) -> history_mod.History:
        return self.controller.history

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        await self.cluster.start()
        self._record()
        await self._observe_metrics()  # the first decision already sees a scrape
        loop_ = asyncio.get_running_loop()
        self._tasks = [
            loop_.create_task(self._metrics_loop(), name="swell scrape"),
            loop_.create_task(
                self.controller.run(self.cluster, self.source, self.clock, self._stop),
                name="swell control loop",
            ),
        ]
        for t in self._tasks:
            t.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A loop that dies unexpectedly stops the runtime: serving without scaling would mislead."""
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = f"{task.get_name()} failed: {task.exception()!r}"
            log.error("%s", self.failure)
            self._stop.set()

    async def stop(self) -> None:
        self._stop.set()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            # requests in flight finish first (bounded by the recipe's drain_s); a second Ctrl-C
            # or SIGTERM kills everything at once (cli.up.install_stop_handlers)
            await self.cluster.stop(drain=True)
        finally:
            if self.embedded is not None:
                await self.embedded.close()

    def targets(self) -> dict[str, str]:
        """{target name: base URL}: the gateway and every replica whose process passed readiness,
        ready or failing readiness since (see `ReplicaManager.scrape_urls`)."""
        return {**self.cluster.manager.scrape_urls(), GATEWAY_TARGET: self.cluster.gateway.url}

    async def _observe_metrics(self) -> None:
        targets = self.targets()
        if self.embedded is not None:
            await self.embedded.scrape_all({n: u + "/metrics" for n, u in targets.items()}, self.clock.now())
        else:
            self._write_file_sd(targets)

    def _write_file_sd(self, targets: Mapping[str, str]) -> None:
        """Prometheus file_sd: one group per target with a `replica` label (atomic replace)."""
        groups = [
            {"targets": [url.removeprefix("http://")], "labels": {signals.REPLICA_LABEL: name}}
            for name, url in sorted(targets.items())
        ]
        text = json.dumps(groups, indent=1)
        if text != self._sd_written:
            tmp = self.sd_file.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.sd_file)
            self._sd_written = text

    def _record(self) -> None:
        reps = self.cluster.replicas()
        self.timeline.append(
            Point(
                t=self.clock.now(),
                target=self.cluster.target,
                ready=sum(1 for r in reps if r.state == "ready"),
                starting=sum(1 for r in reps if r.state == "starting"),
                pending=sum(1 for r in reps if r.state == "pending"),
            )
        )

    async def _metrics_loop(self) -> None:
        interval = self.recipe.autoscaling.metrics.scrape_interval_s
        while not self._stop.is_set():
            started = self.clock.now()
            try:
                await self._observe_metrics()
            except Exception:  # never let one scrape stop the loop; a failed scrape is "no value"
                log.exception("metrics scrape failed")
            self._record()
            self._check_start_failures()
            await asyncio.sleep(max(0.0, interval - (self.clock.now() - started)))

    def _check_start_failures(self) -> None:
        """A server that cannot start at all stops the runtime with why (`give_up_after`)."""
        if self.give_up_after is None or self.failure is not None:
            return
        why = self.cluster.manager.start_failure(self.give_up_after)
        if why is not None:
            self.failure = why
            log.error("%s", why)
            self._stop.set()

    # ------------------------------------------------------------------ a changed recipe

    def apply_recipe(self, rec: recipe.Recipe) -> Applied:
        """Run `rec` from now on, without a restart: scaling, SLO, schedules and the gateway's
        limits at the next tick; a changed service (engine, model, arguments, image, environment,
        probes) rolled onto the replicas one at a time (`ReplicaManager.roll`). What the machine's
        slots, the gateway's address or the metrics source are made from cannot change on a running
        service: RecipeError naming each such path (stop it and start it on the new recipe)."""
        old, new = self.recipe.model_dump(by_alias=True), rec.model_dump(by_alias=True)
        diffs = recipe.changes(old, new)
        fixed = [(path, a, b, why) for path, a, b in diffs for prefix, why in FIXED.items() if path.startswith(prefix)]
        if fixed:
            raise errors.RecipeError(
                "the running service",
                [errors.Problem(path=path, value=f"{a!r} -> {b!r}",
                                rule=f"cannot change on a running service ({why}): stop it and start it on the new recipe")
                 for path, a, b, why in fixed],
            )  # fmt: skip
        roll = any(path.startswith(ROLLED) for path, _, _ in diffs)
        self._take(rec)
        if roll:
            self.cluster.manager.roll(rec)
        else:
            self.cluster.manager.recipe = rec
        return Applied(changed=tuple(recipe.said(diffs)), rolled=roll)

    def _take(self, rec: recipe.Recipe) -> None:
        """What changes at once: the loop's recipe and signals, what the scraper keeps, the gateway."""
        self.recipe = rec
        self.controller.take(rec)
        if self.embedded is not None:
            store = self.embedded.store
            store.retention_s = max(store.retention_s, signals.retention_s(rec.autoscaling, self.controller.signals))
            store.wanted = frozenset(signals.metric_names(self.controller.signals))
        self.cluster.set_limits(rec)

    async def rolled(self) -> str | None:
        """Wait for the roll in progress: None once every replica runs the new recipe, else why it
        stopped; then the replicas are back on the previous recipe, and so is everything else."""
        task = self.cluster.manager.rolling
        if task is not None:
            await asyncio.shield(task)
        error = self.cluster.manager.roll_error
        if error is not None:  # the replica manager went back to the recipe before the roll: so does the rest
            self._take(self.cluster.manager.recipe)
        return error

    # ------------------------------------------------------------------ status

    def status(self) -> Status:
        last = self.history.last()
        return Status(
            endpoint=self.endpoint,
            run_dir=self.cluster.run_dir,
            target=self.cluster.target,
            replicas=self.cluster.manager.replicas(),
            gateway=self.cluster.gateway.stats(),
            last=last,
            signals=dict(last.snapshot.signals) if last else {},
            events=tuple(self.cluster.manager.events)[-8:],
        )

    async def wait(self) -> None:
        """Until stopped (Ctrl-C, SIGTERM: the CLI sets the stop event through `request_stop`)."""
        await self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()
