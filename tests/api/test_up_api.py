"""`swell up RECIPE --api`: the recipe runs as a deployment of the API; restarted, it is resumed
with its history (the state file under $XDG_DATA_HOME/swell)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from swell.clusters.local import engines
from tests.api import apihelp


def _run_until(cmd: list[str], env: dict[str, str], marker: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            return proc, lines
    proc.wait()
    raise AssertionError("".join(lines))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def _decisions(api_port: int, token: str) -> list[dict[str, object]]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/deployments/chat/decisions",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return list(json.load(r)["decisions"])


def test_up_with_api_resumes_after_restart(tmp_path: Path) -> None:
    recipe = apihelp.chat_recipe()
    path = tmp_path / "chat.yaml"
    path.write_text(yaml.safe_dump(recipe))
    api_port = engines.free_port()
    env = {k: v for k, v in os.environ.items() if k != "SWELL_API_TOKEN"} | {
        "XDG_DATA_HOME": str(tmp_path / "data")
    }
    cmd = [sys.executable, "-m", "swell.cli.main", "up", str(path), "--api", "--api-port", str(api_port)]
    proc, lines = _run_until(cmd, env, "serving on")
    token_file = tmp_path / "data" / "swell" / "api-token"
    try:
        token = token_file.read_text().strip()
        assert any(token in line for line in lines)  # printed once, at first start
        for _ in range(100):
            first = _decisions(api_port, token)
            if first:
                break
            time.sleep(0.1)
        assert first
    finally:
        _stop(proc)
    edited = recipe | {"autoscaling": recipe["autoscaling"] | {"max_replicas": recipe["autoscaling"]["max_replicas"] + 1}}
    path.write_text(yaml.safe_dump(edited))  # the file edited between the two starts: applied, and said
    proc, lines = _run_until(cmd, env, "serving on")
    try:
        was = recipe["autoscaling"]["max_replicas"]
        assert any("resumed chat with its history; the file changed" in line
                   and f"autoscaling.max_replicas: {was} -> {was + 1}" in line and "applied at once" in line
                   for line in lines), lines  # fmt: skip
        assert not any(token in line for line in lines)  # not printed again
        again = _decisions(api_port, token)
        assert again[: len(first)] == first
        req = urllib.request.Request(f"http://127.0.0.1:{api_port}/deployments/chat",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.load(r)["max_replicas"] == was + 1
    finally:
        _stop(proc)
    proc, lines = _run_until(cmd, env, "serving on")  # and stored: the next start has nothing to change
    try:
        assert any("resumed chat as stored, with its history" in line for line in lines), lines
    finally:
        _stop(proc)


def test_differences_name_each_changed_path() -> None:
    from swell import recipe

    old = {"service": {"name": "chat", "preset": "a"}, "autoscaling": {"max_replicas": 3}}
    new = {"service": {"name": "chat", "preset": "b"}, "autoscaling": {"max_replicas": 2, "min_replicas": 1}}
    assert recipe.differences(old, new) == ["autoscaling.max_replicas: 3 -> 2", "autoscaling.min_replicas: None -> 1",
                                         "service.preset: 'a' -> 'b'"]  # fmt: skip
    assert recipe.differences(old, old) == []
    sigs = {"signals": [{"name": "c", "target": 2}, {"name": "d", "target": 1}]}
    assert recipe.differences(sigs, {"signals": [{"name": "c", "target": 5}, {"name": "d", "target": 1}]}) == [
        "signals[0].target: 2 -> 5"
    ]  # item by item where the list keeps its length
    assert recipe.differences(sigs, {"signals": []}) == [f"signals: {sigs['signals']!r} -> []"]
