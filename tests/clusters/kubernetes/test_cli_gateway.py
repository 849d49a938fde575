"""`swell gateway` refuses bad input with one message and exit code 1, never a traceback, before
it listens or calls the API server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.clusters.kubernetes.test_cli_controller import kubeconfig  # noqa: F401 (a fixture: an API server nobody answers)


def swell(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "swell.cli.main", "gateway", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["Bad_Name"], "SERVICE: a Kubernetes Service name (a DNS-1035 label", id="service-name"),
        pytest.param(["1model"], "starting with a letter) (got '1model')", id="service-name-starting-with-a-digit"),
        pytest.param(["llm", "-n", "Not/A/NS"], "--namespace: a Kubernetes namespace", id="namespace"),
        pytest.param(["llm", "--protocol", "grpc"], "--protocol: one of openai, kserve-v1, http (got 'grpc')", id="protocol"),
        pytest.param(["llm", "--deadline", "0"], "--deadline: must be a number > 0 (got 0.0)", id="deadline"),
        pytest.param(["llm", "--buffer-timeout", "-1"], "--buffer-timeout: must be a number > 0 (got -1.0)", id="buffer-timeout"),
        pytest.param(["llm", "--host", "a host"], "--host: an IP address or a host name", id="host"),
        pytest.param(["llm", "--log-level", "loud"], "--log-level: one of debug, info", id="log-level"),
        pytest.param(["llm", "--kubeconfig", "/no/such/kubeconfig"], "no kubeconfig at /no/such/kubeconfig", id="kubeconfig"),
        pytest.param(["llm", "--kubeconfig", "/"], "kubeconfig /: a directory, not a kubeconfig file", id="kubeconfig-a-directory"),
    ],
)
def test_bad_input_is_named_and_exit_1(args: list[str], message: str) -> None:
    res = swell(*args, "--port", "0")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert message in res.stderr, res.stderr


def test_an_api_server_that_does_not_answer_is_named(kubeconfig: str) -> None:  # noqa: F811
    res = swell("llm", "--kubeconfig", kubeconfig, "--host", "127.0.0.1", "--port", "0")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "GET /api/v1/namespaces/default/services/llm: no answer from the API server" in res.stderr
    assert "listening" not in res.stdout  # it fails before it takes a request it could not route
