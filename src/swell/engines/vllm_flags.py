"""The vLLM engine flags a recipe's `service.args` carries, applied to a performance preset.

`--max-model-len`, `--max-num-seqs`, `--max-num-batched-tokens`, `--gpu-memory-utilization` and
`--tensor-parallel-size` (`-tp`) change what one simulated replica holds and how fast it runs, as
they change a real vLLM server. Both `--flag value` and `--flag=value` are read, underscores as
dashes (vLLM's parser accepts both), and `128k` / `128K` as 128000 / 131072 like vLLM 0.10+.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from swell.engines import presets

MODEL_LEN = "--max-model-len"
NUM_SEQS = "--max-num-seqs"
BATCHED = "--max-num-batched-tokens"
MEMORY = "--gpu-memory-utilization"
TENSOR_PARALLEL = "--tensor-parallel-size"
FLAGS = (MODEL_LEN, NUM_SEQS, BATCHED, MEMORY, TENSOR_PARALLEL)
_ALIASES = {"-tp": TENSOR_PARALLEL}
_SUFFIX = {"": 1, "k": 1000, "K": 1024, "m": 1000**2, "M": 1024**2}


def find(args: Sequence[str], names: Sequence[str] = FLAGS) -> dict[str, str]:
    """The values of `names` in an argv (`--flag value` or `--flag=value`; the last one wins)."""
    out: dict[str, str] = {}
    args = list(args)
    for i, arg in enumerate(args):
        key, eq, value = arg.partition("=")
        if key.startswith("--"):
            key = "--" + key[2:].replace("_", "-")
        key = _ALIASES.get(key, key)
        if key in names:
            out[key] = value if eq else (args[i + 1] if i + 1 < len(args) else "")
    return out


def _tokens(flag: str, text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not m:
        raise ValueError(f"{flag} {text!r}: expected a whole number of tokens such as 32768 or 128k")
    value = float(m.group(1)) * _SUFFIX[m.group(2)]
    if value != int(value) or value < 1:
        raise ValueError(f"{flag} {text!r}: expected a whole number of tokens >= 1")
    return int(value)


def _whole(flag: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected a whole number >= 1") from None
    if value < 1:
        raise ValueError(f"{flag} {text!r}: expected a whole number >= 1")
    return value


def apply(preset: presets.LlmPreset, flags: dict[str, str]) -> presets.LlmPreset:
    """The preset as vLLM started with `flags` would run it; ValueError naming the flag otherwise.

    The tensor-parallel size reshards the model (presets.with_tensor_parallel), the memory share
    and the context length derive the KV capacity again, and a context longer than the model's own
    or than the KV cache can hold is refused as vLLM refuses to start."""
    p = preset
    if TENSOR_PARALLEL in flags:
        p = presets.with_tensor_parallel(p, _whole(TENSOR_PARALLEL, flags[TENSOR_PARALLEL]))
    changes: dict[str, float] = {}
    if MEMORY in flags:
        try:
            util = float(flags[MEMORY])
        except ValueError:
            util = -1.0
        if not 0 < util <= 1:
            raise ValueError(f"{MEMORY} {flags[MEMORY]!r}: expected a fraction in (0, 1]")
        changes["gpu_memory_utilization"] = util
    if MODEL_LEN in flags:
        length = _tokens(MODEL_LEN, flags[MODEL_LEN])
        if length > p.context_limit:
            raise ValueError(
                f"{MODEL_LEN} {length} is longer than {p.model}'s own context ({p.context_limit} tokens); "
                "vLLM refuses it: choose a long-context preset (docs/engines.md) or a shorter length"
            )
        if not p.memory_modelled and length > p.kv_cache_tokens:  # a made-up preset: KV as written
            raise ValueError(f"{MODEL_LEN} {length} exceeds {p.name}'s KV cache ({p.kv_cache_tokens} tokens)")
        changes["max_model_len"] = length
    if changes and p.memory_modelled:
        p = presets.rederived(p, **changes)
    elif changes:
        p = dataclasses.replace(p, **changes)  # type: ignore[arg-type]
    if NUM_SEQS in flags:
        p = dataclasses.replace(p, max_num_seqs=_whole(NUM_SEQS, flags[NUM_SEQS]))
    if BATCHED in flags:
        p = dataclasses.replace(p, max_num_batched_tokens=_tokens(BATCHED, flags[BATCHED]))
    if p.max_num_batched_tokens < p.max_num_seqs:
        raise ValueError(
            f"{BATCHED} {p.max_num_batched_tokens} is smaller than {NUM_SEQS} {p.max_num_seqs}; vLLM refuses it"
        )
    return p
