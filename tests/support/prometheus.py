"""Start a real Prometheus server (Debian's binary) on loopback for a test, and stop it.

Targets come from a file_sd file the test can rewrite while Prometheus runs (as the local cluster
does when replicas come and go). Skips the test with the reason when the binary is absent.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """`web`: Prometheus's web config (basic_auth_users, tls_server_config), which then guards
    every endpoint; with TLS the URL is https://localhost (a certificate names a host, not an IP);
    `ready_auth`: the Authorization header the readiness check sends."""

    def __init__(self, workdir: Path, scrape_interval_s: float = 1.0, web: dict | None = None,
                 ready_auth: str = "") -> None:  # fmt: skip
        self.dir = workdir
        self.port = free_port()
        self.web, self.ready_auth = web, ready_auth
        tls = bool(web and web.get("tls_server_config"))
        self.url = f"https://localhost:{self.port}" if tls else f"http://127.0.0.1:{self.port}"
        self.sd_file = workdir / "targets.json"
        self.scrape_interval_s = scrape_interval_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def set_targets(self, targets: dict[str, str], labels: dict[str, dict[str, str]] | None = None) -> None:
        """{replica name: host:port} -> file_sd with a `replica` label per target, and the
        `labels` given for it (e.g. the namespace and service a ServiceMonitor would attach)."""
        more = labels or {}
        groups = [{"targets": [addr], "labels": {"replica": name, **more.get(name, {})}} for name, addr in targets.items()]
        tmp = self.sd_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.sd_file)

    def start(self) -> None:
        if not self.sd_file.exists():
            self.set_targets({})
        cfg = self.dir / "prometheus.yml"
        cfg.write_text(
            "global:\n"
            f"  scrape_interval: {int(self.scrape_interval_s * 1000)}ms\n"
            f"  evaluation_interval: {int(self.scrape_interval_s * 1000)}ms\n"
            "scrape_configs:\n"
            "  - job_name: swell\n"
            "    file_sd_configs:\n"
            f"      - files: ['{self.sd_file}']\n"
            "        refresh_interval: 1s\n"
        )
        self._log = (self.dir / "prometheus.log").open("wb")
        argv = ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]  # fmt: skip
        if self.web:
            (self.dir / "web.yml").write_text(json.dumps(self.web))  # JSON is YAML
            argv.append(f"--web.config.file={self.dir / 'web.yml'}")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self._log)
        unverified = ssl.create_default_context()
        unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
        ask = urllib.request.Request(f"{self.url}/-/ready", headers={"Authorization": self.ready_auth} if self.ready_auth else {})
        deadline = time.time() + 30
        while time.time() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(ask, timeout=1, context=unverified).read()
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.dir / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready in 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()


@contextlib.contextmanager
def running(workdir: Path, scrape_interval_s: float = 1.0, web: dict | None = None, ready_auth: str = ""
            ) -> Iterator[Prometheus]:  # fmt: skip
    if shutil.which("prometheus") is None:
        pytest.skip("Debian's prometheus is not installed (scripts/install-test-deps.sh installs it)")
    prom = Prometheus(workdir, scrape_interval_s, web, ready_auth)
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()
