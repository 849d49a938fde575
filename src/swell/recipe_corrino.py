"""Corrino (OCI AI Blueprints) recipe payloads, accepted as-is and converted to swell's form.

Corrino's default scaling signal is "the fraction of requests slower than 5 s end to end over
`collect_metrics_timespan`" against `scaling_threshold`; swell names it `slow_requests` and reads
the threshold as a `Value` target: desired = ceil(ready x fraction / threshold), which is what
"scale when 60 % of requests take more than 5 s" means (an `AverageValue` target could never
ask for more than ceil(1 / threshold) replicas). `translate` returns a plain mapping, the problems
found on the way, and where each of swell's keys came from, so that recipe.py, which validates the
mapping, names the keys the user wrote (`recipe_nvidia_gpu_count`, not `resources.gpus`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from swell import durations, errors, gpu_shapes

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


def _shape_defaults(service: dict[str, Any], node_pool: dict[str, Any]) -> None:
    """The node shape's GPU picks the engine preset the simulator runs, and its list price per GPU-hour."""
    shape = str(node_pool["shape"])
    args = service.get("args")
    argv = args if isinstance(args, list | tuple) else ()
    preset = gpu_shapes.llm_preset(shape, gpu_shapes.served_model(argv), gpu_shapes.tensor_parallel(argv))
    if preset is not None:
        service["preset"] = preset
    known = gpu_shapes.SHAPES.get(shape)
    if known is not None and known.price_per_gpu_hour is not None:
        node_pool["price_per_gpu_hour"] = known.price_per_gpu_hour


def _implied_slo(pod: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Corrino scales when more than `scaling_threshold` of requests take over 5 s end to end, so it
    keeps at least 1 - threshold of them within 5 s: that share is the SLO's percentile (a custom
    `query` says nothing about latency: then the median)."""
    adv = {**node, **pod}
    threshold = _number(adv.get("scaling_threshold", POD_DEFAULTS["scaling_threshold"]))
    share = 0.5 if adv.get("query") or threshold is None else 1.0 - threshold  # a bad threshold is
    # reported where the signal is built
    return {"e2e_s": 5.0, "percentile": round(min(100.0, max(1.0, 100.0 * share)), 6)}


def is_corrino(data: dict[str, Any]) -> bool:
    return any(isinstance(k, str) and k.startswith("recipe_") for k in data)


def _duration(value: Any, path: str, problems: list[errors.Problem]) -> float:
    """'5m' / '90s' / '1h' / 300 -> seconds (`swell.durations`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        try:
            seconds = durations.parse(str(value))
        except ValueError:
            problems.append(errors.Problem(path=path, value=value, rule=durations.EXAMPLES))
            return 0.0
    if not math.isfinite(seconds) or seconds < 0:  # "1e309" is text past float's range
        problems.append(errors.Problem(path=path, value=value, rule="a finite duration >= 0"))
        return 0.0
    return seconds


def _number(value: Any) -> float | None:
    """A number, or one written as text ("0.1"); None for anything else (reported where it is read)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        return None


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
        t = _number(adv["scaling_threshold"])
        if t is not None and t > 1:  # a fraction never gets there
            hint = f": {t:g} reads as a percent (write {t / 100:g})" if t <= 100 else ""
            problems.append(errors.Problem(path=f"{path}.scaling_threshold", value=adv["scaling_threshold"],
                                           rule=f"a fraction of requests over 5 s, in (0, 1]{hint}"))  # fmt: skip
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


ADVANCED_PATHS = {
    "autoscaling.signals.0.target": "scaling_threshold",
    "autoscaling.signals.0.window_s": "collect_metrics_timespan",
    "autoscaling.signals.0.query": "query",
    "autoscaling.polling_interval_s": "polling_interval",
    "autoscaling.cooldown_s": "scaling_cooldown",
    "autoscaling.behavior.scale_up.stabilization_window_s": "stabilization_window_up",
    "autoscaling.behavior.scale_up.policies": "scaling_period_up",
    "autoscaling.behavior.scale_down.stabilization_window_s": "stabilization_window_down",
    "autoscaling.behavior.scale_down.policies": "scaling_period_down",
}


@dataclass(frozen=True, kw_only=True)
class Translation:
    """A Corrino payload in swell's form, the problems found converting it, and for each of swell's
    key paths the payload key it came from."""

    data: dict[str, Any]
    problems: tuple[errors.Problem, ...]
    origins: dict[str, str]

    def user_path(self, path: str) -> str:
        """The payload key behind a path of swell's form (the longest known prefix), else `path`."""
        parts = path.split(".")
        for n in range(len(parts), 0, -1):
            head = ".".join(parts[:n])
            if head in self.origins:
                return ".".join([self.origins[head], *parts[n:]])
        return path


def _origins(data: dict[str, Any], pod: dict[str, Any], node: dict[str, Any]) -> dict[str, str]:
    pod_key, node_key = "recipe_pod_autoscaling_params", "recipe_node_autoscaling_params"
    out = {
        "service.name": "deployment_name" if data.get("deployment_name") else "recipe_id",
        "service.image": "recipe_image_uri",
        "service.container_port": "recipe_container_port",
        "service.args": "recipe_container_command_args",
        "service.env": "recipe_container_env",
        "resources.gpus": "recipe_nvidia_gpu_count",
        "node_pool.shape": "recipe_node_shape",
    }
    for key in ("min_replicas", "max_replicas"):
        out[f"autoscaling.{key}"] = f"{pod_key}.{key}" if key in pod else "recipe_replica_count"
    for key in ("min_nodes", "max_nodes"):
        out[f"node_pool.{key}"] = f"{node_key}.{key}" if key in node else "recipe_node_pool_size"
    for path, key in ADVANCED_PATHS.items():
        out[path] = f"{node_key}.{key}" if key in node and key not in pod else f"{pod_key}.{key}"
    return out


def translate(data: dict[str, Any]) -> Translation:
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
    for key in ("deployment_name", "recipe_id"):  # text where given: a number or a list is no name
        if key in data and not isinstance(data[key], str | None):
            problems.append(errors.Problem(path=key, value=data[key], rule="a name: text"))
    given = [data.get(k) for k in ("deployment_name", "recipe_id")]
    name = next((v for v in given if isinstance(v, str) and v), "corrino-service").lower().replace("_", "-")
    service: dict[str, Any] = {"name": name, "engine": "vllm"}
    if "recipe_image_uri" in data:
        service["image"] = data["recipe_image_uri"]
    if "recipe_container_port" in data:
        service["container_port"] = data["recipe_container_port"]
    if "recipe_container_command_args" in data:
        service["args"] = data["recipe_container_command_args"]
    if "recipe_container_env" in data:
        service["env"] = _env(data["recipe_container_env"], problems)
    shape = data.get("recipe_node_shape", "local")
    if isinstance(shape, str) and shape != "local" and shape not in gpu_shapes.SHAPES:  # no Corrino key gives
        # a node's GPUs, so the recipe's own advice (gpus_per_node) would be an unknown key here
        known = ", ".join(sorted([*gpu_shapes.SHAPES, "local"]))
        problems.append(errors.Problem(path="recipe_node_shape", value=shape, rule=(
            f"unknown node shape: a Corrino payload names a known one; for another, write a swell recipe with "
            f"node_pool.gpus_per_node ({known})")))  # fmt: skip
    node_pool: dict[str, Any] = {
        "shape": shape,
        "min_nodes": node.get("min_nodes", pool_size),
        "max_nodes": node.get("max_nodes", max(pool_size, 1)),
    }
    recipe: dict[str, Any] = {
        "service": service,
        "resources": {"gpus": data.get("recipe_nvidia_gpu_count", 0)},
        "node_pool": node_pool,
        "autoscaling": _autoscaling(pod, node, replicas, problems),
        "slo": _implied_slo(pod, node),
    }
    _shape_defaults(service, node_pool)
    origins = _origins(data, pod, node)
    for section, made in recipe.items():  # swell's own keys beside Corrino's win, key by key (a local
        # engine, e.g. service: {"engine": "simulated-llm"}, to run it here), and are named as written
        if section not in own:
            continue
        if not isinstance(own[section], dict):
            problems.append(errors.Problem(path=section, value=own[section],
                                           rule=f"swell's {section} keys beside Corrino's: a mapping, e.g. "
                                                f"{SECTION_EXAMPLES[section]}"))  # fmt: skip
            continue
        made.update(own[section])
        for key in own[section]:
            origins = {p: o for p, o in origins.items() if p != f"{section}.{key}" and not p.startswith(f"{section}.{key}.")}
    return Translation(data=own | recipe, problems=tuple(problems), origins=origins)


SECTION_EXAMPLES = {
    "service": '{"engine": "simulated-llm"}',
    "resources": '{"cpu": 2}',
    "node_pool": '{"gpus_per_node": 2}',
    "autoscaling": '{"policy": "swell"}',
    "slo": '{"ttft_s": 2}',
}


def _env(given: Any, problems: list[errors.Problem]) -> dict[str, str]:
    """recipe_container_env: a list of {key, value} (numbers as text); anything else is named."""
    rule = 'a list of {"key": NAME, "value": VALUE} mappings, e.g. [{"key": "HF_TOKEN", "value": "..."}]'
    if not isinstance(given, list):
        problems.append(errors.Problem(path="recipe_container_env", value=given, rule=rule))
        return {}
    out: dict[str, str] = {}
    for i, e in enumerate(given):
        ok = isinstance(e, dict) and set(e) == {"key", "value"}
        ok = ok and isinstance(e["key"], str) and isinstance(e["value"], str | int | float) and not isinstance(e["value"], bool)
        if not ok:
            problems.append(errors.Problem(path=f"recipe_container_env.{i}", value=e, rule=rule))
            continue
        out[e["key"]] = str(e["value"])
    return out
