"""Named performance presets of one vLLM-like replica (model × GPU × tensor parallelism).

The 70B/176B timings are least-squares fits of Splitwise's measured profiles (see
calibration.py; a test refits them from the CSV). The 8B presets are approximations anchored
on published vLLM measurements and memory-bandwidth rooflines; docs/engines.md cites them.
GPT-2 small's presets are a roofline with vLLM's per-step overhead as its floor, cited below.
KV capacities are derived below from GPU memory, weights and bytes per cached token, so the
vLLM flags that change memory (vllm_flags.py) can derive them again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class LlmPreset:
    """Timings and limits of one replica. Times are seconds; token counts are tokens."""

    name: str
    model: str
    gpu: str
    gpus: int = 1  # tensor parallel degree: GPUs one replica occupies
    prefill_base_s: float  # a in prefill = a + b·tokens
    prefill_per_token_s: float  # b
    decode_base_s: float  # c in step = c + d·batch (+ e·context tokens)
    decode_per_seq_s: float  # d
    decode_per_context_token_s: float = 0.0  # e: KV reads; 0 where the data cannot separate it
    # f: attention of a prefill chunk, per (chunk token × token before it); 0 = linear prefill only
    prefill_per_token_pair_s: float = 0.0
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192  # per-step token budget (chunked prefill)
    max_model_len: int
    kv_cache_tokens: int
    block_size: int = 16
    gpu_memory_mib: int  # per GPU, as nvidia-smi reports it
    gpu_memory_utilization: float = 0.9  # vLLM reserves this fraction up front
    model_context: int = 0  # the model's own context (max_position_embeddings); 0: max_model_len
    weights_gb: float = 0.0  # weights of the whole model (GB, 1e9 bytes); 0: memory not modelled
    kv_bytes_per_token: int = 0  # K and V bytes of one cached token, all layers
    activation_mib: int = 2048  # per GPU, kept free for activations and CUDA graphs
    source: str = ""

    def __post_init__(self) -> None:
        problems = []
        if self.kv_cache_tokens < self.max_model_len:
            problems.append(f"kv_cache_tokens {self.kv_cache_tokens} < max_model_len {self.max_model_len}")
        for f in ("prefill_base_s", "prefill_per_token_s", "decode_base_s", "decode_per_seq_s"):
            if getattr(self, f) < 0:
                problems.append(f"{f} must be >= 0, got {getattr(self, f)}")
        if self.prefill_per_token_pair_s < 0 or self.decode_per_context_token_s < 0:
            problems.append("prefill_per_token_pair_s and decode_per_context_token_s must be >= 0")
        if self.decode_base_s + self.decode_per_seq_s <= 0:
            problems.append("a decode step must take some time")
        if min(self.max_num_seqs, self.max_num_batched_tokens, self.block_size, self.gpus) < 1:
            problems.append("max_num_seqs, max_num_batched_tokens, block_size and gpus must be >= 1")
        if problems:
            raise ValueError(f"preset {self.name!r}: " + "; ".join(problems))

    @property
    def context_limit(self) -> int:
        """The longest max_model_len the model itself allows."""
        return self.model_context or self.max_model_len

    @property
    def memory_modelled(self) -> bool:
        return self.weights_gb > 0 and self.kv_bytes_per_token > 0

    def derived_kv_tokens(self) -> int:
        """KV capacity from this preset's GPUs, memory utilisation, weights and K/V bytes per token."""
        return kv_capacity_tokens(
            gpu_mib=self.gpu_memory_mib, gpus=self.gpus, weights_gb=self.weights_gb,
            kv_bytes_per_token=self.kv_bytes_per_token, activation_mib=self.activation_mib,
            utilization=self.gpu_memory_utilization,
        )  # fmt: skip

    @property
    def kv_cache_blocks(self) -> int:
        return self.kv_cache_tokens // self.block_size

    @property
    def fb_used_mib(self) -> float:
        """Framebuffer used per GPU: vLLM preallocates weights + KV cache at start."""
        return self.gpu_memory_mib * self.gpu_memory_utilization

    def scaled(self, speedup: float) -> LlmPreset:
        """The same replica running `speedup` times faster (all timings divided)."""
        if speedup <= 0:
            raise ValueError(f"speedup must be > 0, got {speedup}")
        return dataclasses.replace(
            self,
            prefill_base_s=self.prefill_base_s / speedup,
            prefill_per_token_s=self.prefill_per_token_s / speedup,
            decode_base_s=self.decode_base_s / speedup,
            decode_per_seq_s=self.decode_per_seq_s / speedup,
            decode_per_context_token_s=self.decode_per_context_token_s / speedup,
            prefill_per_token_pair_s=self.prefill_per_token_pair_s / speedup,
        )


def kv_capacity_tokens(
    *,
    gpu_mib: int,
    gpus: int,
    weights_gb: float,
    kv_bytes_per_token: int,
    activation_mib: int = 2048,
    utilization: float = 0.9,
) -> int:
    """Tokens of KV cache left after weights and activations in `utilization` of the GPUs' memory
    (vLLM shards weights and KV heads over the tensor-parallel GPUs); 0 when nothing is left."""
    free_mib = gpus * (gpu_mib * utilization - activation_mib) - weights_gb * 1e9 / MIB
    return max(0, int(free_mib * MIB // kv_bytes_per_token))


def with_tensor_parallel(p: LlmPreset, gpus: int) -> LlmPreset:
    """The preset sharded over `gpus` GPUs: memory exactly, timings by Splitwise's measured scaling.

    Going from TP4 to TP8, Splitwise's llama2-70b profiles prefill 1.32× (H100) and 1.55× (A100)
    faster per token and decode steps within 5 % of each other: prefill terms scale with
    sqrt(GPUs), the decode step does not, and the KV read per cached token splits over the GPUs."""
    if gpus < 1:
        raise ValueError(f"tensor parallel size must be >= 1, got {gpus}")
    if gpus == p.gpus:
        return p
    r = gpus / p.gpus
    return rederived(
        p, gpus=gpus, prefill_per_token_s=p.prefill_per_token_s / r**0.5,
        prefill_per_token_pair_s=p.prefill_per_token_pair_s / r**0.5,
        decode_per_context_token_s=p.decode_per_context_token_s / r,
    )  # fmt: skip


def rederived(p: LlmPreset, **changes: Any) -> LlmPreset:
    """`p` with `changes` and its KV capacity derived again from memory; ValueError, worded as vLLM
    words it when it refuses to start, if the cache cannot hold one sequence of max_model_len."""
    if not p.memory_modelled:
        raise ValueError(f"preset {p.name!r} does not model GPU memory (no weights or K/V bytes per token)")
    gpus = changes.get("gpus", p.gpus)
    util = changes.get("gpu_memory_utilization", p.gpu_memory_utilization)
    max_len = changes.get("max_model_len", p.max_model_len)
    kv = kv_capacity_tokens(gpu_mib=p.gpu_memory_mib, gpus=gpus, weights_gb=p.weights_gb,
                            kv_bytes_per_token=p.kv_bytes_per_token, activation_mib=p.activation_mib,
                            utilization=util)  # fmt: skip
    if kv < max_len:
        raise ValueError(
            f"{p.model} on {gpus} × {p.gpu} at gpu_memory_utilization {util:g} leaves KV cache for "
            f"{kv} tokens, fewer than max_model_len {max_len}: vLLM refuses to start; lower "
            "--max-model-len, or raise --gpu-memory-utilization or --tensor-parallel-size"
        )
    return dataclasses.replace(p, kv_cache_tokens=kv, **changes)


_H100, _A100, _A100_40, _A10, _L4 = 81559, 81920, 40960, 23028, 23034  # MiB per GPU
_LLAMA2_70B_KV = 2 * 80 * 8 * 128 * 2  # K and V · layers · KV heads · head dim · fp16 bytes
_BLOOM_KV = 2 * 70 * 14336 * 2  # multi-head attention: no grouped KV
_LLAMA3_8B_KV = 2 * 32 * 8 * 128 * 2
_SPLITWISE = "fitted from Splitwise perf_model.csv ({}); KV capacity derived"


def _fitted(name: str, model: str, gpu: str, gpus: int, mib: int, weights_gb: float, kv: int,
            max_len: int, a: float, b: float, c: float, d: float) -> LlmPreset:  # fmt: skip
    return LlmPreset(
        name=name, model=model, gpu=gpu, gpus=gpus,
        prefill_base_s=a, prefill_per_token_s=b, decode_base_s=c, decode_per_seq_s=d,
        max_model_len=max_len, gpu_memory_mib=mib, weights_gb=weights_gb, kv_bytes_per_token=kv,
        kv_cache_tokens=kv_capacity_tokens(gpu_mib=mib, gpus=gpus, weights_gb=weights_gb, kv_bytes_per_token=kv),
        source=_SPLITWISE.format(f"{model} {gpu} TP{gpus}"),
    )  # fmt: skip


def _approx(name: str, gpu: str, mib: int, a: float, b: float, c: float, d: float, bandwidth_gbs: float,
            batched: int, source: str) -> LlmPreset:  # fmt: skip
    return LlmPreset(
        name=name, model="llama-3-8b", gpu=gpu,
        prefill_base_s=a, prefill_per_token_s=b, decode_base_s=c, decode_per_seq_s=d,
        # reading each cached token's K and V once per step at ~70 % of peak bandwidth
        decode_per_context_token_s=_LLAMA3_8B_KV / (0.7 * bandwidth_gbs * 1e9),
        max_model_len=8192, max_num_batched_tokens=batched, gpu_memory_mib=mib,
        weights_gb=16.06, kv_bytes_per_token=_LLAMA3_8B_KV, activation_mib=1536,
        kv_cache_tokens=kv_capacity_tokens(gpu_mib=mib, gpus=1, weights_gb=16.06, kv_bytes_per_token=_LLAMA3_8B_KV,
                                           activation_mib=1536),
        source="approximation: " + source,
    )  # fmt: skip


# Llama 3.1 (config.json of meta-llama/Llama-3.1-8B and -70B): 131072 positions; 8B: 32 layers, hidden
# 4096, 8 KV heads × 128, 8.03 B parameters (16.06 GB bf16); 70B: 80 layers, hidden 8192, 8 KV heads × 128,
# 70.55 B parameters (141.1 GB) — the layers, widths and FFN of Llama 2 70B, which Splitwise profiled.
_LLAMA31_CONTEXT = 131072
# Attention in prefill costs 4·layers·hidden FLOPs per (token, earlier token) pair against 2·params FLOPs per
# token for the rest; at the same FLOP rate as the fitted per-token prefill b that is b times this ratio.
_PAIR_8B = 4 * 32 * 4096 / (2 * 8.03e9)
_PAIR_70B = 4 * 80 * 8192 / (2 * 70.55e9)


def _llama31_8b(base: LlmPreset, name: str, gpus: int = 1) -> LlmPreset:
    """Llama 3.1 8B at its full 128k context: the same-size Llama 3 preset's timings plus prefill
    attention, sharded over `gpus` GPUs, KV capacity derived again."""
    p = dataclasses.replace(
        base, name=name, model="llama-3.1-8b", model_context=_LLAMA31_CONTEXT,
        prefill_per_token_pair_s=base.prefill_per_token_s * _PAIR_8B,
        source=f"{base.name} timings ({base.source.removeprefix('approximation: ')}) + prefill attention; "
               f"Llama-3.1-8B config, 128k context, TP{gpus}; KV capacity derived",
    )  # fmt: skip
    return rederived(with_tensor_parallel(p, gpus), max_model_len=_LLAMA31_CONTEXT)


def _llama31_70b(base: LlmPreset, name: str, bandwidth_gbs: float) -> LlmPreset:
    """Llama 3.1 70B at 128k: Splitwise's Llama 2 70B fit (same layers and widths), its weights,
    prefill attention, and the KV read per cached token split over the GPUs."""
    p = dataclasses.replace(
        base, name=name, model="llama-3.1-70b", model_context=_LLAMA31_CONTEXT, weights_gb=141.1,
        prefill_per_token_pair_s=base.prefill_per_token_s * _PAIR_70B,
        decode_per_context_token_s=_LLAMA2_70B_KV / (base.gpus * 0.7 * bandwidth_gbs * 1e9),
        source=f"Splitwise's {base.name} fit for Llama-3.1-70B (same layers and widths) + prefill attention "
               "and KV reads; 128k context; KV capacity derived",
    )  # fmt: skip
    return rederived(p, max_model_len=_LLAMA31_CONTEXT)


# GPT-2 small (config.json of openai-community/gpt2): 12 layers, 12 heads × 64 (no grouped KV), 1024 positions,
# 124.4 M parameters: 0.25 GB in fp16. Its weights are read in ~0.1–0.6 ms, so vLLM's own work per step
# (scheduling, input preparation, sampling, detokenising, streaming) sets the decode step, not the GPU.
_GPT2_KV = 2 * 12 * 12 * 64 * 2
_GPT2_PARAMS, _LLAMA3_8B_PARAMS = 124.4e6, 8.03e9
# prefill attention FLOPs per token pair (4·layers·hidden) over the rest's per token (2·parameters)
_GPT2_PAIR = 4 * 12 * 768 / (2 * _GPT2_PARAMS)
# Per-step floor: on H100, Llama 3 8B's 6.48 ms a token at concurrency 1 (llama3-8b-h100's source) is 4.8 ms of
# weight reads (16.06 GB / 3350 GB/s) plus ~1.7 ms; vLLM's v0.6.0 post (blog.vllm.ai/2024/09/05/perf-update.html)
# measured the GPU busy only 38 % of an 8B step on H100 before its CPU work was overlapped; a 0.6B model
# generated 335 tokens in 0.51 s (1.5 ms a token) in vLLM's offline API (github.com/Wenyueh/MinivLLM issue 35).
_STEP_FLOOR_S = 1.5e-3
# Per sequence and step: vLLM 0.10.2 on an A800 ran nano-vllm's 256-sequence Qwen2-0.5B benchmark (100–1024
# tokens in and out) at 17.7k output tokens/s (github.com/cosmoliu2002/nano-vllm-triton issue 1): a step of B
# sequences takes at least B / 17.7k s, so at most ~0.056 ms a sequence; 0.04 ms once its prefills are removed.
_PER_SEQ_S = 4.0e-5


def _gpt2(name: str, base: LlmPreset, mib: int, bandwidth_gbs: float, batched: int) -> LlmPreset:
    """GPT-2 small on `base`'s GPU: decode step max(weight read at 70 % of peak bandwidth, vLLM's per-step floor),
    a per-sequence cost, KV reads per cached token; prefill at `base`'s fitted FLOP rate scaled by parameters."""
    per_token = base.prefill_per_token_s * _GPT2_PARAMS / _LLAMA3_8B_PARAMS
    read_s = 2 * _GPT2_PARAMS / (0.7 * bandwidth_gbs * 1e9)
    return LlmPreset(
        name=name, model="gpt2", gpu=base.gpu,
        prefill_base_s=_STEP_FLOOR_S, prefill_per_token_s=per_token, prefill_per_token_pair_s=per_token * _GPT2_PAIR,
        decode_base_s=max(read_s, _STEP_FLOOR_S), decode_per_seq_s=_PER_SEQ_S,
        decode_per_context_token_s=_GPT2_KV / (0.7 * bandwidth_gbs * 1e9),
        max_model_len=1024, max_num_batched_tokens=batched, gpu_memory_mib=mib,
        weights_gb=2 * _GPT2_PARAMS / 1e9, kv_bytes_per_token=_GPT2_KV, activation_mib=1536,
        kv_cache_tokens=kv_capacity_tokens(gpu_mib=mib, gpus=1, weights_gb=2 * _GPT2_PARAMS / 1e9,
                                           kv_bytes_per_token=_GPT2_KV, activation_mib=1536),
        source=f"approximation: gpt2 config (124M, 12 layers, MHA 12×64, 1024 positions); decode step "
               f"max(weight read {read_s * 1e3:.2f} ms, vLLM per-step floor 1.5 ms: ~1.7 ms beyond the weight read "
               "in llama3-8b-h100's measurement, vLLM v0.6.0 perf post, 1.5 ms/token for a 0.6B model in vLLM); "
               "0.04 ms a sequence (17.7k tok/s, Qwen2-0.5B, 256 sequences, vLLM 0.10.2); "
               f"prefill at {base.name}'s rate × 124M/8.03B",
    )  # fmt: skip


# fmt: off
PRESETS: dict[str, LlmPreset] = {
    p.name: p
    for p in (
        _fitted("llama2-70b-h100-tp8", "llama2-70b", "h100-80gb", 8, _H100, 138.0, _LLAMA2_70B_KV, 4096,
                0.02037, 7.15e-05, 0.03000, 0.0002985),
        _fitted("llama2-70b-a100-tp8", "llama2-70b", "a100-80gb", 8, _A100, 138.0, _LLAMA2_70B_KV, 4096,
                0.02013, 0.0001544, 0.04450, 0.0003692),
        _fitted("llama2-70b-h100-tp4", "llama2-70b", "h100-80gb", 4, _H100, 138.0, _LLAMA2_70B_KV, 4096,
                0.01710, 9.42e-05, 0.02899, 0.0003147),
        _fitted("llama2-70b-a100-tp4", "llama2-70b", "a100-80gb", 4, _A100, 138.0, _LLAMA2_70B_KV, 4096,
                0.01330, 0.0002398, 0.04388, 0.0003810),
        _fitted("bloom-176b-h100-tp8", "bloom-176b", "h100-80gb", 8, _H100, 352.0, _BLOOM_KV, 2048,
                0.01373, 0.0001314, 0.03575, 0.0003937),
        _fitted("bloom-176b-a100-tp8", "bloom-176b", "a100-80gb", 8, _A100, 352.0, _BLOOM_KV, 2048,
                0.02452, 0.0002983, 0.04848, 0.0006624),
        _approx("llama3-8b-h100", "h100-80gb", _H100, 0.010, 4.0e-05, 0.0063, 0.00028, 3350, 8192,
                "6.5 ms/token at concurrency 1 and 10.9 ms at 16 (vLLM 0.21, H100 80GB)"),
        _approx("llama3-8b-a100", "a100-80gb", _A100, 0.015, 9.0e-05, 0.0105, 0.00040, 2039, 8192,
                "75 tok/s at concurrency 1 on A100 40GB, 6.6x throughput at 8 (vLLM 0.23), scaled by bandwidth"),
        _approx("llama3-8b-a100-40gb", "a100-40gb", _A100_40, 0.015, 9.0e-05, 0.0133, 0.000525, 1555, 8192,
                "75 tok/s (13.3 ms/token) at concurrency 1 and 6.6x throughput at 8 on A100 40GB (vLLM 0.23)"),
        _approx("llama3-8b-a10", "a10-24gb", _A10, 0.025, 2.6e-04, 0.030, 0.00060, 600, 2048,
                "fp16 weight-read roofline (16 GB / 600 GB/s) near the 27 ms/token measured for 7B on A10"),
        _approx("llama3-8b-l4", "l4-24gb", _L4, 0.030, 2.8e-04, 0.055, 0.00080, 300, 2048,
                "fp16 weight-read roofline (16 GB / 300 GB/s) plus overhead"),
        LlmPreset(
            name="tiny-cpu", model="tiny", gpu="cpu",
            prefill_base_s=0.003, prefill_per_token_s=2.0e-05, decode_base_s=0.004, decode_per_seq_s=0.0005,
            max_num_seqs=8, max_num_batched_tokens=512, max_model_len=2048, kv_cache_tokens=8192,
            gpu_memory_mib=1024, source="made up: fast and small, for tests and the simulated server",
        ),
    )
}
PRESETS |= {
    p.name: p
    for p in (
        _llama31_8b(PRESETS["llama3-8b-h100"], "llama3.1-8b-128k-h100"),
        _llama31_8b(PRESETS["llama3-8b-a100"], "llama3.1-8b-128k-a100"),
        _llama31_8b(PRESETS["llama3-8b-a100-40gb"], "llama3.1-8b-128k-a100-40gb"),
        # one A10 holds 16 GB of weights and KV for ~31k tokens: 128k takes two (vLLM refuses one)
        _llama31_8b(PRESETS["llama3-8b-a10"], "llama3.1-8b-128k-a10-tp2", gpus=2),
        _llama31_70b(PRESETS["llama2-70b-h100-tp8"], "llama3.1-70b-128k-h100-tp8", 3350),
        _gpt2("gpt2-a10", PRESETS["llama3-8b-a10"], _A10, 600, 2048),
        _gpt2("gpt2-a100", PRESETS["llama3-8b-a100"], _A100, 2039, 8192),
        _gpt2("gpt2-a100-40gb", PRESETS["llama3-8b-a100-40gb"], _A100_40, 1555, 8192),
        _gpt2("gpt2-h100", PRESETS["llama3-8b-h100"], _H100, 3350, 8192),
    )
}
# fmt: on


def get(name: str) -> LlmPreset:
    """A preset by name; ValueError naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown LLM preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None
