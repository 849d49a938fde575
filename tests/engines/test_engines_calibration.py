"""The fitted presets are what a fresh fit of the real Splitwise CSV gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from swell.engines import calibration, llm, presets

CSV = (
    Path(__file__).resolve().parents[3] / "shared" / "traces" / "calibration" / "splitwise_perf_model.csv.gz"
)


@pytest.fixture(scope="module")
def rows() -> list[calibration.ProfileRow]:
    if not CSV.exists():
        pytest.skip(
            f"calibration data not found at {CSV}: "
            "put the shared traces beside the repo (docs/engines.md)"
        )
    return calibration.load_splitwise(CSV)


def test_table_has_the_documented_profiles(rows: list[calibration.ProfileRow]) -> None:
    assert len(rows) == 1260
    assert ("llama2-70b", "h100-80gb", 8) in calibration.profiles(rows)


@pytest.mark.parametrize("name", [n for n, p in presets.PRESETS.items() if p.source.startswith("fitted")])
def test_fitted_preset_matches_a_fresh_fit(rows: list[calibration.ProfileRow], name: str) -> None:
    p = presets.PRESETS[name]
    fit = calibration.fit_profile(rows, model=p.model, hardware=p.gpu, tensor_parallel=p.gpus)
    assert p.prefill_base_s == pytest.approx(fit.prefill_base_s, rel=0.01)
    assert p.prefill_per_token_s == pytest.approx(fit.prefill_per_token_s, rel=0.01)
    assert p.decode_base_s == pytest.approx(fit.decode_base_s, rel=0.01)
    assert p.decode_per_seq_s == pytest.approx(fit.decode_per_seq_s, rel=0.01)
    assert fit.decode_max_rel_error < 0.15 and fit.prefill_max_rel_error < 0.6


def test_model_reproduces_measured_decode_at_batch_1_and_64(rows: list[calibration.ProfileRow]) -> None:
    p = presets.get("llama2-70b-h100-tp8")
    measured = {
        b: [r.token_time_s for r in rows if (r.model, r.hardware, r.tensor_parallel, r.batch_size)
            == ("llama2-70b", "h100-80gb", 8, b)]
        for b in (1, 64)
    }  # fmt: skip
    for b, times in measured.items():
        modelled = p.decode_base_s + p.decode_per_seq_s * b
        assert modelled == pytest.approx(sum(times) / len(times), rel=0.1)


def test_fit_of_unknown_profile_is_an_error(rows: list[calibration.ProfileRow]) -> None:
    with pytest.raises(ValueError, match="no rows"):
        calibration.fit_profile(rows, model="gpt-5", hardware="h100-80gb", tensor_parallel=8)


def test_every_preset_builds_a_replica_that_serves() -> None:
    for p in presets.PRESETS.values():
        r = llm.Replica(p)
        r.submit(0.0, llm.Request(id="x", input_tokens=500, output_tokens=50))
        while (t := r.next_event_time()) is not None:
            r.advance(t)
        assert r.stats.request_success["length"] == 1, p.name
    with pytest.raises(ValueError, match="known"):
        presets.get("nope")
    assert presets.get("tiny-cpu").scaled(2.0).decode_base_s == presets.get("tiny-cpu").decode_base_s / 2
