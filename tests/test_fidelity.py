"""Fidelity: the simulator against real simulated-llm replicas on the same recipe and arrivals.

The slow test runs `bench/fidelity.py --short` (40 s of black-friday load through the local
cluster, then the same arrivals through the simulator) and checks ratios with generous bounds:
a simulator whose latencies are off by 2x or whose replica peak is off by more than one fails.
The measured errors (a few percent) are in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from swell import errors, recipe
from swell.clusters.sim import replicas
from swell.engines import presets

ROOT = Path(__file__).parent.parent


def _recipe(*args: str) -> recipe.Recipe:
    return recipe.parse(
        {"service": {"name": "s", "engine": "simulated-llm", "preset": "tiny-cpu", "args": args}}
    )


def test_simulator_runs_the_engine_the_server_flags_ask_for() -> None:
    base = presets.get("tiny-cpu")
    kind, p = replicas.engine_factory(_recipe("--time-scale", "0.1", "--max-num-seqs=4"))
    assert kind == "llm" and isinstance(p, presets.LlmPreset)
    assert p.decode_base_s == pytest.approx(base.decode_base_s / 0.1)
    assert p.prefill_per_token_s == pytest.approx(base.prefill_per_token_s / 0.1)
    assert p.max_num_seqs == 4
    assert replicas.engine_factory(_recipe())[1] == base


def test_a_bad_time_scale_is_a_recipe_error() -> None:
    with pytest.raises(errors.RecipeError, match=r"service\.args"):
        replicas.engine_factory(_recipe("--time-scale", "fast"))


def _ratio(m: dict[str, Any]) -> float:
    return float(m["sim_s"]) / float(m["real_s"])


@pytest.mark.slow
def test_simulator_tracks_the_local_cluster() -> None:
    res = subprocess.run(
        [sys.executable, "bench/fidelity.py", "--short"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    real, sim = out["real"], out["sim"]
    assert real["failed"] == 0 and sim["failed"] == 0
    assert real["sent"] == sim["sent"] == out["requests"] > 50

    m = out["metrics"]
    for key in ("ttft_p50", "e2e_p50", "e2e_p95"):
        assert 0.5 <= _ratio(m[key]) <= 2.0, (key, m[key])
    # TTFT p95 sits where the surge's queued requests begin: a couple of requests move it a lot,
    # so it passes within 2x or inside the real run's own 95 % interval for that percentile
    ttft95 = m["ttft_p95"]
    # (the machine's load average rides along: a busy shared machine slows the real arm only)
    assert 0.5 <= _ratio(ttft95) <= 2.0 or ttft95["sim_within_ci"], (ttft95, out["machine"])
    # the same requests, one by one: the real path adds HTTP and the gateway, never seconds
    assert abs(out["per_request"]["e2e"]["median_diff_s"]) < 0.25 * m["e2e_p50"]["real_s"]

    ready = out["timelines"]["ready"]
    assert ready["peak"]["real"] >= 2 and ready["peak"]["sim"] >= 2  # the surge scaled both up
    assert abs(ready["peak"]["real"] - ready["peak"]["sim"]) <= 1
    assert ready["mean_abs_diff"] <= 0.5
    assert out["timelines"]["desired"]["mean_abs_diff"] <= 0.5
