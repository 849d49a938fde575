"""Device slots and how each engine's replica is launched (argv as a list, env per slot)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from swell import errors, recipe
from swell.clusters.local import engines, slots


def rec(service: dict[str, Any] | None = None, **more: Any) -> recipe.Recipe:
    return recipe.parse({"service": {"name": "svc", **(service or {})}, **more})


@pytest.mark.parametrize(
    ("gpus", "gpu_ids", "cpu_slots", "expected"),
    [
        pytest.param(0, [], 3, [(), (), ()], id="cpu: one slot per local.cpu_slots"),
        pytest.param(1, [0, 1, 2], 4, [(0,), (1,), (2,)], id="one GPU per replica: one slot per id"),
        pytest.param(
            2, [4, 5, 6, 7, 1], 4, [(4, 5), (6, 7)], id="two GPUs per replica: ids grouped, odd one idle"
        ),
        pytest.param(2, [], 4, [], id="GPUs asked for but no ids configured: no slot"),
    ],
)
def test_layout(gpus: int, gpu_ids: list[int], cpu_slots: int, expected: list[tuple[int, ...]]) -> None:
    r = rec(
        resources={"gpus": gpus},
        node_pool={"shape": "local", "gpus_per_node": 8},
        local={"gpu_ids": gpu_ids, "cpu_slots": cpu_slots},
    )
    assert [s.gpu_ids for s in slots.layout(r)] == expected


def test_pool_hands_out_lowest_first_and_takes_back() -> None:
    pool = slots.SlotPool(tuple(slots.Slot(index=i, gpu_ids=(i,)) for i in range(2)))
    a, b = pool.acquire(), pool.acquire()
    assert (a and a.cuda_visible_devices, b and b.cuda_visible_devices, pool.acquire()) == ("0", "1", None)
    assert a is not None
    pool.release(a)
    assert pool.free == 1 and pool.acquire() == a
    with pytest.raises(ValueError, match="does not belong"):
        pool.release(slots.Slot(index=9))


def test_pending_reason_names_the_setting_to_change() -> None:
    cpu = rec(local={"cpu_slots": 2})
    assert "local.cpu_slots" in slots.no_slot_reason(cpu, 2)
    gpu = rec(resources={"gpus": 1}, node_pool={"shape": "local", "gpus_per_node": 8})
    assert "local.gpu_ids is empty" in slots.no_slot_reason(gpu, 0)


def test_duplicate_gpu_ids_are_a_recipe_error() -> None:
    r = rec(
        resources={"gpus": 1}, node_pool={"shape": "local", "gpus_per_node": 8}, local={"gpu_ids": [0, 0]}
    )
    with pytest.raises(errors.RecipeError, match=r"local\.gpu_ids"):
        slots.layout(r)


def test_command_placeholders_are_replaced_in_each_argv_element() -> None:
    r = rec(
        {
            "engine": "command",
            "command": ["srv", "--bind={host}:{port}", "--gpus", "{gpus}", "{not-a-placeholder}"],
        },
        resources={"gpus": 2},
        node_pool={"shape": "local", "gpus_per_node": 8},
        local={"gpu_ids": [2, 3]},
    )
    slot = slots.layout(r)[0]
    spec = engines.spec_for(r, slot, port=1234)
    assert spec.argv == ("srv", "--bind=127.0.0.1:1234", "--gpus", "2,3", "{not-a-placeholder}")
    assert spec.env["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert spec.base_url == "http://127.0.0.1:1234"


@pytest.mark.parametrize(
    ("service", "expected_start"),
    [
        pytest.param(
            {"engine": "llama-cpp"}, [sys.executable, "-m", "swell.servers.llama_cpp"], id="llama-cpp"
        ),
        pytest.param(
            {"engine": "simulated-llm", "preset": "a10-7b"},
            [sys.executable, "-m", "swell.servers.simulated_llm"],
            id="simulated-llm",
        ),
        pytest.param(
            {"engine": "sklearn-iris"},
            [sys.executable, "-m", "swell.servers.sklearn_iris"],
            id="sklearn-iris",
        ),
        pytest.param({"engine": "vllm", "model": "gpt2"}, ["vllm", "serve", "gpt2"], id="vllm"),
    ],
)
def test_builtin_engines_listen_where_they_are_told(
    service: dict[str, Any], expected_start: list[str]
) -> None:
    r = rec(service)
    spec = engines.spec_for(r, slots.Slot(index=0), port=4321)
    argv = list(spec.argv)
    assert argv[: len(expected_start)] == expected_start
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "4321"
    assert spec.env["CUDA_VISIBLE_DEVICES"] == ""  # a CPU slot sees no GPU
    if service.get("preset"):
        assert argv[argv.index("--preset") + 1] == service["preset"]


def test_vllm_without_a_model_is_a_recipe_error() -> None:
    with pytest.raises(errors.RecipeError, match=r"service\.model"):
        engines.spec_for(rec({"engine": "vllm"}), slots.Slot(index=0), port=1)


def test_free_port_is_bindable() -> None:
    port = engines.free_port()
    assert 0 < port < 65536


@pytest.mark.parametrize(
    ("service", "says"),
    [
        pytest.param({"engine": "llama-cpp"}, "http://h:1/v1 (OpenAI-compatible", id="llama-cpp: OpenAI"),
        pytest.param(
            {"engine": "sklearn-iris", "model": "iris"},
            "http://h:1/v1/models/iris:predict (KServe v1 protocol)",
            id="sklearn-iris: KServe v1",
        ),
        pytest.param({"engine": "command", "command": ["srv"]}, "http://h:1 (HTTP", id="command: as is"),
    ],
)
def test_the_banner_names_the_protocol_really_served(service: dict[str, Any], says: str) -> None:
    assert engines.protocol_text(rec(service).service, "http://h:1").startswith(says)
