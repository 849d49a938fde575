"""`swell bench` end to end: a run with outputs, clear errors for bad input, Ctrl-C's partial summary."""

from __future__ import annotations

import json
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from swell.cli import main

from . import fake_llm

FAST = ["-H", "X-TTFT: 0.01", "-H", "X-ITL: 0.002", "--output-tokens", "4", "--input-tokens", "30"]


def bench(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main.app, ["bench", *args])
    return result.exit_code, result.output


def test_a_closed_loop_run_writes_json_csv_and_html(
    threaded_server: fake_llm.Server, tmp_path: pathlib.Path
) -> None:
    out = [
        f"--{kind}={tmp_path / name}"
        for kind, name in (("json", "b.json"), ("csv", "b.csv"), ("report", "b.html"))
    ]
    code, text = bench(threaded_server.url, "-c", "3", "-n", "12", "--goodput", "ttft:500", *FAST, *out)
    assert code == 0, text
    assert "closed loop, 3 users" in text and "throughput (req/s)" in text and "TTFT" in text
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["summary"]["ok"] == 12 and data["summary"]["slo_attainment"] == 1.0
    assert len((tmp_path / "b.csv").read_text().splitlines()) == 13
    assert "Latency over time" in (tmp_path / "b.html").read_text()
    assert threaded_server.seen.bodies[0]["max_tokens"] == 4


def test_open_loop_rate_and_pattern(threaded_server: fake_llm.Server) -> None:
    code, text = bench(
        threaded_server.url, "--rate", "40", "--burstiness", "0.5", "--duration", "0.5s", *FAST, "-q"
    )
    assert code == 0, text
    assert "gamma(burstiness=0.5), 40 req/s" in text and "send lag" in text
    code, text = bench(threaded_server.url, "-p", "steps:rates=20/40,every=0.3", *FAST, "-q")
    assert code == 0, text
    assert "steps 20 → 40 req/s" in text


def test_trace_replay_with_speedup(threaded_server: fake_llm.Server, tmp_path: pathlib.Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(
        "".join(json.dumps({"t": i * 0.5, "input_tokens": 5, "output_tokens": 2}) + "\n" for i in range(5))
    )
    code, text = bench(threaded_server.url, "--trace", str(trace), "--speedup", "10", "-q", "--no-stream")
    assert code == 0, text
    assert "×10 faster" in text and re.search(r"requests sent\s*│\s*5\s", text), text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "2", "--rate", "3"], "choose one of --concurrency, --rate, --pattern, --trace"),
        (["--rate", "0"], "rate: must be > 0"),
        (["--duration", "soon"], "not a duration"),
        (["--pattern", "tsunami"], "unknown workload kind"),
        (["--pattern", "poisson:rate=fast"], "rate: must be a number"),
        (["--trace", "/no/such/trace.csv"], "no such file"),
        (["--protocol", "grpc"], "choose one of openai-chat"),
        (["--protocol", "kserve"], "kserve needs --model"),
        (["--goodput", "ttft=5"], "unknown SLO"),
        (["-H", "no-colon"], "'Name: value'"),
        (["--body", "{not json"], "must be JSON"),
        (["--input-tokens", "0"], "input_mean must be >= 1"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_bad_options_exit_2_with_a_message_and_no_traceback(args: list[str], message: str) -> None:
    code, text = bench("http://127.0.0.1:9", *args)
    assert code == 2, text
    assert message in text
    assert "Traceback" not in text


def test_bad_url_and_unreachable_server(tmp_path: pathlib.Path) -> None:
    code, text = bench("localhost:8000", "-n", "1")
    assert code == 2 and "http:// or https:// URL" in text
    code, text = bench("http://127.0.0.1:9", "-n", "3", "-q", "--model", "m")
    assert code == 1 and "all 3 requests failed (connection)" in text


def test_help_reads_well() -> None:
    code, text = bench("--help")
    assert code == 0
    for words in (
        "--concurrency",
        "--rate",
        "--pattern",
        "--trace",
        "--duration",
        "--requests",
        "black-friday",
        "Examples",
    ):
        assert words in text


def test_ctrl_c_prints_a_partial_summary(threaded_server: fake_llm.Server) -> None:
    cmd = [
        sys.executable,
        "-m",
        "swell.cli.main",
        "bench",
        threaded_server.url,
        "-c",
        "2",
        "-d",
        "60",
        "-q",
        *FAST,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while len(threaded_server.seen.bodies) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert "interrupted: partial results" in out and "throughput (req/s)" in out
    assert "Traceback" not in out
