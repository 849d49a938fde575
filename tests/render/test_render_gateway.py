"""`swell render --gateway`: swell's gateway in front of the pods, for scaling from zero on
Kubernetes: what it runs with, what it may read, and how its series are labelled."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from swell import errors, recipe
from swell.render import gateway, manifests, workload
from tests.render import schemas

EXAMPLE = schemas.ROOT / "examples" / "scale-from-zero-gateway.yaml"


def rendered(rec: recipe.Recipe, mode: str = "swell") -> manifests.Bundle:
    return manifests.render(rec, mode, workload.Options(namespace="ml", gateway=True))


def gateway_objects(bundle: manifests.Bundle) -> dict[str, dict]:
    return {o["kind"]: o for o in bundle.objects if o["metadata"]["name"].endswith("-gateway")}


@pytest.mark.parametrize("mode", ["swell", "hpa", "keda", "cronhpa"])
def test_the_gateway_comes_with_every_mode_that_renders_the_workload(mode: str) -> None:
    bundle = rendered(recipe.load(EXAMPLE), mode)
    objs = gateway_objects(bundle)
    assert sorted(objs) == ["Deployment", "Role", "RoleBinding", "Service", "ServiceAccount", "ServiceMonitor"]
    for obj in objs.values():
        schemas.validate(obj)
    assert any("clients call Service llama-3-8b-gateway" in w for w in bundle.warnings)


def test_kserve_keeps_its_own_activator() -> None:
    bundle = rendered(recipe.load(EXAMPLE), "kserve")
    assert not gateway_objects(bundle)
    assert any("--gateway is not rendered with --mode kserve" in w for w in bundle.warnings)


def test_the_gateway_runs_with_the_recipes_buffer_deadline_and_cap() -> None:
    base = recipe.load(EXAMPLE).model_dump(by_alias=True)
    base["slo"]["deadline_s"] = 5.0
    base["local"]["max_ongoing_requests"] = 16
    rec = recipe.Recipe.model_validate(base)
    dep = gateway_objects(rendered(rec))["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[:3] == ["gateway", "llama-3-8b", "--namespace=ml"]
    for flag in ("--buffer-requests=512", "--buffer-timeout=300", "--deadline=5", "--max-ongoing=16",
                 "--protocol=openai", f"--drain-timeout={rec.drain_s:g}"):  # fmt: skip
        assert flag in args
    assert pod["serviceAccountName"] == "llama-3-8b-gateway"
    # the drain fits in the grace period, after the preStop sleep that lets the endpoint go first
    assert pod["terminationGracePeriodSeconds"] > gateway.PRESTOP_S + rec.drain_s
    assert "nvidia.com/gpu" not in str(pod)  # it runs on CPU nodes


def test_it_may_read_its_service_and_watch_pods_and_nothing_more() -> None:
    role = gateway_objects(rendered(recipe.load(EXAMPLE)))["Role"]
    grants = {(r["resources"][0], v) for r in role["rules"] for v in r["verbs"]}
    assert grants == {("services", "get"), ("pods", "list"), ("pods", "watch")}
    assert role["rules"][0]["resourceNames"] == ["llama-3-8b"]


def test_its_series_carry_every_label_the_recipes_signals_are_scoped_by() -> None:
    """The queries of every mode select the service's series by `service` and, for vLLM, its
    `model_name`: the gateway's series, which have neither, get both."""
    rec = recipe.load(EXAMPLE)
    bundle = rendered(rec, "keda")
    objs = gateway_objects(bundle)
    (endpoint,) = objs["ServiceMonitor"]["spec"]["endpoints"]
    labels = {r["targetLabel"]: r["replacement"] for r in endpoint["relabelings"]}
    assert labels == {"service": "llama-3-8b", "model_name": "meta-llama/Meta-Llama-3-8B-Instruct"}
    scaled = next(o for o in bundle.objects if o["kind"] == "ScaledObject")
    for trigger in scaled["spec"]["triggers"]:
        query = trigger["metadata"]["query"]
        assert all(f'{k}="{v}"' in query for k, v in labels.items()), query  # what the query asks, the series has
    svc = objs["Service"]["spec"]
    assert svc["selector"] == objs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert svc["ports"][0]["port"] == 8000  # the model's own port: a client changes only the host


@pytest.mark.parametrize(
    ("signals", "warned"),
    [
        pytest.param([{"name": "q", "kind": "gauge", "metric": "swell_gateway_requests_buffered", "target": 1}], False,
                     id="a-signal-on-the-gateway-wakes-it"),
        pytest.param([{"name": "r", "kind": "gauge", "metric": "vllm:num_requests_running", "target": 8}], True,
                     id="only-engine-series-nothing-wakes-it"),
    ],
)
def test_a_recipe_at_zero_that_does_not_read_the_gateway_is_warned(signals: list[dict], warned: bool) -> None:
    base = recipe.load(EXAMPLE).model_dump(by_alias=True)
    base["autoscaling"]["signals"] = signals
    bundle = rendered(recipe.Recipe.model_validate(base))
    assert any("no signal reads the gateway's series" in w for w in bundle.warnings) is warned


def test_the_cli_writes_them() -> None:
    res = subprocess.run([sys.executable, "-m", "swell.cli.main", "render", str(EXAMPLE), "--gateway", "-n", "ml"],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    names = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(res.stdout)]
    assert ("Deployment", "llama-3-8b-gateway") in names and ("Deployment", "llama-3-8b") in names
    assert "warning: clients call Service llama-3-8b-gateway" in res.stderr


@pytest.mark.parametrize(
    ("name", "ok"),
    [("m" * 55, True), ("m" * 56, False), ("1model", False)],
    ids=["55 characters", "56: <name>-gateway would be too long", "a digit first: no Service name"],
)
def test_a_name_the_gateways_objects_cannot_carry_is_named(name: str, ok: bool) -> None:
    data = recipe.load(EXAMPLE).model_dump(by_alias=True)
    data["service"]["name"] = name
    rec = recipe.Recipe.model_validate(data)
    if ok:
        assert gateway_objects(rendered(rec))["Service"]["metadata"]["name"] == name + "-gateway"
        return
    with pytest.raises(errors.RecipeError) as exc:
        rendered(rec)
    assert exc.value.problems[0].path == "service.name" and "with --gateway" in exc.value.problems[0].rule


def test_signals_on_the_gateway_without_it_are_warned() -> None:
    bundle = manifests.render(recipe.load(EXAMPLE), "swell", workload.Options(namespace="ml"))
    assert any("read swell_gateway_* series, which only swell's gateway writes" in w for w in bundle.warnings)
    kserve = manifests.render(recipe.load(EXAMPLE), "kserve", workload.Options(namespace="ml", gateway=True))
    assert any("only swell's gateway writes" in w for w in kserve.warnings)
