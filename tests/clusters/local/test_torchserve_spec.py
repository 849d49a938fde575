"""The `torchserve` engine's launch spec and readiness rule (no TorchServe needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from swell import errors, recipe
from swell.clusters.local import engines, slots


def rec(**service: Any) -> recipe.Recipe:
    return recipe.parse(
        {
            "service": {"name": "digest", "engine": "torchserve", **service},
            "autoscaling": {
                "signals": [
                    {"name": "r", "kind": "rate", "metric": "ts_inference_requests_total", "target": 1}
                ]
            },
            "workers": {"min_workers": 2, "max_workers": 4},
        }
    )


def flag(argv: tuple[str, ...], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_a_replica_gets_three_distinct_loopback_ports_its_work_directory_and_the_start_workers(
    tmp_path: Path,
) -> None:
    spec = engines.spec_for(rec(), slots.Slot(index=0), port=4321, workdir=tmp_path / "digest-1")
    argv = spec.argv
    assert argv[:3] == (sys.executable, "-m", "swell.servers.torchserve")
    assert flag(argv, "--host") == "127.0.0.1" and flag(argv, "--port") == "4321"
    ports = {4321, int(flag(argv, "--management-port")), int(flag(argv, "--metrics-port"))}
    assert len(ports) == 3 and {spec.management_port, spec.metrics_port} < ports
    assert flag(argv, "--workdir") == str(tmp_path / "digest-1")
    assert flag(argv, "--workers") == "2"  # the recipe's min_workers
    assert flag(argv, "--name") == "digest" and "--mar" not in argv  # the built-in example model
    assert spec.model_name == "digest" and spec.env["CUDA_VISIBLE_DEVICES"] == ""


def test_readiness_asks_the_management_api_and_metrics_come_from_the_metrics_listener() -> None:
    spec = engines.spec_for(rec(), slots.Slot(index=0), port=4321, workdir=Path("w"))
    assert spec.readiness_url == f"http://127.0.0.1:{spec.management_port}/models/digest"
    assert spec.metrics_base_url == f"http://127.0.0.1:{spec.metrics_port}"
    assert spec.liveness_path == "/ping" and spec.base_url == "http://127.0.0.1:4321"


def test_other_engines_keep_their_readiness_path_and_metrics_port() -> None:
    r = recipe.parse(
        {
            "service": {"name": "iris", "engine": "sklearn-iris"},
            "autoscaling": {"signals": [{"name": "r", "kind": "rate", "metric": "x_total", "target": 1}]},
        }
    )
    spec = engines.spec_for(r, slots.Slot(index=0), port=4321)
    assert spec.readiness_url == "http://127.0.0.1:4321/health"
    assert spec.metrics_base_url == spec.base_url and spec.management_url is None
    assert spec.ready_body(b"anything")


def test_a_given_mar_is_passed_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m.mar").write_bytes(b"PK")
    monkeypatch.chdir(tmp_path)
    spec = engines.spec_for(rec(model="m.mar"), slots.Slot(index=0), port=1, workdir=tmp_path / "w")
    assert flag(spec.argv, "--mar") == str(tmp_path / "m.mar")


def test_a_missing_mar_is_a_recipe_error_naming_the_field_and_value(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.mar")
    with pytest.raises(errors.RecipeError, match=r"service\.model: .*\.mar.*nope\.mar"):
        engines.spec_for(rec(model=missing), slots.Slot(index=0), port=1, workdir=tmp_path / "w")


def worker(status: str) -> dict[str, Any]:
    return {"id": "9000", "status": status, "pid": 1}


@pytest.mark.parametrize(
    ("body", "ready"),
    [
        pytest.param([{"modelName": "digest", "workers": [worker("READY")]}], 1, id="one READY"),
        pytest.param(
            [{"workers": [worker("READY"), worker("UNLOADING"), worker("READY")]}],
            2,
            id="starting not counted",
        ),
        pytest.param([{"workers": [worker("UNLOADING")]}], 0, id="only starting"),
        pytest.param([{"workers": []}], 0, id="no worker"),
        pytest.param({"code": 404, "message": "Model not found: digest"}, 0, id="an error object"),
        pytest.param([{"workers": ["READY"]}], 0, id="a malformed worker"),
    ],
)
def test_ready_workers_counts_only_ready_ones(body: object, ready: int) -> None:
    raw = json.dumps(body).encode()
    assert engines.ready_workers(raw) == ready
    spec = engines.spec_for(rec(), slots.Slot(index=0), port=1, workdir=Path("w"))
    assert spec.ready_body(raw) is (ready > 0)


def test_unreadable_answers_are_not_ready() -> None:
    assert engines.ready_workers(b"<html>busy</html>") == 0
    assert engines.ready_workers(b"") == 0


def test_the_banner_names_the_torchserve_inference_path() -> None:
    text = engines.protocol_text(rec().service, "http://h:1")
    assert text.startswith("http://h:1/predictions/digest (TorchServe inference API")
