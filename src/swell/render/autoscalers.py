"""What scales the workload, one function per mode (ScalingRecipe, HPA, KEDA, CronHPA).

Every signal renders to the PromQL the controller queries (`signals.render`, idle as a measured
0). Target types keep their meaning: `Value` -> HPA External / KEDA metricType Value, ceil(ready ×
value / target); `AverageValue` stays AverageValue; per-replica signals become HPA Pods metrics.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from swell import recipe
from swell.clusters.kubernetes import scalingrecipe, scope
from swell.core import signals
from swell.render import workload

Obj = dict[str, Any]
Rendered = tuple[list[Obj], list[str]]


def quantity(x: float) -> str:
    """A Kubernetes quantity: 0.2 -> "200m", 5 -> "5"."""
    if float(x).is_integer():
        return str(int(x))
    milli = x * 1000
    return f"{round(milli)}m" if abs(milli - round(milli)) < 1e-9 else f"{x:g}"


def metric_name(rec: recipe.Recipe, sig: recipe.Signal) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", f"swell_{rec.service.name}_{sig.name}")


def promql(rec: recipe.Recipe, sig: recipe.Signal, opts: workload.Options) -> str:
    """The signal as the controller would query it: the service's own series (its namespace,
    `service` and `model_name`; GPU utilization by the Deployment's pods)."""
    return scope.scoped_query(
        sig,
        namespace=opts.namespace,
        labels=workload.metric_labels(rec),
        pod_pattern=f"{rec.service.name}-[a-z0-9]+-[a-z0-9]+",
        resources=rec.resources,
    )


def scaling_recipe(rec: recipe.Recipe, opts: workload.Options) -> Rendered:
    spec = scalingrecipe.spec_of(
        rec, workload.target_ref(rec), workload.placement(rec, opts), workload.metric_labels(rec)
    )
    obj = {
        "apiVersion": scalingrecipe.API_VERSION,
        "kind": scalingrecipe.KIND,
        "metadata": workload.meta(rec, opts),
        "spec": spec,
    }
    warn = []
    if rec.autoscaling.metrics.source != "prometheus" or not rec.autoscaling.metrics.prometheus_url:
        warn.append("the recipe names no Prometheus server: the controller's --prometheus-url is used")
    return [obj], warn


def _behavior(rules: recipe.ScalingRules) -> Obj:
    return {
        "stabilizationWindowSeconds": rules.stabilization_window_s,
        "selectPolicy": rules.select_policy,
        "policies": [{"type": p.type, "value": p.value, "periodSeconds": p.period_s} for p in rules.policies],
    }


def behavior(rec: recipe.Recipe) -> Obj:
    b = rec.autoscaling.behavior
    return {"scaleUp": _behavior(b.scale_up), "scaleDown": _behavior(b.scale_down)}


def series_query(sig: recipe.Signal) -> str:
    """prometheus-adapter's discovery query: the series the signal reads (metric names need no
    regex escaping: they are [a-zA-Z0-9_:])."""
    base = signals.base_metric(sig)
    return f'{{__name__=~"^{base}.*$"}}' if base else '{__name__=~"^.+$"}'


def _per_pod(expr: str) -> str:
    """A service-wide expression -> the per-pod one prometheus-adapter's `rules` template wants."""
    expr = re.sub(r"\b(sum|avg|max|min)\(", r"\1 by (<<.GroupBy>>) (", expr)
    return expr.replace("sum by (le) (", "sum by (le, <<.GroupBy>>) (")


def hpa(rec: recipe.Recipe, opts: workload.Options) -> Rendered:
    """An autoscaling/v2 HPA and the prometheus-adapter config (rules, externalRules) it reads."""
    auto, warn = rec.autoscaling, []
    metrics: list[Obj] = []
    rules: list[Obj] = []
    external: list[Obj] = []
    for sig in auto.signals:
        name = metric_name(rec, sig)
        if sig.kind == "utilization" and sig.resource in ("cpu", "memory"):
            target = {"type": "Utilization", "averageUtilization": round(sig.target)}
            metrics.append({"type": "Resource", "resource": {"name": sig.resource, "target": target}})
        elif (sig.per_replica and sig.kind != "promql") or (
            sig.kind == "utilization" and sig.resource == "gpu"
        ):
            # per pod: LabelMatchers carry the HPA's namespace and its target's pods (seed 004)
            expr = signals.render(sig, {"__adapter__": "1"}, idle_as_zero=False, resources=rec.resources)
            expr = _per_pod(expr.replace('__adapter__="1"', "<<.LabelMatchers>>"))
            rules.append(
                {
                    "seriesQuery": series_query(sig)[:-1] + ',namespace!="",pod!=""}',
                    "resources": {
                        "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
                    },
                    "name": {"matches": "^(.*)$", "as": name},
                    "metricsQuery": expr,
                }
            )
            target = {"type": "AverageValue", "averageValue": quantity(sig.target)}
            metrics.append({"type": "Pods", "pods": {"metric": {"name": name}, "target": target}})
        else:
            # namespaced: LabelMatchers carry the HPA's namespace and the metric's selector
            if sig.kind == "promql":
                assert sig.query is not None
                expr = scope.inject(sig.query, ["<<.LabelMatchers>>"])
            else:
                expr = signals.render(sig, {"__adapter__": "1"}, idle_as_zero=True, resources=rec.resources)
                expr = expr.replace('__adapter__="1"', "<<.LabelMatchers>>")
            external.append(
                {
                    "seriesQuery": series_query(sig)[:-1] + ',namespace!=""}',
                    "resources": {"overrides": {"namespace": {"resource": "namespace"}}},
                    "name": {"as": name},
                    "metricsQuery": expr,
                }
            )
            kind = "AverageValue" if sig.target_type == "AverageValue" else "Value"
            key = "averageValue" if kind == "AverageValue" else "value"
            target = {"type": kind, key: quantity(sig.target)}
            metric: Obj = {"name": name}
            own = {k: v for k, v in workload.metric_labels(rec).items() if k not in sig.labels}
            if own and sig.kind != "promql":
                metric["selector"] = {"matchLabels": own}
            metrics.append({"type": "External", "external": {"metric": metric, "target": target}})
    lo = auto.min_replicas
    if lo == 0:
        warn.append("a native HPA cannot scale to zero (HPAScaleToZero is alpha): minReplicas is 1")
        lo = 1
    if auto.tolerance != recipe.Tolerance():
        warn.append("the HPA's tolerance is the controller-manager's flag (0.1), not per HPA: not rendered")
    if rec.schedules:
        warn.append("schedules are not part of an HPA: render --mode cronhpa for them")
    obj = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": workload.meta(rec, opts),
        "spec": {
            "scaleTargetRef": workload.target_ref(rec),
            "minReplicas": lo,
            "maxReplicas": auto.max_replicas,
            "metrics": metrics,
            "behavior": behavior(rec),
        },
    }
    out = [obj]
    if rules or external:
        config = {k: v for k, v in (("rules", rules), ("externalRules", external)) if v}
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": workload.meta(
                    rec, opts, name=f"prometheus-adapter-{rec.service.name}", namespace=opts.adapter_namespace
                ),
                "data": {"config.yaml": yaml.safe_dump(config, sort_keys=False, width=1000)},
            }
        )
        warn.append(
            f"merge ConfigMap {opts.adapter_namespace}/prometheus-adapter-{rec.service.name} into "
            "prometheus-adapter's config (one file per adapter) and restart it"
        )
    return out, warn


def keda(rec: recipe.Recipe, opts: workload.Options) -> Rendered:
    """A KEDA ScaledObject: one prometheus trigger per signal, ignoreNullValues false (no data is
    an error that counts toward the fallback, never a zero)."""
    auto = rec.autoscaling
    url = auto.metrics.prometheus_url or opts.prometheus_url
    triggers = []
    for sig in auto.signals:
        triggers.append(
            {
                "type": "prometheus",
                "name": sig.name,
                "metricType": "AverageValue" if sig.target_type == "AverageValue" else "Value",
                "metadata": {
                    "serverAddress": url,
                    "query": promql(rec, sig, opts),
                    "threshold": f"{sig.target:g}",
                    "activationThreshold": f"{auto.activation_for(sig.name):g}",
                    "ignoreNullValues": "false",
                },
            }
        )
    spec: Obj = {
        "scaleTargetRef": workload.target_ref(rec),
        "pollingInterval": max(1, round(auto.polling_interval_s)),
        "cooldownPeriod": round(auto.cooldown_s),
        "minReplicaCount": auto.min_replicas,
        "maxReplicaCount": auto.max_replicas,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior(rec)}},
        "triggers": triggers,
    }
    if auto.fallback is not None:
        spec["fallback"] = {
            "failureThreshold": auto.fallback.failure_threshold,
            "replicas": auto.fallback.replicas,
            "behavior": auto.fallback.behavior,  # KEDA >= 2.17; its own default is static
        }
    warn = [] if triggers else ["the recipe has no signals: KEDA needs at least one trigger"]
    if auto.fallback is not None and auto.fallback.behavior != "static":
        warn.append(f"fallback.behavior {auto.fallback.behavior} needs KEDA 2.17 or later: an older KEDA drops "
                    "it and goes to fallback.replicas either way (static)")  # fmt: skip
    return [
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": workload.meta(rec, opts),
            "spec": spec,
        }
    ], warn


def _seconds_cron(expr: str) -> str:
    """CronHPA's cron has a seconds field first: "30 10 * * *" -> "0 30 10 * * *"."""
    return expr if len(expr.split()) == 6 or expr.startswith("@") else f"0 {expr}"


def cronhpa(rec: recipe.Recipe, opts: workload.Options) -> Rendered:
    """An Alibaba CronHorizontalPodAutoscaler: each schedule window sets the count at its start and
    restores min_replicas at its end. With signals too, it drives an HPA's floor (CronHPA + HPA)."""
    auto, warn, out = rec.autoscaling, [], []
    target = workload.target_ref(rec)
    if auto.signals and auto.max_replicas > auto.min_replicas:
        hpa_objs, hpa_warn = hpa(rec, opts)
        out += hpa_objs
        warn += [w for w in hpa_warn if "cronhpa" not in w]
        target = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": rec.service.name}
    jobs = []
    zones = set()
    for i, w in enumerate(rec.schedules):
        name = w.name or f"window-{i}"
        size = w.min_replicas if w.min_replicas is not None else w.max_replicas
        jobs.append({"name": f"{name}-start", "schedule": _seconds_cron(w.start), "targetSize": size})
        jobs.append(
            {"name": f"{name}-end", "schedule": _seconds_cron(w.end), "targetSize": auto.min_replicas}
        )
        zones.add(w.timezone)
    if not jobs:
        warn.append("the recipe has no schedules: the CronHPA has no jobs")
    m = workload.meta(rec, opts)
    if zones - {"UTC"}:
        m["annotations"] = {"swell.dev/timezone": ",".join(sorted(zones))}
        warn.append(
            f"CronHPA runs schedules in its controller's timezone: set TZ={sorted(zones)[0]} on "
            "kubernetes-cronhpa-controller (the schedules are written in that zone)"
        )
    obj = {
        "apiVersion": "autoscaling.alibabacloud.com/v1beta1",
        "kind": "CronHorizontalPodAutoscaler",
        "metadata": m,
        "spec": {"scaleTargetRef": target, "jobs": jobs},
    }
    return [*out, obj], warn


KSERVE_API = "serving.kserve.io/v1beta1"


def kserve(rec: recipe.Recipe, opts: workload.Options) -> Rendered:
    """A KServe InferenceService in raw-deployment mode with its autoscaler left to others
    (`autoscalerClass: external`), and a ScalingRecipe on the `<name>-predictor` Deployment KServe
    creates, reading the predictor Service's series."""
    auto = rec.autoscaling
    dep = workload.deployment(rec, opts, max(auto.start_replicas, 1))
    pod = dep["spec"]["template"]["spec"]
    container = {**pod["containers"][0], "name": "kserve-container"}
    predictor: Obj = {k: v for k, v in pod.items() if k not in ("containers",)}
    predictor |= {
        "minReplicas": max(auto.min_replicas, 1),
        "maxReplicas": auto.max_replicas,
        "containers": [container],
    }
    m = workload.meta(rec, opts)
    m["annotations"] = {
        "serving.kserve.io/deploymentMode": "RawDeployment",
        "serving.kserve.io/autoscalerClass": "external",
    }
    isvc = {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "metadata": m,
        "spec": {"predictor": predictor},
    }
    predictor_name = f"{rec.service.name}-predictor"
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": predictor_name}
    labels = {**workload.metric_labels(rec), "service": predictor_name}
    spec = scalingrecipe.spec_of(rec, target, workload.placement(rec, opts), labels)
    cr = {
        "apiVersion": scalingrecipe.API_VERSION,
        "kind": scalingrecipe.KIND,
        "metadata": workload.meta(rec, opts),
        "spec": spec,
    }
    monitor = workload.service_monitor(rec, opts)
    monitor["metadata"]["name"] = predictor_name
    monitor["spec"]["selector"] = {"matchLabels": {"serving.kserve.io/inferenceservice": rec.service.name}}
    monitor["spec"]["endpoints"][0].pop("port")
    monitor["spec"]["endpoints"][0]["targetPort"] = rec.service.container_port
    warn = ["KServe creates Deployment and Service <name>-predictor; swell scales the Deployment"]
    if auto.min_replicas == 0:
        warn.append("a raw-deployment InferenceService keeps at least one replica: minReplicas is 1")
    return [isvc, monitor, cr], warn
