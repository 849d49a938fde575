"""Recipes: every example validates, Corrino payloads convert, bad input names field, value and rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from swell import errors, recipe

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.*"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_validates(path: Path) -> None:
    rec = recipe.load(path)
    assert rec.service.name
    assert rec.autoscaling.max_replicas >= rec.autoscaling.min_replicas


def test_examples_cover_every_scenario() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "gpt2-vllm-latency-hpa",
        "corrino-pod-only",
        "corrino-pod-and-node",
        "corrino-a10-advanced",
        "kserve-sklearn-iris",
        "qwen-gpu-util",
        "cronhpa-schedule",
        "torchserve-workers",
        "llama3-8b-a10",
    } <= names


def test_the_llama_example_is_the_scorecards_recipe() -> None:
    """The README's `swell simulate` example: the recipe the scorecard judges policies on, so what a
    user tries first is what the scorecard numbers are about."""
    from swell.runtime import scorecard

    example = recipe.load(Path(__file__).parent.parent / "examples" / "llama3-8b-a10.yaml")
    assert example == scorecard.base_recipe()


def problems_of(data: object) -> list[errors.Problem]:
    with pytest.raises(errors.RecipeError) as info:
        recipe.parse(data)
    return info.value.problems


def test_all_problems_are_reported_at_once_with_path_value_and_rule() -> None:
    got = problems_of(
        {
            "service": {"name": "Bad_Name", "engin": "vllm"},
            "autoscaling": {
                "min_replicas": 4,
                "max_replicas": 2,
                "polling_interval_s": -1,
                "signals": [{"name": "x", "kind": "gauge", "target": 1}],
            },
            "node_pool": {"shape": "BM.Unknown.3"},
        }
    )
    by_path = {p.path: p for p in got}
    assert set(by_path) >= {
        "service.name",
        "service.engin",
        "autoscaling.polling_interval_s",
        "autoscaling.signals.0.metric",
        "node_pool.shape",
    }
    assert by_path["service.engin"].rule.startswith("unknown field")
    assert (
        by_path["node_pool.shape"].value == "BM.Unknown.3"
        and "gpus_per_node" in by_path["node_pool.shape"].rule
    )
    assert "needs metric" in by_path["autoscaling.signals.0.metric"].rule


def test_every_rule_of_a_section_is_checked_not_only_the_first() -> None:
    """A section's own rules (a model validator) all report, and a rule across sections (a replica
    larger than a node) reports even when another section failed its field checks."""
    got = problems_of(
        {
            "service": {"name": "a"},
            "resources": {"gpus": 4},
            "node_pool": {"gpus_per_node": 2},
            "autoscaling": {"min_replicas": -1},
            "schedules": [{"start": "61 * * * *", "end": "0 25 * * *", "timezone": "Mars/Olympus", "min_replicas": 2}],
            "slo": {"ttft_s": 1, "percentile": 0.5, "deadline_s": 0.5},
        }
    )
    by_path = {p.path: p for p in got}
    assert set(by_path) == {
        "autoscaling.min_replicas", "schedules.0.start", "schedules.0.end", "schedules.0.timezone",
        "slo.percentile", "slo.deadline_s", "resources.gpus",
    }  # fmt: skip
    assert "minute field" in by_path["schedules.0.start"].rule and "hour field" in by_path["schedules.0.end"].rule
    assert by_path["resources.gpus"].value == 4 and "(2)" in by_path["resources.gpus"].rule
    # one section failing several rules of its validator at once
    got = problems_of({"service": {"name": "a"}, "autoscaling": {
        "min_replicas": 3, "max_replicas": 2, "policy": "ray",
        "signals": [{"name": "x:panic", "kind": "gauge", "metric": "m", "target": 1}]}})  # fmt: skip
    rules = {p.path: p.rule for p in got}
    assert "must not exceed max_replicas" in rules["autoscaling.min_replicas"]
    assert "reserved for panic windows" in rules["autoscaling.signals"]


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        (
            {
                "service": {"name": "a"},
                "autoscaling": {
                    "min_replicas": 3,
                    "max_replicas": 2,
                    "signals": [{"name": "x", "kind": "gauge", "metric": "m", "target": 1}],
                },
            },
            "autoscaling.min_replicas",
            "must not exceed max_replicas",
        ),
        (
            {"service": {"name": "a"}, "autoscaling": {"max_replicas": 3}},
            "autoscaling.signals",
            "needs at least one signal",
        ),
        (
            {"service": {"name": "a"}, "resources": {"gpus": 4}, "node_pool": {"shape": "VM.GPU.A10.2"}},
            "resources.gpus",
            "can never be scheduled",
        ),
        ({"service": {"name": "a", "engine": "command"}}, "service.command", "needs `command`"),
        ({"service": {"name": "a"}, "autoscaling": {"metrics": {"source": "prometheus", "prometheus_url": "http://[::1"}}},
         "autoscaling.metrics.prometheus_url", "not a URL"),
        ({"service": {"name": "a"}, "autoscaling": {"metrics": {"prometheus_url": "prometheus:9090"}}},
         "autoscaling.metrics.prometheus_url", "an http:// or https:// URL with a host"),
        ({"service": {"name": "a"}, "autoscaling": {"target_utilization": 1.5}}, "autoscaling.target_utilization",
         "less than or equal to 1"),
        ({"service": {"name": "a"}, "autoscaling": {"target_utilization": 0}}, "autoscaling.target_utilization",
         "greater than 0"),
        (
            {
                "service": {"name": "a"},
                "autoscaling": {
                    "max_replicas": 2,
                    "signals": [{"name": "q", "kind": "promql", "query": "up", "target": 1}],
                },
            },
            "autoscaling.metrics.source",
            "only a Prometheus server",
        ),
        (
            {
                "service": {"name": "a"},
                "schedules": [{"start": "0 25 * * *", "end": "0 1 * * *", "min_replicas": 1}],
            },
            "schedules.0.start",
            "hour field",
        ),
        (
            {
                "service": {"name": "a"},
                "schedules": [
                    {"start": "0 2 * * *", "end": "0 1 * * *", "timezone": "Mars/Olympus", "min_replicas": 1}
                ],
            },
            "schedules.0.timezone",
            "IANA",
        ),
        ({"service": {"name": "a", "env": {"A=B": "x"}}}, "service.env.A=B", "without '='"),
        ({"apiVersion": "swell.dev/v9", "service": {"name": "a"}}, "apiVersion", "'swell.dev/v1'"),
        ({"service": {"name": "a"}, "schedules": [{"start": "0 9 * * *", "end": "0  9 * * *", "min_replicas": 2}]},
         "schedules.0.end", "never open"),
        ({"service": {"name": "a"}, "autoscaling": {"signals": [{"name": "q", "kind": "gauge", "metric": "", "target": 1}]}},
         "autoscaling.signals.0.metric", "at least 1 character"),
        ({"service": {"name": "a", "engine": "vllm", "model": ""}}, "service.model", "at least 1 character"),
        ({"service": {"name": "a", "env": {"": "x"}}}, "service.env.", "not empty"),
        ({"service": {"name": "a", "env": {"A": "a\0b"}}}, "service.env.A", "without a NUL byte"),
    ],
    ids=[
        "min above max",
        "no signal to scale on",
        "replica bigger than a node",
        "command without argv",
        "a prometheus_url whose brackets hold no address",
        "a prometheus_url without a scheme",
        "target utilization above 1",
        "target utilization of 0",
        "raw PromQL without Prometheus",
        "bad cron",
        "bad timezone",
        "an env name with '=' (the start would fail with the deployment left starting)",
        "an empty model (vllm serve '' serves nothing)",
        "an apiVersion there is not",
        "a schedule that ends as it starts (never open)",
        "an empty metric name (rendered as metric: '')",
        "an empty env name",
        "an env value with a NUL byte",
    ],
)
def test_specific_rules(data: dict, path: str, fragment: str) -> None:
    got = {p.path: p.rule for p in problems_of(data)}
    assert path in got and fragment in got[path]


def test_corrino_payload_converts_with_documented_defaults() -> None:
    rec = recipe.load(Path(__file__).parent.parent / "examples" / "corrino-pod-only.json")
    auto = rec.autoscaling
    assert (auto.min_replicas, auto.max_replicas, auto.policy) == (1, 2, "threshold")
    sig = auto.signals[0]
    assert (sig.name, sig.kind, sig.le, sig.window_s, sig.target, sig.target_type) == (
        "slow_requests",
        "histogram_fraction",
        5.0,
        300.0,
        0.5,
        "Value",
    )
    assert (auto.polling_interval_s, auto.cooldown_s) == (15.0, 60.0)
    assert auto.behavior.scale_down.stabilization_window_s == 180
    assert auto.behavior.scale_up.stabilization_window_s == 120
    assert (
        auto.behavior.scale_down.policies[0].period_s == 90
        and auto.behavior.scale_up.policies[0].period_s == 60
    )
    assert (rec.node_pool.shape, rec.node_pool.gpus, rec.resources.gpus) == ("VM.GPU.A10.2", 2, 1)


def test_corrino_advanced_keys_under_node_params_and_a_custom_query() -> None:
    rec = recipe.parse(
        {
            "recipe_node_shape": "BM.GPU.H100.8",
            "recipe_nvidia_gpu_count": 2,
            "recipe_node_autoscaling_params": {
                "min_nodes": 1,
                "max_nodes": 2,
                "collect_metrics_timespan": "2m",
                "query": "avg(vllm:num_requests_waiting)",
            },
            "recipe_pod_autoscaling_params": {"min_replicas": 1, "max_replicas": 8},
        }
    )
    sig = rec.autoscaling.signals[0]
    assert (sig.kind, sig.query) == ("promql", "avg(vllm:num_requests_waiting)")
    assert rec.autoscaling.metrics.source == "prometheus"
    assert (rec.node_pool.gpus, rec.node_pool.max_nodes) == (8, 2)


def test_corrino_unknown_key_and_bad_duration_are_named() -> None:
    got = {
        p.path: p
        for p in problems_of(
            {
                "recipe_node_shape": "VM.GPU.A10.1",
                "recipe_replicas": 2,
                "recipe_pod_autoscaling_params": {
                    "max_replicas": 2,
                    "collect_metrics_timespan": "five minutes",
                },
            }
        )
    }
    assert "recipe_replicas" in got and "unknown Corrino key" in got["recipe_replicas"].rule
    assert got["recipe_pod_autoscaling_params.collect_metrics_timespan"].value == "five minutes"


@pytest.mark.parametrize("value", [0, 1e308, [], {}, True], ids=repr)
def test_a_corrino_name_that_is_not_text_is_named_not_replaced(value: object) -> None:
    got = {p.path: p for p in problems_of({"recipe_node_shape": "VM.GPU.A10.1", "recipe_id": "llm",
                                           "deployment_name": value})}  # fmt: skip
    assert got["deployment_name"].rule == "a name: text" and got["deployment_name"].value == value


@pytest.mark.parametrize(("given", "name"), [({"deployment_name": "My_LLM"}, "my-llm"), ({"deployment_name": ""}, "llm"),
                                             ({"deployment_name": None}, "llm"), ({}, "llm")])  # fmt: skip
def test_a_corrino_service_is_named_by_deployment_name_else_recipe_id(given: dict[str, object], name: str) -> None:
    rec = recipe.parse({"recipe_node_shape": "VM.GPU.A10.1", "recipe_id": "llm"} | given)
    assert rec.service.name == name


def test_corrino_payload_with_swell_service_keys_that_are_no_mapping_is_named() -> None:
    got = {p.path: p for p in problems_of({"recipe_node_shape": "VM.GPU.A10.1", "service": [1]})}
    assert "a mapping" in got["service"].rule and got["service"].value == [1]


def test_swell_sections_beside_corrino_keys_are_taken_key_by_key_and_named_as_written() -> None:
    base = {"recipe_node_shape": "VM.GPU.A10.1", "recipe_pod_autoscaling_params": {"min_replicas": 1, "max_replicas": 3}}
    rec = recipe.parse(base | {"autoscaling": {"min_replicas": 2}, "slo": {"ttft_s": 3}})
    assert (rec.autoscaling.min_replicas, rec.autoscaling.max_replicas, rec.slo.ttft_s) == (2, 3, 3)
    got = {p.path: p for p in problems_of(base | {"autoscaling": {"min_replicas": 9, "bogus": 1},
                                                  "slo": {"ttft_s": -5}, "node_pool": "big"})}  # fmt: skip
    assert {"autoscaling.bogus", "autoscaling.min_replicas", "slo.ttft_s", "node_pool"} <= set(got), got
    assert got["autoscaling.min_replicas"].value == 9  # swell's key, as written: not the Corrino key it replaced


@pytest.mark.parametrize(
    ("env", "path"),
    [
        pytest.param({"HF_TOKEN": "abc"}, "recipe_container_env", id="a-mapping-is-no-list"),
        pytest.param(["B=2"], "recipe_container_env.0", id="text-is-no-key-value-pair"),
        pytest.param([{"key": "A", "value": "1"}, {"key": "C", "value": None}], "recipe_container_env.1", id="null-is-no-value"),
        pytest.param([{"name": "C", "value": "x"}], "recipe_container_env.0", id="name-is-not-corrinos-key"),
    ],
)  # fmt: skip
def test_a_corrino_env_entry_swell_cannot_take_is_named_not_dropped(env: object, path: str) -> None:
    got = {p.path: p for p in problems_of({"recipe_node_shape": "VM.GPU.A10.1", "recipe_container_env": env})}
    assert path in got and "key" in got[path].rule, got
    ok = recipe.parse({"recipe_node_shape": "VM.GPU.A10.1", "recipe_container_env": [{"key": "N", "value": 8}]})
    assert ok.service.env == {"N": "8"}


@pytest.mark.parametrize("key", ["scaling_period_up", "scaling_period_down", "stabilization_window_up",
                                 "stabilization_window_down"])  # fmt: skip
def test_a_corrino_duration_past_floats_range_is_named_not_an_overflow(key: str) -> None:
    params = {"min_replicas": 1, "max_replicas": 8, key: "1e400s"}
    got = {p.path: p for p in problems_of({"recipe_node_shape": "VM.GPU.A10.1", "recipe_pod_autoscaling_params": params})}
    assert got[f"recipe_pod_autoscaling_params.{key}"].rule == "a finite duration >= 0", got


def test_a_seconds_field_written_as_text_past_floats_range_is_named_finite() -> None:
    got = {p.path: p.rule for p in problems_of({"service": {"name": "a"}, "autoscaling": {"cooldown_s": "1e400s"}})}
    assert got["autoscaling.cooldown_s"] == "a finite number of seconds", got


def test_corrino_unknown_shape_without_gpu_count_is_a_clear_error() -> None:
    got = {
        p.path: p
        for p in problems_of({"recipe_node_shape": "VM.Standard.E4.Flex", "recipe_nvidia_gpu_count": 1})
    }
    assert "recipe_node_shape" in got  # the key the user wrote, not swell's node_pool.shape


def test_yaml_syntax_error_and_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("service: [unclosed\n")
    with pytest.raises(errors.RecipeError, match="not valid YAML"):
        recipe.load(bad)
    with pytest.raises(errors.RecipeError, match="cannot read file"):
        recipe.load(tmp_path / "absent.yaml")
    js = tmp_path / "r.json"
    js.write_text(json.dumps(["not", "a", "mapping"]))
    with pytest.raises(errors.RecipeError, match="a recipe is a mapping"):
        recipe.load(js)


def test_recipes_are_frozen() -> None:
    rec = recipe.parse({"service": {"name": "a"}})
    with pytest.raises(Exception, match="frozen"):
        rec.autoscaling.max_replicas = 5  # type: ignore[misc]


def test_a_partial_behavior_takes_the_hpa_defaults_for_what_it_leaves_out() -> None:
    rec = recipe.parse(
        {
            "service": {"name": "a"},
            "autoscaling": {"behavior": {"scale_down": {"stabilization_window_s": 60}}},
        }
    )
    down, up = rec.autoscaling.behavior.scale_down, rec.autoscaling.behavior.scale_up
    assert down.stabilization_window_s == 60 and down.policies[0].type == "Percent"
    assert up.stabilization_window_s == 0 and len(up.policies) == 2
    off = recipe.parse(
        {
            "service": {"name": "a"},
            "autoscaling": {"behavior": {"scale_down": {"select_policy": "Disabled", "policies": []}}},
        }
    )
    assert off.autoscaling.behavior.scale_down.select_policy == "Disabled"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (
            {
                "service": {"name": "a"},
                "autoscaling": {
                    "max_replicas": 2,
                    "signals": [{"name": "x", "kind": "gauge", "metric": "m", "target": float("inf")}],
                },
            },
            "autoscaling.signals.0.target",
        ),
        (
            {
                "service": {"name": "a"},
                "autoscaling": {
                    "max_replicas": 2,
                    "signals": [
                        {"name": "x", "kind": "gauge", "metric": "m", "target": 1, "window_s": float("nan")}
                    ],
                },
            },
            "autoscaling.signals.0.window_s",
        ),
        (
            {
                "service": {"name": "a"},
                "autoscaling": {
                    "max_replicas": 2,
                    "signals": [{"name": "x:panic", "kind": "gauge", "metric": "m", "target": 1}],
                },
            },
            "autoscaling.signals",
        ),
        (
            {
                "service": {"name": "a"},
                "autoscaling": {
                    "max_replicas": 2,
                    "fallback": {"replicas": 0},
                    "signals": [{"name": "x", "kind": "gauge", "metric": "m", "target": 1}],
                },
            },
            "autoscaling.fallback.replicas",
        ),
        (
            {
                "recipe_node_shape": "VM.GPU.A10.1",
                "recipe_pod_autoscaling_params": {"max_replicas": 2, "scaling_period_up": float("nan")},
            },
            "recipe_pod_autoscaling_params.scaling_period_up",
        ),
        ({"recipe_node_shape": "VM.GPU.A10.1", "recipe_replica_count": "three"}, "recipe_replica_count"),
        ({"recipe_node_shape": "VM.GPU.A10.1", 5: 1}, "5"),
    ],
    ids=[
        "infinite target",
        "NaN window",
        "reserved panic name",
        "fallback to zero",
        "Corrino NaN period",
        "Corrino replica count as words",
        "a key that is not text",
    ],
)
def test_values_that_would_crash_later_are_rejected_up_front(data: dict, path: str) -> None:
    assert path in {p.path for p in problems_of(data)}


def test_corrino_numbers_as_text_are_accepted() -> None:
    rec = recipe.parse(
        {"recipe_node_shape": "VM.GPU.A10.1", "recipe_replica_count": "3", "recipe_node_pool_size": "3"}
    )
    assert (rec.autoscaling.min_replicas, rec.autoscaling.max_replicas, rec.node_pool.max_nodes) == (3, 3, 3)


def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_bytes(b"service: {name: \xff\xfe}\n")
    with pytest.raises(errors.RecipeError, match="not UTF-8 text"):
        recipe.load(bad)


def test_startup_timeout_is_given_or_three_model_loads_with_a_floor() -> None:
    svc = {"name": "m", "engine": "simulated-llm"}
    assert recipe.parse({"service": svc}).startup_timeout_s == 300  # 3 x 60 s < 300 s
    slow = {"provisioning": {"model_load_s": 200}}
    assert recipe.parse({"service": svc, "node_pool": slow}).startup_timeout_s == 600
    given = {**svc, "probes": {"startup_timeout_s": 45}}
    assert recipe.parse({"service": given, "node_pool": slow}).startup_timeout_s == 45
    with pytest.raises(errors.RecipeError, match=r"service\.probes\.startup_timeout_s"):
        recipe.parse({"service": {**svc, "probes": {"startup_timeout_s": 0}}})


# ---------------------------------------------------------------------------------------------
# every problem at once, in the user's own words; limits on numbers and on what a file expands to


def test_a_cross_field_rule_is_reported_with_the_field_errors() -> None:
    got = {
        p.path: p
        for p in problems_of(
            {
                "service": {"name": "a"},
                "autoscaling": {
                    "min_replicas": 5,
                    "max_replicas": 2,
                    "signals": [{"name": "x", "kind": "gauge", "metric": "m", "target": "high"}],
                },
                "node_pool": {"min_nodes": 3, "max_nodes": 1, "max_node_provision_time_s": "soon"},
            }
        )
    }
    assert "autoscaling.signals.0.target" in got
    assert got["autoscaling.min_replicas"].rule == "must not exceed max_replicas (2)"
    assert got["node_pool.min_nodes"].value == 3
    assert "node_pool.max_node_provision_time_s" in got


def test_a_corrino_payload_hears_about_the_keys_it_wrote_all_at_once() -> None:
    got = {
        p.path: p
        for p in problems_of(
            {
                "recipe_node_shape": "VM.GPU.A10.2",
                "recipe_nvidia_gpu_count": "two",
                "recipe_pod_autoscaling_params": {
                    "scaling_threshold": "high",
                    "min_replicas": 5,
                    "max_replicas": 2,
                },
            }
        )
    }
    assert set(got) == {
        "recipe_nvidia_gpu_count",
        "recipe_pod_autoscaling_params.scaling_threshold",
        "recipe_pod_autoscaling_params.min_replicas",
    }
    assert got["recipe_nvidia_gpu_count"].value == "two"
    assert got["recipe_pod_autoscaling_params.scaling_threshold"].value == "high"
    assert "max_replicas (2)" in got["recipe_pod_autoscaling_params.min_replicas"].rule


def test_corrino_advanced_keys_under_node_params_are_named_there() -> None:
    got = {
        p.path
        for p in problems_of(
            {
                "recipe_node_shape": "VM.GPU.A10.1",
                "recipe_node_autoscaling_params": {"min_nodes": 1, "max_nodes": 2, "polling_interval": 0},
            }
        )
    }
    assert got == {"recipe_node_autoscaling_params.polling_interval"}


@pytest.mark.parametrize(
    ("text", "path", "rule"),
    [
        (
            "autoscaling: {polling_interval_s: 1.0e-9}",
            "autoscaling.polling_interval_s",
            "greater than or equal to 0.01",
        ),
        ("autoscaling: {max_replicas: 1.0e+20}", "autoscaling.max_replicas", "less than or equal to 10000"),
        ("autoscaling: {max_replicas: 1e20}", "autoscaling.max_replicas", "less than or equal to 10000"),
        ("node_pool: {max_nodes: 100000000}", "node_pool.max_nodes", "less than or equal to 10000"),
        ("autoscaling: {max_replicas: true}", "autoscaling.max_replicas", "a whole number, not true/false"),
        ("resources: {cpu: true}", "resources.cpu", "a number, not true/false"),  # was 1 core
        ("autoscaling: {polling_interval_s: false}", "autoscaling.polling_interval_s", "a number, not true/false"),
        ("node_pool: {max_nodes: false}", "node_pool.max_nodes", "a whole number, not true/false"),
        ("autoscaling: {polling_interval_s: 30s}", "autoscaling.polling_interval_s", "a number of seconds: write 30"),
        ("autoscaling: {cooldown_s: 5m}", "autoscaling.cooldown_s", "a number of seconds: write 300"),
        ("local: {drain_timeout_s: 1500ms}", "local.drain_timeout_s", "a number of seconds: write 1.5"),
        ("local: {cpu_slots: 1000000}", "local.cpu_slots", "less than or equal to 1024"),
        (
            "service: {name: a, probes: {readiness: {period_s: 1.0e+12}}}",
            "service.probes.readiness.period_s",
            "less than or equal to 604800",
        ),
        # `swell plan` printed an infinite cost or pull time (and `--json` wrote Infinity, not JSON)
        ("node_pool: {price_per_gpu_hour: 1.0e+308}", "node_pool.price_per_gpu_hour", "less than or equal to 1000000"),
        (
            "node_pool: {provisioning: {image_size_gb: 1.0e+308}}",
            "node_pool.provisioning.image_size_gb",
            "must take at most a week (604800 s), not inf s",
        ),
        (
            "node_pool: {provisioning: {image_size_gb: 20, pull_gbps: 1.0e-9}}",
            "node_pool.provisioning.image_size_gb",
            "its pull (image_size_gb x 8 / pull_gbps 1e-09) must take at most a week",
        ),
    ],
)
def test_absurd_numbers_are_rejected_with_the_rule(text: str, path: str, rule: str) -> None:
    body = text if text.startswith("service") else "service: {name: a}\n" + text
    with pytest.raises(errors.RecipeError) as info:
        recipe.load_text(body, "r.yaml")
    got = {p.path: p.rule for p in info.value.problems}
    assert rule in got[path]


LAUGHS = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.timeout(20)
def test_a_yaml_alias_bomb_is_refused_before_it_is_built() -> None:
    with pytest.raises(errors.RecipeError, match="expands to more than 100,000 values"):
        recipe.load_text(LAUGHS, "laughs.yaml")


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("service: " + "[" * 5000 + "]" * 5000, "deep.yaml"),
        ("service: " + "{a: " * 5000 + "}" * 5000, "deep.yaml"),
        ("".join("  " * i + "k:\n" for i in range(200)), "deep.yaml"),
        ('{"service": ' + "[" * 5000 + "]" * 5000 + "}", "deep.json"),
    ],
    ids=["flow sequences", "flow mappings", "block mappings", "JSON"],
)
def test_deep_nesting_is_a_problem_not_a_recursion_error(text: str, source: str) -> None:
    with pytest.raises(errors.RecipeError, match="nested deeper than 64 levels"):
        recipe.load_text(text, source)


def test_aliases_within_the_limits_still_load() -> None:
    text = "service: {name: a}\nautoscaling: {max_replicas: 2, signals: [&s {name: x, kind: gauge, metric: m, target: 1}]}\n"
    assert recipe.load_text(text, "ok.yaml").autoscaling.signals[0].name == "x"
    merged = "base: &b {name: a}\nservice: {<<: *b, engine: vllm}\n"
    with pytest.raises(errors.RecipeError, match="base: unknown field"):
        recipe.load_text(merged, "merge.yaml")  # the anchor's own key is still checked


def test_a_recipe_that_names_no_policy_gets_swells_planner() -> None:
    """The default policy is `swell` (the planner, with the reactive rules as its safety net);
    the HPA's own semantics are one line away, `policy: hpa`."""
    bare = recipe.parse({"service": {"name": "a"}})
    assert bare.autoscaling.policy == "swell"
    hpa = recipe.parse({"service": {"name": "a"}, "autoscaling": {"policy": "hpa"}})
    assert hpa.autoscaling.policy == "hpa"


@pytest.mark.parametrize(
    ("data", "slots"),
    [
        ({"resources": {"gpus": 0}, "local": {"cpu_slots": 3}}, 3),
        ({"resources": {"gpus": 0}}, 4),  # local.cpu_slots' default
        ({"resources": {"gpus": 1}, "local": {"gpu_ids": [0, 1, 2, 3]}}, 4),
        ({"resources": {"gpus": 1}}, 1),
        ({"resources": {"gpus": 0}, "node_pool": {"shape": "local", "gpus_per_node": 2}}, 2),  # given: kept
        ({"resources": {"gpus": 0}, "node_pool": {"shape": "VM.GPU.A10.2"}}, 2),  # a cloud shape: its own
    ],
    ids=["cpu slots", "cpu slots default", "gpu ids", "one gpu", "size given", "cloud shape"],
)
def test_one_machine_sizes_a_local_pool_as_swell_up_runs_it(data: dict[str, Any], slots: int) -> None:
    rec = recipe.as_one_machine(recipe.parse({"service": {"name": "a"}, **data}))
    assert rec.node_pool.gpus == slots


@pytest.mark.parametrize(("initial", "ok"), [(None, True), (0, True), (3, True), (4, False)],
                         ids=["none: min_replicas", "0 with min 0: start at zero", "3 within [0, 3]",
                              "4 above max_replicas 3"])  # fmt: skip
def test_initial_replicas_lie_within_the_bounds(initial: int | None, ok: bool) -> None:
    auto = {"min_replicas": 0, "max_replicas": 3, "initial_replicas": initial, "policy": "threshold",
            "signals": [{"name": "x", "kind": "gauge", "metric": "m", "target": 1}]}  # fmt: skip
    data = {"service": {"name": "a"}, "autoscaling": auto}
    if ok:
        rec = recipe.Recipe.model_validate(data)
        assert rec.autoscaling.start_replicas == (0 if initial is None else initial)
    else:
        with pytest.raises(errors.RecipeError, match=r"autoscaling.initial_replicas: must lie within .*\[0, 3\]"):
            recipe.parse(data)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        pytest.param("", "a recipe needs at least `service: {name: ...}` (see examples/) (got 'nothing: an empty file or null')",
                     id="an-empty-file-is-called-empty"),
        pytest.param("# only a comment\n", "(got 'nothing: an empty file or null')", id="comments-alone-are-empty-too"),
        pytest.param("[1, 2]\n", "a recipe is a mapping of keys to values (got 'a list')", id="a-list-is-named-in-words"),
    ],
)  # fmt: skip
def test_a_file_that_is_no_mapping_says_what_it_is(text: str, said: str) -> None:
    with pytest.raises(errors.RecipeError) as info:
        recipe.load_text(text, "r.yaml")
    assert said in str(info.value) and "NoneType" not in str(info.value)


def test_an_slo_percentile_written_as_a_fraction_is_named() -> None:
    with pytest.raises(errors.RecipeError, match=r"slo.percentile: a percent of requests in \[1, 100\]: write 99 for 0.99"):
        recipe.parse({"service": {"name": "a"}, "slo": {"e2e_s": 5, "percentile": 0.99}})
    assert recipe.parse({"service": {"name": "a"}, "slo": {"e2e_s": 5, "percentile": 1}}).slo.percentile == 1
