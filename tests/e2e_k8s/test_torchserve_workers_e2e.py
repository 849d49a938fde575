"""TorchServe workers on the real v1.20 control plane: a `torchserve` recipe with `workers` is
rendered (with the container's in-place `resizePolicy`) and applied; the controller reads each
ready pod's workers through the pod IP and its `management` port, sets them through the
management API, and reports in the status that this API server has no pods/resize (v1.20 drops
the resizePolicy field too), so the workers stay within the pod's memory limit.

The pod's TorchServe is a process on this machine (the kubelet emulator reports podIP 127.0.0.1
and the container port is the one it listens on): either the stand-in management API
(tests/support/torchserve_management.py), or a real TorchServe started with swell's wrapper
where torch, torchserve and Java are installed (skipped, saying why, where they are not).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from swell import recipe
from swell.clusters.kubernetes import workers as k8s_workers
from swell.render import manifests, workload
from tests.e2e_k8s import env, kubelet, workloads
from tests.support import torchserve_install, torchserve_management

pytestmark = [pytest.mark.k8s, pytest.mark.slow, pytest.mark.timeout(240)]
NO_TORCHSERVE = torchserve_install.missing()


def ts_recipe() -> recipe.Recipe:
    return recipe.parse(
        {
            "service": {"name": "digest", "engine": "torchserve", "image": "pytorch/torchserve:0.12.0-cpu",
                        "model": "https://models.example/digest.mar"},
            # 1 GiB: the frontend's 512 MiB and two workers of ~220 MiB
            "resources": {"gpus": 1, "cpu": 0.1, "memory_gib": 1},
            "node_pool": {"gpus_per_node": 8, "max_nodes": 1},
            "autoscaling": {"min_replicas": 1, "max_replicas": 1, "polling_interval_s": 1, "signals": [
                {"name": "queue_time", "kind": "ratio", "numerator": "ts_queue_latency_microseconds",
                 "denominator": "ts_inference_requests_total", "window_s": 30, "target": 100000}]},
            "workers": {"min_workers": 2, "max_workers": 4, "target_queue_per_worker": 1,
                        "scale_down_stabilization_s": 0},
        }
    )  # fmt: skip


@contextlib.contextmanager
def real_torchserve(tmp: Path) -> Iterator[tuple[int, Callable[[], int]]]:
    """A real TorchServe (swell's wrapper, the built-in model) with one worker on loopback ports;
    yields its management port and a reader of its worker count. Its whole process group (the
    launcher, Java, the workers) is stopped at the end, and none of it may survive."""
    port, mgmt, metrics = env.free_ports(3)
    work = tmp / "torchserve"
    log = (tmp / "torchserve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "swell.servers.torchserve", "--host", "127.0.0.1", "--port", str(port),
         "--management-port", str(mgmt), "--metrics-port", str(metrics), "--workdir", str(work),
         "--name", "digest", "--workers", "1"],
        stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    log.close()

    def model() -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{mgmt}/models/digest", timeout=2) as r:
                return dict(json.loads(r.read())[0])
        except (OSError, ValueError):
            return {}

    def workers() -> int:
        return int(model().get("minWorkers", 0))

    try:
        env.wait_for(
            "a READY TorchServe worker",
            lambda: any(w.get("status") == "READY" for w in model().get("workers", [])),
            timeout=90,
        )
        yield mgmt, workers
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
                break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # Java and its workers, whatever the launcher did
        proc.wait(timeout=5)
        env.wait_for("no TorchServe process left", lambda: not survivors(str(work)), timeout=15)


def survivors(text: str) -> list[int]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            out.append(int(pid))
    return out


@contextlib.contextmanager
def management(kind: str, tmp: Path) -> Iterator[tuple[int, Callable[[], int]]]:
    if kind == "stand-in":
        with torchserve_management.Management("digest", workers=1) as m:
            yield m.port, lambda: m.workers
        return
    if NO_TORCHSERVE:
        pytest.skip(f"a real TorchServe needs {', '.join(NO_TORCHSERVE)} (docs/engines.md)")
    with real_torchserve(tmp) as got:
        yield got


@pytest.mark.parametrize("server", ["stand-in", "torchserve"])
def test_workers_are_set_through_the_management_api_and_the_missing_resize_is_reported(
    server: str,
    control_plane: env.ControlPlane,
    cluster: workloads.Cluster,
    namespace: str,
    nodes: Callable[[str, int, int], list[str]],
    controllers: Callable[..., workloads.Controller],
    tmp_path: Path,
) -> None:
    cp = control_plane
    raw = json.loads(cp.kubectl("get", "--raw", "/api/v1"))
    assert k8s_workers.RESIZE not in {r["name"] for r in raw["resources"]}  # v1.20: no in-place resize
    pool = f"{namespace}-pool"
    nodes(pool, 1, 8)
    opts = workload.Options(namespace=namespace, node_selector={kubelet.POOL: pool})
    bundle = manifests.render(ts_recipe(), "swell", opts)
    objs = {o["kind"]: o for o in bundle.objects}
    (container,) = objs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["resizePolicy"][1] == {"resourceName": "memory", "restartPolicy": "NotRequired"}
    with management(server, tmp_path) as (port, running):
        # the pod's TorchServe is the one on this machine: its IP and its management port
        template = objs["Deployment"]["spec"]["template"]
        template["metadata"]["annotations"] = {kubelet.POD_IP: "127.0.0.1"}
        template["spec"]["terminationGracePeriodSeconds"] = 0
        for p in container["ports"]:
            if p["name"] == k8s_workers.PORT_NAME:
                p["containerPort"] = port
        for i, obj in enumerate(bundle.objects):
            (tmp_path / f"{i}-{obj['kind']}.json").write_text(json.dumps(obj))
        # --validate=false: kubectl would refuse resizePolicy, which v1.20's schema lacks
        cp.kubectl("apply", "--validate=false", "-f", str(tmp_path), "-n", namespace)
        applied = json.loads(cp.kubectl("get", "deployment", "digest", "-n", namespace, "-o", "json"))
        (kept,) = applied["spec"]["template"]["spec"]["containers"]
        assert "resizePolicy" not in kept and kept["resources"]["limits"]["memory"] == "1Gi"  # v1.20 drops it
        controllers("solo", "--prometheus-url", "http://127.0.0.1:1")
        st = cluster.status_once(
            namespace,
            "digest",
            "two workers set and reported",
            lambda s: [p.get("workers") for p in (s.get("workers") or {}).get("pods", [])] == [2],
            timeout=90,
        )
        assert running() == 2  # as the management API itself says
        (row,) = st["workers"]["pods"]
        assert row["pod"].startswith("digest-") and row["memory"] == "1024Mi" and row["maxWorkers"] == 2
        assert st["workers"]["inPlaceResize"] is False
        c = cluster.condition(namespace, "digest", "InPlaceResize")
        assert (c["status"], c["reason"]) == ("False", "NoResizeSubresource")
        assert (
            "no pods/resize (Kubernetes < 1.33)" in c["message"] and "replicas scale instead" in c["message"]
        )
        described = cp.kubectl("describe", "scalingrecipe", "digest", "-n", namespace)
        assert "NoResizeSubresource" in described
