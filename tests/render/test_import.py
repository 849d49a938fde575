"""`swell import`: the seeds' manifests (HPA + adapter rule, DCGM HPA, six-field CronHPA, arena's
CPU HPA, KEDA, KServe) become recipes, what cannot be carried is listed, and `swell render` of the
recipe gives back equivalent manifests (re-imported, they are the same recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from swell import errors, recipe
from swell.cli import main
from swell.render import importers, manifests, workload

FIXTURES = Path(__file__).parent / "fixtures"


def imported(*names: str) -> dict[str, importers.Imported]:
    objs = importers.documents({n: (FIXTURES / n).read_text() for n in names})
    found, _ = importers.run(objs)
    return {i.name: i for i in found}


def essential(sig: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sig.items() if k != "name"}


def round_trip(imp: importers.Imported, mode: str) -> tuple[list[dict], importers.Imported]:
    rec = recipe.parse(imp.recipe())
    objs = manifests.render(rec, mode, workload.Options(namespace=imp.namespace)).objects
    again, _ = importers.run(yaml.safe_load(yaml.safe_dump(objs)))
    (back,) = [i for i in again if i.name == imp.name]
    return objs, back


def by_kind(objs: list[dict]) -> dict[str, dict]:
    return {o["kind"]: o for o in objs}


def test_seed_000_vllm_hpa_with_its_adapter_rule() -> None:
    imp = imported("seed000-vllm-hpa.yaml")["vllm"]
    (sig,) = imp.autoscaling["signals"]
    assert essential(sig) == {
        "kind": "ratio",
        "numerator": "vllm:e2e_request_latency_seconds_sum",
        "denominator": "vllm:e2e_request_latency_seconds_count",
        "window_s": 60.0,
        "target": 0.2,
        "target_type": "AverageValue",
        "per_replica": True,
    }
    assert imp.autoscaling["behavior"]["scale_down"]["stabilization_window_s"] == 120
    objs, back = round_trip(imp, "hpa")
    (metric,) = by_kind(objs)["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["target"] == {
        "type": "AverageValue",
        "averageValue": "200m",
    }
    assert [essential(s) for s in back.autoscaling["signals"]] == [essential(sig)]
    assert (
        imp.autoscaling["behavior"]["scale_down"].items()
        <= back.autoscaling["behavior"]["scale_down"].items()
    )
    assert (back.autoscaling["min_replicas"], back.autoscaling["max_replicas"]) == (1, 4)


def test_seed_004_dcgm_gpu_utilization_hpa() -> None:
    imp = imported("seed004-dcgm-hpa.yaml")["qwen"]
    (sig,) = imp.autoscaling["signals"]
    assert (sig["kind"], sig["resource"], sig["target"]) == ("utilization", "gpu", 60.0)
    objs, back = round_trip(imp, "hpa")
    (metric,) = by_kind(objs)["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["target"]["averageValue"] == "60"
    assert [essential(s) for s in back.autoscaling["signals"]] == [essential(sig)]


def test_seed_002_cronhpa_keeps_its_six_field_schedules() -> None:
    imp = imported("seed002-cronhpa.yaml")["qwen-scheduled"]
    assert imp.schedules == [
        {"name": "scale-up", "start": "0 30 10 * * *", "end": "0 0 12 * * *", "timezone": "UTC",
         "min_replicas": 2, "max_replicas": 2}
    ]  # fmt: skip
    assert any("timezone" in n for n in imp.left_out)
    objs, back = round_trip(imp, "cronhpa")
    jobs = by_kind(objs)["CronHorizontalPodAutoscaler"]["spec"]["jobs"]
    assert [(j["schedule"], j["targetSize"]) for j in jobs] == [("0 30 10 * * *", 2), ("0 0 12 * * *", 1)]
    assert back.schedules == imp.schedules


def test_arenas_cpu_hpa() -> None:
    imp = imported("arena-cpu-hpa.yaml")["arena-serving"]
    (sig,) = imp.autoscaling["signals"]
    assert essential(sig) == {
        "kind": "utilization",
        "resource": "cpu",
        "target": 10.0,
        "target_type": "Utilization",
    }
    objs, back = round_trip(imp, "hpa")
    (metric,) = by_kind(objs)["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metric == {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 10}},
    }
    assert [essential(s) for s in back.autoscaling["signals"]] == [essential(sig)]


def test_keda_triggers_and_kserve_and_what_is_left_out() -> None:
    found = imported("keda-mixed.yaml")
    chat, iris = found["chat"], found["iris"]
    waiting = chat.autoscaling["signals"][0]
    assert essential(waiting) == {
        "kind": "gauge", "metric": "vllm:num_requests_waiting", "aggregate": "sum", "window_s": 60.0,
        "target": 5.0, "target_type": "AverageValue",
    }  # fmt: skip
    assert chat.autoscaling["signals"][1]["resource"] == "cpu"
    assert chat.autoscaling["fallback"] == {"failure_threshold": 3, "replicas": 4, "behavior": "static"}
    assert chat.autoscaling["policy"] == "threshold"  # KEDA's activation, cooldown and fallback, then the HPA rule
    assert chat.schedules[0] | {"name": ""} == {"name": "", "start": "0 8 * * 1-5", "end": "0 18 * * 1-5",
                                                "timezone": "Europe/Paris", "min_replicas": 3}  # fmt: skip
    assert any("kafka" in n for n in chat.left_out) and any("ignoreNullValues" in n for n in chat.left_out)
    objs, back = round_trip(chat, "keda")
    trig = by_kind(objs)["ScaledObject"]["spec"]["triggers"][0]
    assert trig["metricType"] == "AverageValue" and trig["metadata"]["threshold"] == "5"
    again = essential(back.autoscaling["signals"][0])
    assert again.pop("labels") == {"service": "chat"}  # the rendered query is scoped to its service
    assert again == essential(waiting)
    assert iris.target["kind"] == "InferenceService"
    assert essential(iris.autoscaling["signals"][0])["target"] == 60.0
    recipe.parse(iris.recipe())


@pytest.mark.parametrize(
    "text",
    ["sum(rate(x_sum[5m])) / sum(rate(x_count[5m]))", "avg(foo)", "max(avg_over_time(q[30s]))", "topk(1, x)"],
)
def test_queries_become_the_signal_that_renders_back_to_them(text: str) -> None:
    sig = importers.signal_from_query("s", text)
    if sig["kind"] == "promql":
        assert sig["query"] == text
    else:
        from swell.core import signals

        rec_sig = recipe.Signal.model_validate({**sig, "target": 1})
        again = importers.signal_from_query("s", signals.render(rec_sig))
        assert again == sig


def test_the_cli_writes_recipes_and_lists_what_it_left_out(tmp_path: Path) -> None:
    res = CliRunner().invoke(main.app, ["import", str(FIXTURES / "keda-mixed.yaml"), "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.yaml", "iris.yaml"]
    text = (tmp_path / "chat.yaml").read_text()
    assert "# not carried over: trigger kafka" in text
    recipe.load(tmp_path / "chat.yaml")
    empty = tmp_path / "none.yaml"
    empty.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
    res = CliRunner().invoke(main.app, ["import", str(empty)])
    assert res.exit_code == 1 and "no HPA, ScaledObject" in str(res.exception)


HPA: dict[str, Any] = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 4,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                           "target": {"type": "Utilization", "averageUtilization": 60}}}]},
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"spec": 5}, "HorizontalPodAutoscaler web: spec: must be a mapping (got 5)"),
        ({"spec": HPA["spec"] | {"scaleTargetRef": 5}}, "web: spec.scaleTargetRef: must be a mapping (got 5)"),
        ({"spec": HPA["spec"] | {"metrics": 7}}, "web: spec.metrics: must be a list (got 7)"),
        ({"spec": HPA["spec"] | {"metrics": [42]}}, "web: spec.metrics[0]: must be a mapping (got 42)"),
        ({"spec": HPA["spec"] | {"maxReplicas": "four"}}, "web: spec.maxReplicas: must be a number (got 'four')"),
        ({"metadata": []}, "HorizontalPodAutoscaler (unnamed): metadata: must be a mapping (got [])"),
    ],
    ids=["spec a number", "target a number", "metrics not a list", "a metric not a mapping",
         "max replicas a word", "metadata a list"],
)  # fmt: skip
def test_a_malformed_manifest_names_the_object_and_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.RecipeError) as info:
        importers.run([HPA | change])
    assert message in str(info.value)
    (ok,), _ = importers.run([HPA])  # the well-formed one imports
    assert ok.name == "web"


def test_fields_the_importers_do_not_read_are_not_held_to_a_shape() -> None:
    """Free-form maps may hold any key: a label named `target`, a trigger's `labels` string, KEDA's
    scalingModifiers `target` (a string) import as before."""
    keda = next(o for o in importers.documents({"k": (FIXTURES / "keda-mixed.yaml").read_text()})
                if o["kind"] == "ScaledObject")  # fmt: skip
    keda["metadata"]["labels"] = {"target": "prod", "metric": "x"}
    keda["spec"]["advanced"] = {"scalingModifiers": {"target": "2", "formula": "waiting"}}
    keda["spec"]["triggers"].append({"type": "github-runner", "metadata": {"labels": "gpu,linux"}})
    (found,), _ = importers.run([keda])
    assert found.name == "chat"


def keda_chat() -> dict[str, Any]:
    return next(o for o in importers.documents({"k": (FIXTURES / "keda-mixed.yaml").read_text()})
                if o["kind"] == "ScaledObject")  # fmt: skip


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    *head, last = path.split(".")
    for key in head:
        obj = obj[int(key)] if isinstance(obj, list) else obj.setdefault(key, {})
    obj[last] = value


@pytest.mark.parametrize(
    ("path", "value", "fallback", "activation", "noted"),
    [
        ("spec.fallback.behavior", "currentReplicasIfHigher", "currentReplicasIfHigher", None, None),
        ("spec.fallback.behavior", "scalingModifiers", "static", None, "fallback.behavior scalingModifiers"),
        ("spec.triggers.0.metadata.activationThreshold", "2", "static", 2.0, None),
        ("spec.triggers.0.authenticationRef", {"name": "prom-auth"}, "static", None, "authenticationRef prom-auth"),
        ("spec.triggers.0.metadata.customHeaders", "X-Scope-OrgID=team", "static", None, "customHeaders"),
        ("spec.initialCooldownPeriod", 120, "static", None, "initialCooldownPeriod 120"),
        ("spec.idleReplicaCount", 0, "static", None, "idleReplicaCount 0"),
        ("metadata.annotations", {"autoscaling.keda.sh/paused-replicas": "2"}, "static", None,
         "paused-replicas 2"),
    ],
    ids=["a fallback behavior is carried", "scalingModifiers' fallback is static, and said",
         "an activation threshold is carried", "authentication is listed as not carried",
         "custom headers are listed as not carried", "initialCooldownPeriod is listed",
         "idleReplicaCount is listed", "paused-replicas is listed"],
)  # fmt: skip
def test_keda_fields_are_carried_or_listed(path: str, value: Any, fallback: str, activation: float | None,
                                           noted: str | None) -> None:  # fmt: skip
    keda = keda_chat()
    _set(keda, path, value)
    (found,), _ = importers.run([keda])
    assert found.autoscaling["fallback"]["behavior"] == fallback
    assert found.autoscaling.get("activation_threshold") == activation
    if noted is not None:
        assert any(noted in n for n in found.left_out), found.left_out
    recipe.parse(found.recipe())  # what is carried is a valid recipe


def test_keda_per_trigger_activation_thresholds_stay_per_signal_and_render_back() -> None:
    keda = keda_chat()
    first = keda["spec"]["triggers"][0]
    first["metadata"]["activationThreshold"] = "2"
    second = {**first, "name": "waiting-2", "metadata": {**first["metadata"], "activationThreshold": "0.5"}}
    keda["spec"]["triggers"].insert(1, second)
    (found,), _ = importers.run([keda])
    own = {s["name"]: s.get("activation_threshold") for s in found.autoscaling["signals"]}
    assert own == {"waiting": 2.0, "waiting_2": 0.5, "cpu": None}
    assert "activation_threshold" not in found.autoscaling
    objs, back = round_trip(found, "keda")
    sent = {t["name"]: t["metadata"]["activationThreshold"] for t in by_kind(objs)["ScaledObject"]["spec"]["triggers"]}
    assert sent["waiting"] == "2" and sent["waiting_2"] == "0.5"
    assert {s["name"]: s.get("activation_threshold") for s in back.autoscaling["signals"]} == own


def test_keda_fallback_behavior_renders_and_imports_back() -> None:
    keda = keda_chat()
    keda["spec"]["fallback"]["behavior"] = "currentReplicasIfLower"
    (found,), _ = importers.run([keda])
    objs, back = round_trip(found, "keda")
    assert by_kind(objs)["ScaledObject"]["spec"]["fallback"]["behavior"] == "currentReplicasIfLower"
    assert back.autoscaling["fallback"] == found.autoscaling["fallback"]


def test_a_value_that_does_not_read_names_its_object() -> None:
    keda = next(o for o in importers.documents({"k": (FIXTURES / "keda-mixed.yaml").read_text()})
                if o["kind"] == "ScaledObject")  # fmt: skip
    keda["spec"]["triggers"][0]["metadata"]["threshold"] = "abc"
    with pytest.raises(errors.RecipeError) as info:
        importers.run([keda])
    assert "ScaledObject chat: a value does not read" in str(info.value) and "abc" in str(info.value)


def test_import_refuses_a_malformed_manifest_and_an_output_that_is_a_file(tmp_path: Path) -> None:
    bad = tmp_path / "hpa.yaml"
    bad.write_text(yaml.safe_dump(HPA | {"spec": HPA["spec"] | {"metrics": [42]}}))
    res = CliRunner().invoke(main.app, ["import", str(bad)])  # main() prints a SwellError; here it is raised
    assert res.exit_code == 1 and "spec.metrics[0]: must be a mapping (got 42)" in str(res.exception)
    good, file = tmp_path / "good.yaml", tmp_path / "out.yaml"
    good.write_text(yaml.safe_dump(HPA))
    file.write_text("")
    res = CliRunner().invoke(main.app, ["import", str(good), "-o", str(file)])
    assert res.exit_code == 1 and "--output: is a file: give a directory" in str(res.exception)


def test_a_ratio_held_to_a_value_comes_back_from_its_hpa_render() -> None:
    """A ratio signal with a Value target renders to `(a / b > -Inf) or (b == 0)` (0 where nothing was
    counted, not no data); importing that render gives the ratio back, not a raw query."""
    rec = recipe.load(Path(__file__).parents[2] / "examples" / "gpt2-vllm-latency-hpa.yaml")
    (sig,) = [s for s in rec.autoscaling.signals if s.kind == "ratio" and s.target_type == "Value"]
    objs = manifests.render(rec, "hpa", workload.Options()).objects
    assert any("-Inf" in yaml.safe_dump(o) for o in objs), "the render guards the ratio"
    found, _ = importers.run(yaml.safe_load(yaml.safe_dump(objs)))
    (back,) = found
    (got,) = back.autoscaling["signals"]
    assert (got["kind"], got["numerator"], got["denominator"], got["target_type"]) == (
        "ratio", sig.numerator, sig.denominator, "Value")  # fmt: skip
    recipe.parse(back.recipe())


def test_an_hpa_on_a_raw_query_imports_with_a_prometheus_server_named() -> None:
    """An adapter rule no signal kind renders to (a histogram quantile) is a raw PromQL signal; the HPA
    names no Prometheus server, so the recipe gets the render default and says so."""
    adapter = {"kind": "ConfigMap", "metadata": {"name": "adapter"}, "data": {"config.yaml": yaml.safe_dump({
        "rules": [{"seriesQuery": 'vllm:time_to_first_token_seconds_bucket{namespace!=""}',
                   "name": {"as": "ttft_p95"},
                   "metricsQuery": "histogram_quantile(0.95, sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (le))"}]})}}
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "chat"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "chat"}, "minReplicas": 1, "maxReplicas": 5,
                    "metrics": [{"type": "Pods", "pods": {"metric": {"name": "ttft_p95"},
                                                          "target": {"type": "AverageValue", "averageValue": "2"}}}]}}  # fmt: skip
    (imp,), _ = importers.run([adapter, hpa])
    (sig,) = imp.autoscaling["signals"]
    assert sig["kind"] == "promql" and "histogram_quantile" in sig["query"]
    assert imp.autoscaling["metrics"] == {"source": "prometheus", "prometheus_url": workload.Options().prometheus_url}
    assert any("prometheus_url" in n and sig["name"] in n for n in imp.left_out)
    assert recipe.parse(imp.recipe()).autoscaling.metrics.source == "prometheus"


def isvc(predictor: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "llm", "namespace": "ml"}, "spec": {"predictor": predictor}}  # fmt: skip


HF = {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": "hf://meta-llama/Llama-3-8B"}}


@pytest.mark.parametrize(
    ("predictor", "query", "target", "policy"),
    [
        ({"minReplicas": 1, "maxReplicas": 4, "scaleMetric": "concurrency", "scaleTarget": 5, **HF},
         "sum(vllm:num_requests_running) + sum(vllm:num_requests_waiting)", 5.0, "hpa"),
        ({"minReplicas": 0, "maxReplicas": 4, "scaleMetric": "rps", **HF},
         "sum(rate(vllm:request_success_total[1m]))", 200.0, "threshold"),
        ({"minReplicas": 1, "maxReplicas": 3, "scaleMetric": "concurrency", "scaleTarget": 8,
          "containers": [{"name": "kserve-container", "image": "vllm/vllm-openai:v0.9.0"}]},
         "sum(vllm:num_requests_running) + sum(vllm:num_requests_waiting)", 8.0, "hpa"),
    ],
    ids=["Hugging Face runtime on concurrency", "rps with Knative's default target, from zero",
         "a vLLM container on concurrency"],
)  # fmt: skip
def test_a_knative_metric_of_an_llm_predictor_is_carried_as_vllms_series(
    predictor: dict[str, Any], query: str, target: float, policy: str
) -> None:
    (found,), _ = importers.run([isvc(predictor)])
    (sig,) = found.autoscaling["signals"]
    assert (sig["kind"], sig["query"], sig["target"], sig["target_type"]) == ("promql", query, target, "AverageValue")
    assert found.autoscaling["policy"] == policy
    assert any("Knative's queue-proxy metric" in n for n in found.left_out)
    recipe.parse(found.recipe())


def test_a_knative_metric_of_another_predictor_is_still_refused_with_why() -> None:
    sk = {"minReplicas": 1, "maxReplicas": 3, "scaleMetric": "concurrency", "scaleTarget": 5,
          "sklearn": {"storageUri": "gs://x"}}  # fmt: skip
    (found,), _ = importers.run([isvc(sk)])
    assert not found.autoscaling.get("signals")
    assert any("Knative's own metric; add a Prometheus signal" in n for n in found.left_out)
    with pytest.raises(errors.RecipeError, match="needs at least one signal"):
        recipe.parse(found.recipe())


@pytest.mark.parametrize(
    "annotations",
    [{"serving.kserve.io/deploymentMode": "RawDeployment"}, {"serving.kserve.io/autoscalerClass": "external"}],
    ids=["raw deployment: KServe's HPA", "external: swell's own render, imported back"],
)
def test_an_inference_service_without_a_scale_metric_takes_kserves_hpa_default(annotations: dict[str, str]) -> None:
    obj = isvc({"minReplicas": 1, "maxReplicas": 4, "sklearn": {"storageUri": "gs://x"}})
    obj["metadata"]["annotations"] = annotations
    (found,), _ = importers.run([obj])
    assert found.autoscaling["signals"] == [{"name": "cpu", "kind": "utilization", "resource": "cpu",
                                             "target": 80.0, "target_type": "Utilization"}]  # fmt: skip
    assert any("KServe's default for an HPA" in n for n in found.left_out)
    assert recipe.parse(found.recipe()).autoscaling.max_replicas == 4


@pytest.mark.parametrize("example", ["llama3-8b-a10.yaml", "cronhpa-schedule.yaml", "qwen-gpu-util.yaml", "corrino-a10-advanced.json"])
def test_a_rendered_scaling_recipe_imports_back_to_its_recipe(example: str) -> None:
    """`kubectl get scalingrecipes -o yaml | swell import -`: what the controller runs, back as a
    recipe to simulate or run locally; scaling, schedules, resources, node pool and workers as written."""
    rec = recipe.load(Path(__file__).parents[2] / "examples" / example)
    bundle = manifests.render(rec, "swell")
    (found,), _ = importers.run([o for o in bundle.objects if o["kind"] == "ScalingRecipe"])
    back = recipe.parse(found.recipe())
    assert back.service.name == rec.service.name
    for section in ("autoscaling", "schedules", "resources", "node_pool", "workers"):
        assert getattr(back, section) == getattr(rec, section), section
    assert not [n for n in found.left_out if "is not read" in n]  # its service came with it


def test_an_autoscaler_import_says_its_target_workload_is_not_read() -> None:
    """An HPA names Deployment web in prod and says nothing of what it runs: rendering the recipe as
    it stands would write a Deployment web of swell's default engine over the user's own."""
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "prod"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 10,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}  # fmt: skip
    (found,), _ = importers.run([hpa])
    (note,) = [n for n in found.left_out if "is not read" in n]
    assert note.startswith("the Deployment web itself (image, command, resources) is not read") and "-n prod" in note


def test_a_scaling_recipe_with_a_bad_spec_is_named_at_its_path() -> None:
    obj = {"apiVersion": "swell.dev/v1", "kind": "ScalingRecipe", "metadata": {"name": "x"},
           "spec": {"scaleTargetRef": {"name": "x"}, "autoscaling": {"max_replicas": 0}}}  # fmt: skip
    with pytest.raises(errors.RecipeError) as info:
        importers.run([obj])
    assert any(p.path.endswith("spec.autoscaling.max_replicas") for p in info.value.problems), info.value.problems


def test_import_reads_standard_input_as_kubectl_pipes_it() -> None:
    rec = recipe.load(Path(__file__).parents[2] / "examples" / "llama3-8b-a10.yaml")
    listed = {"apiVersion": "v1", "kind": "List",
              "items": [o for o in manifests.render(rec, "swell").objects if o["kind"] == "ScalingRecipe"]}  # fmt: skip
    r = CliRunner().invoke(main.app, ["import", "-"], input=yaml.safe_dump(listed))
    assert r.exit_code == 0, r.output
    back = recipe.parse(yaml.safe_load(r.stdout))
    assert back.autoscaling == rec.autoscaling and back.node_pool == rec.node_pool


def test_two_autoscalers_on_one_target_are_refused_not_merged() -> None:
    """Two HPAs (or an HPA and a ScaledObject) on one Deployment: the HPA controller runs neither;
    merged, the recipe took the last one's bounds whichever order the files came in."""
    hpa = next(o for o in importers.documents({"a": (FIXTURES / "arena-cpu-hpa.yaml").read_text()})
               if o["kind"] == "HorizontalPodAutoscaler")  # fmt: skip
    other = yaml.safe_load(yaml.safe_dump(hpa))
    other["metadata"]["name"] = "second"
    other["spec"]["minReplicas"], other["spec"]["maxReplicas"] = 3, 10
    with pytest.raises(errors.RecipeError) as info:
        importers.run([hpa, other])
    said = str(info.value)
    assert "HorizontalPodAutoscaler second: spec.scaleTargetRef" in said and "scales it too" in said, said
    # the HPA KEDA makes for a ScaledObject (an export of a cluster) is read from the ScaledObject
    other["metadata"]["ownerReferences"] = [{"kind": "ScaledObject", "name": "x", "apiVersion": "keda.sh/v1alpha1"}]
    (only,), skipped = importers.run([hpa, other])
    assert skipped == ["HorizontalPodAutoscaler second: KEDA's, for a ScaledObject (the ScaledObject is read instead)"]
    assert (only.autoscaling["min_replicas"], only.autoscaling["max_replicas"]) == (
        hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"])
