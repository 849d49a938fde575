"""How to launch one replica of a recipe's engine: the argv (a list, never a shell line) and env.

Built-in engines run as `python -m swell.servers.<name> --host H --port P ...`; `vllm` runs
`vllm serve MODEL`; `command` is the recipe's own argv with `{host}`, `{port}` and `{gpus}`
replaced in each element. Each replica gets its slot's CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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
    if svc.engine == "torchserve":
        return f"{endpoint}/predictions/{svc.name} (TorchServe inference API, passed to the replicas)"
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
    # TorchServe: its management and metrics listeners, and the model whose workers it serves
    management_port: int | None = None
    metrics_port: int | None = None
    model_name: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def management_url(self) -> str | None:
        return f"http://{self.host}:{self.management_port}" if self.management_port is not None else None

    @property
    def metrics_base_url(self) -> str:
        """Where /metrics is served: the metrics listener if the server has one of its own."""
        return f"http://{self.host}:{self.metrics_port}" if self.metrics_port is not None else self.base_url

    @property
    def readiness_url(self) -> str:
        """TorchServe: the model's status on the management API (ready = a READY worker, not /ping)."""
        if self.management_url is not None and self.model_name is not None:
            return f"{self.management_url}/models/{self.model_name}"
        return self.base_url + self.readiness_path

    def ready_body(self, body: bytes) -> bool:
        """Whether a readiness answer that passed on its status also passes on its body: for
        TorchServe, at least one worker of the model is READY."""
        if self.management_port is None:
            return True
        return bool(ready_workers(body))


def ready_workers(body: bytes) -> int:
    """READY workers in a TorchServe `GET /models/{m}` answer (0 for anything unreadable)."""
    try:
        models = json.loads(body)
        return sum(
            1
            for m in models
            for w in m.get("workers", ())
            if isinstance(w, dict) and w.get("status") == "READY"
        )
    except (ValueError, TypeError, AttributeError):
        return 0


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
    if svc.engine == "torchserve":  # the model is a .mar path; its name in URLs is the service's
        return ["--name", svc.name] + (["--mar", str(Path(svc.model).resolve())] if svc.model else [])
    return ["--name", svc.model or svc.name]  # sklearn-iris: the model name in /v1/models/NAME


def no_model() -> errors.RecipeError:
    """engine 'vllm' with no model to serve (it would serve vLLM's own default, downloaded)."""
    return errors.RecipeError("<recipe>", [errors.Problem(
        path="service.model", value=None, rule="engine 'vllm' needs a model: service.model, or --model in service.args")])  # fmt: skip


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
            raise no_model()
        return ("vllm", "serve", svc.model, *common, *args)
    return substitute(svc.command, host=host, port=port, gpus=gpus)


def spec_for(
    rec: recipe.Recipe,
    slot: slots.Slot,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    workdir: Path | None = None,
) -> LaunchSpec:
    """How to start one replica of `rec` in `slot` on a free loopback port (`workdir`: the
    replica's private directory, for servers that keep files: TorchServe)."""
    svc = rec.service
    if svc.engine == "torchserve":
        return torchserve_spec(rec, slot, host=host, port=port, workdir=workdir)
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


def torchserve_spec(
    rec: recipe.Recipe, slot: slots.Slot, *, host: str, port: int | None, workdir: Path | None
) -> LaunchSpec:
    """A TorchServe replica: three free loopback ports, a private work directory, the workers the
    recipe starts with; ready once a worker is READY; alive while /ping answers."""
    svc = rec.service
    if svc.model is not None and not Path(svc.model).is_file():
        rule = (
            "engine 'torchserve' needs the path of an existing .mar file (or no model: the built-in example)"
        )
        raise errors.RecipeError(
            "<recipe>", [errors.Problem(path="service.model", value=svc.model, rule=rule)]
        )
    p = port if port is not None else free_port(host)
    mgmt, metrics = free_port(host), free_port(host)
    work = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="swell-torchserve-"))
    start_workers = rec.workers.min_workers if rec.workers is not None else 1
    argv = (
        *argv_for(svc, host=host, port=p, gpus=slot.cuda_visible_devices, resources=rec.resources),
        "--management-port", str(mgmt), "--metrics-port", str(metrics),
        "--workdir", str(work), "--workers", str(start_workers),
    )  # fmt: skip
    env = {**svc.env, "CUDA_VISIBLE_DEVICES": slot.cuda_visible_devices, "PYTHONUNBUFFERED": "1"}
    live = svc.probes.liveness.path
    return LaunchSpec(
        argv=argv,
        env=env,
        host=host,
        port=p,
        liveness_path="/ping" if live == "/health" else live,
        management_port=mgmt,
        metrics_port=metrics,
        model_name=svc.name,
    )


def environment(spec: LaunchSpec) -> dict[str, str]:
    """The full environment of the replica process."""
    return {**os.environ, **spec.env}
