"""The real control plane of ../shared/k8s for the end-to-end tests: where its scripts and
binaries are, a private run dir and five free loopback ports (so other suites' control planes on
this machine do not collide), kubectl, and waiting for a condition."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

ROOT = Path(__file__).parents[2]
SCRIPTS = Path(os.environ.get("SWELL_K8S_SCRIPTS") or ROOT.parent / "shared" / "k8s")
HOME = Path(
    os.environ.get("SWELL_K8S_HOME")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "swell-k8s"
)
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
T = TypeVar("T")


def missing() -> str:
    """Why the control plane cannot run here ("" when it can)."""
    if not (SCRIPTS / "up.sh").exists():
        return f"no control-plane scripts at {SCRIPTS} (set SWELL_K8S_SCRIPTS to a copy of shared/k8s)"
    absent = [b for b in BINARIES if not (HOME / "bin" / b).exists()]
    if absent:
        return f"{', '.join(absent)} not built in {HOME}/bin: run {SCRIPTS}/install.sh and build.sh"
    if not shutil.which("etcd") and not Path("/usr/bin/etcd").exists():
        return "no etcd (apt-get install etcd-server)"
    if not shutil.which("kubectl"):
        return "no kubectl (apt-get install kubernetes-client)"
    return ""


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True, kw_only=True)
class ControlPlane:
    kubeconfig: str
    env: dict[str, str]

    def kubectl(self, *args: str, kubeconfig: str | None = None, check: bool = True) -> str:
        cmd = ["kubectl", "--kubeconfig", kubeconfig or self.kubeconfig, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if check and r.returncode:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
        return r.stdout if r.returncode == 0 else r.stderr


def token_kubeconfig(cp: ControlPlane, account: str, namespace: str, path: Path) -> str:
    """A kubeconfig at `path` that authenticates as service account `account` (a TokenRequest
    token): what its pod would be allowed, and no more."""
    token = cp.kubectl("create", "token", account, "-n", namespace, "--duration=2h").strip()
    kc = yaml.safe_load(Path(cp.kubeconfig).read_text())
    kc["users"] = [{"name": account, "user": {"token": token}}]
    for ctx in kc["contexts"]:
        ctx["context"]["user"] = account
    path.write_text(yaml.safe_dump(kc))
    return str(path)


def start(run_dir: Path, attempts: int = 2) -> ControlPlane:
    """Start etcd and the control plane on free loopback ports. The ports are free when picked and
    bound only when each binary starts, so another process may take one meanwhile (a component then
    exits during start-up): a failed start is tried again on new ports, in a directory of its own."""
    failures = []
    for n in range(attempts):
        try:
            return _start(run_dir / f"try{n}")
        except RuntimeError as e:
            failures.append(str(e))
    raise RuntimeError("\n".join(failures))


def _start(run_dir: Path) -> ControlPlane:
    run_dir.mkdir(parents=True, exist_ok=True)
    etcd, peer, api, kcm, sched = free_ports(5)
    env = dict(os.environ)
    env.update(
        SWELL_K8S_HOME=str(HOME),
        SWELL_K8S_RUN=str(run_dir),
        SWELL_K8S_ETCD_PORT=str(etcd),
        SWELL_K8S_ETCD_PEER_PORT=str(peer),
        SWELL_K8S_APISERVER_PORT=str(api),
        SWELL_K8S_KCM_PORT=str(kcm),
        SWELL_K8S_SCHEDULER_PORT=str(sched),
    )
    up = subprocess.run(
        [str(SCRIPTS / "up.sh")], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if up.returncode:
        raise RuntimeError("up.sh failed:\n" + up.stderr[-4000:])
    return ControlPlane(kubeconfig=up.stdout.strip().removeprefix("export KUBECONFIG="), env=env)


def stop(cp: ControlPlane) -> None:
    subprocess.run([str(SCRIPTS / "down.sh")], env=cp.env, capture_output=True, timeout=60, check=False)


def wait_for(what: str, fn: Callable[[], T], timeout: float = 30.0, interval: float = 0.2) -> T:
    """fn() once it is truthy; AssertionError naming `what` and the last value after `timeout`."""
    end = time.monotonic() + timeout
    last: T = fn()
    while not last:
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")
        time.sleep(interval)
        last = fn()
    return last
