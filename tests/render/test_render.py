"""`swell render`: every example in every mode validates; each mode says what the seeds say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from swell import errors, recipe
from swell.clusters.kubernetes import scalingrecipe
from swell.engines import catalog
from swell.render import autoscalers, manifests, workload
from tests.render import schemas

ALL_EXAMPLES = sorted((schemas.ROOT / "examples").glob("*.*"))


def _has_image(path: Path) -> bool:
    svc = recipe.load(path).service
    return svc.image is not None or catalog.ENGINES[svc.engine].image is not None


# a local-only engine with no container image (torchserve: swell's wrapper around TorchServe has
# no published image yet) cannot be rendered; that is an error naming service.image, tested below
EXAMPLES = [p for p in ALL_EXAMPLES if _has_image(p)]
NO_IMAGE = [p for p in ALL_EXAMPLES if not _has_image(p)]
MODES = list(manifests.MODES)


def by_kind(bundle: manifests.Bundle) -> dict[str, dict]:
    return {o["kind"]: o for o in bundle.objects}


def example(name: str) -> recipe.Recipe:
    return recipe.load(schemas.ROOT / "examples" / name)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_renders_valid_manifests_in_every_mode(path: Path, mode: str) -> None:
    bundle = manifests.render(recipe.load(path), mode)
    kinds = [o["kind"] for o in bundle.objects]
    first = (
        ["InferenceService", "ServiceMonitor"]
        if mode == "kserve"
        else ["Deployment", "Service", "ServiceMonitor"]
    )
    assert kinds[: len(first)] == first
    for obj in bundle.objects:
        schemas.validate(obj)
    # and what is written is what validates
    docs = list(yaml.safe_load_all(manifests.dump(bundle.objects)))
    assert docs == [dict(o) for o in bundle.objects]


@pytest.mark.parametrize("path", NO_IMAGE, ids=[p.name for p in NO_IMAGE])
def test_an_example_whose_engine_has_no_image_is_refused_naming_service_image(path: Path) -> None:
    with pytest.raises(errors.RecipeError) as got:
        manifests.render(recipe.load(path), "swell")
    assert [(p.path, p.value) for p in got.value.problems] == [("service.image", None)]
    assert "needs an image" in str(got.value.problems[0].rule)


def test_the_validators_catch_what_a_server_would_reject_or_prune() -> None:
    bundle = manifests.render(example("gpt2-vllm-latency-hpa.yaml"), "keda")
    objs = by_kind(bundle)
    bad_deploy = yaml.safe_load(yaml.safe_dump(objs["Deployment"]))
    bad_deploy["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        schemas.validate(bad_deploy)
    bad_so = yaml.safe_load(yaml.safe_dump(objs["ScaledObject"]))
    bad_so["spec"]["triggers"][0]["metadata"]["threshold"] = 0.2  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        schemas.validate(bad_so)
    inverted = yaml.safe_load(yaml.safe_dump(objs["ScaledObject"]))
    inverted["spec"]["minReplicaCount"] = 9  # KEDA's CEL rule: min <= max
    with pytest.raises(AssertionError, match="breaks the CEL rule"):
        schemas.validate(inverted)
    typo = yaml.safe_load(yaml.safe_dump(objs["ServiceMonitor"]))
    typo["spec"]["endpoints"][0]["intervall"] = typo["spec"]["endpoints"][0].pop("interval")
    with pytest.raises(AssertionError, match=r"prune: \['.spec.endpoints\[0\].intervall'\]"):
        schemas.validate(typo)


def test_deployment_probes_gpus_cache_and_placement() -> None:
    dep = by_kind(manifests.render(example("gpt2-vllm-latency-hpa.yaml"), "hpa"))["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == "vllm/vllm-openai:latest"
    assert c["args"] == ["--model", "openai-community/gpt2", "--port", "8000", "--shutdown-timeout", "30"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert (c["readinessProbe"]["periodSeconds"], c["livenessProbe"]["periodSeconds"]) == (5, 10)
    assert c["startupProbe"]["httpGet"]["path"] == "/health"
    # no startup_timeout_s and the default 60 s model load: three loads (180 s) are below the 300 s floor
    assert (c["startupProbe"]["periodSeconds"], c["startupProbe"]["failureThreshold"]) == (10, 30)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "model-cache", "mountPath": "/root/.cache"} in c["volumeMounts"]
    assert pod["nodeSelector"] == {workload.INSTANCE_TYPE: "VM.GPU.A10.1"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert dep["spec"]["replicas"] == 1


@pytest.mark.parametrize(
    ("slo", "local", "grace"),
    [({"e2e_s": 60}, {}, 80), ({}, {}, 50), ({"e2e_s": 5}, {"drain_timeout_s": 120, "grace_period_s": 0}, 130)],
    ids=["an e2e SLO longer than the drain timeout is waited for", "no e2e SLO: the drain timeout",
         "the longer drain timeout, no grace"],
)  # fmt: skip
def test_a_scaled_down_pod_drains_before_it_is_killed(slo: dict, local: dict, grace: int) -> None:
    """preStop (the endpoint goes first), then the engine's drain, then SIGKILL: the grace period is
    PRESTOP_S + the longer of the drain timeout (30 s) and the e2e SLO + the kill grace (10 s)."""
    rec = example("gpt2-vllm-latency-hpa.yaml")
    rec = rec.model_copy(update={"slo": recipe.SLO(**slo), "local": recipe.Local(**local)})
    pod = by_kind(manifests.render(rec, "hpa"))["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == grace
    assert pod["containers"][0]["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", str(workload.PRESTOP_S)]}}}
    args = pod["containers"][0]["args"]
    assert int(args[args.index("--shutdown-timeout") + 1]) == grace - workload.PRESTOP_S - rec.local.grace_period_s


def test_a_vllm_image_of_ones_own_gets_a_note_not_a_flag_it_may_not_know() -> None:
    rec = example("gpt2-vllm-latency-hpa.yaml")
    rec = rec.model_copy(update={"service": rec.service.model_copy(update={"image": "vllm/vllm-openai:v0.8.5"})})
    b = manifests.render(rec, "hpa")
    assert "--shutdown-timeout" not in by_kind(b)["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert any("--shutdown-timeout 30" in n for n in b.warnings), b.warnings


@pytest.mark.parametrize(("args", "served"), [((), None), (("--model", "m/x"), "m/x"), (("--model=m/y",), "--model=m/y")],
                         ids=["no model anywhere: refused", "--model in args", "--model=NAME in args"])  # fmt: skip
def test_a_vllm_container_serves_a_model_it_is_told(args: tuple[str, ...], served: str | None) -> None:
    """Without one the vllm image serves its own default model (a download), whatever the recipe meant."""
    rec = example("gpt2-vllm-latency-hpa.yaml")
    rec = rec.model_copy(update={"service": rec.service.model_copy(update={"model": None, "args": args})})
    if served is None:
        with pytest.raises(errors.RecipeError, match="engine 'vllm' needs a model"):
            manifests.render(rec, "hpa")
        return
    container = by_kind(manifests.render(rec, "hpa"))["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert served in container["args"]


@pytest.mark.parametrize(("mode", "initial", "replicas"), [("swell", None, 0), ("swell", 2, 2), ("keda", 1, 1),
                                                          ("hpa", None, 1)],
                         ids=["min 0, no initial: starts at zero", "initial 2", "initial 1 under KEDA",
                              "an HPA is off at 0: at least 1"])  # fmt: skip
def test_the_deployment_starts_at_initial_replicas(mode: str, initial: int | None, replicas: int) -> None:
    rec = example("gpt2-vllm-latency-hpa.yaml")
    auto = rec.autoscaling.model_dump() | {"min_replicas": 0, "max_replicas": 4, "initial_replicas": initial,
                                           "policy": "threshold"}  # fmt: skip
    rec = rec.model_copy(update={"autoscaling": recipe.Autoscaling.model_validate(auto)})
    assert by_kind(manifests.render(rec, mode))["Deployment"]["spec"]["replicas"] == replicas


def test_builtin_engines_run_from_the_swell_image() -> None:
    bundle = manifests.render(example("kserve-sklearn-iris.yaml"), "swell")
    dep = by_kind(bundle)["Deployment"]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "kserve/sklearnserver:latest"
    assert c["command"][:3] == ["python", "-m", "swell.servers.sklearn_iris"]
    assert any("must contain swell" in w for w in bundle.warnings)
    assert "nvidia.com/gpu" not in c["resources"]["limits"]
    assert "nodeSelector" not in dep["spec"]["template"]["spec"]  # shape "local": no pool label


def test_hpa_mode_is_seed_000_external_metric_and_adapter_rule() -> None:
    b = manifests.render(example("gpt2-vllm-latency-hpa.yaml"), "hpa")
    hpa = by_kind(b)["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 3)
    assert hpa["metrics"] == [
        {
            "type": "External",
            "external": {
                "metric": {
                    "name": "swell_gpt2_avg_e2e_latency",
                    # the service's own series: the adapter adds the HPA's namespace
                    "selector": {"matchLabels": {"service": "gpt2", "model_name": "openai-community/gpt2"}},
                },
                "target": {"type": "Value", "value": "200m"},  # ceil(ready x latency / 0.2), as swell
            },
        }
    ]
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    config = yaml.safe_load(by_kind(b)["ConfigMap"]["data"]["config.yaml"])
    (rule,) = config["externalRules"]
    assert rule["name"] == {"as": "swell_gpt2_avg_e2e_latency"}
    assert rule["metricsQuery"] == (
        "(sum(rate(vllm:e2e_request_latency_seconds_sum{<<.LabelMatchers>>}[1m])) / "
        "sum(rate(vllm:e2e_request_latency_seconds_count{<<.LabelMatchers>>}[1m]))"
        " > -Inf) or (sum(rate(vllm:e2e_request_latency_seconds_count{<<.LabelMatchers>>}[1m])) == 0)"
    )
    assert rule["resources"] == {"overrides": {"namespace": {"resource": "namespace"}}}  # namespaced
    assert rule["seriesQuery"].endswith(',namespace!=""}')


def test_gpu_utilization_reads_the_targets_own_gpus_in_every_mode() -> None:
    """Not avg(DCGM_FI_DEV_GPU_UTIL) over the whole cluster: the Deployment's pods only (seed 004)."""
    rec = example("qwen-gpu-util.yaml")
    b = manifests.render(rec, "hpa", workload.Options(namespace="ml"))
    (metric,) = by_kind(b)["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metric["type"] == "Pods"
    (rule,) = yaml.safe_load(by_kind(b)["ConfigMap"]["data"]["config.yaml"])["rules"]
    assert (
        rule["metricsQuery"]
        == "avg by (<<.GroupBy>>) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{<<.LabelMatchers>>}[1m]))"
    )
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    (trigger,) = by_kind(manifests.render(rec, "keda", workload.Options(namespace="ml")))["ScaledObject"][
        "spec"
    ]["triggers"]
    name = rec.service.name
    assert f'namespace="ml",pod=~"{name}-[a-z0-9]+-[a-z0-9]+"' in trigger["metadata"]["query"]


def test_hpa_target_types_per_replica_and_resource_metrics() -> None:
    rec = recipe.parse(
        {
            "service": {"name": "svc", "engine": "vllm", "model": "m"},
            "autoscaling": {
                "min_replicas": 0,
                "max_replicas": 5,
                "policy": "threshold",
                "signals": [
                    {"name": "total", "kind": "gauge", "metric": "w", "aggregate": "sum", "target": 10,
                     "target_type": "AverageValue"},
                    {"name": "per_pod", "kind": "gauge", "metric": "q", "target": 3, "per_replica": True},
                    {"name": "cpu", "kind": "utilization", "resource": "cpu", "target": 70,
                     "target_type": "Utilization"},
                ],
            },
        }
    )  # fmt: skip
    b = manifests.render(rec, "hpa")
    metrics = by_kind(b)["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metrics[0]["external"]["target"] == {"type": "AverageValue", "averageValue": "10"}
    assert metrics[1] == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "swell_svc_per_pod"},
            "target": {"type": "AverageValue", "averageValue": "3"},
        },
    }
    assert metrics[2]["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 70},
    }
    (rule,) = yaml.safe_load(by_kind(b)["ConfigMap"]["data"]["config.yaml"])["rules"]
    assert rule["metricsQuery"] == "avg by (<<.GroupBy>>) (avg_over_time(q{<<.LabelMatchers>>}[1m]))"
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert by_kind(b)["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 1
    assert any("cannot scale to zero" in w for w in b.warnings)


def test_keda_mode_is_seed_001_without_the_null_value_trap() -> None:
    b = manifests.render(example("corrino-a10-advanced.json"), "keda")
    so = by_kind(b)["ScaledObject"]["spec"]
    (trigger,) = so["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "Value"
    md = trigger["metadata"]
    assert md["ignoreNullValues"] == "false" and md["threshold"] == "0.5"
    b = example("corrino-a10-advanced.json")
    sel = f'model_name="{workload.metric_labels(b)["model_name"]}",namespace="default",service="{b.service.name}"'
    assert md["query"] == (
        f'(1 - sum(rate(vllm:e2e_request_latency_seconds_bucket{{le="5.0",{sel}}}[5m])) / '
        f'sum(rate(vllm:e2e_request_latency_seconds_bucket{{le="+Inf",{sel}}}[5m])) > -Inf) or '
        f'(sum(rate(vllm:e2e_request_latency_seconds_bucket{{le="+Inf",{sel}}}[5m])) == 0)'
    )
    assert (so["minReplicaCount"], so["maxReplicaCount"], so["cooldownPeriod"], so["pollingInterval"]) == (
        1,
        8,
        60,
        15,
    )
    assert (
        so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"]
        == 120
    )


@pytest.mark.parametrize(("behavior", "warned"), [("currentReplicasIfHigher", True), ("static", False)],
                         ids=["a fallback behavior other than static warns of KEDA before 2.17",
                              "a static fallback, KEDA's default, does not"])  # fmt: skip
def test_keda_mode_carries_the_fallback_behavior(behavior: str, warned: bool) -> None:
    rec = example("corrino-a10-advanced.json")
    fb = recipe.Fallback(failure_threshold=2, replicas=3, behavior=behavior)  # type: ignore[arg-type]
    rec = rec.model_copy(update={"autoscaling": rec.autoscaling.model_copy(update={"fallback": fb})})
    b = manifests.render(rec, "keda")
    assert by_kind(b)["ScaledObject"]["spec"]["fallback"] == {"failureThreshold": 2, "replicas": 3, "behavior": behavior}
    assert any("KEDA 2.17" in w for w in b.warnings) == warned


def test_cronhpa_mode_is_seed_002_with_an_hpa_for_the_signals() -> None:
    b = manifests.render(example("cronhpa-schedule.yaml"), "cronhpa")
    cron = by_kind(b)["CronHorizontalPodAutoscaler"]
    assert cron["spec"]["jobs"] == [
        {"name": "late-morning-start", "schedule": "0 30 10 * * *", "targetSize": 2},
        {"name": "late-morning-end", "schedule": "0 0 12 * * *", "targetSize": 1},
    ]
    assert cron["spec"]["scaleTargetRef"]["kind"] == "HorizontalPodAutoscaler"
    assert "HorizontalPodAutoscaler" in by_kind(b)
    assert cron["metadata"]["annotations"] == {"swell.dev/timezone": "Asia/Shanghai"}
    assert any("TZ=Asia/Shanghai" in w for w in b.warnings)


def test_swell_mode_scalingrecipe_is_what_the_controller_reads() -> None:
    rec = example("corrino-a10-advanced.json")
    cr = by_kind(manifests.render(rec, "swell", workload.Options(namespace="ml")))["ScalingRecipe"]
    spec = scalingrecipe.parse(cr)
    assert spec.recipe.autoscaling == rec.autoscaling and spec.recipe.node_pool == rec.node_pool
    assert spec.target.name == rec.service.name and spec.namespace == "ml"
    assert spec.placement.node_selector == {workload.INSTANCE_TYPE: "BM.GPU.A10.4"}
    assert cr["spec"]["autoscaling"]["min_replicas"] == 1  # bounds shown even when defaults


def test_quantities() -> None:
    assert [autoscalers.quantity(x) for x in (0.2, 5, 0.5, 2.5, 0.0001)] == [
        "200m",
        "5",
        "500m",
        "2500m",
        "0.0001",
    ]


def test_unknown_mode_is_an_error_naming_the_modes() -> None:
    with pytest.raises(errors.RecipeError, match="swell, hpa, keda, cronhpa"):
        manifests.render(example("gpt2-vllm-latency-hpa.yaml"), "knative")


def test_cli_writes_a_kustomization_and_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    def swell(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "swell.cli.main", "render", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)

    ok = swell(
        str(schemas.ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml"), "--mode", "keda", "-o", str(tmp_path)
    )
    assert ok.returncode == 0, ok.stderr
    kust = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    assert kust["resources"] == [
        "deployment-gpt2.yaml",
        "service-gpt2.yaml",
        "servicemonitor-gpt2.yaml",
        "scaledobject-gpt2.yaml",
    ]
    for name in kust["resources"]:
        schemas.validate(yaml.safe_load((tmp_path / name).read_text()))
    bad = swell(str(schemas.ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml"), "--mode", "knative")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "--mode: one of" in bad.stderr
    sel = swell(str(schemas.ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml"), "--node-selector", "pool")
    assert sel.returncode == 1 and "KEY=VALUE" in sel.stderr
    sel = swell(str(schemas.ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml"), "--node-selector", "a b=c",
                "--node-selector", "pool=bad value")  # fmt: skip
    assert sel.returncode == 1 and "'a b' is no label key" in sel.stderr and "'bad value' is no label value" in sel.stderr
    names = swell(str(schemas.ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml"), "-n", "Bad_NS!", "--mode", "keda",
                  "--prometheus-url", "prometheus:9090", "-o", str(tmp_path / "kustomization.yaml"))  # fmt: skip
    assert names.returncode == 1 and "Traceback" not in names.stderr
    for problem in ("--namespace: a Kubernetes namespace", "--prometheus-url: an http:// or https:// URL"):
        assert problem in names.stderr, names.stderr
    into_file = swell(str(schemas.ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml"), "-o",
                      str(tmp_path / "kustomization.yaml"))  # fmt: skip
    assert into_file.returncode == 1 and "--output: is a file: give a directory" in into_file.stderr
    image = swell(str(schemas.ROOT / "examples" / "torchserve-workers.yaml"))  # valid, but no image to run
    assert image.returncode == 1 and "torchserve-workers.yaml: 1 problem(s)" in image.stderr
    assert "service.image: engine 'torchserve' needs an image" in image.stderr


def test_kserve_mode_is_a_raw_inference_service_scaled_by_swell() -> None:
    b = manifests.render(example("gpt2-vllm-latency-hpa.yaml"), "kserve", workload.Options(namespace="ml"))
    objs = by_kind(b)
    isvc = objs["InferenceService"]
    assert isvc["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "RawDeployment",
        "serving.kserve.io/autoscalerClass": "external",  # KServe makes no HPA of its own
    }
    pred = isvc["spec"]["predictor"]
    assert (pred["minReplicas"], pred["maxReplicas"]) == (1, 3)
    assert pred["containers"][0]["name"] == "kserve-container"
    assert pred["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    spec = scalingrecipe.parse(objs["ScalingRecipe"])
    assert (spec.target.kind, spec.target.name) == ("Deployment", "gpt2-predictor")
    assert spec.metric_labels["service"] == "gpt2-predictor"
    assert objs["ServiceMonitor"]["spec"]["selector"] == {
        "matchLabels": {"serving.kserve.io/inferenceservice": "gpt2"}
    }
    assert "Deployment" not in objs  # KServe creates it


@pytest.mark.parametrize(("gib", "quantity"), [(2.0, "2Gi"), (0.5, "0.5Gi"), (0.00001, "10738")],
                         ids=["whole", "a fraction", "one Python writes with an exponent: bytes"])  # fmt: skip
def test_memory_is_a_quantity_kubernetes_reads(gib: float, quantity: str) -> None:
    rec = example("gpt2-vllm-latency-hpa.yaml")
    rec = rec.model_copy(update={"resources": rec.resources.model_copy(update={"memory_gib": gib})})
    container = by_kind(manifests.render(rec, "hpa"))["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == quantity == container["resources"]["requests"]["memory"]


@pytest.mark.parametrize(
    ("args", "label"),
    [(["--model=org/served"], "org/served"), (["--model", "org/m", "--served-model-name=api"], "api")],
    ids=["--model=M labels M", "--served-model-name=N labels N"],
)
def test_the_rendered_queries_select_the_model_name_vllm_writes(args: list[str], label: str) -> None:
    rec = example("llama3-8b-a10.yaml")
    rec = rec.model_copy(update={"service": rec.service.model_copy(update={"model": None, "args": args})})
    b = manifests.render(rec, "keda")
    (trigger, *_) = by_kind(b)["ScaledObject"]["spec"]["triggers"]
    assert f'model_name="{label}"' in trigger["metadata"]["query"]
