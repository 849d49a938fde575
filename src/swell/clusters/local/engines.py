"""How to launch one replica of a recipe's engine: the argv (a list, never a shell line) and env.

Built-in engines run as `python -m swell.servers.<name> --host H --port P ...`; `vllm` runs
`vllm serve MODEL`; `command` is the recipe's own argv with `{host}`, `{port}` and `{gpus}`
replaced in each element. Each replica gets its slot's CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from swell import errors, recipe
from swell.clusters.local import slots
from swell.engines import catalog

SERVER_MODULES: dict[str, str] = catalog.server_modules()
PLACEHOLDERS = ("{host}", "{port}", "{gpus}")


def protocol(svc: recipe.Service) -> str:
    """The API a replica of this engine serves: "openai", "kserve-v1" or "http" (a command's own)."""
    known = catalog.ENGINES.get(svc.engine)
    return known.protocol if known is not None else "http"


def protocol_text(svc: recipe.Service, endpoint: str) -> str:
    """Where to send requests and in which protocol, for the banner of `swell up`."""
    kind = protocol(svc)
    if kind == "openai":
        return f"{endpoint}/v1 (OpenAI-compatible: /v1/chat/completions, /v1/completions)"
    if kind == "kserve-v1":
        name = svc.model or svc.name
        return f"{endpoint}/v1/models/{name}:predict (KServe v1 protocol)"
    return f"{endpoint} (HTTP, passed to the replicas as is)"


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    """Everything needed to start one replica process and probe it."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)  # added to (and overriding) os.environ
    host: str
    port: int
    readiness_path: str = "/health"
    liveness_path: str = "/health"
    metrics_path: str = "/metrics"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now (a replica that loses the race exits and is restarted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def substitute(argv: tuple[str, ...], *, host: str, port: int, gpus: str) -> tuple[str, ...]:
    """Replace the placeholders in every argv element; other braces are left alone."""
    out = []
    for arg in argv:
        for key, value in (("{host}", host), ("{port}", str(port)), ("{gpus}", gpus)):
            arg = arg.replace(key, value)
        out.append(arg)
    return tuple(out)


def _builtin_flags(svc: recipe.Service, res: recipe.Resources) -> list[str]:
    """Each built-in server's own flags: model file or served name, preset, threads."""
    if svc.engine == "llama-cpp":
        flags = ["--threads", str(max(1, round(res.cpu)))]
        return flags + (["--model", svc.model] if svc.model else [])
    if svc.engine == "simulated-llm":
        flags = ["--model", svc.model or svc.name]
        return flags + (["--preset", svc.preset] if svc.preset else [])
    return ["--name", svc.model or svc.name]  # sklearn-iris: the model name in /v1/models/NAME


def argv_for(
    svc: recipe.Service, *, host: str, port: int, gpus: str, resources: recipe.Resources | None = None
) -> tuple[str, ...]:
    """The replica's argv for its engine."""
    common = ("--host", host, "--port", str(port))
    args = substitute(svc.args, host=host, port=port, gpus=gpus)
    if svc.engine in SERVER_MODULES:
        flags = _builtin_flags(svc, resources or recipe.Resources())
        return (sys.executable, "-m", SERVER_MODULES[svc.engine], *common, *flags, *args)
    if svc.engine == "vllm":
        if not svc.model:
            raise errors.RecipeError(
                "<recipe>",
                [errors.Problem(path="service.model", value=None, rule="engine 'vllm' needs a model")],
            )
        return ("vllm", "serve", svc.model, *common, *args)
    return substitute(svc.command, host=host, port=port, gpus=gpus)


def spec_for(
    rec: recipe.Recipe, slot: slots.Slot, *, host: str = "127.0.0.1", port: int | None = None
) -> LaunchSpec:
    """How to start one replica of `rec` in `slot` on a free loopback port."""
    svc = rec.service
    p = port if port is not None else free_port(host)
    gpus = slot.cuda_visible_devices
    env = {
        **svc.env,
        "CUDA_VISIBLE_DEVICES": gpus,
        "PYTHONUNBUFFERED": "1",
        "SWELL_REPLICA_PORT": str(p),
    }
    if rec.resources.gpus == 0 and "OMP_NUM_THREADS" not in svc.env:
        # a CPU replica uses the cores its slot stands for, not every core of the machine
        env["OMP_NUM_THREADS"] = str(max(1, round(rec.resources.cpu)))
    return LaunchSpec(
        argv=argv_for(svc, host=host, port=p, gpus=gpus, resources=rec.resources),
        env=env,
        host=host,
        port=p,
        readiness_path=svc.probes.readiness.path,
        liveness_path=svc.probes.liveness.path,
    )


def environment(spec: LaunchSpec) -> dict[str, str]:
    """The full environment of the replica process."""
    return {**os.environ, **spec.env}
