"""`swell render` of an engine `torchserve` recipe that names an image (the official
pytorch/torchserve one): TorchServe runs with a ConfigMap's config.properties, the management API
on a named container port, Prometheus metrics, the memory resizable in place, and a NetworkPolicy
in front of the management port; without an image or a model it is refused, naming the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from swell import errors, recipe
from swell.clusters.kubernetes import scalingrecipe
from swell.clusters.kubernetes import workers as k8s_workers
from swell.render import manifests, torchserve
from tests.render import schemas

IMAGE = "pytorch/torchserve:0.12.0-cpu"


def ts_recipe(**service: Any) -> recipe.Recipe:
    return recipe.parse(
        {
            "service": {"name": "digest", "engine": "torchserve", "image": IMAGE,
                        "model": "https://models.example/digest.mar"} | service,
            "resources": {"cpu": 2, "memory_gib": 4},
            "autoscaling": {"min_replicas": 1, "max_replicas": 4, "signals": [
                {"name": "queue_time", "kind": "ratio", "numerator": "ts_queue_latency_microseconds",
                 "denominator": "ts_inference_requests_total", "window_s": 30, "target": 100000}]},
            "workers": {"min_workers": 2, "max_workers": 4, "target_queue_per_worker": 2},
        }
    )  # fmt: skip


def by_kind(bundle: manifests.Bundle) -> dict[str, Any]:
    return {o["kind"]: o for o in bundle.objects}


@pytest.mark.parametrize("mode", list(manifests.MODES))
def test_a_torchserve_recipe_with_an_image_renders_valid_manifests_in_every_mode(mode: str) -> None:
    bundle = manifests.render(ts_recipe(), mode)
    for obj in bundle.objects:
        schemas.validate(obj)
    assert {"ConfigMap", "NetworkPolicy"} <= {o["kind"] for o in bundle.objects}
    assert list(yaml.safe_load_all(manifests.dump(bundle.objects))) == [dict(o) for o in bundle.objects]


def test_the_deployment_runs_torchserve_with_its_management_port_metrics_and_a_resize_policy() -> None:
    objs = by_kind(manifests.render(ts_recipe(), "swell"))
    pod = objs["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == IMAGE and c["command"][:3] == ["torchserve", "--start", "--foreground"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {
        "http": 8000,
        k8s_workers.PORT_NAME: torchserve.MANAGEMENT_PORT,  # where swell finds the management API
        "metrics": torchserve.METRICS_PORT,
    }
    assert c["resizePolicy"] == [
        {"resourceName": "cpu", "restartPolicy": "NotRequired"},
        {"resourceName": "memory", "restartPolicy": "NotRequired"},
    ]
    assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"] == "4Gi"
    assert c["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert {"name": "torchserve-config", "configMap": {"name": "digest-torchserve"}} in pod["volumes"]
    props = dict(line.split("=", 1) for line in objs["ConfigMap"]["data"]["config.properties"].splitlines())
    assert props["metrics_mode"] == "prometheus"
    assert props["management_address"] == "http://0.0.0.0:8081"
    assert props["load_models"] == "digest=https://models.example/digest.mar"
    assert props["default_workers_per_model"] == "2"
    assert props["disable_token_authorization"] == "true"
    # Prometheus scrapes TorchServe's own metrics listener
    assert objs["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == "metrics"
    assert {"name": "metrics", "port": 8082, "targetPort": "metrics", "protocol": "TCP"} in objs["Service"][
        "spec"
    ]["ports"]
    # the ScalingRecipe carries the workers: the controller sets them through the management API
    spec = scalingrecipe.parse(objs["ScalingRecipe"] | {"metadata": {"name": "digest"}})
    assert spec.recipe.service.engine == "torchserve"
    assert spec.recipe.workers is not None and spec.recipe.workers.max_workers == 4


def test_only_swells_controller_may_reach_the_management_port() -> None:
    policy = by_kind(manifests.render(ts_recipe(), "swell"))["NetworkPolicy"]["spec"]
    open_to_all, controller_only = policy["ingress"]
    assert "from" not in open_to_all and [p["port"] for p in open_to_all["ports"]] == ["http", "metrics"]
    assert [p["port"] for p in controller_only["ports"]] == ["management"]
    assert controller_only["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "swell-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "swell-controller"}},
        }
    ]


def test_a_model_file_name_is_loaded_from_the_images_model_store_and_the_notes_say_so() -> None:
    bundle = manifests.render(ts_recipe(model="models/digest.mar"), "swell")
    cm = by_kind(bundle)["ConfigMap"]["data"]["config.properties"]
    assert "load_models=digest=digest.mar\n" in cm
    assert any("/home/model-server/model-store" in w and IMAGE in w for w in bundle.warnings)
    assert any("NetworkPolicy digest-management" in w for w in bundle.warnings)


def test_without_a_model_it_is_refused_naming_service_model() -> None:
    with pytest.raises(errors.RecipeError) as got:
        manifests.render(ts_recipe(model=None), "swell")
    (p,) = got.value.problems
    assert (p.path, p.value) == ("service.model", None)
    assert "needs the model archive" in p.rule
