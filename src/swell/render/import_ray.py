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

from swell import errors
from swell.metrics import gateway as gateway_metrics
from swell.render import gateway

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
    """A Serve config file: no `kind`, `applications` at the top."""
    return "kind" not in doc and "applications" in doc


def serve_config_of(obj: Obj) -> Obj:
    """The Serve config a RayService carries (`spec.serveConfigV2`, a YAML string)."""
    text = (obj.get("spec") or {}).get("serveConfigV2")
    if not isinstance(text, str):
        raise _refused("spec.serveConfigV2", text, "the Serve config as a YAML string")
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _refused("spec.serveConfigV2", "…", f"YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(cfg, dict) or "applications" not in cfg:
        raise _refused("spec.serveConfigV2", None, "a Serve config: a mapping with `applications`")
    return cfg


def _refused(path: str, value: object, rule: str) -> errors.RecipeError:
    return errors.RecipeError("Ray Serve config", [errors.Problem(path=path, value=value, rule=rule)])


def k8s_name(name: str) -> str:
    """A Serve deployment's name as a Deployment's: a DNS-1035 label (lower case, digits, '-',
    starting with a letter), short enough for `swell render --gateway`'s `<name>-gateway`."""
    out = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not out or not out[0].isalpha():
        out = f"serve-{out}".rstrip("-")
    return out[: gateway.MAX_NAME].rstrip("-")


class Checked:
    """Values read from a config, each checked; the problems collected with their paths."""

    def __init__(self) -> None:
        self.problems: list[errors.Problem] = []

    def bad(self, path: str, value: object, rule: str) -> None:
        self.problems.append(errors.Problem(path=path, value=value, rule=rule))

    def number(self, cfg: Obj, key: str, at: str, *, low: float = 0.0, above: bool = False,
               whole: bool = False) -> float | None:  # fmt: skip
        v = cfg.get(key)
        if v is None:
            return None
        ok = (not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)
              and (v > low if above else v >= low) and (not whole or float(v).is_integer()))  # fmt: skip
        if not ok:
            kind = "a whole number" if whole else "a number"
            self.bad(f"{at}.{key}", v, f"{kind} {'>' if above else '>='} {low:g}")
            return None
        return float(v)

    def mapping(self, dep: Obj, key: str, at: str) -> Obj:
        v = dep.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.bad(f"{at}.{key}", v, "a mapping")
            return {}
        return dict(v)


def deployment(dep: Obj, at: str, where: str, check: Checked) -> tuple[Obj, Obj, list[str]]:
    """One Serve deployment (at path `at` of the config) -> (the recipe's autoscaling, other recipe
    sections, what is left out); its problems go to `check`."""
    left: list[str] = []
    left.append(f"{where}: the application's code (import_path, runtime_env) is not carried over: set service.engine, "
                "model and image to what serves it")  # fmt: skip
    replicas = dep.get("num_replicas")
    if replicas is not None and replicas != "auto" and (isinstance(replicas, bool) or not isinstance(replicas, int)
                                                         or replicas < 0):  # fmt: skip
        check.bad(f"{at}.num_replicas", replicas, 'a whole number >= 0, or "auto"')
    given = check.mapping(dep, "autoscaling_config", at)
    if isinstance(replicas, int) and not isinstance(replicas, bool) and given:
        check.bad(f"{at}.num_replicas", replicas, "give num_replicas or autoscaling_config, not both (Ray refuses both)")
    for old, new in RENAMED.items():
        if old in given:
            given.setdefault(new, given.pop(old))
    if "smoothing_factor" in given:
        factor = given.pop("smoothing_factor")
        given.setdefault("upscaling_factor", factor)
        given.setdefault("downscaling_factor", factor)
    extra: Obj = {}
    options = check.mapping(dep, "ray_actor_options", at)
    gpus = check.number(options, "num_gpus", f"{at}.ray_actor_options")
    if gpus is not None and gpus >= 1 and gpus.is_integer():
        extra["resources"] = {"gpus": int(gpus)}
        if gpus > 1:
            extra["node_pool"] = {"gpus_per_node": int(gpus)}
            left.append(f"{where}: node_pool: set to hold one {int(gpus)}-GPU replica a node (Ray's cluster config is "
                        "not read): give your GPU nodes' shape")  # fmt: skip
    elif gpus:
        left.append(f"{where}: ray_actor_options.num_gpus {gpus:g}: a pod takes whole GPUs; set resources.gpus")
    key = "max_ongoing_requests" if "max_ongoing_requests" in dep else "max_concurrent_queries"
    cap = check.number(dep, key, at, low=1, whole=True)
    if cap is not None:
        extra["local"] = {"max_ongoing_requests": int(cap)}
    if replicas != "auto" and not given:
        n = replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else 1
        return {"min_replicas": n, "max_replicas": n}, extra, left
    cfg = {k: v for k, v in given.items() if v is not None}
    values = {k: check.number(cfg, k, f"{at}.autoscaling_config", whole=True)
              for k in ("min_replicas", "max_replicas", "initial_replicas")}  # fmt: skip
    values |= {k: check.number(cfg, k, f"{at}.autoscaling_config", above=True)
               for k in ("target_ongoing_requests", "look_back_period_s", "upscaling_factor", "downscaling_factor")}  # fmt: skip
    values |= {k: check.number(cfg, k, f"{at}.autoscaling_config")
               for k in ("upscale_delay_s", "downscale_delay_s", "downscale_to_zero_delay_s")}  # fmt: skip
    base = DEFAULTS | AUTO if replicas == "auto" else DEFAULTS
    got = base | {k: v for k, v in values.items() if v is not None}
    if replicas == "auto" and cap is None:
        extra["local"] = {"max_ongoing_requests": 5}  # num_replicas auto's cap
    unknown = sorted(set(given) - KNOWN)
    if unknown:
        left.append(f"{where}: autoscaling_config {', '.join(unknown)}: not Ray settings swell knows")
    for name in ("metrics_interval_s", "aggregation_function"):
        if name in given:
            left.append(f"{where}: autoscaling_config.{name}: swell reads the gateway at the recipe's scrape interval")
    if "policy" in given:
        left.append(f"{where}: autoscaling_config.policy (a custom policy): imported as Ray's default one")
    auto: Obj = {
        "policy": "ray",
        "min_replicas": int(got["min_replicas"]),
        "max_replicas": int(got["max_replicas"]),
        "polling_interval_s": 2.0,
        "signals": [{"name": "ongoing", "kind": "rate", "metric": gateway_metrics.CONCURRENCY,
                     "window_s": got["look_back_period_s"], "target": got["target_ongoing_requests"],
                     "target_type": "AverageValue"}],
        "ray": {k: got[k] for k in DELAYS if got.get(k) is not None},
    }  # fmt: skip
    if got.get("initial_replicas") is not None:
        auto["initial_replicas"] = int(got["initial_replicas"])
    left.append(f"{where}: Ray's ongoing requests are read, and max_ongoing_requests held, at swell's gateway: "
                "render with `swell render --gateway`")
    return auto, extra, left


def deployments(cfg: Obj, source: str) -> list[tuple[str, Obj, Obj, list[str]]]:
    """Every deployment of every application: (its Kubernetes name, autoscaling, other sections,
    left out). RecipeError with every problem, each at its path in the config."""
    check = Checked()
    apps = cfg.get("applications")
    if not isinstance(apps, list):
        raise _refused("applications", apps, "a list of applications")
    out: list[tuple[str, Obj, Obj, list[str]]] = []
    named: dict[str, str] = {}  # Kubernetes name -> the path of the deployment that took it
    for i, app in enumerate(apps):
        if not isinstance(app, dict):
            check.bad(f"applications[{i}]", app, "a mapping")
            continue
        deps = app.get("deployments") or []
        if not isinstance(deps, list):
            check.bad(f"applications[{i}].deployments", deps, "a list of deployments")
            continue
        for j, dep in enumerate(deps):
            at = f"applications[{i}].deployments[{j}]"
            if not isinstance(dep, dict) or not isinstance(dep.get("name"), str) or not dep["name"]:
                check.bad(at, dep, "a mapping with a name")
                continue
            name = k8s_name(dep["name"])
            if name in named:
                check.bad(f"{at}.name", dep["name"], f"becomes Deployment {name!r}, as {named[name]} does: rename one")
                continue
            named[name] = f"{at} ({dep['name']})"
            auto, extra, left = deployment(dep, at, f"{source} {app.get('name', i)}/{dep['name']}", check)
            out.append((name, auto, extra, left))
    if not out and not check.problems:
        check.bad("applications", None, "no Serve deployment to import (each application lists its `deployments`)")
    if check.problems:
        raise errors.RecipeError(source, check.problems)
    return out
