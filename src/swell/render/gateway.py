"""swell's gateway in front of a recipe's pods on Kubernetes (`swell render --gateway`).

The objects `swell gateway` needs: a Deployment running it from the swell image, a Service
`<name>-gateway` that clients call instead of `<name>`, the RBAC to read that Service and watch its
pods, and a ServiceMonitor whose series carry `service: <name>`, so a recipe's signal on
`swell_gateway_*` reads them as it reads the engine's. Requests that come at zero replicas wait in
its buffer and move its series: the demand that wakes the service (Knative's activator, KEDA's
HTTP add-on).
"""

from __future__ import annotations

import math
from typing import Any

from swell import errors, recipe
from swell.clusters.local import engines
from swell.core import signals
from swell.engines import catalog
from swell.metrics import gateway as gateway_metrics
from swell.render import workload

Obj = dict[str, Any]
PORT = 8080  # the gateway's container port
REPLICAS = 2  # each has its own buffer and per-pod cap; their series add up
PRESTOP_S = 5  # the gateway's endpoint goes before it stops taking requests


def name(rec: recipe.Recipe) -> str:
    return f"{rec.service.name}-gateway"


def labels(rec: recipe.Recipe) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name(rec),
        "app.kubernetes.io/component": "gateway",
        "app.kubernetes.io/part-of": rec.service.name,
        "app.kubernetes.io/managed-by": "swell",
    }


def _meta(rec: recipe.Recipe, opts: workload.Options) -> Obj:
    return {"name": name(rec), "namespace": opts.namespace, "labels": labels(rec)}


def args(rec: recipe.Recipe, opts: workload.Options) -> list[str]:
    """`swell gateway` as the recipe runs it: its buffer, cap and deadline from `local` and `slo`."""
    local = rec.local
    out = [
        "gateway", rec.service.name, f"--namespace={opts.namespace}", "--service-port=http", f"--port={PORT}",
        f"--buffer-requests={local.buffer_requests}", f"--buffer-timeout={local.buffer_timeout_s:g}",
        f"--drain-timeout={rec.drain_s:g}", f"--protocol={engines.protocol(rec.service)}",
    ]  # fmt: skip
    if rec.slo.deadline_s is not None:
        out.append(f"--deadline={rec.slo.deadline_s:g}")
    if local.max_ongoing_requests:
        out.append(f"--max-ongoing={local.max_ongoing_requests}")
    return out


def deployment(rec: recipe.Recipe, opts: workload.Options) -> Obj:
    def probe(**more: int) -> Obj:
        return {"httpGet": {"path": "/-/healthz", "port": "http"}, "periodSeconds": 10, **more}

    container: Obj = {
        "name": "gateway",
        "image": catalog.SWELL_IMAGE,
        "args": args(rec, opts),
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": probe(),
        "livenessProbe": probe(failureThreshold=3),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod: Obj = {
        "serviceAccountName": name(rec),
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": PRESTOP_S + math.ceil(rec.drain_s) + 5,
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name(rec)}}},
        }]}},
        "containers": [container],
    }  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(rec, opts),
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name(rec)}},
            "template": {"metadata": {"labels": labels(rec)}, "spec": pod},
        },
    }


def service(rec: recipe.Recipe, opts: workload.Options) -> Obj:
    port = {"name": "http", "port": rec.service.container_port, "targetPort": "http", "protocol": "TCP"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(rec, opts),
        "spec": {"selector": {"app.kubernetes.io/name": name(rec)}, "ports": [port]},
    }


def rbac(rec: recipe.Recipe, opts: workload.Options) -> list[Obj]:
    """Read its Service; list and watch the pods (their readiness and IPs)."""
    rules = [
        {"apiGroups": [""], "resources": ["services"], "resourceNames": [rec.service.name], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    ]
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name(rec)}
    subject = {"kind": "ServiceAccount", "name": name(rec), "namespace": opts.namespace}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(rec, opts)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(rec, opts), "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta(rec, opts),
         "roleRef": ref, "subjects": [subject]},
    ]  # fmt: skip


def service_monitor(rec: recipe.Recipe, opts: workload.Options) -> Obj:
    """The gateway's series, labelled as the model's own are (`service: <name>`, and vLLM's
    `model_name`), so the recipe's signals, scoped by those labels, select them."""
    interval = f"{max(1, math.ceil(rec.autoscaling.metrics.scrape_interval_s))}s"
    relabels = [{"action": "replace", "targetLabel": k, "replacement": v} for k, v in workload.metric_labels(rec).items()]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(rec, opts),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": name(rec)}},
            "namespaceSelector": {"matchNames": [opts.namespace]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": interval, "relabelings": relabels}],
        },
    }


MAX_NAME = 63 - len("-gateway")  # the gateway's objects are named <name>-gateway, a DNS label


def objects(rec: recipe.Recipe, opts: workload.Options) -> list[Obj]:
    if len(rec.service.name) > MAX_NAME or not rec.service.name[0].isalpha():
        raise errors.RecipeError(
            f"service {rec.service.name}",
            [errors.Problem(path="service.name", value=rec.service.name,
                            rule=f"with --gateway, at most {MAX_NAME} characters starting with a letter (its "
                            "objects are named <name>-gateway, and a Service name is a DNS-1035 label)")],
        )  # fmt: skip
    return [*rbac(rec, opts), deployment(rec, opts), service(rec, opts), service_monitor(rec, opts)]


def reads_gateway(sig: recipe.Signal) -> bool:
    return any(m.startswith(gateway_metrics.PREFIX) for m in signals.metric_names([sig]))


def unserved(rec: recipe.Recipe) -> list[str]:
    """Without the gateway: each signal reading its series, which nothing would write."""
    names = [s.name for s in rec.autoscaling.signals if reads_gateway(s)]
    if not names:
        return []
    return [f"signal(s) {', '.join(names)} read swell_gateway_* series, which only swell's gateway writes: "
            "render with --gateway (or scale on the engine's series)"]  # fmt: skip


def warnings(rec: recipe.Recipe) -> list[str]:
    out = [f"clients call Service {name(rec)} (the gateway), not {rec.service.name}, for requests to wait at zero"]
    if rec.autoscaling.min_replicas == 0 and not any(reads_gateway(s) for s in rec.autoscaling.signals):
        out.append(
            "min_replicas 0 and no signal reads the gateway's series: nothing it buffers wakes the service; "
            "add one, e.g. kind gauge, metric swell_gateway_requests_buffered, aggregate sum, target 1"
        )
    return out
