"""Policy presets: faithful to what the seeds configure, keeping the service, bounds and SLO."""

from __future__ import annotations

from dataclasses import replace

import pytest

from swell import recipe
from swell.core import policies, signals, snapshot
from swell.core.policies import planner, presets, reactive, steps
from tests import conftest

BASE = recipe.parse({
    "service": {"name": "chat", "engine": "simulated-llm", "preset": "llama3-8b-h100"},
    "resources": {"gpus": 1, "cpu": 4},
    "autoscaling": {"min_replicas": 2, "max_replicas": 9, "headroom_nodes": 1, "target_utilization": 0.6,
                    "signals": [{"name": "w", "kind": "gauge", "metric": "m", "target": 1}]},
    "node_pool": {"shape": "BM.GPU.H100.8", "max_nodes": 2, "price_per_gpu_hour": 3.5},
    "slo": {"ttft_s": 2.0, "e2e_s": 30.0, "percentile": 99},
})  # fmt: skip


@pytest.mark.parametrize("name", presets.NAMES)
def test_every_preset_keeps_the_service_the_bounds_and_the_slo(name: str) -> None:
    out = presets.apply(name, BASE)
    assert (out.service, out.resources, out.node_pool, out.slo) == (
        BASE.service,
        BASE.resources,
        BASE.node_pool,
        BASE.slo,
    )
    a = out.autoscaling
    assert (a.min_replicas, a.max_replicas, a.headroom_nodes, a.target_utilization) == (2, 9, 1, 0.6)
    assert a.signals and signals.metric_names(signals.required(a))


@pytest.mark.parametrize("name", presets.NAMES)
def test_every_preset_takes_a_reading_far_past_its_target_as_a_scale_up_not_an_error(name: str) -> None:
    """A finite reading no fleet could serve (an exporter's 1e308, a ratio that overflows to
    infinity) heads for max_replicas; its negative stays put. Each within its own rate limits."""
    rec = presets.apply(name, BASE)
    decide, names = policies.get(rec.autoscaling.policy), [s.name for s in signals.required(rec.autoscaling)]
    for value, bound in ((1e308, "max"), (-1e308, "min")):
        state, current, seen = steps.State(), 2, []
        for i in range(40):
            s = replace(conftest.snap(15.0 * i, current), signals={n: snapshot.Reading.of(value) for n in names})
            d, state = decide(rec, s, state)
            current = d.desired
            seen.append(current)
        assert min(seen) >= 2 and max(seen) <= 9, seen
        assert current == (9 if bound == "max" else 2), (value, seen)


def test_seed_hpa_latency_is_average_e2e_latency_over_one_minute_against_200_ms() -> None:
    a = presets.apply("hpa-latency", BASE).autoscaling
    (sig,) = a.signals
    assert (sig.kind, sig.numerator, sig.denominator) == (
        "ratio",
        "vllm:e2e_request_latency_seconds_sum",
        "vllm:e2e_request_latency_seconds_count",
    )
    assert (sig.window_s, sig.target, sig.target_type) == (60.0, 0.2, "Value")
    assert (a.policy, a.polling_interval_s, a.metrics.scrape_interval_s) == ("hpa", 15.0, 10.0)
    assert a.behavior == recipe.Behavior()  # the HPA's default behavior
    assert signals.render(sig) == (
        "sum(rate(vllm:e2e_request_latency_seconds_sum[1m])) / sum(rate(vllm:e2e_request_latency_seconds_count[1m]))"
    )


def test_corrino_keda_is_the_share_slower_than_5s_over_5m_with_corrinos_example_parameters() -> None:
    a = presets.apply("keda-slow-requests", BASE).autoscaling
    (sig,) = a.signals
    assert (sig.kind, sig.le, sig.window_s, sig.target, sig.target_type) == (
        "histogram_fraction",
        5.0,
        300.0,
        0.5,
        "Value",
    )
    assert (a.policy, a.polling_interval_s, a.cooldown_s) == ("threshold", 15.0, 60.0)
    up, down = a.behavior.scale_up, a.behavior.scale_down
    assert (up.stabilization_window_s, down.stabilization_window_s) == (120, 180)
    assert [(p.type, p.value, p.period_s) for p in up.policies] == [("Pods", 1, 60)]
    assert [(p.type, p.value, p.period_s) for p in down.policies] == [("Pods", 1, 90)]
    assert 'le="5.0"' in signals.render(sig) and "[5m]" in signals.render(sig)


def test_utilisation_presets_and_the_knative_kpa() -> None:
    gpu = presets.apply("gpu-util-hpa", BASE).autoscaling.signals[0]
    cpu = presets.apply("cpu-hpa", BASE).autoscaling.signals[0]
    assert (gpu.resource, gpu.target) == ("gpu", 20.0) and (cpu.resource, cpu.target) == ("cpu", 50.0)
    kpa = presets.apply("kpa-concurrency", BASE).autoscaling
    assert kpa.policy == "panic" and kpa.panic is not None
    assert (kpa.panic.stable_window_s, kpa.panic.panic_window_s, kpa.panic.panic_threshold) == (
        60.0,
        6.0,
        2.0,
    )
    assert (kpa.signals[0].target, kpa.signals[0].target_type, kpa.polling_interval_s) == (
        70.0,
        "AverageValue",
        2.0,
    )


def test_swell_uses_llm_native_signals_a_panic_window_and_a_safe_scale_down() -> None:
    a = presets.apply("swell", BASE).autoscaling
    names = {s.name: s for s in a.signals}
    assert set(names) == {"running", "waiting", "ttft_p90"}
    assert names["ttft_p90"].target == 1.0  # half the recipe's TTFT SLO
    assert a.policy == "swell" and a.panic is not None and a.panic.signal == "running"
    assert a.behavior.scale_down.stabilization_window_s == 300
    no_ttft = BASE.model_copy(update={"slo": recipe.SLO(e2e_s=10.0)})
    assert {s.name for s in presets.apply("swell", no_ttft).autoscaling.signals} == {"running", "waiting"}


def test_recipe_is_the_recipe_as_written_and_unknown_names_are_refused() -> None:
    assert presets.apply("recipe", BASE) is BASE
    with pytest.raises(KeyError, match="unknown policy preset 'hpa-magic'; known: hpa-latency"):
        presets.get("hpa-magic")


def test_presets_are_named_for_what_they_do_and_the_earlier_names_still_work() -> None:
    assert presets.NAMES[:5] == (
        "hpa-latency",
        "keda-slow-requests",
        "hpa-gpu-util",
        "hpa-cpu",
        "kpa-concurrency",
    )
    for old, new in presets.ALIASES.items():
        assert old not in presets.NAMES
        assert presets.canonical(old) == new
        assert presets.apply(old, BASE) == presets.apply(new, BASE)


def test_swell_is_the_planner_with_the_reactive_rules_as_its_safety_net() -> None:
    swell, rules = presets.apply("swell", BASE).autoscaling, presets.apply("reactive", BASE).autoscaling
    assert (swell.policy, rules.policy) == ("swell", "reactive")
    assert swell.signals == rules.signals and swell.panic == rules.panic  # the safety net's signals
    assert policies.get("swell") is planner.decide and policies.get("reactive") is reactive.decide
    assert policies.get("planner") is planner.decide  # the planner's earlier name, still accepted
    assert presets.canonical("planner") == "swell"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("kpa-concurrency:target=8", ""),
        ("hpa-gpu-util:target=60", ""),
        ("kpa-concurrency:target=0", "target='0': a positive number"),
        ("kpa-concurrency:target=lots", "target='lots': a positive number"),
        ("kpa-concurrency:window=30", "'window': a preset takes target="),
        ("reactive:target=8", "scales on several signals"),
        ("kpa-magic:target=8", "unknown policy preset; known: hpa-latency"),
        ("hpa", "'hpa' is a policy, not a preset: `recipe` runs the recipe with the policy it names"),
    ],
    ids=["a KPA tuned to what a pod serves", "a GPU-utilization HPA at 60 %", "zero", "not a number",
         "an unknown setting", "several signals", "an unknown preset", "a policy's name says to compare the recipe"],
)  # fmt: skip
def test_a_preset_takes_its_one_signals_target(spec: str, problem: str) -> None:
    if problem:
        assert problem in presets.setting_problem(spec)
    else:
        assert presets.setting_problem(spec) == ""
        name, settings = presets.split(spec)
        (sig,) = presets.apply(spec, BASE).autoscaling.signals
        (default,) = presets.apply(name, BASE).autoscaling.signals
        assert sig.target == float(settings["target"]) != default.target
        assert sig.model_copy(update={"target": default.target}) == default  # nothing else moved
