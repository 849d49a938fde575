"""OCI GPU node shapes: which GPU each carries, its list price, and the engine preset that models it.

Corrino payloads name a node shape (`recipe_node_shape: BM.GPU.A10.4`), not a GPU or a price;
this table turns the shape into the simulator's engine preset and a price per GPU-hour. Prices
are Oracle's pay-as-you-go list prices per GPU-hour in USD, from Oracle's public Cost Estimator
price-list API (apexapps.oracle.com/pls/apex/cetools/api/v1/products/, the data behind
oracle.com/cloud/price-list), as snapshotted on 2026-06-04 in oracle/oci-designer-toolkit
(ocd/packages/react/src/data/OciPriceListSnapshot.ts); the part number of each is noted. A price
this table cannot attribute to a part is None (unknown), never 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

A10, A100_40, A100_80, H100 = "a10-24gb", "a100-40gb", "a100-80gb", "h100-80gb"


@dataclass(frozen=True, kw_only=True)
class GpuShape:
    name: str
    gpu: str  # the GPU, spelled as the engine presets spell it
    gpus: int
    price_per_gpu_hour: float | None  # USD list price; None: not known here
    part: str = ""  # Oracle price-list part number the price comes from


_PRICED = (
    # Compute - GPU - A10, B95909: $2.00 per GPU per hour
    *(GpuShape(name=n, gpu=A10, gpus=g, price_per_gpu_hour=2.0, part="B95909")
      for n, g in (("VM.GPU.A10.1", 1), ("VM.GPU.A10.2", 2), ("BM.GPU.A10.4", 4))),
    # OCI - Compute - GPU - E4 (BM.GPU4.8, A100 40 GB), B93544: $3.05
    GpuShape(name="BM.GPU4.8", gpu=A100_40, gpus=8, price_per_gpu_hour=3.05, part="B93544"),
    # Compute - GPU - A100 - v2 (A100 80 GB), B95907: $4.00
    GpuShape(name="BM.GPU.A100-v2.8", gpu=A100_80, gpus=8, price_per_gpu_hour=4.0, part="B95907"),
    # OCI - Compute - GPU - H100, B98415: $10.00
    GpuShape(name="BM.GPU.H100.8", gpu=H100, gpus=8, price_per_gpu_hour=10.0, part="B98415"),
    # OCI - Compute - GPU - H200, B110519: $10.00
    GpuShape(name="BM.GPU.H200.8", gpu="h200-141gb", gpus=8, price_per_gpu_hour=10.0, part="B110519"),
    # Compute - GPU - L40S, B109479: $3.50
    GpuShape(name="BM.GPU.L40S.4", gpu="l40s-48gb", gpus=4, price_per_gpu_hour=3.5, part="B109479"),
    # OCI - Compute - GPU - MI300X, B109485: $6.00
    GpuShape(name="BM.GPU.MI300X.8", gpu="mi300x-192gb", gpus=8, price_per_gpu_hour=6.0, part="B109485"),
)  # fmt: skip
_UNPRICED = (  # no price-list part this table can tie to the shape with certainty
    GpuShape(name="VM.GPU2.1", gpu="p100-16gb", gpus=1, price_per_gpu_hour=None),
    GpuShape(name="BM.GPU2.2", gpu="p100-16gb", gpus=2, price_per_gpu_hour=None),
    GpuShape(name="VM.GPU3.1", gpu="v100-16gb", gpus=1, price_per_gpu_hour=None),
    GpuShape(name="VM.GPU3.2", gpu="v100-16gb", gpus=2, price_per_gpu_hour=None),
    GpuShape(name="VM.GPU3.4", gpu="v100-16gb", gpus=4, price_per_gpu_hour=None),
    GpuShape(name="BM.GPU3.8", gpu="v100-16gb", gpus=8, price_per_gpu_hour=None),
    GpuShape(name="BM.GPU.L40S-NC.4", gpu="l40s-48gb", gpus=4, price_per_gpu_hour=None),
    GpuShape(name="BM.GPU.B200.8", gpu="b200-180gb", gpus=8, price_per_gpu_hour=None),
    GpuShape(name="BM.GPU.GB200.4", gpu="gb200-186gb", gpus=4, price_per_gpu_hour=None),
    GpuShape(name="VM.GPU.A100.40G.1", gpu=A100_40, gpus=1, price_per_gpu_hour=None),
    GpuShape(name="VM.GPU.A100.80G.1", gpu=A100_80, gpus=1, price_per_gpu_hour=None),
)
SHAPES: dict[str, GpuShape] = {s.name: s for s in (*_PRICED, *_UNPRICED)}

# (GPU, model family) -> engine preset (swell.engines.presets; a test checks each name exists).
# Families: "70b" (Llama 70B), "llama3.1" (Llama 3.1/3.2/3.3 8B: 128k context), "gpt2" (GPT-2 small, 124M),
# "8b" (anything else).
_PRESETS: dict[tuple[str, str], str] = {
    (A10, "gpt2"): "gpt2-a10",
    (A100_40, "gpt2"): "gpt2-a100-40gb",
    (A100_80, "gpt2"): "gpt2-a100",
    (H100, "gpt2"): "gpt2-h100",
    (A10, "8b"): "llama3-8b-a10",
    (A10, "llama3.1"): "llama3.1-8b-128k-a10-tp2",
    (A100_40, "8b"): "llama3-8b-a100-40gb",
    (A100_40, "llama3.1"): "llama3.1-8b-128k-a100-40gb",
    (A100_80, "8b"): "llama3-8b-a100",
    (A100_80, "llama3.1"): "llama3.1-8b-128k-a100",
    (A100_80, "70b"): "llama2-70b-a100-tp8",
    (H100, "8b"): "llama3-8b-h100",
    (H100, "llama3.1"): "llama3.1-8b-128k-h100",
    (H100, "70b"): "llama3.1-70b-128k-h100-tp8",
}
PRESET_NAMES = frozenset(_PRESETS.values())
# GPUs too small to hold a 128k context alone: fewer tensor-parallel GPUs than this run the 8k preset
# (vLLM refuses 131072 tokens on one A10: ~31k fit after the weights), as with --max-model-len 8192.
_LONG_CONTEXT_MIN_TP = {A10: 2}


def _option(args: Sequence[str], *names: str) -> str | None:
    """The value of the first of `names` in a command line, written `--name V` or `--name=V`
    ('' when it is last with no value); None when none is given."""
    args = [str(a) for a in args]
    for i, arg in enumerate(args):
        key, eq, value = arg.partition("=")
        if key in names:
            return value if eq else (args[i + 1] if i + 1 < len(args) else "")
    return None


def tensor_parallel(args: Sequence[str]) -> int:
    """`--tensor-parallel-size N` / `-tp N` of a vLLM command line; 1 (vLLM's default) otherwise."""
    text = _option(args, "--tensor-parallel-size", "--tensor_parallel_size", "-tp")
    return int(text) if text is not None and text.strip().isdigit() else 1


def served_model(args: Sequence[str]) -> str:
    """The model a vLLM command line serves (`--model M`, `--model=M`, or `serve M`); '' if none."""
    args = [str(a) for a in args]
    for i, arg in enumerate(args):
        if arg.partition("=")[0] == "--model":
            return _option(args[i:], "--model") or ""
        if arg == "serve" and i + 1 < len(args) and not args[i + 1].startswith("-"):
            return args[i + 1]
    return ""


def metrics_model_name(args: Sequence[str], model: str = "") -> str:
    """The `model_name` label vLLM puts on its metrics: the first `--served-model-name` (it takes
    several; `=` or a space), else the model served (`served_model`), else `model`; '' if none."""
    return _option(args, "--served-model-name", "--served_model_name") or served_model(args) or model


def family(model: str) -> str:
    """The preset family a model name belongs to."""
    m = model.lower().replace("_", "-")
    if m.rstrip("/").rsplit("/", 1)[-1] == "gpt2":  # GPT-2 small only; gpt2-medium/-large/-xl are larger
        return "gpt2"
    if re.search(r"\b70b\b|-70b", m):
        return "70b"
    if re.search(r"llama-?3\.[123]", m):
        return "llama3.1"
    return "8b"


def llm_preset(shape: str, model: str = "", tensor_parallel: int = 1) -> str | None:
    """The engine preset for `model` on the shape's GPU; None for a shape or GPU without one."""
    known = SHAPES.get(shape)
    if known is None:
        return None
    kind = family(model)
    if kind == "llama3.1" and tensor_parallel < _LONG_CONTEXT_MIN_TP.get(known.gpu, 1):
        kind = "8b"
    return _PRESETS.get((known.gpu, kind))
