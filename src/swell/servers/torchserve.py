"""A TorchServe replica: prepare a private work directory, then become `torchserve --foreground`.

The work directory holds the model store (the recipe's .mar, or the built-in handler-only model
archived here at start), a generated config.properties (inference, management and metrics on the
given loopback ports, its gRPC listeners on free loopback ports, metrics_mode=prometheus), the
logs and a private TMPDIR and TEMP (TorchServe keeps a PID file and the workers' sockets there,
so replicas never see each other's). This process then execs the
launcher, which starts Java; the replica's guard stops the whole group (Java and its workers).
Run: python -m swell.servers.torchserve --port 8080 --management-port 8081 --metrics-port 8082 --workdir D
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HANDLER = Path(__file__).with_name("torchserve_handler.py")
METRIC_INTERVAL_S = 10  # TorchServe measures worker memory this often (a short Python process)


def config_text(args: argparse.Namespace, store: Path, mar: str) -> str:
    """config.properties. Token authorization is off: every listener binds the loopback address
    only, the gateway is the service's one public face, and TorchServe's generated inference key
    expires (60 min) while swell would have to hand it to every client."""
    lines = {
        "inference_address": f"http://{args.host}:{args.port}",
        "management_address": f"http://{args.host}:{args.management_port}",
        "metrics_address": f"http://{args.host}:{args.metrics_port}",
        # gRPC: TorchServe always starts it, on 0.0.0.0:7070/7071 unless told otherwise, so a
        # second replica on the machine fails to bind; swell does not use it: loopback, free ports
        "grpc_inference_address": args.host,
        "grpc_inference_port": str(args.grpc_inference_port),
        "grpc_management_address": args.host,
        "grpc_management_port": str(args.grpc_management_port),
        "metrics_mode": "prometheus",
        # each worker's resident memory (`memoryUsage` in GET /models/NAME) is measured by the
        # system metrics collector every metric_time_interval seconds (default 60; 0 until then)
        "metric_time_interval": str(METRIC_INTERVAL_S),
        "disable_token_authorization": "true",
        "model_store": str(store),
        "load_models": f"{args.name}={mar}",
        "default_workers_per_model": str(args.workers),
        "install_py_dep_per_model": "false",
        "enable_envvars_config": "false",
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def free_port(host: str) -> int:
    """A port the OS says is free now (a replica that loses the race exits and is restarted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def archive_builtin(name: str, store: Path) -> str:
    """The handler-only example model as `<name>.mar` in `store` (about 0.1 s)."""
    tool = shutil.which("torch-model-archiver")
    if tool is None:
        raise SystemExit("torch-model-archiver not found: pip install -e '.[torchserve]'")
    subprocess.run(
        [tool, "--model-name", name, "--version", "1.0", "--handler", str(HANDLER),
         "--export-path", str(store), "--force"],
        check=True,
    )  # fmt: skip
    return f"{name}.mar"


def prepare(args: argparse.Namespace) -> tuple[list[str], dict[str, str], Path]:
    """Write the work directory; returns the launcher's argv, its environment and its cwd."""
    work = Path(args.workdir).resolve()
    store, logs, tmp = work / "model-store", work / "logs", work / "tmp"
    for d in (store, logs, tmp):
        d.mkdir(parents=True, exist_ok=True)
    if args.mar:
        src = Path(args.mar).resolve()
        if not src.is_file():
            raise SystemExit(f"service.model: {src} is not a file (expected a TorchServe .mar)")
        mar = src.name
        if not (store / mar).exists():
            (store / mar).symlink_to(src)
    else:
        mar = archive_builtin(args.name, store)
    for attr in ("grpc_inference_port", "grpc_management_port"):
        if not getattr(args, attr):
            setattr(args, attr, free_port(args.host))
    cfg = work / "config.properties"
    cfg.write_text(config_text(args, store, mar))
    launcher = shutil.which("torchserve")
    if launcher is None:
        raise SystemExit("torchserve not found: pip install -e '.[torchserve]'")
    argv = [launcher, "--start", "--foreground", "--ts-config", str(cfg), "--model-store", str(store),
            "--no-config-snapshots", "--disable-token-auth"]  # fmt: skip
    # TMPDIR: the launcher's PID file; TEMP: Java's java.io.tmpdir, where the workers' sockets go
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "TEMP": str(tmp),
        "LOG_LOCATION": str(logs),
        "METRICS_LOCATION": str(logs),
    }
    return argv, env, work


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="One TorchServe replica on loopback ports.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="inference API port")
    p.add_argument("--management-port", type=int, required=True)
    p.add_argument("--metrics-port", type=int, required=True)
    p.add_argument(
        "--grpc-inference-port", type=int, default=0, help="0: a free port (swell does not use gRPC)"
    )
    p.add_argument("--grpc-management-port", type=int, default=0, help="0: a free port")
    p.add_argument("--name", default="model", help="the model's name in /predictions/NAME")
    p.add_argument("--mar", default=None, help="a .mar to serve (default: the built-in example)")
    p.add_argument("--workers", type=int, default=1, help="workers at start (default 1)")
    p.add_argument("--workdir", required=True, help="the replica's private directory")
    args = p.parse_args(argv)
    launcher_argv, env, work = prepare(args)
    os.chdir(work)
    os.execve(launcher_argv[0], launcher_argv, env)  # the guard's group: Java and workers with it
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
