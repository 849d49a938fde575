"""The controller's own Prometheus metrics (`swell_*`), served on /metrics by the runtime.

Per ScalingRecipe: desired and current replicas, replicas by state, each signal's value and target
(a signal without value has no sample — never 0 — and `swell_signal_available` 0), decisions by the
rule that bound them, scale operations by result, headroom pods, the replica bounds, whether it
is paused, failed signal reads and how long the reads took (KEDA's scaler errors and latency, the
HPA's spec min/max in kube-state-metrics); per controller: leadership and its version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, exposition

import swell
from swell.clusters.kubernetes import headroom, scalingrecipe
from swell.core import decision, snapshot

STATES = ("ready", "starting", "pending", "terminating", "failed")


class Metrics:
    def __init__(self, identity: str) -> None:
        self.registry = r = CollectorRegistry()
        rl = ("namespace", "recipe")
        self.desired = Gauge("swell_desired_replicas", "Replicas the last decision asked for", rl, registry=r)
        self.current = Gauge("swell_current_replicas", "The target's spec.replicas", rl, registry=r)
        self.replicas = Gauge("swell_replicas", "The target's pods by state", (*rl, "state"), registry=r)
        self.value = Gauge(
            "swell_signal_value", "A signal's value (absent: no value)", (*rl, "signal"), registry=r
        )
        self.target = Gauge("swell_signal_target", "A signal's target", (*rl, "signal"), registry=r)
        self.available = Gauge(
            "swell_signal_available",
            "1 if the signal had a value at the last tick",
            (*rl, "signal"),
            registry=r,
        )
        self.decisions = Counter(
            "swell_decisions", "Decisions by the rule or limit that bound them", (*rl, "bound_by"), registry=r
        )
        self.scales = Counter(
            "swell_scale_operations", "Scale-subresource patches by result", (*rl, "result"), registry=r
        )
        self.errors = Counter(
            "swell_tick_errors", "Ticks that failed (observe, patch, headroom)", rl, registry=r
        )
        self.headroom = Gauge(
            "swell_headroom_pods",
            "Headroom placeholder pods (desired, running, pending)",
            (*rl, "state"),
            registry=r,
        )
        self.preemptions = Gauge(
            "swell_headroom_preemptions", "Placeholders preempted by real pods, in total", rl, registry=r
        )
        self.leader = Gauge(
            "swell_leader", "1 while this controller holds the lease", ("identity",), registry=r
        )
        self.leader_child = self.leader.labels(identity)
        self.min_replicas = Gauge("swell_min_replicas", "The recipe's min_replicas", rl, registry=r)
        self.max_replicas = Gauge("swell_max_replicas", "The recipe's max_replicas", rl, registry=r)
        self.paused = Gauge("swell_paused", "1 while the recipe carries the pause annotation", rl, registry=r)
        self.read_errors = Counter(
            "swell_signal_read_errors", "Ticks a signal had no value (unreachable, empty, NaN)", (*rl, "signal"),
            registry=r,
        )
        self.read_seconds = Histogram(
            "swell_signal_read_seconds", "Time to read a recipe's signals from Prometheus (all at once)", rl,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0), registry=r,
        )
        Gauge("swell_build_info", "1, labelled with the controller's version", ("version",), registry=r).labels(
            swell.__version__
        ).set(1)
        self._seen: dict[tuple[str, str], set[tuple[Any, tuple[str, ...]]]] = {}
        self._children: dict[tuple[Any, str, str, tuple[str, ...]], Any] = {}  # labels() looked up once

    def _at(self, metric: Gauge | Counter | Histogram, ns: str, name: str, *more: str) -> Any:
        """metric.labels(ns, name, *more), remembered so `forget` can remove the series."""
        key = (metric, ns, name, more)
        child = self._children.get(key)
        if child is None:
            self._seen.setdefault((ns, name), set()).add((metric, more))
            child = self._children[key] = metric.labels(ns, name, *more)
        return child

    def record(
        self,
        spec: scalingrecipe.Spec,
        d: decision.Decision | None,
        readings: Mapping[str, snapshot.Reading],
        report: headroom.Report | None,
        body: Mapping[str, Any],
        error: str,
        read_s: float | None = None,
    ) -> None:
        ns, name = spec.namespace, spec.name
        if error:
            self._at(self.errors, ns, name).inc()
        auto = spec.recipe.autoscaling
        self._at(self.min_replicas, ns, name).set(auto.min_replicas)
        self._at(self.max_replicas, ns, name).set(auto.max_replicas)
        self._at(self.paused, ns, name).set(1 if spec.paused else 0)
        if read_s is not None:
            self._at(self.read_seconds, ns, name).observe(read_s)
        if "currentReplicas" in body:
            self._at(self.current, ns, name).set(body["currentReplicas"])
            for s in STATES:
                self._at(self.replicas, ns, name, s).set(body["replicas"].get(s, 0))
        if d is not None:
            self._at(self.desired, ns, name).set(d.desired)
            self._at(self.decisions, ns, name, d.bound_by).inc()
            if d.changes:
                result = "error" if error else ("dry_run" if body.get("dryRun") else "ok")
                self._at(self.scales, ns, name, result).inc()
        for sig in spec.recipe.autoscaling.signals:
            r = readings.get(sig.name)
            ok = r is not None and r.ok and r.value is not None
            self._at(self.target, ns, name, sig.name).set(sig.target)
            self._at(self.available, ns, name, sig.name).set(1 if ok else 0)
            if r is not None and not ok:
                self._at(self.read_errors, ns, name, sig.name).inc()
            if r is not None and ok and r.value is not None:
                self._at(self.value, ns, name, sig.name).set(r.value)
            elif self._children.pop((self.value, ns, name, (sig.name,)), None) is not None:
                with contextlib.suppress(KeyError):  # no value: no sample, never 0
                    self.value.remove(ns, name, sig.name)
        if report is not None:
            for state, n in (
                ("desired", report.desired),
                ("running", report.running),
                ("pending", report.pending),
            ):
                self._at(self.headroom, ns, name, state).set(n)
            self._at(self.preemptions, ns, name).set(report.preemptions)

    def forget(self, namespace: str, name: str) -> None:
        """A ScalingRecipe went away: its series go too."""
        for metric, more in self._seen.pop((namespace, name), set()):
            self._children.pop((metric, namespace, name, more), None)
            with contextlib.suppress(KeyError):
                metric.remove(namespace, name, *more)

    def exposition(self) -> tuple[bytes, str]:
        return exposition.generate_latest(self.registry), exposition.CONTENT_TYPE_LATEST
