"""Corrino payloads: the shape's GPU and price, the SLO their threshold implies, and corrino-keda
with the payload's own advanced parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swell import errors, recipe
from swell.core.policies import presets

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def _payload(**pod: Any) -> dict[str, Any]:
    return {
        "recipe_id": "llm_inference_nvidia",
        "recipe_node_shape": "BM.GPU.A10.4",
        "recipe_nvidia_gpu_count": 2,
        "recipe_container_command_args": ["--model", "/models/Meta-Llama-3.1-8B-Instruct", "--tensor-parallel-size", "2"],
        "recipe_pod_autoscaling_params": {"min_replicas": 1, "max_replicas": 8, **pod},
    }  # fmt: skip


def test_the_a10_example_runs_on_an_a10_preset_at_the_a10_list_price() -> None:
    rec = recipe.load(EXAMPLES / "corrino-a10-advanced.json")
    assert rec.service.preset == "llama3.1-8b-128k-a10-tp2"
    assert rec.node_pool.price_per_gpu_hour == 2.0
    assert (rec.slo.e2e_s, rec.slo.percentile) == (5.0, 50.0)  # threshold 0.5: half within 5 s


def test_the_slo_percentile_is_the_share_the_threshold_keeps_within_5s() -> None:
    assert recipe.parse(_payload(scaling_threshold=0.2)).slo.percentile == 80.0
    assert recipe.parse(_payload(scaling_threshold="0.1")).slo.percentile == 90.0
    custom = _payload(query="sum(rate(my_metric[1m]))")
    custom["recipe_node_autoscaling_params"] = {"min_nodes": 1, "max_nodes": 2}
    assert recipe.parse(custom).slo.percentile == 50.0  # a custom query implies no latency share


def test_a_shape_without_a_known_price_costs_what_the_recipe_says() -> None:
    payload = _payload() | {"recipe_node_shape": "BM.GPU.B200.8", "recipe_nvidia_gpu_count": 1}
    rec = recipe.parse(payload)
    assert rec.node_pool.price_per_gpu_hour == 0.0 and rec.service.preset is None


def test_corrino_keda_takes_the_payloads_own_parameters() -> None:
    own = {
        "scaling_threshold": 0.3, "collect_metrics_timespan": "2m", "polling_interval": 30, "scaling_cooldown": 120,
        "stabilization_window_up": 45, "stabilization_window_down": 600, "scaling_period_up": 20,
        "scaling_period_down": 240,
    }  # fmt: skip
    a = presets.apply("corrino-keda", recipe.parse(_payload(**own))).autoscaling
    (sig,) = a.signals
    assert (sig.kind, sig.le, sig.window_s, sig.target) == ("histogram_fraction", 5.0, 120.0, 0.3)
    assert (a.policy, a.polling_interval_s, a.cooldown_s) == ("threshold", 30.0, 120.0)
    up, down = a.behavior.scale_up, a.behavior.scale_down
    assert (up.stabilization_window_s, down.stabilization_window_s) == (45, 600)
    assert (up.policies[0].period_s, down.policies[0].period_s) == (20, 240)
    assert (a.metrics.source, a.metrics.scrape_interval_s) == ("embedded", 60.0)  # Corrino's Prometheus


def test_corrino_keda_keeps_corrinos_example_values_for_other_recipes() -> None:
    base = recipe.parse({"service": {"name": "s"}, "autoscaling": {"min_replicas": 2, "max_replicas": 2}})
    a = presets.apply("corrino-keda", base).autoscaling
    assert (a.signals[0].window_s, a.signals[0].target, a.polling_interval_s, a.cooldown_s) == (
        300.0,
        0.5,
        15.0,
        60.0,
    )


def test_a_custom_query_is_replaced_by_corrinos_signal_with_the_payloads_other_parameters() -> None:
    payload = _payload(query="sum(rate(my_metric[1m]))", polling_interval=45)
    a = presets.apply("corrino-keda", recipe.parse(payload)).autoscaling
    assert (a.signals[0].kind, a.signals[0].target, a.polling_interval_s) == ("histogram_fraction", 0.5, 45.0)


@pytest.mark.parametrize(
    ("threshold", "rule"),
    [
        pytest.param(50, "in (0, 1]: 50 reads as a percent (write 0.5)", id="a-percent-is-named-as-one"),
        pytest.param("60", "in (0, 1]: 60 reads as a percent (write 0.6)", id="a-percent-written-as-text-too"),
        pytest.param(500, "a fraction of requests over 5 s, in (0, 1] (got 500)", id="past-any-percent-the-range-alone"),
    ],
)  # fmt: skip
def test_a_threshold_past_one_is_refused_as_no_fraction_reaches_it(threshold: object, rule: str) -> None:
    with pytest.raises(errors.RecipeError) as info:
        recipe.parse(_payload(scaling_threshold=threshold))
    assert "recipe_pod_autoscaling_params.scaling_threshold" in str(info.value) and rule in str(info.value)


def test_an_unknown_corrino_shape_gets_advice_a_payload_can_follow() -> None:
    """No Corrino key gives a node's GPUs: the recipe's own advice (`gpus_per_node`) is an unknown
    key in a payload."""
    with pytest.raises(errors.RecipeError) as info:
        recipe.parse(_payload() | {"recipe_node_shape": "BM.GPU.X"})
    text = str(info.value)
    assert "recipe_node_shape: unknown node shape: a Corrino payload names a known one" in text
    assert "write a swell recipe with node_pool.gpus_per_node" in text and "give gpus_per_node" not in text
