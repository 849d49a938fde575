"""`swell import` of Ray Serve: a KubeRay RayService or a Serve config file becomes one recipe per
Serve deployment on policy `ray`, Ray's defaults filling what the config leaves out; what swell
carries differently is listed; a config that does not read is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from swell import errors, recipe
from swell.cli import main
from swell.render import importers, manifests, workload

FIXTURE = Path(__file__).parent / "fixtures" / "rayservice-llm.yaml"


def serve_config(*deployments: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"applications": [{"name": "app", "import_path": "m:app", "deployments": list(deployments)}]}]


def one(objs: list[dict[str, Any]]) -> importers.Imported:
    (imp,), _ = importers.run(objs)
    return imp


def test_a_rayservice_becomes_one_recipe_per_serve_deployment() -> None:
    found, unknown = importers.run(importers.documents({"f": FIXTURE.read_text()}))
    assert not unknown
    by_name = {i.name: i for i in found}
    assert sorted(by_name) == ["llmserver-meta-llama-llama-3-8b", "openaiingress"]
    llm = by_name["llmserver-meta-llama-llama-3-8b"]
    assert (llm.namespace, llm.target["kind"], llm.sources) == ("ml", "Deployment", ["RayService llm"])
    rec = recipe.parse(llm.recipe())
    auto = rec.autoscaling
    assert (auto.policy, auto.min_replicas, auto.max_replicas, auto.initial_replicas) == ("ray", 0, 8, 1)
    (sig,) = auto.signals
    assert (sig.metric, sig.window_s, sig.target, sig.target_type) == (
        "swell_gateway_concurrency_seconds_total", 30.0, 16.0, "AverageValue"
    )
    ray = auto.ray_settings
    assert (ray.upscale_delay_s, ray.downscale_delay_s, ray.downscale_to_zero_delay_s) == (10, 300, 900)
    assert (rec.resources.gpus, rec.local.max_ongoing_requests) == (1, 64)
    assert any("render with `swell render --gateway`" in n for n in llm.left_out)
    assert any("the application's code (import_path, runtime_env) is not carried over" in n for n in llm.left_out)
    ingress = recipe.parse(by_name["openaiingress"].recipe()).autoscaling
    assert (ingress.min_replicas, ingress.max_replicas) == (2, 2)  # a fixed count stays fixed


def test_the_imported_recipe_renders_with_the_gateway_in_front() -> None:
    found, _ = importers.run(importers.documents({"f": FIXTURE.read_text()}))
    llm = next(i for i in found if i.name.startswith("llmserver"))
    bundle = manifests.render(recipe.parse(llm.recipe()), "swell", workload.Options(namespace="ml", gateway=True))
    kinds = {(o["kind"], o["metadata"]["name"]) for o in bundle.objects}
    assert ("Deployment", "llmserver-meta-llama-llama-3-8b-gateway") in kinds
    sr = next(o for o in bundle.objects if o["kind"] == "ScalingRecipe")
    assert sr["spec"]["autoscaling"]["policy"] == "ray"
    assert sr["spec"]["autoscaling"]["ray"]["downscale_to_zero_delay_s"] == 900
    assert not any("no signal reads the gateway" in w for w in bundle.warnings)


@pytest.mark.parametrize(
    ("dep", "want"),
    [
        pytest.param({"name": "m", "num_replicas": "auto"},
                     {"min": 1, "max": 100, "target": 2.0, "cap": 5, "up": 30.0, "down": 600.0},
                     id="num_replicas-auto-is-rays-auto-defaults"),
        pytest.param({"name": "m", "autoscaling_config": {"max_replicas": 4}},
                     {"min": 1, "max": 4, "target": 2.0, "cap": 0, "up": 30.0, "down": 600.0},
                     id="what-the-config-leaves-out-is-rays-default"),
        pytest.param({"name": "m", "max_concurrent_queries": 9, "autoscaling_config": {
                         "max_replicas": 4, "target_num_ongoing_requests_per_replica": 3}},
                     {"min": 1, "max": 4, "target": 3.0, "cap": 9, "up": 30.0, "down": 600.0},
                     id="the-names-before-ray-2-10-read-as-todays"),
        pytest.param({"name": "m", "autoscaling_config": {"max_replicas": 4, "smoothing_factor": 2}},
                     {"min": 1, "max": 4, "target": 2.0, "cap": 0, "up": 30.0, "down": 600.0, "factors": (2, 2)},
                     id="a-smoothing-factor-sets-both-factors"),
    ],
)  # fmt: skip
def test_rays_defaults_and_older_names(dep: dict[str, Any], want: dict[str, Any]) -> None:
    rec = recipe.parse(one(serve_config(dep)).recipe())
    auto, ray = rec.autoscaling, rec.autoscaling.ray_settings
    got = {"min": auto.min_replicas, "max": auto.max_replicas, "target": auto.signals[0].target,
           "cap": rec.local.max_ongoing_requests, "up": ray.upscale_delay_s, "down": ray.downscale_delay_s}  # fmt: skip
    if "factors" in want:
        got["factors"] = (ray.upscaling_factor, ray.downscaling_factor)
    assert got == want


@pytest.mark.parametrize(
    ("dep", "note"),
    [
        pytest.param({"name": "m", "ray_actor_options": {"num_gpus": 0.5}, "autoscaling_config": {"max_replicas": 2}},
                     "ray_actor_options.num_gpus 0.5: a pod takes whole GPUs", id="a-fraction-of-a-gpu"),
        pytest.param({"name": "m", "autoscaling_config": {"max_replicas": 2, "policy": {"policy_function": "x:f"}}},
                     "a custom policy", id="a-custom-policy"),
        pytest.param({"name": "m", "autoscaling_config": {"max_replicas": 2, "metrics_interval_s": 5}},
                     "metrics_interval_s", id="rays-metrics-push-interval"),
        pytest.param({"name": "m", "autoscaling_config": {"max_replicas": 2, "made_up": 1}},
                     "autoscaling_config made_up: not Ray settings swell knows", id="an-unknown-setting"),
    ],
)  # fmt: skip
def test_what_is_not_carried_over_is_listed(dep: dict[str, Any], note: str) -> None:
    imp = one(serve_config(dep))
    assert any(note in n for n in imp.left_out), imp.left_out
    recipe.parse(imp.recipe())  # and the rest still makes a recipe


def rayservice(text: object) -> dict[str, Any]:
    return {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "x"}, "spec": {"serveConfigV2": text}}


def dep(**fields: Any) -> dict[str, Any]:
    return serve_config({"name": "m", **fields})[0]


@pytest.mark.parametrize(
    ("obj", "path", "rule"),
    [
        pytest.param(rayservice({"applications": []}), "spec.serveConfigV2", "the Serve config as a YAML string",
                     id="serve-config-not-a-string"),
        pytest.param(rayservice("applications: [\n  - {name: x"), "spec.serveConfigV2", "YAML: ",
                     id="serve-config-not-yaml"),
        pytest.param(rayservice("just text"), "spec.serveConfigV2", "a Serve config: a mapping with `applications`",
                     id="serve-config-without-applications"),
        pytest.param({"applications": {"name": "a"}}, "applications", "a list of applications", id="applications-not-a-list"),
        pytest.param({"applications": []}, "applications", "no Serve deployment to import", id="no-deployment"),
        pytest.param(serve_config({"num_replicas": 2})[0], "applications[0].deployments[0]", "a mapping with a name",
                     id="a-deployment-without-a-name"),
        pytest.param(dep(num_replicas="x"), "applications[0].deployments[0].num_replicas",
                     'a whole number >= 0, or "auto"', id="num-replicas-not-a-number"),
        pytest.param(dep(num_replicas=2.5), "applications[0].deployments[0].num_replicas",
                     'a whole number >= 0, or "auto"', id="num-replicas-a-fraction"),
        pytest.param(dep(num_replicas=3, autoscaling_config={"max_replicas": 5}),
                     "applications[0].deployments[0].num_replicas", "not both (Ray refuses both)",
                     id="num-replicas-and-autoscaling"),
        pytest.param(dep(autoscaling_config=[["max_replicas", 5]]), "applications[0].deployments[0].autoscaling_config",
                     "a mapping", id="autoscaling-config-a-list"),
        pytest.param(dep(autoscaling_config={"max_replicas": "many"}),
                     "applications[0].deployments[0].autoscaling_config.max_replicas", "a whole number >= 0",
                     id="a-count-that-is-not-a-number"),
        pytest.param(dep(autoscaling_config={"min_replicas": 1.9, "max_replicas": 4}),
                     "applications[0].deployments[0].autoscaling_config.min_replicas", "a whole number >= 0",
                     id="a-fraction-of-a-replica"),
        pytest.param(dep(autoscaling_config={"max_replicas": 4, "look_back_period_s": 0}),
                     "applications[0].deployments[0].autoscaling_config.look_back_period_s", "a number > 0",
                     id="a-look-back-of-nothing"),
        pytest.param(dep(max_ongoing_requests=-5), "applications[0].deployments[0].max_ongoing_requests",
                     "a whole number >= 1", id="a-negative-cap"),
        pytest.param(serve_config({"name": "My_Model", "num_replicas": 2}, {"name": "my-model", "num_replicas": 5})[0],
                     "applications[0].deployments[1].name", "becomes Deployment 'my-model', as applications[0]",
                     id="two-names-one-deployment"),
    ],
)  # fmt: skip
def test_a_config_that_does_not_read_is_named_at_its_path(obj: dict[str, Any], path: str, rule: str) -> None:
    with pytest.raises(errors.RecipeError) as exc:
        importers.run([obj])
    problems = exc.value.problems
    assert any(p.path.endswith(path) and rule in p.rule for p in problems), problems


@pytest.mark.parametrize(
    ("name", "k8s"),
    [("LLMServer:meta-llama--Llama-3-8B", "llmserver-meta-llama-llama-3-8b"), ("1model", "serve-1model"),
     ("::", "serve"), ("x" * 80, "x" * 55)],
    ids=["symbols to dashes", "a digit first", "no letter at all", "room for -gateway"],
)  # fmt: skip
def test_a_serve_name_becomes_a_name_kubernetes_and_the_gateway_take(name: str, k8s: str) -> None:
    assert one(serve_config({"name": name, "num_replicas": 1})).name == k8s


def test_a_replica_of_several_gpus_gets_a_pool_that_holds_it() -> None:
    imp = one(serve_config({"name": "big", "ray_actor_options": {"num_gpus": 4}, "autoscaling_config": {"max_replicas": 2}}))
    rec = recipe.parse(imp.recipe())
    assert (rec.resources.gpus, rec.node_pool.gpus) == (4, 4)
    assert any("node_pool: set to hold one 4-GPU replica a node" in n for n in imp.left_out)


def test_the_cli_imports_a_serve_config_file(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(serve_config({"name": "Chat", "autoscaling_config": {"max_replicas": 3}})[0]))
    res = CliRunner().invoke(main.app, ["import", str(path)])
    assert res.exit_code == 0, res.output
    assert "# imported by swell from Serve config" in res.stdout and "policy: ray" in res.stdout
