"""A real Prometheus (Debian's binary, own config, temp storage, loopback port) scraping a tiny
aiohttp server whose gauges the tests set."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from aiohttp import web

from tests.e2e_k8s import env

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


def missing() -> str:
    return "" if Path(BINARY).exists() else "no prometheus binary (apt-get install prometheus)"


class Gauges:
    """`/metrics` on 127.0.0.1 with `e2e_queue{test="NAME"} VALUE` for every value set."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.port = env.free_ports(1)[0]
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="gauges", daemon=True)

    def set(self, test: str, value: float) -> None:
        self.values[test] = value

    async def _metrics(self, request: web.Request) -> web.Response:
        lines = ["# TYPE e2e_queue gauge"] + [
            f'e2e_queue{{test="{k}"}} {v}' for k, v in sorted(self.values.items())
        ]
        return web.Response(text="\n".join(lines) + "\n")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


class Prometheus:
    """One server scraping `target` every second; start() returns once a first sample is in."""

    def __init__(self, workdir: Path, target: str) -> None:
        self.dir = workdir
        self.port = env.free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs:\n  - job_name: e2e\n    static_configs: [{{targets: ['{target}']}}]\n"
        )

    def start(self, timeout: float = 30.0) -> None:
        log = (self.dir / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                BINARY,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        query = f"{self.url}/api/v1/query?query=up"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(query, timeout=1) as r:
                    if b'"value"' in r.read():
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"prometheus did not answer with a sample within {timeout:g} s (see {self.dir})")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
