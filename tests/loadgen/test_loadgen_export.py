"""JSON, CSV and HTML outputs of a run agree with its records."""

from __future__ import annotations

import csv
import dataclasses
import json
import pathlib

import pytest

from swell.loadgen import charts, export, options, runner, summary

from . import test_loadgen_summary


def _result(interrupted: bool = False) -> runner.Result:
    rows = tuple(
        [
            test_loadgen_summary.rec(i, start=i * 0.1, scheduled=i * 0.1, e2e=0.5 + (i % 5) * 0.1)
            for i in range(40)
        ]
        + [
            test_loadgen_summary.rec(40, start=2.0, error="http_503"),
            dataclasses.replace(
                test_loadgen_summary.rec(41, start=2.1, error="timeout", ttft=None),
                error_detail="TimeoutError",
                attempts=2,
            ),
        ]
    )
    opts = options.Options(url="http://127.0.0.1:1", rate=10.0, headers=(("Authorization", "Bearer secret"),))
    return runner.Result(
        options=opts,
        description="Poisson, 10 req/s",
        url="http://127.0.0.1:1/v1/chat/completions",
        started_at=1_700_000_000.0,
        records=rows,
        summary=summary.summarize(rows, duration_s=4.6, slo=summary.Slo(ttft_s=0.2)),
        interrupted=interrupted,
    )


def test_json_has_options_summary_and_a_timeline(tmp_path: pathlib.Path) -> None:
    path = export.write_json(_result(), tmp_path / "out" / "bench.json")
    data = json.loads(path.read_text())
    assert data["summary"]["ok"] == 40 and data["summary"]["errors"] == {"http_503": 1, "timeout": 1}
    assert data["summary"]["slo"] == {"ttft_s": 0.2, "tpot_s": None, "e2e_s": None}
    assert data["options"]["headers"] == ["Authorization"]  # never the secret itself
    assert "secret" not in path.read_text()
    line = data["timeline"]
    assert len(line["t"]) == len(line["offered_rps"]) == len(line["e2e_p50_s"])
    assert sum(line["offered_rps"]) * 0.5 == 42  # every request scheduled once (0.5 s buckets)
    assert sum(line["completed_rps"]) * 0.5 == 40 and sum(line["errors_rps"]) * 0.5 == 2
    assert line["e2e_p50_s"][-1] is None  # an interval with no successes has no latency, not 0
    assert data["started_at"].startswith("2023-11-14")
    assert data["summary"]["error_examples"] == {"timeout": "TimeoutError"}
    assert data["warmup"] == {"requests": 0, "failed": 0}


def test_csv_has_a_row_per_request(tmp_path: pathlib.Path) -> None:
    path = export.write_csv(_result(), tmp_path / "bench.csv")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 42 and tuple(rows[0]) == export.CSV_COLUMNS
    assert float(rows[3]["e2e_s"]) == pytest.approx(0.8) and rows[41]["error"] == "timeout"
    assert rows[41]["ttft_s"] == "" and rows[0]["status"] == "200"
    assert rows[0]["input_tokens_from"] == "requested" and rows[0]["error_detail"] == ""
    assert rows[41]["error_detail"] == "TimeoutError" and rows[41]["attempts"] == "2"


def test_html_report_plots_load_latency_and_errors(tmp_path: pathlib.Path) -> None:
    page = charts.write(_result(interrupted=True), tmp_path / "bench.html").read_text()
    for title in ("Summary", "Load and throughput", "Latency over time", "Errors", "Interrupted"):
        assert title in page
    assert page.count("data:image/png;base64,") == 4
    assert "goodput (req/s)" in page


@pytest.mark.parametrize(
    ("duration", "width"), [(10, 0.5), (150, 0.5), (151, 1.0), (3600, 15.0), (10**7, 3600.0)]
)
def test_bucket_width_keeps_plots_readable(duration: float, width: float) -> None:
    assert export.bucket_width(duration) == width
