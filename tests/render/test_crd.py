"""The ScalingRecipe CRD: generated from the recipe model, structural, and current in deploy/."""

from __future__ import annotations

import jsonschema
import pytest

from swell import recipe
from swell.render import crd
from tests.render import schemas


def test_deploy_crd_is_the_generated_one() -> None:
    assert (schemas.ROOT / "deploy" / "base" / "crd.yaml").read_text() == crd.text(), (
        "deploy/base/crd.yaml is stale: python -m swell.render.crd > deploy/base/crd.yaml"
    )


def _types_everywhere(node: object, path: str = "") -> list[str]:
    """Structural: every schema node has a type, or says it preserves anything."""
    if not isinstance(node, dict):
        return []
    bad = [] if ("type" in node or node.get("x-kubernetes-preserve-unknown-fields")) else [path]
    for k, v in (node.get("properties") or {}).items():
        bad += _types_everywhere(v, f"{path}.{k}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            bad += _types_everywhere(node[key], f"{path}[{key}]")
    assert "anyOf" not in node and "$ref" not in node, path
    return bad


def test_the_schema_is_structural_and_rejects_a_bad_spec() -> None:
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _types_everywhere(schema) == []
    ok = {
        "apiVersion": "swell.dev/v1alpha1",
        "kind": "ScalingRecipe",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"name": "x"}, "autoscaling": {"min_replicas": 1, "max_replicas": 3}},
    }
    schemas.validate(ok)
    for bad in (
        {"min_replicas": "one"},
        {"policy": "nope"},
        {"signals": [{"name": "s", "kind": "guess", "target": 1}]},
    ):
        obj = {**ok, "spec": {**ok["spec"], "autoscaling": {**ok["spec"]["autoscaling"], **bad}}}
        with pytest.raises(jsonschema.ValidationError):
            schemas.validate(obj)


@pytest.mark.parametrize(
    "behavior",
    [
        {"scale_down": {"stabilization_window_s": 0}},
        {"scale_up": {"policies": [{"type": "Pods", "value": 1, "period_s": 60}]}},
        {"scale_down": {"select_policy": "Disabled"}},
    ],
    ids=["a scale-down window alone", "scale-up policies alone", "a direction disabled alone"],
)
def test_a_partial_behavior_direction_is_accepted_as_the_recipe_accepts_it(behavior: dict) -> None:
    """The recipe fills what a direction leaves out with the HPA's defaults; the API server must not
    refuse what the recipe accepts."""
    auto = {"min_replicas": 1, "max_replicas": 3, "behavior": behavior}
    obj = {"apiVersion": "swell.dev/v1alpha1", "kind": "ScalingRecipe", "metadata": {"name": "x"},
           "spec": {"scaleTargetRef": {"name": "x"}, "autoscaling": auto}}  # fmt: skip
    schemas.validate(obj)
    assert recipe.Behavior.model_validate(behavior) is not None
