"""The workload a recipe runs on Kubernetes: Deployment, Service and ServiceMonitor.

The Deployment has the recipe's probes on the engine's health path (plus a startup probe that
allows for the model load), `nvidia.com/gpu` limits, a model cache volume at /root/.cache (and
/dev/shm in memory for vLLM), and the node pool's placement: GPU nodes by their instance-type
label and the nvidia.com/gpu taint tolerated, as the headroom placeholders do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from swell import errors, gpu_shapes, recipe
from swell.clusters.kubernetes import scalingrecipe, workers
from swell.clusters.local import engines
from swell.engines import catalog
from swell.render import torchserve

Obj = dict[str, Any]
SWELL_IMAGE = catalog.SWELL_IMAGE
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
GPU = "nvidia.com/gpu"
SHUTDOWN_FLAG = "--shutdown-timeout"  # vLLM: on SIGTERM wait this long for requests in flight (else abort them)
PRESTOP_S = 10  # before SIGTERM, a terminating pod waits this long: its Service endpoint is removed
# and load balancers stop sending to it (Knative's queue-proxy and most ingress guides do the same)


@dataclass(frozen=True, kw_only=True)
class Options:
    namespace: str = "default"
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    adapter_namespace: str = "monitoring"  # where prometheus-adapter runs (hpa mode)
    node_selector: dict[str, str] = field(default_factory=dict)  # default: the shape's instance type
    gateway: bool = False  # swell's gateway in front of the pods (render.gateway)


def labels(rec: recipe.Recipe) -> dict[str, str]:
    return {"app.kubernetes.io/name": rec.service.name, "app.kubernetes.io/managed-by": "swell"}


def meta(rec: recipe.Recipe, opts: Options, name: str | None = None, namespace: str | None = None) -> Obj:
    return {"name": name or rec.service.name, "namespace": namespace or opts.namespace, "labels": labels(rec)}


def metric_labels(rec: recipe.Recipe) -> dict[str, str]:
    """The labels that select this service's own series besides its namespace: `service`, which
    the ServiceMonitor attaches, and vLLM's `model_name` (its served model name)."""
    out = {"service": rec.service.name}
    svc = rec.service
    if svc.engine == "vllm":
        model = gpu_shapes.metrics_model_name(svc.args, svc.model or "")
        if model:
            out["model_name"] = model
    return out


def target_ref(rec: recipe.Recipe) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": rec.service.name}


def placement(rec: recipe.Recipe, opts: Options) -> scalingrecipe.Placement:
    """Where replicas (and headroom placeholders) go: the pool's nodes, GPU taint tolerated."""
    selector = dict(opts.node_selector)
    if not selector and rec.node_pool.shape != "local":
        selector = {INSTANCE_TYPE: rec.node_pool.shape}
    tolerations = ({"key": GPU, "operator": "Exists", "effect": "NoSchedule"},) if rec.resources.gpus else ()
    return scalingrecipe.Placement(node_selector=selector, tolerations=tolerations)


def _container_argv(rec: recipe.Recipe) -> tuple[list[str], list[str]]:
    """(command, args) of the engine container; an empty command keeps the image's entrypoint."""
    svc, port = rec.service, str(rec.service.container_port)
    if svc.engine == "vllm":
        # The vllm/vllm-openai image's entrypoint serves the model; args as the seeds write them.
        args = list(svc.args)
        if not gpu_shapes.served_model(args):  # `--model M` or `--model=M` in the args serves M
            if not svc.model:
                raise engines.no_model()
            args = [svc.model, *args]
        if "--port" not in args:
            args += ["--port", port]
        if _published(svc) and SHUTDOWN_FLAG not in args:  # the published image's latest: recent enough
            args += [SHUTDOWN_FLAG, str(math.ceil(rec.drain_s))]
        return [], args
    argv = engines.argv_for(svc, host="0.0.0.0", port=svc.container_port, gpus="all", resources=rec.resources)
    if svc.engine in engines.SERVER_MODULES:
        argv = ("python", *argv[1:])  # the interpreter inside the swell image
    return list(argv), []


def _published(svc: recipe.Service) -> bool:
    """The engine's published image at its latest tag (no image named, or that one)."""
    return svc.image in (None, catalog.ENGINES[svc.engine].image)


def notes(rec: recipe.Recipe) -> list[str]:
    """What the reader of the workload manifests should know."""
    svc = rec.service
    if svc.engine == "torchserve":
        return torchserve.notes(rec)
    if svc.engine == "vllm" and not _published(svc) and SHUTDOWN_FLAG not in svc.args:
        return [f"image {svc.image}: vLLM aborts the requests in flight on SIGTERM unless started with "
                f"{SHUTDOWN_FLAG} (vLLM releases from March 2026 on): add `{SHUTDOWN_FLAG} "
                f"{math.ceil(rec.drain_s)}` to service.args so a replica scaled down loses none"]  # fmt: skip
    if svc.engine == "command":
        return [f"the preStop hook runs `sleep {PRESTOP_S}` in image {svc.image}: an image without a sleep binary "
                f"(distroless) fails it and the pod gets SIGTERM at once; on Kubernetes 1.30 or later use `lifecycle.preStop.sleep`"]  # fmt: skip
    if svc.engine in engines.SERVER_MODULES and svc.image and svc.image != SWELL_IMAGE:
        module = engines.SERVER_MODULES[svc.engine]
        return [
            f"engine {svc.engine} runs `python -m {module}`: image {svc.image} must contain swell (deploy/Dockerfile)"
        ]
    return []


def _probe(p: recipe.Probe) -> Obj:
    return {
        "httpGet": {"path": p.path, "port": "http"},
        "periodSeconds": max(1, math.ceil(p.period_s)),
        "timeoutSeconds": max(1, math.ceil(p.timeout_s)),
        "failureThreshold": p.failure_threshold,
        "initialDelaySeconds": math.ceil(p.initial_delay_s),
    }


def grace_period_s(rec: recipe.Recipe) -> int:
    """A replica scaled down loses nothing in flight: PRESTOP_S for its endpoint to go, then the
    engine's own SIGTERM drain (`Recipe.drain_s`), then `local.grace_period_s` before SIGKILL.
    Kubernetes' default, 30 s, is shorter than a 60 s e2e SLO."""
    return math.ceil(PRESTOP_S + rec.drain_s + rec.local.grace_period_s)


def deployment(rec: recipe.Recipe, opts: Options, replicas: int) -> Obj:
    svc, res = rec.service, rec.resources
    image = svc.image or catalog.ENGINES[svc.engine].image
    if image is None:
        raise errors.RecipeError(
            f"service {svc.name}",
            [
                errors.Problem(
                    path="service.image",
                    value=None,
                    rule=f"engine {svc.engine!r} needs an image: it has no published one, so name an "
                    "image that runs it (or use engine 'command' with the server's own image)",
                )
            ],
        )
    command, args = _container_argv(rec)
    limits: dict[str, str] = {"memory": workers.gib(res.memory_gib)}
    if res.gpus:
        limits[GPU] = str(res.gpus)
    container: Obj = {
        "name": svc.engine if svc.engine != "command" else "server",
        "image": image,
        "ports": [{"name": "http", "containerPort": svc.container_port}],
        "env": [{"name": k, "value": v} for k, v in sorted(svc.env.items())],
        "resources": {
            "requests": {"cpu": f"{res.cpu:g}", "memory": workers.gib(res.memory_gib)},
            "limits": limits,
        },
        "readinessProbe": _probe(svc.probes.readiness),
        "livenessProbe": _probe(svc.probes.liveness),
        # The model loads before /health answers: the recipe's startup budget before liveness counts.
        "startupProbe": {
            "httpGet": {"path": svc.probes.readiness.path, "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": max(1, math.ceil(rec.startup_timeout_s / 10)),
        },
        "volumeMounts": [{"name": "model-cache", "mountPath": "/root/.cache"}],
        # `sleep` in the image, not the preStop `sleep` action: that one needs Kubernetes >= 1.30
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}},
    }
    if command:
        container["command"] = command
    if args:
        container["args"] = args
    if not container["env"]:
        del container["env"]
    volumes: list[Obj] = [{"name": "model-cache", "emptyDir": {}}]
    if svc.engine == "vllm":
        container["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}})
    if svc.engine == "torchserve":
        container = torchserve.container(rec, container)
        volumes.append(torchserve.volume(rec))
    where = placement(rec, opts)
    pod: Obj = {"containers": [container], "volumes": volumes,
                "terminationGracePeriodSeconds": grace_period_s(rec)}  # fmt: skip
    if where.node_selector:
        pod["nodeSelector"] = dict(where.node_selector)
    if where.tolerations:
        pod["tolerations"] = list(where.tolerations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(rec, opts),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": svc.name}},
            "template": {"metadata": {"labels": labels(rec)}, "spec": pod},
        },
    }


def metrics_port(rec: recipe.Recipe) -> str:
    """The port name Prometheus scrapes: TorchServe has a metrics listener of its own."""
    return "metrics" if rec.service.engine == "torchserve" else "http"


def service(rec: recipe.Recipe, opts: Options) -> Obj:
    port = rec.service.container_port
    ports = [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]
    if metrics_port(rec) != "http":
        ports.append(
            {"name": "metrics", "port": torchserve.METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}
        )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(rec, opts),
        "spec": {"selector": {"app.kubernetes.io/name": rec.service.name}, "ports": ports},
    }


def extras(rec: recipe.Recipe, opts: Options) -> list[Obj]:
    """What an engine needs beside its Deployment: TorchServe's config and management NetworkPolicy."""
    if rec.service.engine != "torchserve":
        return []
    return [
        torchserve.config_map(rec, meta(rec, opts, name=torchserve.config_map_name(rec))),
        torchserve.network_policy(rec, meta(rec, opts, name=f"{rec.service.name}-management")),
    ]


def service_monitor(rec: recipe.Recipe, opts: Options) -> Obj:
    """Prometheus Operator scrapes every replica's /metrics through the Service."""
    interval = f"{max(1, math.ceil(rec.autoscaling.metrics.scrape_interval_s))}s"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(rec, opts),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": rec.service.name}},
            "namespaceSelector": {"matchNames": [opts.namespace]},
            "endpoints": [{"port": metrics_port(rec), "path": "/metrics", "interval": interval}],
        },
    }
