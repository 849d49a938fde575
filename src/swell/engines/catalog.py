"""The engines a recipe can name, in one table: what each runs and how the other parts treat it.

For each `recipe.EngineName`: the built-in server module a local replica runs (`python -m ...`),
the protocol its replicas speak, the container image `swell render` uses, and how the simulator
models it (an LLM engine preset, or a classic model's fixed-service preset). The local cluster,
the renderer and the simulator read this table instead of keeping dicts of their own; adding an
engine is one entry here plus its server module and performance model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SWELL_IMAGE = "swell:0.1.0"  # built from deploy/Dockerfile: the built-in engines ship with swell
Protocol = Literal["openai", "kserve-v1", "http"]


@dataclass(frozen=True, kw_only=True)
class Engine:
    name: str
    protocol: Protocol
    server_module: str | None = None  # a built-in server: `python -m <module>`
    image: str | None = None  # None: the recipe must name one (`service.image`)
    classic_preset: str | None = None  # simulated as this fixed-service preset (else as an LLM)
    modelled: bool = True  # an engine preset describes what it serves (False: llama.cpp on a CPU, any
    # command: the simulator still stands an LLM preset in for it, but the planner plans with no model)


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine(name="llama-cpp", protocol="openai", server_module="swell.servers.llama_cpp", image=SWELL_IMAGE,
               modelled=False),
        Engine(name="simulated-llm", protocol="openai", server_module="swell.servers.simulated_llm",
               image=SWELL_IMAGE),
        Engine(name="sklearn-iris", protocol="kserve-v1", server_module="swell.servers.sklearn_iris",
               image=SWELL_IMAGE, classic_preset="sklearn-cpu"),
        Engine(name="vllm", protocol="openai", image="vllm/vllm-openai:latest"),
        Engine(name="torchserve", protocol="http", server_module="swell.servers.torchserve",
               classic_preset="resnet50-cpu"),
        Engine(name="command", protocol="http", modelled=False),
    )
}  # fmt: skip


def server_modules() -> dict[str, str]:
    """{engine: module} of the engines swell ships a server for."""
    return {n: e.server_module for n, e in ENGINES.items() if e.server_module is not None}


def preset_problem(name: str | None) -> str:
    """Why `service.preset` names no engine model ('' when it does, or names none)."""
    from swell.engines import fixed, presets  # the models' tables import numpy: only when a name is checked

    known = sorted(presets.PRESETS) + sorted(fixed.PRESETS)
    return "" if name is None or name in known else f"unknown engine preset; known: {', '.join(known)}"
