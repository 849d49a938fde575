"""OCI GPU shapes: the GPU behind each shape, its cited list price, and the engine preset for it."""

from __future__ import annotations

import pytest

from swell import gpu_shapes, recipe
from swell.engines import presets


def test_every_preset_a_shape_maps_to_exists_and_runs_that_gpu() -> None:
    assert set(presets.PRESETS) >= gpu_shapes.PRESET_NAMES
    for (gpu, _), name in gpu_shapes._PRESETS.items():
        assert presets.get(name).gpu == gpu, name


def test_shapes_agree_with_the_recipe_and_prices_are_cited_or_unknown() -> None:
    for name, shape in gpu_shapes.SHAPES.items():
        assert recipe.SHAPE_GPUS[name] == shape.gpus, name
        assert shape.price_per_gpu_hour is None or (shape.price_per_gpu_hour > 0 and shape.part), name
    assert gpu_shapes.SHAPES["BM.GPU.A10.4"].price_per_gpu_hour == 2.0
    assert gpu_shapes.SHAPES["BM.GPU.H100.8"].price_per_gpu_hour == 10.0
    assert gpu_shapes.SHAPES["BM.GPU.B200.8"].price_per_gpu_hour is None  # not found: unknown, never 0


@pytest.mark.parametrize(
    ("shape", "args", "preset"),
    [
        ("VM.GPU.A10.1", ["--model", "meta-llama/Meta-Llama-3-8B-Instruct"], "llama3-8b-a10"),
        ("BM.GPU.A10.4", ["--model", "/models/NousResearch/Meta-Llama-3.1-8B-Instruct", "--tensor-parallel-size", "2"],
         "llama3.1-8b-128k-a10-tp2"),
        ("VM.GPU.A10.2", ["--model=/models/Meta-Llama-3.1-8B-Instruct", "--tensor-parallel-size", "1"],
         "llama3-8b-a10"),
        ("BM.GPU.H100.8", ["serve", "meta-llama/Llama-3.3-70B-Instruct", "-tp", "8"], "llama3.1-70b-128k-h100-tp8"),
        ("BM.GPU.H100.8", ["--model", "Qwen/Qwen2.5-7B"], "llama3-8b-h100"),
        ("BM.GPU.A100-v2.8", ["--model", "meta-llama/Llama-3.1-8B"], "llama3.1-8b-128k-a100"),
        ("BM.GPU4.8", [], "llama3-8b-a100-40gb"),
        ("BM.GPU.L40S.4", [], None),
        ("VM.Standard.E4.Flex", [], None),
        ("VM.GPU.A10.1", ["--model", "openai-community/gpt2", "--port", "8000"], "gpt2-a10"),
        ("BM.GPU.H100.8", ["serve", "gpt2"], "gpt2-h100"),
        ("BM.GPU4.8", ["--model=/models/openai-community/gpt2/"], "gpt2-a100-40gb"),
        ("BM.GPU.A100-v2.8", ["--model", "GPT2"], "gpt2-a100"),
        ("VM.GPU.A10.1", ["--model", "openai-community/gpt2-medium"], "llama3-8b-a10"),
        ("BM.GPU.L40S.4", ["--model", "openai-community/gpt2"], None),
    ],
    ids=["A10 8B", "A10 Llama 3.1 TP2: 128k", "A10 Llama 3.1 TP1: 128k does not fit, 8k", "H100 70B TP8",
         "H100 other model: 8B", "A100 80GB Llama 3.1", "A100 40GB", "L40S: no preset", "not a GPU shape",
         "A10 gpt2", "H100 gpt2 (vllm serve)", "A100 40GB gpt2 from a path", "A100 80GB GPT2 any case",
         "gpt2-medium is not GPT-2 small: 8B", "L40S gpt2: no preset"],
)  # fmt: skip
def test_shape_and_model_choose_the_preset(shape: str, args: list[str], preset: str | None) -> None:
    model, tp = gpu_shapes.served_model(args), gpu_shapes.tensor_parallel(args)
    assert gpu_shapes.llm_preset(shape, model, tp) == preset


@pytest.mark.parametrize(
    ("args", "model", "label"),
    [
        (["--model", "m1"], "", "m1"),
        (["--model=m1"], "", "m1"),
        (["serve", "m1", "--port", "8000"], "", "m1"),
        (["--port", "8000"], "recipe-model", "recipe-model"),
        (["--model", "m1", "--served-model-name", "api-name"], "", "api-name"),
        (["--served-model-name=api-name", "--model=m1"], "", "api-name"),
        (["--served-model-name", "first", "second"], "m", "first"),
        ([], "", ""),
    ],
    ids=["--model M", "--model=M", "vllm serve M", "no model in args: the recipe's", "--served-model-name wins",
         "--served-model-name=N", "several served names: the first labels the metrics", "none"],
)  # fmt: skip
def test_the_metrics_model_name_label_is_what_vllm_writes(args: list[str], model: str, label: str) -> None:
    assert gpu_shapes.metrics_model_name(args, model) == label
