"""Start a swell server module as a real subprocess on 127.0.0.1 and always clean it up."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from swell.servers import common


@dataclass
class Proc:
    url: str
    popen: subprocess.Popen[str]
    stderr_path: str

    def stderr(self) -> str:
        with open(self.stderr_path) as fh:
            return fh.read()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post(self, path: str, body: Any, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def terminate(self, timeout: float = 20.0) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)


@contextmanager
def server(module: str, *args: str, ready_timeout: float = 30.0) -> Iterator[Proc]:
    """Run `python -m module --port 0 ...`, wait for its ready line and /health, kill it after."""
    fd, err_path = tempfile.mkstemp(prefix="swell-server-", suffix=".log")
    os.close(fd)
    with open(err_path, "w") as err:
        popen = subprocess.Popen(
            [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        url = _wait_ready(popen, err_path, ready_timeout)
        yield Proc(url=url, popen=popen, stderr_path=err_path)
    finally:
        if popen.poll() is None:
            popen.kill()
        popen.wait(10)
        assert popen.stdout is not None
        popen.stdout.close()
        os.unlink(err_path)


def _wait_ready(popen: subprocess.Popen[str], err_path: str, timeout: float) -> str:
    assert popen.stdout is not None
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(popen.stdout, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                break
            if sel.select(timeout=0.1):
                line = popen.stdout.readline()
                if line.startswith(common.READY_LINE):
                    url = line.split()[-1]
                    with urllib.request.urlopen(url + "/health", timeout=5) as r:
                        assert r.status == 200
                    return url
    finally:
        sel.close()
    with open(err_path) as fh:
        raise AssertionError(f"server did not become ready (rc={popen.poll()}):\n{fh.read()[-3000:]}")
