"""swell's own metrics for the local deployments (`/metrics` of the API, no token).

The same names and labels as the Kubernetes controller's (`namespace` is "local", `recipe` the
deployment), so one Grafana dashboard serves both. Read at scrape time from the live runtimes:
a signal without a value has no sample, never 0.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, exposition
from prometheus_client import core as prom_core
from prometheus_client import registry as prom_registry

from swell.api import deployments

NAMESPACE = "local"


class _Collector(prom_registry.Collector):
    def __init__(self, manager: deployments.Manager) -> None:
        self.manager = manager

    def collect(self) -> Iterator[prom_core.Metric]:
        rl = ["namespace", "recipe"]
        desired = prom_core.GaugeMetricFamily(
            "swell_desired_replicas", "Replicas the last decision asked for", labels=rl
        )
        current = prom_core.GaugeMetricFamily(
            "swell_current_replicas", "Replicas asked of the cluster now", labels=rl
        )
        states = prom_core.GaugeMetricFamily("swell_replicas", "Replicas by state", labels=[*rl, "state"])
        value = prom_core.GaugeMetricFamily(
            "swell_signal_value", "A signal's value (absent: no value)", labels=[*rl, "signal"]
        )
        target = prom_core.GaugeMetricFamily(
            "swell_signal_target", "A signal's target", labels=[*rl, "signal"]
        )
        available = prom_core.GaugeMetricFamily(
            "swell_signal_available", "1 if the signal had a value at the last tick", labels=[*rl, "signal"]
        )
        decisions = prom_core.CounterMetricFamily(
            "swell_decisions", "Decisions by the rule that bound them", labels=[*rl, "bound_by"]
        )
        errors = prom_core.CounterMetricFamily(
            "swell_scrape_errors",
            "Signal reads without a value (a failed scrape or query, or no samples yet) in decisions",
            labels=rl,
        )
        for dep in self.manager.deployments.values():
            lv = [NAMESPACE, dep.name]
            last = dep.rt.history.last()
            if last is not None:
                desired.add_metric(lv, last.decision.desired)
                for name, r in last.snapshot.signals.items():
                    available.add_metric([*lv, name], 0.0 if r.value is None else 1.0)
                    if r.value is not None:
                        value.add_metric([*lv, name], r.value)
            current.add_metric(lv, dep.rt.cluster.target)
            reps = dep.rt.cluster.manager.replicas()
            for s in ("ready", "starting", "pending", "terminating"):
                states.add_metric([*lv, s], sum(1 for r in reps if r.state == s))
            for sig in dep.recipe.autoscaling.signals:
                target.add_metric([*lv, sig.name], sig.target)
            for bound, n in sorted(dep.rt.history.by_bound.items()):
                decisions.add_metric([*lv, bound], n)
            errors.add_metric(lv, dep.signal_errors)
        yield from (desired, current, states, value, target, available, decisions, errors)


class Metrics:
    def __init__(self, manager: deployments.Manager) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(manager))

    def render(self) -> tuple[bytes, str]:
        return exposition.generate_latest(self.registry), exposition.CONTENT_TYPE_LATEST
