"""A kubelet emulator for the control plane without kubelets (as KWOK does it).

Nodes are created Ready with `nvidia.com/gpu` allocatable, a node-pool label and the usual GPU
taint; pods the scheduler bound in the tests' namespaces turn Running and Ready after a delay
(a model load), with the podIP their `swell-e2e/pod-ip` annotation names (else 10.244.0.10);
pods being deleted are deleted with grace 0, which a kubelet would confirm.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException

log = logging.getLogger(__name__)
GPU = "nvidia.com/gpu"
POOL = "swell-e2e/pool"
PREFIX = "e2e-"  # namespaces the emulator runs pods in
POD_IP = "swell-e2e/pod-ip"  # a pod annotation: the podIP to report (a server on this machine)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kubelet:
    def __init__(self, kubeconfig: str, start_delay_s: float = 0.5) -> None:
        self.core = client.CoreV1Api(config.new_client_from_config(kubeconfig))
        self.delay = start_delay_s
        self._bound: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubelet-emulator", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def add_node(self, name: str, gpus: int, pool: str) -> None:
        self.core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name, labels={POOL: pool})))
        res = {"cpu": "16", "memory": "64Gi", "pods": "110", GPU: str(gpus)}
        t = now()
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": t,
                 "lastTransitionTime": t}  # fmt: skip
        self.core.patch_node_status(
            name, {"status": {"capacity": res, "allocatable": res, "conditions": [ready]}}
        )
        # replaces the not-ready taint the admission plugin put there with the GPU nodes' usual one
        self.core.patch_node(
            name, {"spec": {"taints": [{"key": GPU, "value": "present", "effect": "NoSchedule"}]}}
        )

    def delete_node(self, name: str) -> None:
        try:
            self.core.delete_node(name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _run_pod(self, pod: client.V1Pod) -> None:
        t = now()
        ip = (pod.metadata.annotations or {}).get(POD_IP, "10.244.0.10")
        self.core.patch_namespaced_pod_status(
            pod.metadata.name,
            pod.metadata.namespace,
            {
                "status": {
                    "phase": "Running",
                    "hostIP": "127.0.0.2",
                    "podIP": ip,
                    "startTime": t,
                    "conditions": [
                        {"type": c, "status": "True", "lastTransitionTime": t}
                        for c in ("Initialized", "ContainersReady", "Ready")
                    ],
                    "containerStatuses": [
                        {
                            "name": c.name,
                            "image": c.image,
                            "imageID": "",
                            "ready": True,
                            "started": True,
                            "restartCount": 0,
                            "state": {"running": {"startedAt": t}},
                        }
                        for c in pod.spec.containers
                    ],
                }
            },
        )

    def tick(self) -> None:
        for pod in self.core.list_pod_for_all_namespaces().items:
            if not pod.metadata.namespace.startswith(PREFIX):
                continue
            try:
                if pod.metadata.deletion_timestamp:
                    self.core.delete_namespaced_pod(
                        pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0
                    )
                elif pod.spec.node_name and pod.status.phase == "Pending":
                    first = self._bound.setdefault(pod.metadata.uid, time.monotonic())
                    if time.monotonic() - first >= self.delay:
                        self._run_pod(pod)
            except ApiException as exc:
                if exc.status not in (404, 409):  # gone or changed meanwhile: next round
                    self.errors.append(f"{pod.metadata.name}: {exc.status} {exc.reason}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # keep emulating; the tests see the effect, the log says why
                log.warning("kubelet emulator: %s", exc)
            self._stop.wait(0.2)
