"""`swell decide` with per-replica values: the HPA's pod rules tried from the CLI (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from swell.cli import main

runner = CliRunner()


def decide(tmp_path: Path, *lines: dict) -> list[dict]:
    rec = {
        "service": {"name": "svc"},
        "autoscaling": {
            "min_replicas": 1,
            "max_replicas": 10,
            "signals": [{"name": "cpu", "kind": "utilization", "resource": "cpu", "target": 30,
                         "target_type": "Utilization"}],
        },
    }  # fmt: skip
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(rec))
    (tmp_path / "o.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = runner.invoke(main.app, ["decide", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 0, res.output
    return [json.loads(x) for x in res.output.splitlines() if x.strip()]


def test_per_replica_values_apply_the_not_ready_rule(tmp_path: Path) -> None:
    # the only ready pod at 133 % of its target, two starting: they count as 0 -> no change
    (d,) = decide(tmp_path, {"t": 0, "replicas": {"ready": 1, "starting": 2}, "signals": {"cpu": [40]}})
    assert d["proposals"]["cpu"] == 3
    # the same as one service-wide number: ceil(1 ready x 40 / 30) = 2
    (d,) = decide(tmp_path, {"t": 0, "replicas": {"ready": 1, "starting": 2}, "signals": {"cpu": 40}})
    assert d["proposals"]["cpu"] == 2


def test_a_null_in_the_list_is_a_missing_pod_metric(tmp_path: Path) -> None:
    (d,) = decide(tmp_path, {"t": 0, "replicas": {"ready": 4}, "signals": {"cpu": [12, 2.85, None, None]}})
    assert d["proposals"]["cpu"] == 3  # the missing two count as at target (upstream: 3, not 1)


def test_a_bad_list_is_named(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"service": {"name": "s"}, "autoscaling": {
        "signals": [{"name": "cpu", "kind": "utilization", "resource": "cpu", "target": 30}]}}))  # fmt: skip
    (tmp_path / "o.jsonl").write_text('{"t": 0, "replicas": {"ready": 1}, "signals": {"cpu": [1, "x"]}}\n')
    res = runner.invoke(main.app, ["decide", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 1 and "line 1.signals.cpu: a list of numbers or nulls" in str(res.exception)


def test_more_values_than_ready_replicas_is_named(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"service": {"name": "s"}, "autoscaling": {
        "signals": [{"name": "cpu", "kind": "utilization", "resource": "cpu", "target": 30}]}}))  # fmt: skip
    (tmp_path / "o.jsonl").write_text('{"t": 0, "replicas": {"ready": 1}, "signals": {"cpu": [1, 2, 3]}}\n')
    res = runner.invoke(main.app, ["decide", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 1
    assert "line 1.signals.cpu: one value per ready replica: at most 1 (replicas.ready), got 3" in str(res.exception)
