"""The `swell` command itself: --version, a --help that imports no command, the command table
matching what the modules register, and bad input everywhere answered with a message."""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from swell import __version__
from swell.cli import main

ROOT = Path(__file__).parent.parent.parent
HEAVY = ("matplotlib", "aiohttp", "numpy", "kubernetes", "swell.runtime", "swell.clusters", "swell.loadgen")


def swell(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swell.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version() -> None:
    res = swell("--version")
    assert (res.returncode, res.stdout.strip()) == (0, f"swell {__version__}")


def test_help_lists_every_command_without_importing_any() -> None:
    code = (
        "import sys\nfrom swell.cli import main\nsys.argv = ['swell', '--help']\n"
        "try:\n    main.main()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.startswith({HEAVY!r})))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert res.returncode == 0, res.stderr
    assert "LOADED []" in res.stdout
    for name in main.COMMANDS:
        assert f"  {name} " in res.stdout


def test_the_command_table_matches_what_the_modules_register() -> None:
    registered: dict[str, str] = {}
    for module in {e.module for e in main.COMMANDS.values()}:
        sub = typer.Typer()
        importlib.import_module(module).register(sub)
        built = typer.main.get_command(sub)
        names = list(getattr(built, "commands", {})) or [built.name]
        registered |= dict.fromkeys(names, module)
    assert registered == {name: e.module for name, e in main.COMMANDS.items()}


@pytest.mark.parametrize("name", list(main.COMMANDS))
def test_every_command_has_its_help(name: str) -> None:
    r = CliRunner().invoke(main.app, [name, "--help"])
    assert r.exit_code == 0 and "Usage" in r.output, r.output


def test_bench_duration_says_how_long_it_waits_for_requests_in_flight() -> None:
    r = CliRunner().invoke(main.app, ["bench", "--help"], terminal_width=200)
    text = " ".join(r.output.replace("│", " ").split())  # rich draws boxes around the options
    assert "then wait for the requests in flight, each for at most --timeout (300 s by default)" in text


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (
            ["up", "--policy", "bogus", "examples/gpt2-vllm-latency-hpa.yaml"],
            1,
            "--policy: one of hpa, threshold",
        ),
        (["up", "--port", "99999"], 2, "Invalid value for '--port'"),
        (
            ["decide", "examples/gpt2-vllm-latency-hpa.yaml", "-o", "-", "--policy", "nope"],
            1,
            "--policy: one of",
        ),
        (
            ["simulate", "examples/gpt2-vllm-latency-hpa.yaml", "-w", "poisson:rate=1", "--compare", "nope"],
            1,
            "known: hpa-latency",
        ),
        (["render", "examples/gpt2-vllm-latency-hpa.yaml", "-o", "/proc/no/such/dir/out.yaml"], 1, "error:"),
        (["validate", "examples"], 1, "cannot read file"),
        (["nosuchcommand"], 2, "No such command 'nosuchcommand'"),
        (["demo", "--port", "70000"], 2, "Invalid value for '--port'"),
        (["demo", "--report", "README.md/demo.html"], 1, "--report: README.md is a file, not a directory"),
        (["bench", "http://127.0.0.1:9", "-c", "1", "-n", "1", "-m", "x", "--seed", "-1"], 2, "seed: must be >= 0"),
        (["bench", "http://127.0.0.1:9", "-c", "1", "-n", "1", "-m", "x", "--json", "/tmp"], 2, "--json: is a directory"),
        (["up", "examples/gpt2-vllm-latency-hpa.yaml", "--run-dir", "README.md"], 1, "--run-dir: is a file"),
        (["api", "--data-dir", "README.md/state"], 1, "--data-dir: README.md is a file, not a directory"),
        (["api", "--host", "not a host!"], 1, "--host: an IP address or a host name"),
        (["simulate", "examples/gpt2-vllm-latency-hpa.yaml", "-w", "closed:users=3", "--duration", "60", "-q"], 1,
         "not a closed loop: `swell bench --concurrency N` drives one against a running service (got 'closed')"),
        (["simulate", "examples/gpt2-vllm-latency-hpa.yaml", "-w", "poisson:rate=2", "--duration", "60", "-q",
          "--model-load", "/nonexistent.csv"], 1, "(/nonexistent.csv: no such file)"),
        (["up", "--api", "--api-port", "8000"], 1, "--api-port: the service's gateway listens there (local.port / --port 8000)"),
        (["demo", "--duration", "30x"], 1, "duration: a duration such as 90, 90s, 500ms, 5m, 2h or 1d (got '30x')"),
        (["simulate", "examples/gpt2-vllm-latency-hpa.yaml", "-w", "poisson:rate=2", "--duration", "60", "-q",
          "--json", "/dev/full"], 1, "error: /dev/full: No space left on device"),
    ],
    ids=[
        "up bad policy",
        "up bad port",
        "decide bad policy",
        "simulate bad preset",
        "render unwritable",
        "validate a directory",
        "unknown command",
        "demo port out of range",
        "demo report under a file, before any load",
        "bench negative seed",
        "bench json into a directory",
        "up run dir a file",
        "api data dir inside a file",
        "api host not a host",
        "simulate a closed loop says where one runs",
        "simulate model-load file missing says so",
        "up with the API on the gateway's port",
        "demo duration not a duration",
        "simulate json to a device that refuses the write names it",
    ],
)
def test_bad_input_is_a_message_never_a_traceback(args: list[str], code: int, fragment: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "swell.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert "Traceback" not in res.stderr + res.stdout
    assert res.returncode == code, res.stderr
    assert fragment in res.stderr + res.stdout


def test_bench_csv_to_a_device_that_refuses_the_write_names_it() -> None:
    """A port that accepts connections and never answers: the one request times out, and the CSV's
    write fails by name (a closed port is refused before any request now)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        res = subprocess.run(
            [sys.executable, "-m", "swell.cli.main", "bench", url, "-c", "1", "-n", "1", "-m", "x", "-q",
             "--timeout", "1", "--csv", "/dev/full"],
            capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        )  # fmt: skip
    assert "Traceback" not in res.stderr + res.stdout
    assert res.returncode == 1 and "error: /dev/full: No space left on device" in res.stderr, res.stderr
