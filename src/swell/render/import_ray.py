"""Ray Serve's autoscaling, imported: a Serve config file (`serve deploy`) or a KubeRay
RayService (its `serveConfigV2`) -> one recipe per Serve deployment, on policy `ray`.

Ray's replicas are actors in a Ray cluster; in swell a replica is a pod of a Deployment, named
after the Serve deployment (Kubernetes' rules: lower case, `-`). What Ray counts as ongoing
requests (queued at the handles and running at the replicas) is read at swell's gateway
(`swell render --gateway`): its concurrency over Ray's look-back period. Ray's defaults fill what a
config leaves out, as `num_replicas: auto` sets them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from swell.metrics import gateway as gateway_metrics

Obj = dict[str, Any]
# Ray Serve's defaults (ray.serve.config.AutoscalingConfig, 2.32 and later)
DEFAULTS = {"min_replicas": 1, "max_replicas": 1, "target_ongoing_requests": 2.0, "look_back_period_s": 30.0,
            "upscale_delay_s": 30.0, "downscale_delay_s": 600.0}  # fmt: skip
AUTO = {"min_replicas": 1, "max_replicas": 100, "target_ongoing_requests": 2.0}  # num_replicas: "auto"
RENAMED = {"target_num_ongoing_requests_per_replica": "target_ongoing_requests",
           "upscale_smoothing_factor": "upscaling_factor", "downscale_smoothing_factor": "downscaling_factor"}  # fmt: skip
DELAYS = ("upscale_delay_s", "downscale_delay_s", "downscale_to_zero_delay_s", "upscaling_factor", "downscaling_factor")
KNOWN = {*DEFAULTS, *DELAYS, *RENAMED, "initial_replicas", "smoothing_factor", "metrics_interval_s", "policy",
         "aggregation_function"}  # fmt: skip


def is_serve_config(doc: Obj) -> bool:
    """A Serve config file: no `kind`, a list of `applications`."""
    return "kind" not in doc and isinstance(doc.get("applications"), list)


def serve_config_of(obj: Obj) -> Obj:
    """The Serve config a RayService carries (`spec.serveConfigV2`, a YAML string)."""
    text = (obj.get("spec") or {}).get("serveConfigV2")
    if not isinstance(text, str):
        raise ValueError("spec.serveConfigV2 must be the Serve config as a YAML string")
    cfg = yaml.safe_load(text)
    if not isinstance(cfg, dict) or not isinstance(cfg.get("applications"), list):
        raise ValueError("spec.serveConfigV2 holds no `applications` list")
    return cfg


def k8s_name(name: str) -> str:
    """A Serve deployment's name as a Deployment's (RFC 1123: lower case, digits, '-', <= 63)."""
    out = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    return out or "serve"


def _number(cfg: Obj, key: str, where: str) -> float:
    v = cfg[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"{where}.{key}: {v!r} is not a number")
    return float(v)


def deployment(dep: Obj, where: str) -> tuple[Obj, Obj, list[str]]:
    """One Serve deployment -> (the recipe's autoscaling, other recipe sections, what is left out)."""
    left: list[str] = []
    replicas = dep.get("num_replicas")
    given = dict(dep.get("autoscaling_config") or {})
    for old, new in RENAMED.items():
        if old in given:
            given.setdefault(new, given.pop(old))
    if "smoothing_factor" in given:
        factor = given.pop("smoothing_factor")
        given.setdefault("upscaling_factor", factor)
        given.setdefault("downscaling_factor", factor)
    extra: Obj = {}
    gpus = (dep.get("ray_actor_options") or {}).get("num_gpus")
    if isinstance(gpus, int | float) and gpus >= 1 and float(gpus).is_integer():
        extra["resources"] = {"gpus": int(gpus)}
    elif gpus:
        left.append(f"{where}: ray_actor_options.num_gpus {gpus}: a pod takes whole GPUs")
    cap = dep.get("max_ongoing_requests", dep.get("max_concurrent_queries"))
    if isinstance(cap, int) and cap > 0:
        extra["local"] = {"max_ongoing_requests": cap}
    if isinstance(replicas, int) and not given:
        return {"min_replicas": replicas, "max_replicas": replicas}, extra, left
    base = DEFAULTS | AUTO if replicas == "auto" else DEFAULTS
    cfg = base | {k: v for k, v in given.items() if v is not None}
    if replicas == "auto" and cap is None:
        extra["local"] = {"max_ongoing_requests": 5}  # num_replicas auto's cap
    unknown = sorted(set(given) - KNOWN)
    if unknown:
        left.append(f"{where}: autoscaling_config {', '.join(unknown)}: not Ray settings swell knows")
    for key in ("metrics_interval_s", "aggregation_function"):
        if key in given:
            left.append(f"{where}: autoscaling_config.{key}: swell reads the gateway at the recipe's scrape interval")
    if "policy" in given:
        left.append(f"{where}: autoscaling_config.policy (a custom policy): imported as Ray's default one")
    auto: Obj = {
        "policy": "ray",
        "min_replicas": int(_number(cfg, "min_replicas", where)),
        "max_replicas": int(_number(cfg, "max_replicas", where)),
        "polling_interval_s": 2.0,
        "signals": [{"name": "ongoing", "kind": "rate", "metric": gateway_metrics.CONCURRENCY,
                     "window_s": _number(cfg, "look_back_period_s", where),
                     "target": _number(cfg, "target_ongoing_requests", where), "target_type": "AverageValue"}],
        "ray": {k: cfg[k] for k in DELAYS if cfg.get(k) is not None},
    }  # fmt: skip
    if cfg.get("initial_replicas") is not None:
        auto["initial_replicas"] = int(_number(cfg, "initial_replicas", where))
    left.append(f"{where}: Ray's ongoing requests are read, and max_ongoing_requests held, at swell's gateway: "
                "render with `swell render --gateway`")
    return auto, extra, left


def deployments(cfg: Obj, source: str) -> list[tuple[str, Obj, Obj, list[str]]]:
    """Every deployment of every application: (its name, autoscaling, other sections, left out)."""
    out = []
    for i, app in enumerate(cfg["applications"]):
        if not isinstance(app, dict):
            raise ValueError(f"applications[{i}] must be a mapping")
        deps = app.get("deployments") or []
        if not isinstance(deps, list):
            raise ValueError(f"applications[{i}].deployments must be a list")
        for j, dep in enumerate(deps):
            if not isinstance(dep, dict) or not dep.get("name"):
                raise ValueError(f"applications[{i}].deployments[{j}] must be a mapping with a name")
            where = f"{source} {app.get('name', i)}/{dep['name']}"
            auto, extra, left = deployment(dep, where)
            out.append((k8s_name(str(dep["name"])), auto, extra, left))
    return out
