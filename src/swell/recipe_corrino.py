"""Corrino (OCI AI Blueprints) recipe payloads, accepted as-is and converted to swell's form.

Corrino's default scaling signal is "the fraction of requests slower than 5 s end to end over
`collect_metrics_timespan`" against `scaling_threshold`; swell names it `slow_requests` and reads
the threshold as a `Value` target: desired = ceil(ready x fraction / threshold), which is what
"scale when 60 % of requests take more than 5 s" means (an `AverageValue` target could never
ask for more than ceil(1 / threshold) replicas). This module returns a plain mapping; recipe.py
validates it, so every problem still names a field.
"""

from __future__ import annotations

import math
import re
from typing import Any

from swell import errors

DEFAULT_SIGNAL = "slow_requests"
DEFAULT_PROMETHEUS_URL = "http://prometheus-server.cluster-tools.svc.cluster.local"

# Documented example values of Corrino's advanced autoscaling keys, used as defaults.
POD_DEFAULTS: dict[str, Any] = {
    "collect_metrics_timespan": "5m",
    "scaling_threshold": 0.5,
    "scaling_cooldown": 60,
    "polling_interval": 15,
    "stabilization_window_down": 180,
    "stabilization_window_up": 120,
    "scaling_period_down": 90,
    "scaling_period_up": 60,
}
ADVANCED_KEYS = {*POD_DEFAULTS, "query"}
POD_KEYS = {"min_replicas", "max_replicas", *ADVANCED_KEYS}
NODE_KEYS = {"min_nodes", "max_nodes", *ADVANCED_KEYS}

# Corrino keys swell maps (->) or accepts without use (deployment plumbing of OCI).
IGNORED_KEYS = {
    "recipe_id",
    "recipe_mode",
    "recipe_prometheus_enabled",
    "recipe_ephemeral_storage_size",
    "recipe_shared_memory_volume_size_limit_in_mb",
    "recipe_use_shared_node_pool",
    "recipe_flex_shape_ocpu_count",
    "recipe_flex_shape_memory_size_in_gbs",
    "recipe_node_boot_volume_size_in_gbs",
    "input_object_storage",
    "output_object_storage",
    "input_file_system",
    "recipe_container_cpu_count",
    "recipe_container_memory_size",
    "recipe_pod_autoscaling_params",
    "recipe_node_autoscaling_params",
    "recipe_node_shape",
    "recipe_replica_count",
    "recipe_node_pool_size",
    "recipe_nvidia_gpu_count",
    "recipe_image_uri",
    "recipe_container_port",
    "recipe_container_command_args",
    "recipe_container_env",
    "deployment_name",
    "recipe_readiness_probe_params",
    "recipe_liveness_probe_params",
    "service_endpoint_domain",
    "skip_capacity_validation",
}


def is_corrino(data: dict[str, Any]) -> bool:
    return any(isinstance(k, str) and k.startswith("recipe_") for k in data)


def _duration(value: Any, path: str, problems: list[errors.Problem]) -> float:
    """'5m' / '90s' / '1h' / 300 -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            problems.append(errors.Problem(path=path, value=value, rule="a finite duration >= 0"))
            return 0.0
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(value))
    if not m:
        problems.append(errors.Problem(path=path, value=value, rule="a duration like '5m', '90s' or '1h'"))
        return 0.0
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _count(data: dict[str, Any], key: str, problems: list[errors.Problem]) -> int:
    """A whole number >= 0 (Corrino payloads often carry numbers as text: "3")."""
    value = data.get(key, 1)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    problems.append(errors.Problem(path=key, value=value, rule="a whole number >= 0"))
    return 1


def _params(
    data: dict[str, Any], key: str, allowed: set[str], problems: list[errors.Problem]
) -> dict[str, Any]:
    raw = data.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(errors.Problem(path=key, value=raw, rule="a mapping of autoscaling parameters"))
        return {}
    for k in raw:
        if k not in allowed:
            problems.append(
                errors.Problem(
                    path=f"{key}.{k}", value=raw[k], rule=f"unknown key; known: {', '.join(sorted(allowed))}"
                )
            )
    return raw


def _autoscaling(
    pod: dict[str, Any], node: dict[str, Any], replicas: int, problems: list[errors.Problem]
) -> dict[str, Any]:
    # Corrino's own docs place the advanced keys under either section: pod wins, then node.
    adv = {
        **POD_DEFAULTS,
        **{k: v for k, v in node.items() if k in ADVANCED_KEYS},
        **{k: v for k, v in pod.items() if k in ADVANCED_KEYS},
    }
    path = "recipe_pod_autoscaling_params"
    window = _duration(adv["collect_metrics_timespan"], f"{path}.collect_metrics_timespan", problems)
    signal: dict[str, Any] = {
        "name": DEFAULT_SIGNAL,
        "target": adv["scaling_threshold"],
        "target_type": "Value",
    }
    out: dict[str, Any] = {}
    if adv.get("query"):
        signal |= {"kind": "promql", "query": adv["query"]}
        out["metrics"] = {"source": "prometheus", "prometheus_url": DEFAULT_PROMETHEUS_URL}
    else:
        signal |= {
            "kind": "histogram_fraction",
            "metric": "vllm:e2e_request_latency_seconds",
            "le": 5.0,
            "window_s": window or 300.0,
        }
    up_period = int(_duration(adv["scaling_period_up"], f"{path}.scaling_period_up", problems)) or 60
    down_period = int(_duration(adv["scaling_period_down"], f"{path}.scaling_period_down", problems)) or 90
    return out | {
        "min_replicas": pod.get("min_replicas", replicas),
        "max_replicas": pod.get("max_replicas", max(replicas, 1)),
        "policy": "threshold",
        "signals": [signal],
        "polling_interval_s": _duration(adv["polling_interval"], f"{path}.polling_interval", problems),
        "cooldown_s": _duration(adv["scaling_cooldown"], f"{path}.scaling_cooldown", problems),
        "behavior": {
            "scale_up": {
                "stabilization_window_s": int(
                    _duration(adv["stabilization_window_up"], f"{path}.stabilization_window_up", problems)
                ),
                "policies": [{"type": "Pods", "value": 1, "period_s": up_period}],
            },
            "scale_down": {
                "stabilization_window_s": int(
                    _duration(adv["stabilization_window_down"], f"{path}.stabilization_window_down", problems)
                ),
                "policies": [{"type": "Pods", "value": 1, "period_s": down_period}],
            },
        },
    }


def convert(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Map a Corrino payload onto swell's recipe keys; unknown keys and bad durations are problems."""
    problems: list[errors.Problem] = []
    for k in data:
        if not isinstance(k, str):
            problems.append(errors.Problem(path=str(k), value=data[k], rule="keys are text"))
    data = {k: v for k, v in data.items() if isinstance(k, str)}
    own = {k: v for k, v in data.items() if not k.startswith("recipe_") and k not in IGNORED_KEYS}
    for k in data:
        if k.startswith("recipe_") and k not in IGNORED_KEYS:
            problems.append(
                errors.Problem(path=k, value=data[k], rule="unknown Corrino key (check the spelling)")
            )
    pod = _params(data, "recipe_pod_autoscaling_params", POD_KEYS, problems)
    node = _params(data, "recipe_node_autoscaling_params", NODE_KEYS, problems)
    replicas = _count(data, "recipe_replica_count", problems)
    pool_size = _count(data, "recipe_node_pool_size", problems)
    name = (
        str(data.get("deployment_name") or data.get("recipe_id") or "corrino-service")
        .lower()
        .replace("_", "-")
    )
    service: dict[str, Any] = {"name": name, "engine": "vllm"}
    if "recipe_image_uri" in data:
        service["image"] = data["recipe_image_uri"]
    if "recipe_container_port" in data:
        service["container_port"] = data["recipe_container_port"]
    if "recipe_container_command_args" in data:
        service["args"] = data["recipe_container_command_args"]
    if isinstance(data.get("recipe_container_env"), list):
        service["env"] = {
            str(e.get("key")): str(e.get("value"))
            for e in data["recipe_container_env"]
            if isinstance(e, dict)
        }
    node_pool: dict[str, Any] = {
        "shape": data.get("recipe_node_shape", "local"),
        "min_nodes": node.get("min_nodes", pool_size),
        "max_nodes": node.get("max_nodes", max(pool_size, 1)),
    }
    recipe: dict[str, Any] = {
        "service": service,
        "resources": {"gpus": data.get("recipe_nvidia_gpu_count", 0)},
        "node_pool": node_pool,
        "autoscaling": _autoscaling(pod, node, replicas, problems),
        "slo": {"e2e_s": 5.0, "percentile": 50.0},
    }
    if problems:
        raise errors.RecipeError(source, problems)
    return own | recipe
