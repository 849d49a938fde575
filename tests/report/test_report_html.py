"""The HTML report helper: self-contained pages, escaping, figures inline; bucketed statistics."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

from swell.report import html, plots


def _figure() -> object:
    t = np.arange(0, 60, 1.0)
    return plots.time_series(
        "rate",
        [
            plots.Series(label="offered", t=t, y=np.sin(t) + 2, style="step"),
            plots.Series(label="p95 (s)", t=t, y=np.cos(t) + 2, axis="right"),
            plots.Series(label="requests", t=t, y=t % 7, style="scatter"),
            plots.Series(label="area", t=t, y=t % 3, style="area"),
        ],
        ylabel="req/s",
        y2label="s",
        markers=[plots.Marker(t=30, label="surge")],
    )


def test_a_page_is_one_self_contained_file(tmp_path: pathlib.Path) -> None:
    section = html.Section(
        title="Latency <p95>",
        text="first & second\n\nthird",
        tables=(html.Table(columns=("metric", "value"), rows=(("p50", 0.123456), ("errors", None))),),
        figures=(_figure(), plots.histogram("e2e", np.random.default_rng(0).exponential(1, 500), logx=True)),
    )
    path = html.write(tmp_path / "sub" / "r.html", "Bench <report>", [section], subtitle="a & b")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") == 2
    assert "Latency &lt;p95&gt;" in page and "Bench &lt;report&gt;" in page and "first &amp; second" in page
    assert "<td>0.1235</td>" in page and "<td>—</td>" in page
    assert "http://" not in page.replace("http://www.w3.org", "")  # nothing fetched from outside


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.0, "0"), (0.123456, "0.1235"), (1234.5, "1234"), (13910.2, "13,910"), (0.00012, "1.20e-04")],
)
def test_numbers_read_well(value: float, shown: str) -> None:
    assert html.number(value) == shown


def test_svg_figures_are_inlined_as_markup() -> None:
    page = html.render("t", [html.Section(title="s", figures=(_figure(),))], fmt="svg")
    assert "<svg" in page and "<?xml" not in page and "base64" not in page


def test_bucketed_rates_counts_and_percentiles() -> None:
    t = np.array([0.1, 0.2, 0.3, 2.5, 2.6])
    y = np.array([1.0, 2.0, 3.0, 10.0, 20.0])
    starts, rate = plots.bucketed(t, width_s=1.0, end=3.0)
    assert starts.tolist() == [0.0, 1.0, 2.0, 3.0] and rate.tolist() == [3.0, 0.0, 2.0, 0.0]
    _, half = plots.bucketed(t, width_s=2.0, stat="rate")
    assert half.tolist() == [1.5, 1.0]
    _, p50 = plots.bucketed(t, y, width_s=1.0, stat="p50", end=3.0)
    assert p50[0] == 2.0 and math.isnan(p50[1]) and p50[2] == 15.0
    _, total = plots.bucketed(t, y, width_s=1.0, stat="sum", end=2.9)
    assert total.tolist() == [6.0, 0.0, 30.0]
    _, mx = plots.bucketed(t, y, width_s=10.0, stat="max")
    assert mx.tolist() == [20.0]
    empty_starts, empty = plots.bucketed([], width_s=1.0)
    assert len(empty_starts) == 1 and empty.tolist() == [0.0]


@pytest.mark.parametrize("stat", ["mean", "p90", "p95", "p99"])
def test_bucketed_statistics_match_numpy(stat: str) -> None:
    rng = np.random.default_rng(0)
    t, y = rng.uniform(0, 10, 1000), rng.exponential(1, 1000)
    _, got = plots.bucketed(t, y, width_s=5.0, stat=stat, end=9.999)  # type: ignore[arg-type]
    first = y[t < 5]
    want = first.mean() if stat == "mean" else np.percentile(first, float(stat[1:]))
    assert got[0] == pytest.approx(want)
