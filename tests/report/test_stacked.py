"""The one stacked picture: panels on a shared time axis, the SLO line, scale events with their bound."""

from __future__ import annotations

import numpy as np

from swell.report import html, plots, stacked


def _panels() -> list[stacked.Panel]:
    t = np.arange(0.0, 60.0, 1.0)
    return [
        stacked.Panel(ylabel="req/s", series=(plots.Series(label="offered", t=t, y=1 + (t > 20)),)),
        stacked.Panel(
            ylabel="latency (s)",
            series=(plots.Series(label="e2e p95", t=t, y=0.5 + t / 100, linestyle=":"),),
            lines=(stacked.Line(y=4.0, label="e2e SLO"), stacked.Line(y=4.0, label="TTFT SLO")),
            log=True,
        ),
        stacked.Panel(
            ylabel="replicas",
            series=(plots.Series(label="ready", t=t, y=1 + (t > 25) - (t > 50), style="step"),),
            events=(
                stacked.Event(t=24.0, before=1, after=2, label="panic"),
                stacked.Event(t=49.0, before=2, after=1, label="stabilization"),
            ),
        ),
    ]


def test_panels_share_one_time_axis_under_the_slo_title() -> None:
    fig = stacked.figure(
        _panels(), title="demo", subtitle=stacked.slo_text(ttft_s=1.0, e2e_s=4.0, percentile=95)
    )
    axes = fig.axes
    assert [a.get_ylabel() for a in axes] == ["req/s", "latency (s)", "replicas"]
    assert all(a.get_shared_x_axes().joined(axes[0], a) for a in axes)
    assert "SLO: TTFT ≤ 1 s and end-to-end ≤ 4 s (p95)" in fig.get_suptitle()
    texts = [t.get_text() for a in axes for t in a.texts]
    assert "e2e SLO / TTFT SLO" in texts  # one line at one height, both names
    assert "1→2 (panic)" in texts and "2→1 (stabilization)" in texts
    assert axes[1].get_yscale() == "log"
    assert html.figure_html(fig).startswith("<figure><img")


def test_many_events_are_marked_but_not_labelled() -> None:
    events = tuple(stacked.Event(t=float(i), before=i % 3, after=(i + 1) % 3) for i in range(40))
    panel = stacked.Panel(ylabel="replicas", series=(), events=events)
    fig = stacked.figure([panel])
    assert len(fig.axes[0].texts) == 0 and len(fig.axes[0].lines) == 2 * 40


def test_no_slo_is_said_so() -> None:
    assert stacked.slo_text(ttft_s=None, e2e_s=None) == "no SLO"


def test_a_series_above_the_panels_top_is_noted_not_drawn_to_its_peak() -> None:
    t = np.arange(0.0, 60.0, 1.0)
    load = plots.Series(label="offered", t=t, y=10 + t / 10)
    forecast = plots.Series(label="forecast", t=t, y=np.where(t > 30, 95.0, 12.0))
    fig = stacked.figure([stacked.Panel(ylabel="req/s", series=(load, forecast), top=32.0)])
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 32.0)
    assert [x.get_text() for x in ax.texts] == ["off the chart: forecast up to 95"]
    under = stacked.figure([stacked.Panel(ylabel="req/s", series=(load,), top=32.0)]).axes[0]
    assert not under.texts and under.get_ylim()[1] < 32.0  # nothing above: the axis fits the data
