"""deploy/dashboard.json: vLLM's serving panels beside swell's, every vLLM query scoped to one
service by the template variables, every query valid PromQL (promtool, when installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "dashboard.json"
VLLM_PANELS = {"TTFT", "ITL", "End-to-end", "Queue", "running", "KV cache", "Tokens per second"}


def _panels() -> list[dict]:  # type: ignore[type-arg]
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def test_vllm_panels_scoped_to_one_service() -> None:
    doc = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["service"]["multi"] is False
    vllm = [p for p in _panels() if any("vllm:" in t["expr"] for t in p["targets"])]
    assert all(any(k in p["title"] for p in vllm) for k in VLLM_PANELS)
    for p in vllm:
        for t in p["targets"]:
            for part in t["expr"].split("vllm:")[1:]:
                selector = part.split("}")[0]
                assert 'service="$service"' in selector and 'namespace=~"$namespace"' in selector, t["expr"]
    assert any("swell_desired_replicas" in t["expr"] for p in _panels() for t in p["targets"])


def test_gateway_panels_read_the_gateways_series_as_the_servicemonitor_labels_them() -> None:
    """`swell render --gateway` relabels the gateway's series with the model's `service`: the
    panels select them by the same variables as vLLM's."""
    gateway = [p for p in _panels() if any("swell_gateway_" in t["expr"] for t in p["targets"])]
    assert len(gateway) == 3
    families = {f for p in gateway for t in p["targets"] for f in ("buffered", "rejected", "time_to_first_token") if f in t["expr"]}
    assert families == {"buffered", "rejected", "time_to_first_token"}
    for p in gateway:
        for t in p["targets"]:
            for part in t["expr"].split("swell_gateway_")[1:]:
                selector = part.split("}")[0]
                assert 'service="$service"' in selector and 'namespace=~"$namespace"' in selector, t["expr"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian prometheus)")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    rules = []
    for p in _panels():
        for t in p["targets"]:
            expr = (
                t["expr"]
                .replace("$__rate_interval", "1m")
                .replace("$namespace", ".*")
                .replace("$recipe", ".*")
                .replace("$service", "svc")
            )
            rules.append({"record": f"panel_{p['id']}_{t['refId']}", "expr": expr})
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
