"""The planner's capacity profile from the recipe's engine: a classic model's workers per replica
are max_workers, or what the replica's memory holds, so the replica plan (and the spare nodes it
asks for) counts only the workers that can run."""

from __future__ import annotations

from typing import Any

import pytest

from swell import recipe
from swell.control import profile


def classic(memory_gib: float, **workers: Any) -> recipe.Recipe:
    return recipe.parse(
        {
            "service": {"name": "digest", "engine": "torchserve", "preset": "resnet50-t4"},
            "resources": {"gpus": 0, "cpu": 2, "memory_gib": memory_gib},
            "workers": {"min_workers": 1, "max_workers": 4} | workers,
        }
    )


@pytest.mark.parametrize(
    ("memory_gib", "workers", "expect"),
    [
        pytest.param(8.0, {}, 4, id="no per-worker memory known: max_workers"),
        pytest.param(8.0, {"memory_per_worker_mib": 1024}, 4, id="memory holds all of max_workers"),
        pytest.param(2.5, {"memory_per_worker_mib": 1024}, 2, id="memory holds 2 of 4: the plan counts 2"),
    ],
)
def test_a_classic_replicas_workers_are_what_its_memory_holds(
    memory_gib: float, workers: dict[str, Any], expect: int
) -> None:
    prof = profile.of(classic(memory_gib, **workers))
    assert prof is not None and prof.kind == "classic"
    assert prof.workers == expect


@pytest.mark.parametrize(
    ("service", "expect"),
    [
        pytest.param({"engine": "llama-cpp"}, None, id="llama.cpp on a CPU: no engine model, the reactive rules decide"),
        pytest.param({"engine": "command", "command": ["serve"]}, None, id="a command: no engine model"),
        pytest.param({"engine": "llama-cpp", "preset": "tiny-cpu"}, "tiny-cpu",
                     id="a preset named in the recipe is taken as the engine's model"),
        pytest.param({"engine": "simulated-llm", "preset": "tiny-cpu"}, "tiny-cpu", id="the simulated LLM runs its preset"),
        pytest.param({"engine": "vllm", "preset": "llama3-8b-a10"}, "llama3-8b-a10", id="vLLM with its preset"),
    ],
)  # fmt: skip
def test_only_an_engine_a_preset_describes_gets_a_capacity_profile(service: dict[str, Any], expect: str | None) -> None:
    rec = recipe.parse({"service": {"name": "svc"} | service, "resources": {"gpus": 0, "cpu": 1}})
    prof = profile.of(rec)
    assert (prof.source if prof is not None else None) == expect
