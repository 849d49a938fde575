"""One picture of a run: panels stacked on one shared time axis (load, latency, replicas, ...).

The demo's report and the simulator's report draw with it: each `Panel` holds series (drawn as
`plots.draw` does), horizontal reference lines (an SLO) and scale events (▲ up, ▼ down, labelled
with the bound that held while there are few enough to read). The title states what the run was
judged against (the SLO), so the picture reads on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib import figure as mpl_figure
from matplotlib.axes import Axes

from swell.report import plots

SLO_RED = "#c44e52"
UP_GREEN = "#2f7d4a"
DOWN_BLUE = "#3a5a98"
MAX_EVENT_LABELS = 12  # above this, events are marked but not labelled (they would overlap)


@dataclass(frozen=True, kw_only=True)
class Line:
    """A horizontal reference line (an SLO target) on one panel."""

    y: float
    label: str
    color: str = SLO_RED


@dataclass(frozen=True, kw_only=True)
class Event:
    """A scale event at time `t`: replicas went from `before` to `after`; `label` says why."""

    t: float
    before: int
    after: int
    label: str = ""


@dataclass(frozen=True, kw_only=True)
class Panel:
    """One panel: its y label, series, reference lines, scale events; `height` is relative."""

    ylabel: str
    series: tuple[plots.Series, ...]
    lines: tuple[Line, ...] = ()
    events: tuple[Event, ...] = ()
    log: bool = False
    height: float = 1.0
    from_zero: bool = True
    top: float | None = None  # the y axis ends here; a series above it is noted as off the chart


def _merged(lines: Sequence[Line]) -> list[Line]:
    """Lines at the same height drawn once, their labels joined ('TTFT SLO / e2e SLO')."""
    by_y: dict[float, list[Line]] = {}
    for line in lines:
        by_y.setdefault(line.y, []).append(line)
    return [
        Line(y=y, label=" / ".join(x.label for x in same), color=same[0].color) for y, same in by_y.items()
    ]


def _events(ax: Axes, events: Sequence[Event]) -> None:
    labelled = len(events) <= MAX_EVENT_LABELS
    for i, e in enumerate(events):
        up = e.after > e.before
        color = UP_GREEN if up else DOWN_BLUE
        ax.axvline(e.t, color=color, linewidth=0.6, alpha=0.35)
        ax.plot([e.t], [e.after], marker="^" if up else "v", color=color, markersize=7, linestyle="none")
        if labelled:
            text = f"{e.before}→{e.after}" + (f" ({e.label})" if e.label else "")
            ax.annotate(
                text,
                (e.t, e.after),
                xytext=(4, 6 if i % 2 == 0 else -12),
                textcoords="offset points",
                fontsize=7,
                color=color,
            )


def _clip(ax: Axes, panel: Panel) -> None:
    """End the y axis at `panel.top`, and say which series go above it and how far (a forecast 5x the
    load would otherwise flatten the load it is read against)."""
    assert panel.top is not None
    over = []
    for s in panel.series:
        peak = plots.peak(s)
        if peak is not None and peak > panel.top:
            over.append(f"{s.label or 'a series'} up to {peak:.3g}")
    if not over:
        return
    ax.set_ylim(top=panel.top)
    ax.annotate("off the chart: " + "; ".join(over), (1.0, 1.0), xycoords="axes fraction", xytext=(-2, 3),
                textcoords="offset points", fontsize=7, color="#555555", horizontalalignment="right")


def figure(
    panels: Sequence[Panel],
    *,
    title: str = "",
    subtitle: str = "",
    xlabel: str = "time (s)",
    width: float = 10.0,
) -> mpl_figure.Figure:
    """The panels one above the other, sharing the time axis; `title` and `subtitle` on top."""
    heights = [p.height for p in panels]
    fig = mpl_figure.Figure(figsize=(width, 0.6 + 2.3 * sum(heights)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        for i, s in enumerate(panel.series):
            plots.draw(ax, s, s.color or plots.PALETTE[i % len(plots.PALETTE)])
        for line in _merged(panel.lines):
            ax.axhline(line.y, color=line.color, linewidth=1.0, linestyle="--")
            ax.annotate(
                line.label,
                (1.0, line.y),
                xycoords=("axes fraction", "data"),
                xytext=(-2, 2),
                textcoords="offset points",
                fontsize=7,
                color=line.color,
                horizontalalignment="right",
            )
        _events(ax, panel.events)
        ax.set_ylabel(panel.ylabel)
        if panel.log:
            ax.set_yscale("log")
        elif panel.from_zero:
            ax.set_ylim(bottom=0)
        if panel.top is not None:
            _clip(ax, panel)
        ax.grid(alpha=0.3)
        if any(s.label for s in panel.series):
            ax.legend(fontsize=8, loc="upper left", ncol=min(4, len(panel.series)), framealpha=0.7)
    axes[-1, 0].set_xlabel(xlabel)
    if title or subtitle:
        fig.suptitle(
            title + (f"\n{subtitle}" if subtitle else ""), fontsize=10, x=0.01, horizontalalignment="left"
        )
    return fig


def slo_text(*, ttft_s: float | None, e2e_s: float | None, percentile: float | None = None) -> str:
    """The SLO in words: 'SLO: TTFT ≤ 1 s and end-to-end ≤ 4 s (p95)', or 'no SLO'."""
    parts = [f"{name} ≤ {v:g} s" for name, v in (("TTFT", ttft_s), ("end-to-end", e2e_s)) if v is not None]
    if not parts:
        return "no SLO"
    return "SLO: " + " and ".join(parts) + (f" (p{percentile:g})" if percentile is not None else "")
