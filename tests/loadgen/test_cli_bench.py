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

from swell.cli import bench as bench_cli
from swell.cli import main
from swell.loadgen import options

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


def test_rate_inf_with_warmup_records_the_model_used(
    threaded_server: fake_llm.Server, tmp_path: pathlib.Path
) -> None:
    code, text = bench(threaded_server.url, "--rate", "inf", "-n", "5", "--warmup", "2", *FAST, "-q",
                       f"--json={tmp_path / 'b.json'}", f"--csv={tmp_path / 'b.csv'}")  # fmt: skip
    assert code == 0, text
    assert "all at once (rate inf)" in text and "after 2 warmup requests" in text
    assert "warmup: 2 requests (0 failed), not counted" in text and "model: fake-llm" in text
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["options"]["model"] == "fake-llm"  # asked of the server, not null
    assert data["options"]["rate"] == "inf" and data["options"]["warmup"] == 2
    assert data["warmup"] == {"requests": 2, "failed": 0} and data["summary"]["sent"] == 5
    assert len(threaded_server.seen.bodies) == 7
    rows = (tmp_path / "b.csv").read_text().splitlines()
    assert len(rows) == 6 and rows[1].split(",")[9] == "server"  # input_tokens_from


@pytest.mark.parametrize(
    ("goodput", "attainment"),
    [("ttft:1000 tpot:50", 1.0), ("ttft:1000", 1.0), ("ttft:1", 0.0)],
    ids=["one token meets any TPOT SLO (as vLLM)", "without TPOT", "a TTFT SLO still applies"],
)
def test_goodput_of_one_token_answers(
    threaded_server: fake_llm.Server, tmp_path: pathlib.Path, goodput: str, attainment: float
) -> None:
    args = ["-H", "X-TTFT: 0.01", "-n", "3", "--output-tokens", "1", "-q", "--goodput", goodput]
    code, text = bench(threaded_server.url, *args, f"--json={tmp_path / 'b.json'}")
    assert code == 0, text
    assert json.loads((tmp_path / "b.json").read_text())["summary"]["slo_attainment"] == attainment


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
        (["--input-tokens", "0"], "--input-tokens: must be >= 1"),
        # hostile sizes: a MemoryError, a hang or a silent clip before
        (["--rate", "1e12"], "rate: must be at most 100000 requests per second"),
        (["--pattern", "poisson:rate=1e12"], "rate: must be at most 100000 req/s"),
        (["-c", "100000000", "-n", "2"], "concurrency: must be at most 100000 users"),
        (["--pattern", "closed:users=1000000000"], "users: must be within [1, 100000]"),
        (["--rate", "5", "--burstiness", "1e-300"], "burstiness: must be >= 0.001"),
        (["--input-tokens", "1e12"], "--input-tokens: must be at most 32768 tokens"),
        (["--output-tokens", "inf"], "--output-tokens: must be at most 32768 tokens"),
        (["--output-stddev", "inf"], "--output-stddev: must be a finite number of tokens"),
        (["--body", '{"a": 1}'], "body: applies to --protocol kserve or http"),  # ignored, unsaid
        (["-H", "Bad Name: x"], "a header name is letters, digits"),
        (["--rate", "inf"], "rate: inf sends every request at once: give --requests"),
        (
            ["-c", "2", "--max-in-flight", "3"],
            "--max-in-flight applies to an open loop (--rate, --pattern, "
            "--trace); in a closed loop (--concurrency N",
        ),
        (["--warmup", "-1"], "warmup: must be 0 to 100,000 requests"),
        (["-n", "2", "--warmup", "99999999999"], "warmup: must be 0 to 100,000 requests"),  # was a MemoryError
        (["-n", "2", "-H", "X-A: b\r\nX-B: c"], "a header value has no control characters"),
        (["-n", "2", "--goodput", "ttft:100000 ttft:1"], "ttft: given twice"),
        (["-n", "2", "--trace", "."], "a directory: give a trace file"),
        (["--rate", "nan", "-n", "2"], "rate: must be > 0 requests per second, or inf"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_bad_options_exit_2_with_a_message_and_no_traceback(args: list[str], message: str) -> None:
    code, text = bench("http://127.0.0.1:9", *args)
    assert code == 2, text
    assert message in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1", "IPv6"),
        ("http://127.0.0.1:99999", "Port out of range"),
        ("http://127.0.0.1:abc", "port"),
    ],
)
def test_a_url_that_does_not_parse_is_named_before_any_load(url: str, why: str) -> None:
    code, text = bench(url, "-n", "1", "-q")
    assert code == 2, text
    assert "url: must be an http:// or https:// URL (" in text and why in text and "Traceback" not in text
    assert "unexpected error" not in text and "swell bench http" not in text  # refused before the run starts


def test_a_body_file_that_is_not_text_is_named(tmp_path: pathlib.Path) -> None:
    blob = tmp_path / "body.bin"
    blob.write_bytes(b"\xff\xfe\x00\x81 not text")
    code, text = bench("http://127.0.0.1:9", "--protocol", "http", "--body", f"@{blob}", "-n", "1")
    assert code == 2, text
    assert "not UTF-8 text: invalid start byte at byte 0" in text and "UnicodeDecodeError" not in text


def test_bad_url_and_unreachable_server(tmp_path: pathlib.Path) -> None:
    code, text = bench("localhost:8000", "-n", "1")
    assert code == 2 and "http:// or https:// URL" in text
    code, text = bench("http://127.0.0.1:9", "-n", "3", "-q", "--model", "m")
    assert code == 1 and "cannot reach http://127.0.0.1:9: connection refused" in text, text
    code, text = bench("http://127.0.0.1:9", "-d", "60", "--sweep", "concurrency=1,2", "-q", "--model", "m")
    assert code == 1 and "cannot reach" in text, text  # at once: not a minute of refused requests


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


@pytest.mark.parametrize(
    ("rate", "requests", "duration", "said"),
    [
        pytest.param(0.001, 10, None, " (about 2.8 h at 0.001 req/s)", id="a-tiny-rate-says-the-run-takes-hours"),
        pytest.param(2.0, 10, None, " (about 5 s at 2 req/s)", id="a-count-at-a-rate-says-how-long"),
        pytest.param(2.0, 10, 3.0, "", id="a-duration-that-ends-it-first-says-nothing-more"),
        pytest.param(None, 10, None, "", id="a-closed-loop-has-no-rate-to-say-it-by"),
    ],
)
def test_the_start_line_says_how_long_a_count_takes(
    rate: float | None, requests: int, duration: float | None, said: str
) -> None:
    opts = options.Options(url="http://127.0.0.1:9", rate=rate, requests=requests, duration_s=duration,
                           concurrency=None if rate else 1)  # fmt: skip
    assert bench_cli._expected(opts, options.plan(opts)) == said


@pytest.mark.parametrize(
    ("errs", "said"),
    [
        pytest.param({"404 Not Found: model 'x' not found": 10}, "the server answers, but not to openai-chat requests for --model 'x'",
                     id="every-request-refused-as-unknown-points-at-model-and-protocol"),
        pytest.param({"connection refused": 10}, "is http://127.0.0.1:9 serving?", id="no-answer-asks-whether-it-serves"),
        pytest.param({"404 Not Found": 5, "connection refused": 5}, "is http://127.0.0.1:9 serving?",
                     id="mixed-failures-ask-the-plain-question"),
    ],
)  # fmt: skip
def test_when_every_request_failed_the_hint_fits_the_failures(errs: dict[str, int], said: str) -> None:
    opts = options.Options(url="http://127.0.0.1:9", model="x", rate=1.0, requests=10)
    assert said in bench_cli._failed_hint(errs, opts)


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        pytest.param("--input-tokens", "-5", "Invalid value for --input-tokens: must be >= 1", id="input-tokens"),
        pytest.param("--output-stddev", "-5", "Invalid value for --output-stddev: must be >= 0", id="output-stddev"),
    ],
)
def test_a_bad_token_shape_is_named_by_its_option(option: str, value: str, said: str) -> None:
    code, text = bench("http://127.0.0.1:9", "-n", "1", "--rate", "1", "-m", "x", option, value)
    assert code == 2 and said in text and "input_mean" not in text, text
