"""GPT-2 small presets: numbers from gpt2's config and vLLM's per-step floor, and one request's latency."""

from __future__ import annotations

import pytest

from swell.engines import llm, presets

GPT2 = [n for n, p in presets.PRESETS.items() if p.model == "gpt2"]
BANDWIDTH_GBS = {"a10-24gb": 600, "a100-40gb": 1555, "a100-80gb": 2039, "h100-80gb": 3350}


def test_there_is_a_gpt2_preset_for_a10_a100_and_h100() -> None:
    assert sorted(presets.get(n).gpu for n in GPT2) == sorted(BANDWIDTH_GBS)


@pytest.mark.parametrize("name", GPT2)
def test_memory_and_decode_step_come_from_gpt2s_config_and_the_cited_floor(name: str) -> None:
    p = presets.get(name)
    assert p.kv_bytes_per_token == 2 * 12 * 12 * 64 * 2  # K and V, 12 layers, 12 heads × 64, fp16
    assert p.weights_gb == pytest.approx(0.25, abs=0.005) and p.max_model_len == 1024
    assert p.kv_cache_tokens == p.derived_kv_tokens() >= p.max_num_seqs * p.max_model_len
    weight_read = p.weights_gb * 1e9 / (0.7 * BANDWIDTH_GBS[p.gpu] * 1e9)
    assert p.decode_base_s == pytest.approx(max(weight_read, 1.5e-3))  # the floor wins on every GPU
    assert p.source.startswith("approximation:") and "vLLM" in p.source and "1.5 ms" in p.source


@pytest.mark.parametrize("name", GPT2)
@pytest.mark.parametrize(
    ("inp", "out"), [(550, 150), (550, 282), (200, 50)], ids=["bf mean", "bf p95 out", "short"]
)
def test_one_requests_latency_is_what_the_presets_numbers_say(name: str, inp: int, out: int) -> None:
    p = presets.get(name)
    r = llm.Replica(p)
    r.submit(0.0, llm.Request(id="a", input_tokens=inp, output_tokens=out))
    first, done = r.advance(60.0)
    assert isinstance(first, llm.FirstToken) and isinstance(done, llm.Finished)
    prefill = max(p.prefill_base_s, p.decode_base_s) + p.prefill_per_token_s * inp
    assert prefill <= first.ttft <= prefill + p.prefill_per_token_pair_s * inp * inp
    step = p.decode_base_s + p.decode_per_seq_s
    low = first.ttft + (out - 1) * (step + p.decode_per_context_token_s * inp)
    high = first.ttft + (out - 1) * (step + p.decode_per_context_token_s * (inp + out))
    assert low <= done.e2e <= high
    assert done.e2e < 0.5  # alone, even black-friday's p95 answer fits seed 000's 0.5 s SLO


def test_a_request_past_gpt2s_1024_positions_is_refused() -> None:
    r = llm.Replica(presets.get("gpt2-a10"))
    with pytest.raises(ValueError, match="max_model_len 1024"):
        r.submit(0.0, llm.Request(id="a", input_tokens=900, output_tokens=200))
