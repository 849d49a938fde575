"""The TorchServe replica launcher's generated files and the built-in handler (no TorchServe
needed: the real server runs in tests/clusters/local/test_torchserve.py)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from swell.servers import torchserve, torchserve_handler


def args(tmp_path: Path, **over: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "host": "127.0.0.1", "port": 18080, "management_port": 18081, "metrics_port": 18082,
        "name": "digest", "mar": None, "workers": 2, "workdir": str(tmp_path / "w"),
        "grpc_inference_port": 18083, "grpc_management_port": 18084,
    }  # fmt: skip
    return argparse.Namespace(**{**base, **over})


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_config_binds_every_listener_to_loopback_with_prometheus_metrics(tmp_path: Path) -> None:
    cfg = properties(torchserve.config_text(args(tmp_path), tmp_path / "store", "digest.mar"))
    assert cfg["inference_address"] == "http://127.0.0.1:18080"
    assert cfg["management_address"] == "http://127.0.0.1:18081"
    assert cfg["metrics_address"] == "http://127.0.0.1:18082"
    # gRPC (unused by swell) would bind 0.0.0.0:7070/7071 and collide with a second replica
    assert (cfg["grpc_inference_address"], cfg["grpc_inference_port"]) == ("127.0.0.1", "18083")
    assert (cfg["grpc_management_address"], cfg["grpc_management_port"]) == ("127.0.0.1", "18084")
    assert cfg["metrics_mode"] == "prometheus"  # else /metrics is empty
    assert cfg["metric_time_interval"] == "10"  # each worker's memoryUsage: measured every 10 s, not 60
    assert cfg["disable_token_authorization"] == "true"  # see the function's docstring
    assert cfg["load_models"] == "digest=digest.mar" and cfg["model_store"] == str(tmp_path / "store")
    assert cfg["default_workers_per_model"] == "2"


def test_prepare_links_a_given_mar_and_gives_the_replica_a_private_tmpdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mar = tmp_path / "m.mar"
    mar.write_bytes(b"PK")
    monkeypatch.setattr(shutil, "which", lambda name: f"/bin/{name}")
    argv, env, work = torchserve.prepare(args(tmp_path, mar=str(mar), grpc_inference_port=0))
    assert work == (tmp_path / "w").resolve()
    assert (work / "model-store" / "m.mar").resolve() == mar.resolve()
    assert argv[:3] == ["/bin/torchserve", "--start", "--foreground"]
    assert "--disable-token-auth" in argv and str(work / "config.properties") in argv
    assert env["TMPDIR"] == env["TEMP"] == str(work / "tmp") and (work / "tmp").is_dir()
    cfg = properties((work / "config.properties").read_text())
    assert cfg["load_models"] == "digest=m.mar"
    assert int(cfg["grpc_inference_port"]) > 0 and cfg["grpc_management_port"] == "18084"  # 0: a free port


def test_prepare_refuses_a_missing_mar_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"service\.model: .*nope\.mar is not a file"):
        torchserve.prepare(args(tmp_path, mar=str(tmp_path / "nope.mar")))


class Context:  # TorchServe's context, as far as the handler uses it (not at all)
    pass


def test_the_handler_answers_each_request_of_a_batch_deterministically() -> None:
    batch = [{"body": b"hello"}, {"data": "hello"}, {"body": {"x": 1}}, {"body": bytearray(b"hello")}]
    out = torchserve_handler.handle(batch, Context())
    assert out is not None and len(out) == 4
    assert out[0] == out[1] == out[3]  # the same text, however TorchServe hands it over
    assert out[0]["digest"] == torchserve_handler.digest(b"hello")[:16] and out[0]["label"] in ("even", "odd")
    assert out[2]["digest"] != out[0]["digest"]


def test_the_handler_work_grows_with_its_rounds() -> None:
    assert torchserve_handler.digest(b"a", rounds=1) != torchserve_handler.digest(b"a", rounds=2)
    assert torchserve_handler.handle(None, Context()) is None  # TorchServe's warm-up call
