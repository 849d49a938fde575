"""TorchServe on Kubernetes: what a `torchserve` recipe that names an image adds to its workload.

The container runs TorchServe itself (the official `pytorch/torchserve` image has it) with a
config.properties from a ConfigMap: inference on the recipe's port, the management API on 8081
(container port `management`, where swell sets workers through the pod IP), Prometheus metrics on
8082, `metrics_mode=prometheus`, the recipe's model loaded with `min_workers` workers. The memory
request and limit may be resized in place (`resizePolicy` NotRequired; Kubernetes >= 1.33 acts on
it, older servers drop the field). Token authorization is off, so a NetworkPolicy lets only the
swell controller's pods reach the management port (see `config_text`).
"""

from __future__ import annotations

from typing import Any

from swell import errors, recipe

Obj = dict[str, Any]
MANAGEMENT_PORT = 8081  # TorchServe's default
METRICS_PORT = 8082
HOME = "/home/model-server"  # the official image's model server home
CONFIG_DIR = f"{HOME}/swell-config"
MODEL_STORE = f"{HOME}/model-store"
CONTROLLER_NAMESPACE = "swell-system"  # deploy/ installs the controller there
CONTROLLER_LABELS = {"app.kubernetes.io/name": "swell-controller"}


def model_source(rec: recipe.Recipe) -> str:
    """The .mar TorchServe loads: a URL as is, else the file's name in the image's model store."""
    model = rec.service.model
    if not model:
        raise errors.RecipeError(
            f"service {rec.service.name}",
            [
                errors.Problem(
                    path="service.model",
                    value=model,
                    rule="engine 'torchserve' on Kubernetes needs the model archive: an http(s) URL "
                    f"of a .mar, or the name of a .mar in the image's {MODEL_STORE}",
                )
            ],
        )
    if model.startswith(("http://", "https://")):
        return model
    return model.rstrip("/").rsplit("/", 1)[-1]


def config_map_name(rec: recipe.Recipe) -> str:
    return f"{rec.service.name}-torchserve"


def config_text(rec: recipe.Recipe) -> str:
    """config.properties. Token authorization is off: TorchServe 0.12 makes up its keys at start
    inside the pod (key_file.json, no way to give it one), and reading them back would need exec
    into every pod; instead the NetworkPolicy below admits only swell's controller to the
    management port. gRPC listens on the pod's loopback only (swell does not use it)."""
    svc = rec.service
    start = rec.workers.min_workers if rec.workers is not None else 1
    lines = {
        "inference_address": f"http://0.0.0.0:{svc.container_port}",
        "management_address": f"http://0.0.0.0:{MANAGEMENT_PORT}",
        "metrics_address": f"http://0.0.0.0:{METRICS_PORT}",
        "grpc_inference_address": "127.0.0.1",
        "grpc_management_address": "127.0.0.1",
        "metrics_mode": "prometheus",
        "disable_token_authorization": "true",
        "model_store": MODEL_STORE,
        "load_models": f"{svc.name}={model_source(rec)}",
        "default_workers_per_model": str(start),
        "install_py_dep_per_model": "false",
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def config_map(rec: recipe.Recipe, metadata: Obj) -> Obj:
    """The ConfigMap `config_map_name(rec)` (`metadata` names it) holding config.properties."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {"config.properties": config_text(rec)},
    }


def network_policy(rec: recipe.Recipe, metadata: Obj) -> Obj:
    """Inference and metrics from anywhere; the management API from swell's controller only
    (where the cluster's network plugin enforces NetworkPolicies)."""
    ns_label = "kubernetes.io/metadata.name"  # set on every namespace since Kubernetes 1.21
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": rec.service.name}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [{"port": "http", "protocol": "TCP"}, {"port": "metrics", "protocol": "TCP"}]},
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {ns_label: CONTROLLER_NAMESPACE}},
                            "podSelector": {"matchLabels": dict(CONTROLLER_LABELS)},
                        }
                    ],
                    "ports": [{"port": "management", "protocol": "TCP"}],
                },
            ],
        },
    }


def container(rec: recipe.Recipe, base: Obj) -> Obj:
    """The engine container of `base` made TorchServe's: its command, the three ports, the config
    mounted, `/ping` for the probes whose path the recipe left at its default, resizePolicy."""
    out = dict(base)
    out.pop("args", None)
    out["command"] = [
        "torchserve", "--start", "--foreground", "--ts-config", f"{CONFIG_DIR}/config.properties",
        "--model-store", MODEL_STORE, "--no-config-snapshots", "--disable-token-auth",
    ]  # fmt: skip
    out["ports"] = [
        {"name": "http", "containerPort": rec.service.container_port},
        {"name": "management", "containerPort": MANAGEMENT_PORT},
        {"name": "metrics", "containerPort": METRICS_PORT},
    ]
    default = recipe.Probe().path
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in out and out[probe]["httpGet"]["path"] == default:
            out[probe] = {**out[probe], "httpGet": {**out[probe]["httpGet"], "path": "/ping"}}
    out["volumeMounts"] = [
        *out.get("volumeMounts", []),
        {"name": "torchserve-config", "mountPath": CONFIG_DIR},
    ]
    out["resizePolicy"] = [
        {"resourceName": "cpu", "restartPolicy": "NotRequired"},
        {"resourceName": "memory", "restartPolicy": "NotRequired"},
    ]
    return out


def volume(rec: recipe.Recipe) -> Obj:
    return {"name": "torchserve-config", "configMap": {"name": config_map_name(rec)}}


def notes(rec: recipe.Recipe) -> list[str]:
    """What the reader should know: where the .mar comes from, who may reach the management API."""
    out = []
    source = model_source(rec) if rec.service.image else None
    if source is not None and not source.startswith(("http://", "https://")):
        out.append(
            f"engine torchserve loads {source} from {MODEL_STORE}: image {rec.service.image} must contain it"
        )
    out.append(
        "TorchServe's token authorization is off (its keys are made up inside each pod); NetworkPolicy "
        f"{rec.service.name}-management admits only swell's controller ({CONTROLLER_NAMESPACE}) to the "
        "management port: the cluster's network plugin must enforce NetworkPolicies"
    )
    return out
