"""Figures for reports: time series (lines, steps, scatter, two y axes, event markers), histograms.

Built on matplotlib's object API (no pyplot, no global backend state), so any thread or process
can draw. `bucketed` turns raw events into per-interval rates or percentiles; empty intervals are
NaN (a gap in the line), never a false zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from matplotlib import figure as mpl_figure
from matplotlib.axes import Axes

Floats = npt.NDArray[np.float64]
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
Stat = Literal["rate", "count", "sum", "mean", "p50", "p90", "p95", "p99", "max"]


@dataclass(frozen=True, kw_only=True)
class Series:
    """One line on a time-series figure."""

    label: str
    t: Sequence[float] | npt.NDArray[np.floating[Any] | np.integer[Any]]
    y: Sequence[float] | npt.NDArray[np.floating[Any] | np.integer[Any]]
    style: Literal["line", "step", "scatter", "area"] = "line"
    axis: Literal["left", "right"] = "left"
    color: str | None = None
    linestyle: str = "-"


@dataclass(frozen=True, kw_only=True)
class Marker:
    """A labelled vertical line at time `t` (a surge starts, a node becomes ready)."""

    t: float
    label: str


def time_series(
    title: str,
    series: Sequence[Series],
    *,
    ylabel: str = "",
    y2label: str = "",
    xlabel: str = "time (s)",
    markers: Sequence[Marker] = (),
    ylog: bool = False,
    from_zero: bool = True,
    size: tuple[float, float] = (9.0, 3.2),
) -> mpl_figure.Figure:
    """A figure of `series` against time; series with axis='right' share a second y axis.

    Colours come from one palette across both axes; `from_zero` starts linear y axes at 0.
    """
    fig = mpl_figure.Figure(figsize=size, layout="constrained")
    left = fig.add_subplot()
    right = left.twinx() if any(s.axis == "right" for s in series) else None
    for i, s in enumerate(series):
        draw(
            right if (s.axis == "right" and right is not None) else left,
            s,
            s.color or PALETTE[i % len(PALETTE)],
        )
    for m in markers:
        left.axvline(m.t, color="#8a92a3", linestyle="--", linewidth=0.8)
        left.annotate(
            m.label,
            (m.t, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            rotation=90,
            va="top",
            ha="right",
            color="#5b6475",
        )
    left.set_title(title, fontsize=11, loc="left")
    left.set_xlabel(xlabel)
    left.set_ylabel(ylabel)
    if ylog:
        left.set_yscale("log")
    elif from_zero:
        left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    if right is not None:
        right.set_ylabel(y2label)
        if from_zero:
            right.set_ylim(bottom=0)
    handles, labels = left.get_legend_handles_labels()
    if right is not None:
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if handles:
        # Below the axes: never on top of the data, whatever its shape.
        left.legend(
            handles,
            labels,
            fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=min(len(handles), 5),
            frameon=False,
        )
    return fig


def peak(s: Series) -> float | None:
    """The highest value of a series, its gaps (NaN) skipped; None when it has none."""
    y = np.asarray(s.y, dtype=float)
    return float(np.nanmax(y)) if y.size and not np.all(np.isnan(y)) else None


def draw(ax: Axes, s: Series, color: str) -> None:
    """One series on `ax` in its style."""
    t, y = np.asarray(s.t, dtype=np.float64), np.asarray(s.y, dtype=np.float64)
    if s.style == "step":
        ax.step(t, y, where="post", label=s.label, color=color, linestyle=s.linestyle)
    elif s.style == "scatter":
        ax.scatter(t, y, s=6, alpha=0.45 if len(t) < 5000 else 0.25, label=s.label, color=color, linewidths=0)
    elif s.style == "area":
        ax.fill_between(t, y, step="post", alpha=0.3, label=s.label, color=color)
    else:
        # Small markers: an interval with data between two without still shows.
        ax.plot(
            t, y, label=s.label, color=color, linewidth=1.3, marker=".", markersize=3, linestyle=s.linestyle
        )


def histogram(
    title: str, values: Sequence[float] | Floats, *, bins: int = 50, xlabel: str = "", logx: bool = False
) -> mpl_figure.Figure:
    """A histogram of `values` (NaNs dropped)."""
    fig = mpl_figure.Figure(figsize=(6.0, 3.0), layout="constrained")
    ax = fig.add_subplot()
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if logx and len(data) and data.min() > 0:
        edges: int | list[float] = np.geomspace(data.min(), data.max() * 1.0001, bins + 1).tolist()
        ax.set_xscale("log")
    else:
        edges = bins
    ax.hist(data, bins=edges, color="#4c72b0", alpha=0.85)
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.grid(alpha=0.3)
    return fig


def bucketed(
    t: Sequence[float] | Floats,
    y: Sequence[float] | Floats | None = None,
    *,
    width_s: float = 1.0,
    stat: Stat = "rate",
    start: float = 0.0,
    end: float | None = None,
) -> tuple[Floats, Floats]:
    """Events at times `t` (with values `y`) summarised per `width_s` bucket: (bucket starts, values).

    'rate' is events per second and 'count' events per bucket (0 where there are none); the other
    statistics are over `y` and NaN where a bucket has no events.
    """
    times = np.asarray(t, dtype=np.float64)
    stop = float(end if end is not None else (times.max() if len(times) else start))
    # Buckets cover [start, end] inclusive of `end` (the last event is never dropped).
    n_buckets = max(1, int(np.floor((stop - start) / width_s)) + 1)
    edges = start + width_s * np.arange(n_buckets + 1, dtype=np.float64)
    idx = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, len(edges) - 2)
    inside = (times >= edges[0]) & (times < edges[-1])
    idx = idx[inside]
    n = len(edges) - 1
    if stat in ("rate", "count"):
        counts = np.bincount(idx, minlength=n).astype(np.float64)
        return edges[:-1], counts / width_s if stat == "rate" else counts
    values = np.asarray(y if y is not None else np.ones(len(times)), dtype=np.float64)[inside]
    if stat == "sum":
        return edges[:-1], np.bincount(idx, weights=values, minlength=n).astype(np.float64)
    out = np.full(n, np.nan)
    order = np.argsort(idx, kind="stable")
    groups = np.split(values[order], np.cumsum(np.bincount(idx, minlength=n))[:-1])
    for i, group in enumerate(groups):
        if len(group):
            out[i] = _stat(group, stat)
    return edges[:-1], out


def _stat(values: Floats, stat: Stat) -> float:
    if stat == "mean":
        return float(values.mean())
    if stat == "max":
        return float(values.max())
    return float(np.percentile(values, float(stat[1:])))
