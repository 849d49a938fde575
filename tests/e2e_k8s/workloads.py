"""What the end-to-end tests put in the cluster and read back: GPU Deployments, ScalingRecipes,
their status, and `swell controller` processes running under the deploy/ service account."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e_k8s import env, kubelet

Obj = dict[str, Any]
GROUP, VERSION, PLURAL = "swell.dev", "v1alpha1", "scalingrecipes"


@dataclass
class Cluster:
    """Typed clients on the admin kubeconfig."""

    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def namespace(self, name: str) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def deployment(
        self, ns: str, name: str, replicas: int, pool: str, gpus: int = 1, port: int = 0, pod_ip: str = ""
    ) -> None:
        """`port`: the server's container port (named http); `pod_ip`: the podIP the emulated
        kubelet reports (a server on this machine)."""
        pod = {
            "metadata": {"labels": {"app": name}, "annotations": {kubelet.POD_IP: pod_ip} if pod_ip else {}},
            "spec": {
                "nodeSelector": {kubelet.POOL: pool},
                "tolerations": [{"key": kubelet.GPU, "operator": "Exists", "effect": "NoSchedule"}],
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "server", "image": "vllm/vllm-openai:latest",
                                "resources": {"limits": {kubelet.GPU: str(gpus)}}}],
            },
        }  # fmt: skip
        if port:
            pod["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": port}]
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": pod},
        }
        self.apps.create_namespaced_deployment(ns, body)

    def service(self, ns: str, name: str) -> None:
        """A Service in front of the Deployment `name`'s pods, port 80 to their port named http."""
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}  # fmt: skip
        self.core.create_namespaced_service(ns, body)

    def recipe(
        self,
        ns: str,
        name: str,
        pool: str,
        prometheus: str,
        test: str,
        target: Obj | None = None,
        spec: Obj | None = None,
        **auto: Any,
    ) -> None:
        autoscaling: Obj = {  # an HPA recipe on one gauge unless `auto` says otherwise
            "policy": "hpa",
            "min_replicas": 1,
            "max_replicas": 4,
            "polling_interval_s": 1,
            "metrics": {"source": "prometheus", "prometheus_url": prometheus},
            "signals": [
                {
                    "name": "queue",
                    "kind": "gauge",
                    "metric": "e2e_queue",
                    "labels": {"test": test},
                    "window_s": 2,
                    "target": 2,
                    "target_type": "AverageValue",
                }
            ],
        }
        autoscaling.update(auto)
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ScalingRecipe",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "scaleTargetRef": target or {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "placement": {"nodeSelector": {kubelet.POOL: pool}},
                "resources": {"gpus": 1, "cpu": 0.1, "memory_gib": 0.1},
                "node_pool": {"gpus_per_node": 2, "max_nodes": 4},
                "autoscaling": autoscaling,
            }
            | (spec or {}),
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)

    def status(self, ns: str, name: str) -> Obj:
        obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        return dict(obj.get("status") or {})

    def status_once(
        self, ns: str, name: str, what: str, ok: Callable[[Obj], bool], timeout: float = 30
    ) -> Obj:
        """The recipe's status once `ok` holds: swell writes it after the scale patch, so read it by waiting."""

        def ready() -> Obj:
            st = self.status(ns, name)
            return st if ok(st) else {}

        return env.wait_for(what, ready, timeout=timeout)

    def condition(self, ns: str, name: str, kind: str) -> Obj:
        return next((c for c in self.status(ns, name).get("conditions", []) if c["type"] == kind), {})

    def replicas(self, ns: str, name: str) -> tuple[int, int]:
        """(spec.replicas, readyReplicas) of a Deployment."""
        d = self.apps.read_namespaced_deployment(name, ns)
        return d.spec.replicas, d.status.ready_replicas or 0

    def pods(self, ns: str, selector: str) -> list[client.V1Pod]:
        return list(self.core.list_namespaced_pod(ns, label_selector=selector).items)

    def lease_holder(self) -> str:
        try:
            lease = client.CoordinationV1Api(self.api).read_namespaced_lease(
                "swell-controller", "swell-system"
            )
        except ApiException as exc:
            if exc.status == 404:
                return ""
            raise
        return lease.spec.holder_identity or ""


@dataclass
class Controller:
    """`swell controller` as a process, as in the Deployment of deploy/ but on this machine."""

    identity: str
    kubeconfig: str
    namespace: str
    log: Path
    port: int = field(default_factory=lambda: env.free_ports(1)[0])
    proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> Controller:
        args = [
            sys.executable, "-m", "swell.cli.main", "controller",
            "--kubeconfig", self.kubeconfig, "--namespace", self.namespace, "--id", self.identity,
            "--lease-namespace", "swell-system", "--metrics-bind-address", f"127.0.0.1:{self.port}",
            "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5", "--resync", "0.5",
            *extra,
        ]  # fmt: skip
        out = self.log.open("ab")
        self.proc = subprocess.Popen(args, stdout=out, stderr=out, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        out.close()
        return self

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    def sample(self, name: str, **labels: str) -> float | None:
        """One sample of the controller's own /metrics, or None."""
        for line in self.metrics().splitlines():
            m = re.match(r"([a-zA-Z_:]+)(\{.*\})? (\S+)$", line)
            if (
                m
                and m.group(1) == name
                and all(f'{k}="{v}"' in (m.group(2) or "") for k, v in labels.items())
            ):
                return float(m.group(3))
        return None

    def kill(self) -> None:
        """Gone without a word (a crashed node): no lease release."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
