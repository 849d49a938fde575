"""The ScalingRecipe spec read as a recipe: defaults, every problem at once, round trip from recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from swell import errors, recipe
from swell.clusters.kubernetes import scalingrecipe
from swell.control import profile
from tests.clusters.kubernetes.builders import recipe_cr

EXAMPLES = sorted((Path(__file__).parents[3] / "examples").glob("*.*"))


def test_parse_reads_target_placement_and_recipe() -> None:
    spec = scalingrecipe.parse(recipe_cr("gpt2.v1", namespace="ml"))
    assert spec.target == scalingrecipe.TargetRef(
        api_version="apps/v1", kind="Deployment", name="gpt2.v1", namespace="ml"
    )
    assert spec.recipe.service.name == "gpt2-v1"  # a DNS label, from a name with a dot
    assert spec.recipe.resources.gpus == 1 and spec.recipe.node_pool.gpus == 2
    assert spec.placement.node_selector == {"pool": "a"}
    assert (spec.uid, spec.generation) == ("uid-gpt2.v1", 1)


def test_target_defaults_to_an_apps_v1_deployment() -> None:
    cr = recipe_cr()
    cr["spec"]["scaleTargetRef"] = {"name": "web"}
    ref = scalingrecipe.parse(cr).target
    assert (ref.api_version, ref.kind) == ("apps/v1", "Deployment")


def test_every_problem_is_reported_with_its_spec_path() -> None:
    cr = recipe_cr(min_replicas=5, max_replicas=2, polling_interval_s=-1)
    del cr["spec"]["scaleTargetRef"]
    cr["spec"]["placement"] = {"nodeSelector": {"pool": 3}}
    with pytest.raises(errors.RecipeError) as exc:
        scalingrecipe.parse(cr)
    paths = {p.path for p in exc.value.problems}
    assert {
        "spec.scaleTargetRef",
        "spec.placement.nodeSelector",
        "spec.autoscaling.polling_interval_s",
    } <= paths
    assert exc.value.source == "ScalingRecipe default/web"


def test_spec_must_be_a_mapping() -> None:
    with pytest.raises(errors.RecipeError, match="must be a mapping"):
        scalingrecipe.parse({"metadata": {"name": "x"}, "spec": "nope"})


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_spec_of_every_example_parses_back_to_the_same_scaling(path: Path) -> None:
    rec = recipe.load(path)
    placement = scalingrecipe.Placement(node_selector={"pool": "gpu"})
    spec = scalingrecipe.spec_of(rec, {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}, placement)
    back = scalingrecipe.parse({"metadata": {"name": rec.service.name, "namespace": "ml"}, "spec": spec})
    for key in ("autoscaling", "resources", "node_pool", "schedules", "slo"):
        assert getattr(back.recipe, key) == getattr(rec, key), key
    assert back.placement.node_selector == {"pool": "gpu"}
    if rec.service.engine == "vllm":  # the planner sizes a replica on Kubernetes as it does here
        assert profile.of(back.recipe) == profile.of(rec)


def test_the_planner_on_kubernetes_knows_the_model_and_the_slo() -> None:
    """A ScalingRecipe carried neither: every vLLM service was planned as Llama 3 8B on the pool's GPU
    with no SLO, whatever it served (the gpt2 example: 0.87 req/s a replica where its model says 1.69)."""
    rec = recipe.load(Path(__file__).parents[3] / "examples" / "gpt2-vllm-latency-hpa.yaml")
    spec = scalingrecipe.spec_of(rec, {"name": "gpt2"})
    assert spec["service"] == {"model": "openai-community/gpt2", "args": list(rec.service.args)}
    back = scalingrecipe.parse({"metadata": {"name": "gpt2", "namespace": "ml"}, "spec": spec}).recipe
    got = profile.of(back)
    assert got is not None and got.source == "gpt2-a10"
    assert back.slo.e2e_s == 0.5


def test_a_service_key_the_deployment_owns_is_refused_by_its_path() -> None:
    cr = recipe_cr()
    cr["spec"]["service"] = {"model": "m", "image": "vllm/vllm-openai", "command": ["x"]}
    with pytest.raises(errors.RecipeError) as exc:
        scalingrecipe.parse(cr)
    got = {p.path: p.rule for p in exc.value.problems}
    assert set(got) == {"spec.service.image", "spec.service.command"}
    assert "the Deployment runs the server" in got["spec.service.image"]
    cr["spec"]["service"] = {"preset": "no-such-preset"}
    with pytest.raises(errors.RecipeError, match="unknown engine preset"):
        scalingrecipe.parse(cr)
