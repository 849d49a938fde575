"""`swell controller` refuses bad input with one line and exit code 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [
        {"name": "c", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}
    ],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "x",
}


def swell(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "swell.cli.main", "controller", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kubeconfig", "/nonexistent/kubeconfig"], "no kubeconfig at /nonexistent/kubeconfig"),
        (["--metrics-bind-address", "nope"], "expected HOST:PORT"),
        (
            ["--lease-duration", "1", "--renew-deadline", "2"],
            "retry period < renew deadline < lease duration",
        ),
        (["--metrics-bind-address", "127.0.0.1:99999"], "with a port 0-65535"),
        (["--retry-period", "0", "--resync", "-1"], "--resync: must be a number > 0 (got -1.0)"),
        (["--log-level", "loud"], "--log-level: one of debug, info, warning, warn, error, critical (got 'loud')"),
        (["-n", "default,Bad_NS!"], "--namespace: a Kubernetes namespace"),
        (["--prometheus-url", "prometheus:9090"], "--prometheus-url: an http:// or https:// URL with a host"),
        (["--allow-prometheus-url", "ftp://x"], "--allow-prometheus-url: an http:// or https:// URL"),
        (["--prometheus-bearer-token-file", "/no/such/token"],
         "--prometheus-bearer-token-file: must be a file this process can read (got '/no/such/token')"),
        (["--prometheus-header", "bad"], "--prometheus-header: NAME=VALUE (got 'bad')"),
    ],
    ids=["missing kubeconfig", "bad bind address", "lease durations that do not nest", "bind port out of range",
         "non-positive periods", "unknown log level", "invalid namespace", "URL without a scheme",
         "URL that is not HTTP", "an unreadable Prometheus token file", "a header that is not NAME=VALUE"],
)
def test_bad_input_is_one_line_and_exit_1(kubeconfig: str, args: list[str], message: str) -> None:
    res = swell("--kubeconfig", kubeconfig, *args)
    assert res.returncode == 1
    assert message in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "not a kubeconfig (expected a mapping with clusters, contexts and users, got an empty file)"),
     ("clusters: [1,\n", "not YAML"),
     ("- 1\n", "not a kubeconfig (expected a mapping with clusters, contexts and users, got list)")],
    ids=["empty", "not YAML", "a list"],
)  # fmt: skip
def test_a_kubeconfig_that_is_no_kubeconfig_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    res = swell("--kubeconfig", str(path))
    assert res.returncode == 1 and "Traceback" not in res.stderr and "unexpected error" not in res.stderr
    assert f"kubeconfig {path}: {message}" in res.stderr, res.stderr
