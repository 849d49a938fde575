"""vLLM's engine flags from `service.args` change the simulated replica as they change vLLM."""

from __future__ import annotations

import pytest

from swell import errors, recipe
from swell.clusters.sim import replicas
from swell.engines import llm, presets, vllm_flags

A10 = presets.get("llama3-8b-a10")
LONG_H100 = presets.get("llama3.1-8b-128k-h100")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--max-model-len", "4096"], {"--max-model-len": "4096"}),
        (["--max-model-len=4096"], {"--max-model-len": "4096"}),
        (["--max_model_len", "4096"], {"--max-model-len": "4096"}),
        (["-tp", "2", "--model", "m"], {"--tensor-parallel-size": "2"}),
        (["--gpu-memory-utilization=0.8", "--max-num-seqs", "8"],
         {"--gpu-memory-utilization": "0.8", "--max-num-seqs": "8"}),
        (["--port", "8000", "--max-num-batched-tokens"], {"--max-num-batched-tokens": ""}),
    ],
    ids=["space", "equals", "underscores", "-tp alias", "two flags", "missing value"],
)  # fmt: skip
def test_flags_are_found_in_both_spellings(args: list[str], expected: dict[str, str]) -> None:
    assert vllm_flags.find(args) == expected


def test_max_model_len_takes_vllm_suffixes_and_keeps_the_memory() -> None:
    p = vllm_flags.apply(LONG_H100, {"--max-model-len": "32k"})
    assert p.max_model_len == 32000 and p.kv_cache_tokens == LONG_H100.kv_cache_tokens
    assert vllm_flags.apply(LONG_H100, {"--max-model-len": "128K"}).max_model_len == 131072


def test_memory_share_derives_the_kv_capacity_again() -> None:
    less = vllm_flags.apply(A10, {"--gpu-memory-utilization": "0.8"})
    weights_mib = A10.weights_gb * 1e9 / presets.MIB
    free_mib = A10.gpu_memory_mib * 0.8 - A10.activation_mib - weights_mib
    assert less.kv_cache_tokens == int(free_mib * presets.MIB // A10.kv_bytes_per_token)
    assert less.kv_cache_tokens < A10.kv_cache_tokens and less.fb_used_mib < A10.fb_used_mib


def test_tensor_parallel_shards_memory_and_speeds_prefill_as_splitwise_measured() -> None:
    tp2 = vllm_flags.apply(A10, {"--tensor-parallel-size": "2"})
    assert tp2.gpus == 2
    # two GPUs hold the weights once and KV for the rest: more than twice one GPU's cache
    assert tp2.kv_cache_tokens > 2 * A10.kv_cache_tokens
    assert tp2.prefill_per_token_s == pytest.approx(A10.prefill_per_token_s / 2**0.5)
    assert tp2.decode_base_s == A10.decode_base_s


@pytest.mark.parametrize(
    ("preset", "flags", "message"),
    [
        (A10, {"--max-model-len": "131072"}, "own context"),
        (presets.get("llama3.1-8b-128k-a10-tp2"), {"--tensor-parallel-size": "1"}, "vLLM refuses to start"),
        (LONG_H100, {"--gpu-memory-utilization": "1.5"}, r"fraction in \(0, 1\]"),
        (LONG_H100, {"--max-num-seqs": "0"}, "whole number >= 1"),
        (LONG_H100, {"--max-num-batched-tokens": "16"}, "smaller than --max-num-seqs"),
        (LONG_H100, {"--max-model-len": "long"}, "whole number of tokens"),
        (presets.get("tiny-cpu"), {"--tensor-parallel-size": "2"}, "does not model GPU memory"),
    ],
    ids=["beyond the model's context", "128k on one A10", "memory share > 1", "no sequences",
         "budget below the batch", "not a number", "made-up preset resharded"],
)  # fmt: skip
def test_settings_vllm_refuses_are_refused(
    preset: presets.LlmPreset, flags: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        vllm_flags.apply(preset, flags)


def _rec(engine: str, *args: str, preset: str = "llama3.1-8b-128k-h100") -> recipe.Recipe:
    return recipe.parse({"service": {"name": "s", "engine": engine, "preset": preset, "args": list(args)}})


def test_the_simulator_honours_vllm_flags_in_service_args() -> None:
    kind, p = replicas.engine_factory(
        _rec("vllm", "--model", "meta-llama/Llama-3.1-8B", "--max-model-len=65536", "--max-num-seqs", "64",
             "--max-num-batched-tokens", "4096", "--gpu-memory-utilization", "0.85")
    )  # fmt: skip
    assert kind == "llm" and isinstance(p, presets.LlmPreset)
    assert (p.max_model_len, p.max_num_seqs, p.max_num_batched_tokens) == (65536, 64, 4096)
    assert p.gpu_memory_utilization == 0.85 and p.kv_cache_tokens < LONG_H100.kv_cache_tokens
    _, same = replicas.engine_factory(_rec("simulated-llm", "--max-model-len", "65536"))
    assert isinstance(same, presets.LlmPreset) and same.max_model_len == 65536


def test_a_flag_vllm_refuses_is_a_recipe_error_naming_service_args() -> None:
    with pytest.raises(errors.RecipeError, match=r"service\.args.*own context"):
        replicas.engine_factory(_rec("vllm", "--max-model-len", "200000"))


def test_long_context_presets_hold_128k_and_cite_their_sources() -> None:
    for name in ("llama3.1-8b-128k-h100", "llama3.1-8b-128k-a100", "llama3.1-8b-128k-a10-tp2",
                 "llama3.1-70b-128k-h100-tp8"):  # fmt: skip
        p = presets.get(name)
        assert p.max_model_len == 131072 <= p.kv_cache_tokens, name
        assert p.kv_cache_tokens == p.derived_kv_tokens(), name  # derived from memory, not written down
        assert p.prefill_per_token_pair_s > 0 and ("config" in p.source or "Splitwise" in p.source), name
    assert presets.get("llama3.1-70b-128k-h100-tp8").gpus == 8
    assert presets.get("llama3.1-8b-128k-a10-tp2").gpus == 2


def test_prefill_attention_makes_a_long_prompt_cost_more_than_its_tokens() -> None:
    def ttft(p: presets.LlmPreset, tokens: int) -> float:
        r = llm.Replica(p)
        r.submit(0.0, llm.Request(id="x", input_tokens=tokens, output_tokens=1))
        while (t := r.next_event_time()) is not None:
            for e in r.advance(t):
                if isinstance(e, llm.FirstToken):
                    return e.ttft
        raise AssertionError("no first token")

    short, long = ttft(LONG_H100, 1000), ttft(LONG_H100, 100_000)
    linear = LONG_H100.prefill_per_token_s * 99_000
    pairs = 100_000 * 100_001 / 2 - 1000 * 1001 / 2  # each token attends to those before it
    assert long - short == pytest.approx(linear + LONG_H100.prefill_per_token_pair_s * pairs, rel=0.02)
