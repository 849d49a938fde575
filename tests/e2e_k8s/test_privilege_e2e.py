"""Least privilege on the real control plane, both ways: namespaced mode grants */scale only in
the namespaces bound (deploy/namespaced/), and a controller there still scales; /metrics over
HTTPS answers only tokens the API server says may GET it (TokenReview, SubjectAccessReview)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.e2e_k8s import env, gauges, workloads
from tests.support import prometheus as support_prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]
SA = "system:serviceaccount:swell-system:swell-controller"


def test_namespaced_mode_scales_only_where_it_is_bound(
    control_plane: env.ControlPlane,
    installed: str,
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
    tmp_path: Path,
) -> None:
    cp = control_plane
    binding = yaml.safe_load((env.ROOT / "deploy" / "namespaced" / "scaler-rolebinding.yaml").read_text())
    binding["metadata"]["namespace"] = namespace
    (tmp_path / "rb.yaml").write_text(yaml.safe_dump(binding))
    cp.kubectl("delete", "clusterrolebinding", "swell-scaler")  # from cluster mode to namespaced mode
    try:
        cp.kubectl("apply", "-f", str(tmp_path / "rb.yaml"))

        def can(*args: str) -> bool:
            return cp.kubectl("auth", "can-i", *args, kubeconfig=installed, check=False).strip() == "yes"

        scale = ("patch", "deployments.apps", "--subresource=scale")
        assert can(*scale, "-n", namespace) and can("list", "scalingrecipes.swell.dev", "-n", namespace)
        assert not can(*scale, "-n", "kube-system") and not can(*scale, "-n", "default")
        assert not can("list", "scalingrecipes.swell.dev", "--all-namespaces")

        pool = f"{namespace}-pool"
        nodes(pool, 1, 8)
        cluster.deployment(namespace, "llm", 1, pool=pool)
        metric.set(namespace, 6.0)
        cluster.recipe(namespace, "llm", pool, prometheus.url, namespace, headroom_nodes=1)
        controllers("solo", "--prometheus-url", prometheus.url)  # -n namespace; no 403 allowed
        env.wait_for("3 replicas", lambda: cluster.replicas(namespace, "llm")[0] == 3, timeout=40)
        held = f"swell.dev/headroom=llm,swell.dev/headroom-namespace={namespace}"
        env.wait_for("2 placeholders in swell-system", lambda: len(cluster.pods("swell-system", held)) == 2)
        assert cluster.pods(namespace, "swell.dev/headroom") == []
    finally:
        cp.kubectl("apply", "-f", str(env.ROOT / "deploy" / "cluster-scaler.yaml"))


def _get(url: str, token: str | None) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the controller's self-signed certificate
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # not listening yet


def test_metrics_need_a_token_allowed_to_get_them(
    control_plane: env.ControlPlane,
    installed: str,
    controllers: Callable[..., workloads.Controller],
) -> None:
    cp = control_plane
    ctl = controllers("solo", "--metrics-secure")
    url = f"https://127.0.0.1:{ctl.port}/metrics"
    env.wait_for("the HTTPS listener", lambda: _get(url, None) == 401, timeout=20)
    cp.kubectl("create", "serviceaccount", "scraper", "-n", "swell-system")
    try:
        token = cp.kubectl("create", "token", "scraper", "-n", "swell-system").strip()
        assert _get(url, "not-a-token") == 401
        assert _get(url, token) == 403  # authenticated, not allowed
        cp.kubectl("create", "clusterrolebinding", "e2e-scraper", "--clusterrole=swell-metrics-reader",
                   "--serviceaccount=swell-system:scraper")  # fmt: skip
        env.wait_for(
            "allowed once bound",
            lambda: _get(url, token) == 200,
            timeout=20,
        )
        assert _get(f"https://127.0.0.1:{ctl.port}/healthz", None) == 200
    finally:
        cp.kubectl("delete", "clusterrolebinding", "e2e-scraper", check=False)
        cp.kubectl("delete", "serviceaccount", "scraper", "-n", "swell-system", check=False)
