"""deploy/ applied with kubectl to the real control plane, its RBAC enforced; two controllers
elect one leader, the other takes over from the state kept in the CR status."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.e2e_k8s import env, gauges, workloads
from tests.support import prometheus as support_prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


def when(rfc3339: str) -> float:
    return dt.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def test_deploy_applies_and_grants_only_what_the_controller_needs(
    control_plane: env.ControlPlane, installed: str
) -> None:
    cp = control_plane
    dep = json.loads(cp.kubectl("get", "deployment", "swell-controller", "-n", "swell-system", "-o", "json"))
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "swell-controller"
    pc = json.loads(cp.kubectl("get", "priorityclass", "swell-headroom", "-o", "json"))
    assert pc["value"] < 0 and pc["preemptionPolicy"] == "Never"
    cp.kubectl("get", "servicemonitor", "swell-controller", "-n", "swell-system")
    cm = json.loads(
        cp.kubectl("get", "configmap", "-n", "swell-system", "-l", "grafana_dashboard=1", "-o", "json")
    )
    (dashboard,) = cm["items"]
    panels = json.loads(dashboard["data"]["swell-dashboard.json"])["panels"]
    assert any("swell_desired_replicas" in t["expr"] for p in panels for t in p["targets"])

    def can(*args: str) -> bool:
        return cp.kubectl("auth", "can-i", *args, kubeconfig=installed, check=False).strip() == "yes"

    allowed = [
        ("patch", "deployments.apps", "--subresource=scale", "-n", "default"),
        ("patch", "statefulsets.apps", "--subresource=scale", "-n", "default"),
        ("list", "pods", "--all-namespaces"),
        ("create", "pods", "-n", "swell-system"),  # headroom placeholders live there only
        ("list", "nodes"),
        ("create", "tokenreviews.authentication.k8s.io"),  # who asks for /metrics
        ("create", "subjectaccessreviews.authorization.k8s.io"),
        ("patch", "scalingrecipes.swell.dev", "--subresource=status", "-n", "default"),
        ("update", "leases.coordination.k8s.io/swell-controller", "-n", "swell-system"),
    ]
    denied = [
        ("patch", "deployments.apps", "-n", "default"),  # only the scale subresource
        ("create", "pods", "-n", "default"),  # no pods anywhere but swell-system
        ("delete", "pods", "-n", "kube-system"),
        ("delete", "nodes"),
        ("patch", "scalingrecipes.swell.dev", "-n", "default"),  # only the status
        ("get", "secrets", "-n", "default"),
        ("update", "leases.coordination.k8s.io/other", "-n", "swell-system"),
        ("update", "leases.coordination.k8s.io/swell-controller", "-n", "default"),
    ]
    assert [a for a in allowed if not can(*a)] == []
    assert [d for d in denied if can(*d)] == []


def test_kubectl_shows_the_status_columns_explains_the_spec_and_rejects_a_bad_one(
    control_plane: env.ControlPlane, cluster: workloads.Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.recipe(namespace, "x", "none", "http://127.0.0.1:1", "none")
    out = control_plane.kubectl("get", "scalingrecipes", "-n", namespace)
    assert out.split()[:9] == [
        "NAME",
        "TARGET",
        "MIN",
        "MAX",
        "CURRENT",
        "DESIRED",
        "SIGNALS",
        "READY",
        "AGE",
    ]
    crd = yaml.safe_load(control_plane.kubectl("get", "crd", "scalingrecipes.swell.dev", "-o", "yaml"))
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
    explained = control_plane.kubectl("explain", "scalingrecipes.spec.autoscaling.signals")
    assert "target_type" in explained and "per_replica" in explained
    bad = {
        "apiVersion": "swell.dev/v1alpha1",
        "kind": "ScalingRecipe",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {"scaleTargetRef": {"name": "x"},
                 "autoscaling": {"min_replicas": "one", "policy": "guess", "target_utilization": 0}},
    }
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    r = subprocess.run(
        ["kubectl", "--kubeconfig", control_plane.kubeconfig, "apply", "--validate=false", "-f", str(tmp_path / "bad.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode != 0 and "is invalid" in r.stderr  # the API server, not kubectl
    assert "spec.autoscaling.min_replicas" in r.stderr and "spec.autoscaling.policy" in r.stderr
    assert "spec.autoscaling.target_utilization" in r.stderr  # > 0, from the CRD's schema


@pytest.mark.parametrize("mode", ["swell", "keda", "cronhpa", "hpa"])
def test_rendered_manifests_pass_the_real_api_server(
    control_plane: env.ControlPlane,
    installed: str,
    autoscaler_crds: None,
    namespace: str,
    tmp_path: Path,
    mode: str,
) -> None:
    """`swell render -o DIR` then `kubectl apply -k DIR`, as docs/kubernetes.md says, with the
    server validating (dry run). v1.20 serves no autoscaling/v2: HPAs are validated offline only."""
    out = tmp_path / mode
    recipe = env.ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml"
    cmd = [sys.executable, "-m", "swell.cli.main", "render", str(recipe), "--mode", mode, "-o", str(out)]
    cmd += ["--namespace", namespace, "--adapter-namespace", namespace]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    kust = yaml.safe_load((out / "kustomization.yaml").read_text())
    kust["resources"] = [r for r in kust["resources"] if not r.startswith("horizontalpodautoscaler-")]
    (out / "kustomization.yaml").write_text(yaml.safe_dump(kust))
    applied = control_plane.kubectl("apply", "--dry-run=server", "-k", str(out))
    assert sorted(line.split()[0].split("/")[0] for line in applied.splitlines()) == sorted(
        {
            "swell": [
                "deployment.apps",
                "service",
                "servicemonitor.monitoring.coreos.com",
                "scalingrecipe.swell.dev",
            ],
            "keda": [
                "deployment.apps",
                "service",
                "servicemonitor.monitoring.coreos.com",
                "scaledobject.keda.sh",
            ],
            "cronhpa": [
                "deployment.apps",
                "service",
                "servicemonitor.monitoring.coreos.com",
                "configmap",
                "cronhorizontalpodautoscaler.autoscaling.alibabacloud.com",
            ],
            "hpa": ["deployment.apps", "service", "servicemonitor.monitoring.coreos.com", "configmap"],
        }[mode]
    )


def test_two_controllers_one_leader_and_a_takeover_without_a_burst(
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
) -> None:
    test, pool = namespace, f"{namespace}-pool"
    nodes(pool, 1, 8)
    cluster.deployment(namespace, "llm", 1, pool=pool)
    metric.set(test, 12.0)  # wants 6; one pod per 20 s
    one_per_20s = {
        "scale_up": {"stabilization_window_s": 0, "policies": [{"type": "Pods", "value": 1, "period_s": 20}]}
    }
    cluster.recipe(namespace, "llm", pool, prometheus.url, test, max_replicas=6, behavior=one_per_20s)
    allow = ("--allow-prometheus-url", prometheus.url)
    a, b = controllers("ctl-a", *allow), controllers("ctl-b", *allow)
    leader_id = env.wait_for("a leader", cluster.lease_holder, timeout=20)
    leader, standby = (a, b) if leader_id == "ctl-a" else (b, a)
    env.wait_for("the first step up", lambda: cluster.replicas(namespace, "llm")[0] == 2, timeout=30)
    env.wait_for(
        "both serving /metrics", lambda: standby.sample("swell_leader", identity=standby.identity) == 0
    )
    assert leader.sample("swell_leader", identity=leader.identity) == 1
    st = cluster.status_once(
        namespace,
        "llm",
        "the status of the first step",
        lambda s: bool(s.get("policyState", {}).get("up_events")),
    )
    assert st["controller"] == leader.identity
    before = st["policyState"]["up_events"]
    assert len(before) == 1

    leader.kill()  # no release: the standby waits out the lease, then carries on from the status
    env.wait_for("the standby takes over", lambda: cluster.lease_holder() == standby.identity, timeout=20)
    env.wait_for(
        "a status from the new leader",
        lambda: cluster.status(namespace, "llm").get("controller") == standby.identity,
        timeout=20,
    )
    st = cluster.status(namespace, "llm")
    assert before[0] in st["policyState"]["up_events"]  # the rate history came along
    # A fresh controller without that history would add a pod at once; this one waits out the 20 s.
    env.wait_for("the next step up", lambda: cluster.replicas(namespace, "llm")[0] == 3, timeout=40)
    st = cluster.status_once(
        namespace, "llm", "the status of the next step", lambda s: s.get("desiredReplicas") == 3
    )
    step = {(d["current"], d["desired"]): when(d["since"]) for d in st["lastDecisions"]}
    assert step[(2, 3)] - step[(1, 2)] >= 19, st["lastDecisions"]  # seconds, across the takeover
    assert standby.stop() == 0  # a clean stop releases the lease at once
    assert cluster.lease_holder() == ""


def test_the_rendered_gateway_passes_the_real_api_server(
    control_plane: env.ControlPlane, installed: str, namespace: str, tmp_path: Path
) -> None:
    """`swell render --gateway`: the gateway's Deployment, Service, RBAC and ServiceMonitor (with its
    relabeling) beside the workload and the ScalingRecipe, validated by the server (dry run)."""
    out = tmp_path / "gateway"
    recipe = env.ROOT / "examples" / "scale-from-zero-gateway.yaml"
    cmd = [sys.executable, "-m", "swell.cli.main", "render", str(recipe), "--gateway", "-o", str(out), "-n", namespace]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    applied = control_plane.kubectl("apply", "--dry-run=server", "-k", str(out))
    names = sorted(line.split()[0] for line in applied.splitlines())
    assert names == sorted([
        "deployment.apps/llama-3-8b", "service/llama-3-8b", "servicemonitor.monitoring.coreos.com/llama-3-8b",
        "scalingrecipe.swell.dev/llama-3-8b", "serviceaccount/llama-3-8b-gateway",
        "role.rbac.authorization.k8s.io/llama-3-8b-gateway", "rolebinding.rbac.authorization.k8s.io/llama-3-8b-gateway",
        "deployment.apps/llama-3-8b-gateway", "service/llama-3-8b-gateway",
        "servicemonitor.monitoring.coreos.com/llama-3-8b-gateway",
    ])  # fmt: skip
