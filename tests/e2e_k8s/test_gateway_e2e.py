"""Scale from zero on the real control plane, through swell's gateway (`swell gateway`, as
`swell render --gateway` deploys it, under the RBAC that render writes).

A request comes while the Deployment has 0 replicas: it waits in the gateway's buffer. A real
Prometheus scrapes the gateway; the controller reads the buffered request and scales 0 -> 1; the
ReplicaSet's pod is scheduled and turns Ready (the emulated kubelet); the gateway's pod watch sees
it and sends the request on, to a real model server on this machine. After the cooldown the
controller scales back to zero, and the gateway lets the pod go.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from swell import recipe
from swell.render import gateway as render_gateway
from swell.render import workload
from tests.e2e_k8s import env, gauges, workloads
from tests.render import schemas
from tests.support import prometheus as support_prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def _sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


class Proc:
    """A process of this test, its output in a file; killed at the end whatever happens."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=out, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(10)


@pytest.fixture
def procs() -> Iterator[Callable[[list[str], Path], Proc]]:
    started: list[Proc] = []

    def start(argv: list[str], log: Path) -> Proc:
        p = Proc(argv, log)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def _gateway_rbac(namespace: str, path: Path) -> None:
    """The ServiceAccount, Role and RoleBinding `swell render --gateway` writes for a service `llm`."""
    data = recipe.load(schemas.ROOT / "examples" / "scale-from-zero-gateway.yaml").model_dump(by_alias=True)
    data["service"]["name"] = "llm"
    objs = render_gateway.rbac(recipe.Recipe.model_validate(data), workload.Options(namespace=namespace))
    path.write_text(yaml.safe_dump_all(objs))


def test_a_request_at_zero_replicas_wakes_the_service_through_the_gateway(
    cluster: workloads.Cluster,
    control_plane: env.ControlPlane,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    metric: gauges.Gauges,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
    procs: Callable[[list[str], Path], Proc],
    tmp_path: Path,
) -> None:
    pool = f"{namespace}-pool"
    nodes(pool, 1, 2)
    model_port, gw_port = env.free_ports(2)
    server = procs([sys.executable, "-m", "swell.servers.simulated_llm", "--host", "127.0.0.1",
                    "--port", str(model_port), "--time-scale", "20"], tmp_path / "model.log")  # fmt: skip
    env.wait_for("the model server", lambda: _get(f"http://127.0.0.1:{model_port}/v1/models"), timeout=30)
    cluster.deployment(namespace, "llm", 0, pool=pool, port=model_port, pod_ip="127.0.0.1")
    cluster.service(namespace, "llm")

    rbac = tmp_path / "gateway-rbac.yaml"
    _gateway_rbac(namespace, rbac)
    control_plane.kubectl("apply", "-f", str(rbac))
    kc = env.token_kubeconfig(control_plane, "llm-gateway", namespace, tmp_path / "gateway.kubeconfig")
    gw = procs([sys.executable, "-m", "swell.cli.main", "gateway", "llm", "-n", namespace, "--kubeconfig", kc,
                "--host", "127.0.0.1", "--port", str(gw_port), "--buffer-timeout", "90"], tmp_path / "gateway.log")  # fmt: skip
    env.wait_for("the gateway", lambda: "swell-gateway listening" in gw.output() or gw.popen.poll() is not None)
    assert gw.popen.poll() is None, gw.output()
    # Prometheus scrapes it as a ServiceMonitor would: the series carry the namespace and `service: llm`
    prometheus.set_targets(
        {"gauges": f"127.0.0.1:{metric.port}", "gateway": f"127.0.0.1:{gw_port}"},
        labels={"gateway": {"namespace": namespace, "service": "llm"}},
    )
    try:
        _wake_and_sleep(cluster, namespace, prometheus, controllers, gw, gw_port, model_port, pool)
    finally:
        prometheus.set_targets({"gauges": f"127.0.0.1:{metric.port}"})
    assert server.popen.poll() is None


def _wake_and_sleep(
    cluster: workloads.Cluster,
    namespace: str,
    prometheus: support_prometheus.Prometheus,
    controllers: Callable[..., workloads.Controller],
    gw: Proc,
    gw_port: int,
    model_port: int,
    pool: str,
) -> None:
    buffered = {"name": "buffered", "kind": "gauge", "metric": "swell_gateway_requests_buffered",
                "aggregate": "sum", "window_s": 2, "target": 1}  # fmt: skip
    cluster.recipe(namespace, "llm", pool, prometheus.url, namespace, policy="threshold", min_replicas=0,
                   max_replicas=2, cooldown_s=3, signals=[buffered])  # fmt: skip
    controllers("solo", "--prometheus-url", prometheus.url)
    assert cluster.replicas(namespace, "llm") == (0, 0)

    answer: dict[str, Any] = {}

    def ask() -> None:
        body = json.dumps({"model": "simulated-llm", "prompt": "hello", "max_tokens": 4}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{gw_port}/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        t0 = time.monotonic()
        with urllib.request.urlopen(req, timeout=90) as r:
            answer.update(status=r.status, body=json.loads(r.read()), waited=time.monotonic() - t0)

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    env.wait_for("the request to wait in the gateway's buffer",
                 lambda: _sample(_get(f"http://127.0.0.1:{gw_port}/metrics"), "swell_gateway_requests_buffered") == 1)  # fmt: skip
    asker.join(timeout=90)
    assert answer.get("status") == 200, (answer, gw.output()[-3000:])
    assert answer["body"]["choices"][0]["text"]  # the model server answered it
    print(f"the request waited {answer['waited']:.1f} s at zero")  # the cold start here: no image, no model load
    assert cluster.replicas(namespace, "llm")[0] == 1
    (pod,) = cluster.pods(namespace, "app=llm")
    assert f"pod {pod.metadata.name} serves llm at http://127.0.0.1:{model_port}" in gw.output()

    # idle: after the cooldown the controller scales to zero, and the gateway lets the pod go
    env.wait_for("scaled back to zero", lambda: cluster.replicas(namespace, "llm")[0] == 0, timeout=60)
    env.wait_for("the gateway to let the pod go", lambda: f"pod {pod.metadata.name} left llm" in gw.output(), timeout=30)
    assert _sample(_get(f"http://127.0.0.1:{gw_port}/metrics"), "swell_gateway_ready_replicas") == 0
    assert gw.stop() == 0
    out = gw.output()
    assert "Traceback" not in out and "HTTP 403" not in out and "Forbidden" not in out, out[-3000:]
