"""Headroom as a CapacityBuffer on the real control plane: once the API is served (a CRD standing
in for Cluster Autoscaler's), the controller finds it by discovery and keeps a buffer, under
deploy/'s RBAC, instead of placeholder pods."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e_k8s import conftest, env, gauges, workloads
from tests.support import prometheus as support_prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "capacitybuffers.autoscaling.x-k8s.io"},
    "spec": {
        "group": "autoscaling.x-k8s.io",
        "scope": "Namespaced",
        "names": {
            "kind": "CapacityBuffer",
            "plural": "capacitybuffers",
            "singular": "capacitybuffer",
            "listKind": "CapacityBufferList",
        },
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def test_headroom_becomes_a_capacity_buffer_where_the_api_is_served(
    control_plane: env.ControlPlane,
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
    tmp_path: Path,
) -> None:
    cp = control_plane
    (tmp_path / "crd.json").write_text(json.dumps(CRD))
    cp.kubectl("apply", "-f", str(tmp_path / "crd.json"))
    try:
        conftest.established(cp, "capacitybuffers.autoscaling.x-k8s.io")
        pool = f"{namespace}-pool"
        nodes(pool, 1, 8)
        cluster.deployment(namespace, "llm", 1, pool=pool)
        metric.set(namespace, 2.0)
        cluster.recipe(namespace, "llm", pool, prometheus.url, namespace, headroom_nodes=1)
        controllers("solo", "--prometheus-url", prometheus.url)

        def buffer() -> dict:
            got = cp.kubectl(
                "get", "capacitybuffers", "swell-llm", "-n", namespace, "-o", "json", check=False
            )
            return json.loads(got) if got.strip().startswith("{") else {}

        buf = env.wait_for("the CapacityBuffer", buffer, timeout=30)
        assert buf["spec"] == {
            "scalableRef": {"apiGroup": "apps", "kind": "Deployment", "name": "llm"},
            "replicas": 2,
        }
        assert cluster.pods("swell-system", "swell.dev/headroom=llm") == []
        st = cluster.status_once(namespace, "llm", "headroom reported", lambda s: "headroom" in s)
        assert "CapacityBuffer swell-llm" in st["headroom"]["reason"]
    finally:
        cp.kubectl("delete", "-f", str(tmp_path / "crd.json"), check=False)
