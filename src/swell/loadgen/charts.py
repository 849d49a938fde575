"""The HTML report of a load run: summary tables, offered load and throughput, latency over time.

Built on swell.report, from the same timeline as the JSON export, so the page and the numbers
always agree. One self-contained file: `charts.write(result, "bench.html")`.
"""

from __future__ import annotations

import pathlib

import numpy as np

from swell.loadgen import export, runner, summary
from swell.report import html, plots


def summary_tables(s: summary.Summary) -> tuple[html.Table, html.Table]:
    """The headline numbers and the latency percentiles (ms), as report tables."""
    rows: list[tuple[object, ...]] = [
        ("duration (s)", s.duration_s),
        ("requests sent", s.sent),
        ("succeeded", s.ok),
        ("failed", s.failed),
        ("throughput (req/s)", s.request_rate),
        ("output tokens/s", s.output_token_rate),
        ("input tokens/s", s.input_token_rate),
    ]
    if s.cancelled:
        rows.append(("cancelled (interrupted)", s.cancelled))
    if s.goodput_rps is not None:
        rows.append(("goodput (req/s)", s.goodput_rps))
        rows.append(("SLO attainment", f"{(s.slo_attainment or 0):.1%}"))
    headline = html.Table(columns=("metric", "value"), rows=tuple(rows))
    latency_rows = []
    for name, st in (
        ("TTFT", s.ttft),
        ("ITL", s.itl),
        ("TPOT", s.tpot),
        ("end-to-end", s.e2e),
        ("send lag", s.lag),
    ):
        if st.count:
            values = (st.mean, st.p50, st.p90, st.p95, st.p99, st.max)
            latency_rows.append((name, st.count, *(summary.ms(v) for v in values)))
    columns = ("latency (ms)", "n", "mean", "p50", "p90", "p95", "p99", "max")
    return headline, html.Table(columns=columns, rows=tuple(latency_rows))


def sections(result: runner.Result) -> list[html.Section]:
    """The report's sections (the demo and others may add their own around them)."""
    s = result.summary
    line = export.timeline(result)
    t = np.asarray(line["t"], dtype=np.float64)

    def series(key: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in line[key]], dtype=np.float64)

    headline, latency = summary_tables(s)
    out = [
        html.Section(
            title="Summary",
            text=f"{result.description} against {result.url}."
            + (" Interrupted: partial results." if result.interrupted else ""),
            tables=(headline, latency),
        )
    ]
    load = plots.time_series(
        "Offered load and throughput",
        [
            plots.Series(label="offered (req/s)", t=t, y=series("offered_rps"), style="step"),
            plots.Series(label="completed (req/s)", t=t, y=series("completed_rps")),
            plots.Series(label="errors (req/s)", t=t, y=series("errors_rps"), color="#c44e52"),
            plots.Series(label="in flight", t=t, y=series("in_flight"), axis="right", color="#8c8c8c"),
        ],
        ylabel="requests/s",
        y2label="requests in flight",
    )
    tokens = plots.time_series(
        "Output tokens per second",
        [plots.Series(label="output tokens/s", t=t, y=series("output_tokens_per_s"))],
        ylabel="tokens/s",
    )
    out.append(html.Section(title="Load and throughput", figures=(load, tokens)))
    ok = [r for r in result.records if r.ok]
    lat = [
        plots.Series(
            label="request e2e", t=[r.start_s for r in ok], y=[r.e2e_s for r in ok], style="scatter"
        ),
        plots.Series(label="e2e p50", t=t, y=series("e2e_p50_s")),
        plots.Series(label="e2e p95", t=t, y=series("e2e_p95_s")),
    ]
    if "ttft_p50_s" in line:
        lat += [
            plots.Series(label="TTFT p50", t=t, y=series("ttft_p50_s")),
            plots.Series(label="TTFT p95", t=t, y=series("ttft_p95_s")),
        ]
    figures = [plots.time_series("Latency by request start time", lat, ylabel="seconds")]
    if ok:
        figures.append(
            plots.histogram("End-to-end latency", [r.e2e_s for r in ok], xlabel="seconds", logx=True)
        )
    out.append(html.Section(title="Latency over time", figures=tuple(figures)))
    if s.errors:
        table = html.Table(columns=("error", "requests"), rows=tuple(s.errors.items()))
        out.append(html.Section(title="Errors", tables=(table,)))
    return out


def write(result: runner.Result, path: str | pathlib.Path) -> pathlib.Path:
    """The report as one self-contained HTML file."""
    subtitle = f"{result.summary.sent} requests over {result.summary.duration_s:.1f} s"
    return html.write(path, "swell bench", sections(result), subtitle=subtitle)
