"""Named policy presets: what the seeds configure, and swell's own default, as recipe rewrites.

Each preset is a function `Recipe -> Recipe` that keeps the service, resources, node pool, SLO and
replica bounds and replaces how the service is scaled (signals, policy, behavior, polling and
scrape intervals), so policies can be compared on the same service and cluster. `apply(name, r)`
runs one; `NAMES` lists them, named for the mechanism and its signal (`hpa-latency`); the earlier
names (`seed-hpa-latency`, ...) stay accepted as `ALIASES`; "recipe" leaves the recipe as written.
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Callable
from typing import Any

from swell import recipe, recipe_corrino

Preset = Callable[[recipe.Recipe], recipe.Recipe]
E2E = "vllm:e2e_request_latency_seconds"


def _with(rec: recipe.Recipe, autoscaling: dict[str, Any]) -> recipe.Recipe:
    """The recipe with its autoscaling replaced, keeping min/max replicas, headroom and the
    planner's target utilization (the user's bounds and dial, not the policy's)."""
    a = rec.autoscaling
    keep = {
        "min_replicas": a.min_replicas,
        "max_replicas": a.max_replicas,
        "headroom_nodes": a.headroom_nodes,
        "target_utilization": a.target_utilization,
    }
    data = rec.model_dump(by_alias=True, exclude={"autoscaling"})
    data["autoscaling"] = keep | autoscaling
    return recipe.Recipe.model_validate(data)


def _scrape(seconds: float) -> dict[str, Any]:
    return {"source": "embedded", "scrape_interval_s": seconds}


def seed_hpa_latency(rec: recipe.Recipe) -> recipe.Recipe:
    """Seed 000: HPA on average end-to-end latency, rate(_sum)/rate(_count) over 1 m, target 200 ms.

    prometheus-adapter serves it as an object metric (Value target: ceil(ready x value / 0.2));
    the HPA syncs every 15 s with the default behavior; Prometheus scrapes every 10 s."""
    signal = {
        "name": "avg_e2e_latency", "kind": "ratio", "numerator": E2E + "_sum",
        "denominator": E2E + "_count", "window_s": 60.0, "target": 0.2, "target_type": "Value",
    }  # fmt: skip
    return _with(
        rec, {"policy": "hpa", "signals": [signal], "polling_interval_s": 15.0, "metrics": _scrape(10.0)}
    )


def corrino_keda(rec: recipe.Recipe) -> recipe.Recipe:
    """Seed 001: KEDA with Corrino's default query, the share of requests slower than 5 s over
    `collect_metrics_timespan` against `scaling_threshold`, and the payload's own advanced
    parameters when the recipe came from one (the Corrino conversion keeps them on the recipe:
    its `slow_requests` signal, polling interval, cooldown and behavior), else Corrino's documented
    example values (5 m, 0.5, polling 15 s, cooldown 60 s, stabilization 120 s up / 180 s down,
    one pod per 60 s up / per 90 s down). A payload's custom `query` cannot run here: Corrino's
    default signal stands in for it, with the payload's other parameters.

    Prometheus is the prometheus-community chart Corrino installs: it scrapes every 1 m."""
    d = recipe_corrino.POD_DEFAULTS
    minutes = float(str(d["collect_metrics_timespan"]).rstrip("m")) * 60.0
    signal = {
        "name": recipe_corrino.DEFAULT_SIGNAL, "kind": "histogram_fraction", "metric": E2E, "le": 5.0,
        "window_s": minutes, "target": d["scaling_threshold"], "target_type": "Value",
    }  # fmt: skip
    rules = {
        "scale_up": {
            "stabilization_window_s": d["stabilization_window_up"],
            "policies": [{"type": "Pods", "value": 1, "period_s": d["scaling_period_up"]}],
        },
        "scale_down": {
            "stabilization_window_s": d["stabilization_window_down"],
            "policies": [{"type": "Pods", "value": 1, "period_s": d["scaling_period_down"]}],
        },
    }
    keda: dict[str, Any] = {
        "policy": "threshold", "signals": [signal], "polling_interval_s": float(d["polling_interval"]),
        "cooldown_s": float(d["scaling_cooldown"]), "behavior": rules, "metrics": _scrape(60.0),
    }  # fmt: skip
    return _with(rec, keda | _corrino_own(rec))


def _corrino_own(rec: recipe.Recipe) -> dict[str, Any]:
    """The advanced parameters a converted Corrino payload left on the recipe (none otherwise)."""
    a = rec.autoscaling
    if a.policy != "threshold" or [s.name for s in a.signals] != [recipe_corrino.DEFAULT_SIGNAL]:
        return {}
    dumped = a.model_dump(by_alias=True)
    own: dict[str, Any] = {
        "polling_interval_s": a.polling_interval_s,
        "cooldown_s": a.cooldown_s,
        "behavior": dumped["behavior"],
    }
    if a.signals[0].kind == "histogram_fraction":
        own["signals"] = dumped["signals"]
    return own


def gpu_util_hpa(rec: recipe.Recipe) -> recipe.Recipe:
    """Seeds 002/004: HPA on DCGM GPU utilisation averaged over the pods, target 20 %.

    dcgm-exporter collects every 30 s; the HPA syncs every 15 s with the default behavior."""
    signal = {"name": "gpu_util", "kind": "utilization", "resource": "gpu", "window_s": 60.0,
              "target": 20.0, "target_type": "Utilization"}  # fmt: skip
    return _with(
        rec, {"policy": "hpa", "signals": [signal], "polling_interval_s": 15.0, "metrics": _scrape(30.0)}
    )


def cpu_hpa(rec: recipe.Recipe) -> recipe.Recipe:
    """Seed 002: the classic CPU HPA (`kubectl autoscale --cpu-percent=50`), metrics-server every 15 s."""
    signal = {"name": "cpu", "kind": "utilization", "resource": "cpu", "window_s": 60.0,
              "target": 50.0, "target_type": "Utilization"}  # fmt: skip
    return _with(
        rec, {"policy": "hpa", "signals": [signal], "polling_interval_s": 15.0, "metrics": _scrape(15.0)}
    )


def knative_kpa(rec: recipe.Recipe) -> recipe.Recipe:
    """Knative KPA defaults: concurrency target 100 x 70 % utilisation per pod, stable window 60 s,
    panic window 6 s (10 %), panic at 200 %, scale down at most halving, decisions every 2 s;
    the queue-proxy reports concurrency every second."""
    signal = {"name": "concurrency", "kind": "gauge", "metric": "swell_outstanding_requests", "aggregate": "sum",
              "window_s": 60.0, "target": 70.0, "target_type": "AverageValue"}  # fmt: skip
    panic = {"signal": "concurrency", "stable_window_s": 60.0, "panic_window_s": 6.0, "panic_threshold": 2.0,
             "max_scale_up_rate": 1000.0, "max_scale_down_rate": 2.0}  # fmt: skip
    return _with(rec, {
        "policy": "panic", "signals": [signal], "panic": panic, "polling_interval_s": 2.0,
        "cooldown_s": 30.0, "metrics": _scrape(1.0),
    })  # fmt: skip


def ray_serve(rec: recipe.Recipe) -> recipe.Recipe:
    """Ray Serve's defaults (2.32 and later): 2 ongoing requests per replica (`target_ongoing_requests`),
    averaged over a 30 s look-back; up after 30 s of asking, down after 600 s, factors 1. The ongoing
    requests (queued and running) are the gateway's, its concurrency integral over the window, as
    Ray's handles and replicas report theirs."""
    signal = {"name": "ongoing", "kind": "rate", "metric": "swell_gateway_concurrency_seconds_total",
              "window_s": 30.0, "target": 2.0, "target_type": "AverageValue"}  # fmt: skip
    return _with(rec, {"policy": "ray", "signals": [signal], "polling_interval_s": 2.0, "metrics": _scrape(1.0)})


def reactive(rec: recipe.Recipe) -> recipe.Recipe:
    """The reactive rules (swell's default before the planner): LLM-native signals, a panic window,
    a safe scale-down.

    Running requests (the batch; AverageValue 32 per replica, the batch at which an 8B model on
    one GPU keeps TTFT and TPOT low) size decode-heavy traffic; the 90th percentile TTFT over 1 m
    against half the recipe's TTFT SLO sizes prefill-heavy traffic (long prompts, short answers)
    that the batch cannot show; waiting requests (AverageValue 8) catch saturation. Short windows
    and a 5 s loop react within seconds; a 10 s panic window over the batch scales up at once on
    a surge and never down while it lasts. Scale-down waits 5 min, then removes one replica a
    minute, never on missing data (tuned on the simulator, see docs/simulator.md)."""
    sigs = [
        {"name": "running", "kind": "gauge", "metric": "vllm:num_requests_running", "aggregate": "sum",
         "window_s": 15.0, "target": 32.0, "target_type": "AverageValue"},
        {"name": "waiting", "kind": "gauge", "metric": "vllm:num_requests_waiting", "aggregate": "sum",
         "window_s": 10.0, "target": 8.0, "target_type": "AverageValue"},
    ]  # fmt: skip
    if rec.slo.ttft_s is not None:
        sigs.append({"name": "ttft_p90", "kind": "histogram_quantile", "metric": "vllm:time_to_first_token_seconds",
                     "quantile": 0.9, "window_s": 60.0, "target": rec.slo.ttft_s / 2, "target_type": "Value"})  # fmt: skip
    panic = {"signal": "running", "stable_window_s": 60.0, "panic_window_s": 10.0, "panic_threshold": 1.5}
    behavior = {
        "scale_up": {"stabilization_window_s": 0, "policies": [{"type": "Percent", "value": 100, "period_s": 15},
                                                              {"type": "Pods", "value": 4, "period_s": 15}]},
        "scale_down": {"stabilization_window_s": 300, "policies": [{"type": "Pods", "value": 1, "period_s": 60}]},
    }  # fmt: skip
    return _with(rec, {
        "policy": "reactive", "signals": sigs, "panic": panic, "behavior": behavior, "polling_interval_s": 5.0,
        "metrics": _scrape(1.0),
    })  # fmt: skip


def swell(rec: recipe.Recipe) -> recipe.Recipe:
    """swell's default, the planner (core.policies.planner): replicas from offered load ÷ one
    replica's capacity (the engine's model, corrected online), forecast over the node lead time,
    nodes asked ahead, node-aware scale-down; the `reactive` preset's signals and panic window are
    its safety net."""
    rules = reactive(rec).autoscaling.model_dump(by_alias=True)
    return _with(rec, rules | {"policy": "swell"})


def as_written(rec: recipe.Recipe) -> recipe.Recipe:
    return rec


# Named for what they do: the mechanism, then the signal it scales on.
CANONICAL: dict[str, Preset] = {
    "hpa-latency": seed_hpa_latency,
    "keda-slow-requests": corrino_keda,
    "hpa-gpu-util": gpu_util_hpa,
    "hpa-cpu": cpu_hpa,
    "kpa-concurrency": knative_kpa,
    "ray-serve": ray_serve,
    "reactive": reactive,
    "swell": swell,
    "recipe": as_written,
}
# Earlier names, still accepted everywhere a preset is named (not listed).
ALIASES: dict[str, str] = {
    "seed-hpa-latency": "hpa-latency",
    "corrino-keda": "keda-slow-requests",
    "gpu-util-hpa": "hpa-gpu-util",
    "cpu-hpa": "hpa-cpu",
    "knative-kpa": "kpa-concurrency",
    "planner": "swell",
}
NAMES = tuple(CANONICAL)
PRESETS: dict[str, Preset] = CANONICAL | {old: CANONICAL[new] for old, new in ALIASES.items()}


def canonical(name: str) -> str:
    """The listed name of a preset given by any of its names (unknown names come back as they are)."""
    return ALIASES.get(name, name)


def get(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown policy preset {name!r}; known: {', '.join(NAMES)}") from None


def split(spec: str) -> tuple[str, dict[str, str]]:
    """'kpa-concurrency:target=8' -> ('kpa-concurrency', {'target': '8'}): a preset and its settings."""
    name, _, rest = spec.partition(":")
    settings = dict(kv.partition("=")[::2] for kv in rest.split(";") if kv) if rest else {}
    return name.strip(), {k.strip(): v.strip() for k, v in settings.items()}


SETTINGS = ("target",)  # what `PRESET:KEY=VALUE` may set


def setting_problem(spec: str) -> str:
    """Why a preset spec cannot be applied ('' when it can): an unknown preset, an unknown setting,
    a value that is not a positive number, or `target` on a preset with several signals."""
    name, settings = split(spec)
    if name not in PRESETS:
        policy = (f"; {name!r} is a policy, not a preset: `recipe` runs the recipe with the policy it names "
                  "(autoscaling.policy)") if name in typing.get_args(recipe.PolicyName) else ""  # fmt: skip
        return f"unknown policy preset; known: {', '.join(NAMES)}{policy}"
    for key, value in settings.items():
        if key not in SETTINGS:
            return f"{key!r}: a preset takes {', '.join(f'{s}=' for s in SETTINGS)} (e.g. kpa-concurrency:target=8)"
        try:
            positive = 0 < float(value) < math.inf
        except ValueError:
            positive = False
        if not positive:
            return f"{key}={value!r}: a positive number"
    if "target" in settings and name != "recipe" and len(get(name)(_probe()).autoscaling.signals) != 1:
        return f"target=: preset {name!r} scales on several signals; target= applies to a preset with one"
    return ""


def apply(spec: str, rec: recipe.Recipe) -> recipe.Recipe:
    """The preset named by `spec` ('NAME' or 'NAME:target=N': the target of its one signal, as a KPA
    user sets the per-pod concurrency target to what a pod serves), applied to `rec`."""
    name, settings = split(spec)
    out = get(name)(rec)
    if "target" in settings:
        (sig,) = out.autoscaling.signals
        tuned = sig.model_copy(update={"target": float(settings["target"])})
        out = out.model_copy(update={"autoscaling": out.autoscaling.model_copy(update={"signals": (tuned,)})})
    return out


@functools.cache
def _probe() -> recipe.Recipe:
    """A recipe to apply a preset to, to see how many signals it scales on (built on first use, not at import)."""
    return recipe.Recipe.model_validate({"service": {"name": "probe"}, "autoscaling": {"max_replicas": 2, "signals": [
        {"name": "q", "kind": "gauge", "metric": "m", "target": 1}]}})  # fmt: skip
