"""The comparison as a self-contained HTML page: a table, then per policy four stacked plots.

For each policy, one above the other on a shared time axis: offered load, replicas (desired,
ready, starting and pending, with the oracle's need, and the workers running when the recipe
scales workers), nodes (ready and provisioning), and TTFT and end-to-end latency percentiles
against the SLO. Then the decisions that changed the count of replicas or workers.
"""

from __future__ import annotations

import html as html_mod
import pathlib
from collections.abc import Sequence
from math import nan

import numpy as np
from matplotlib import figure as mpl_figure

from swell.clusters.sim import oracle as oracle_mod
from swell.clusters.sim import outcomes, table
from swell.core.policies import schedule
from swell.report import html, plots, stacked

MAX_DECISION_ROWS = 300


def _width(horizon_s: float) -> float:
    return float(max(10.0, round(horizon_s / 240.0 / 10.0) * 10.0))


PLAN_LOAD, PLAN_FORECAST = "planner:load", "planner:forecast"
PALETTE_SPARE = "#8c8c8c"


def planner_series(run: outcomes.Run, scale: float) -> list[plots.Series]:
    """What the planner saw and planned, from its decisions' proposals: the load it measured and
    its forecast over the lead time (req/s), then the replicas that forecast needs. Empty for
    policies that do not plan."""
    t: list[float] = []
    seen: list[float] = []
    ahead: list[float] = []
    need: list[float] = []
    for d in run.decisions:
        by = {name: (value, n) for name, value, n in d.proposals}
        if PLAN_FORECAST not in by:
            continue
        t.append(d.t / scale)
        seen.append(nan if (v := by.get(PLAN_LOAD, (None, None))[0]) is None else v)
        ahead.append(nan if (v := by[PLAN_FORECAST][0]) is None else v)
        need.append(nan if (n := by[PLAN_FORECAST][1]) is None else n)
    if not t:
        return []
    return [
        plots.Series(label="load the planner saw", t=t, y=seen, color=plots.PALETTE[4], linestyle=":"),
        plots.Series(label="forecast over the lead time", t=t, y=ahead, color=plots.PALETTE[3], linestyle="--"),
        plots.Series(label="planned (forecast need)", t=t, y=need, style="step", color=plots.PALETTE[4],
                     linestyle=":"),
    ]  # fmt: skip


def capacity_series(run: outcomes.Run, scale: float) -> list[plots.Series]:
    """What the ready replicas serve within the SLO by the planner's model (ready x capacity per
    replica, req/s) at each decision: the line offered load should stay under, moving as the model
    learns. Empty for policies without a capacity model."""
    tl = run.timeline
    pts = [(d.t, d.capacity_rps) for d in run.decisions if d.capacity_rps is not None]
    if not pts or not len(tl.t):
        return []
    t = np.array([p[0] for p in pts])
    at = np.clip(np.searchsorted(tl.t, t, side="right") - 1, 0, len(tl.t) - 1)
    y = tl.ready[at] * np.array([p[1] for p in pts])
    return [plots.Series(label="ready replicas serve (model)", t=t / scale, y=y, style="step",
                         color=plots.PALETTE[2], linestyle="-.")]  # fmt: skip


def spare_series(run: outcomes.Run, scale: float) -> list[plots.Series]:
    """The spare nodes the policy asked to keep ahead of its replicas (the planner's nodes ahead);
    empty where no decision asked for any."""
    asked = [(d.t / scale, d.spare_nodes) for d in run.decisions if d.spare_nodes is not None]
    if not any(n for _, n in asked):
        return []
    t, n = zip(*asked, strict=True)
    return [plots.Series(label="spare asked", t=list(t), y=list(n), style="step", color=PALETTE_SPARE,
                         linestyle="--")]  # fmt: skip


def schedule_series(run: outcomes.Run, scale: float) -> list[plots.Series]:
    """The floor the recipe's schedule windows set, minute by minute; empty where no window raises
    it above min_replicas (a schedule's known peak, as `--suggest-schedule` writes one)."""
    rec = run.config
    if not rec.schedules:
        return []
    t = np.arange(0.0, run.horizon_s + 60.0, 60.0)
    lo = np.array([schedule.bounds(rec, run.start_s + x).lo for x in t])
    if not (lo > rec.autoscaling.min_replicas).any():
        return []
    return [plots.Series(label="scheduled floor", t=t / scale, y=lo, style="step", color="#333333",
                         linestyle=":")]  # fmt: skip


TOP_SHARE = 2.0  # a panel's y axis ends at this times the highest of what ran (load, capacity, replicas)


def _top(series: list[plots.Series]) -> float | None:
    """Where a panel's axis ends: TOP_SHARE x the highest of `series` (what ran: a forecast or plan far
    above it is noted, not drawn to its peak); None without a value."""
    peaks = [p for s in series if (p := plots.peak(s)) is not None]
    return TOP_SHARE * max(peaks) if peaks and max(peaks) > 0 else None


def policy_figure(
    run: outcomes.Run, arrival_t: outcomes.Floats, orc: oracle_mod.Oracle | None
) -> mpl_figure.Figure:
    """Offered load, replicas with scale events, nodes, latency percentiles against the SLO: one
    above the other on one time axis (`report.stacked`, as the demo draws)."""
    w = _width(run.horizon_s)
    scale, unit = (3600.0, "h") if run.horizon_s > 4 * 3600 else (60.0, "min")
    t0, load = plots.bucketed(arrival_t, width_s=w, stat="rate", end=run.horizon_s)
    pal = plots.PALETTE
    plan = planner_series(run, scale)
    offered = [plots.Series(label="offered" if plan else "", t=t0 / scale, y=load, color=pal[0])]
    cap = capacity_series(run, scale)
    load_panel = stacked.Panel(ylabel="offered req/s", series=(*offered, *plan[:2], *cap),
                               top=_top([*offered, *plan[:1], *cap]))  # fmt: skip
    req = run.requests
    served = req.status == outcomes.SERVED
    latency: list[plots.Series] = []
    stats: tuple[tuple[plots.Stat, str], ...] = (("p50", ":"), ("p95", "-"))
    for values, name, color in ((req.ttft, "TTFT", pal[6]), (req.e2e, "e2e", pal[0])):
        for stat, style in stats:
            tb, v = plots.bucketed(
                req.arrival[served], values[served], width_s=w, stat=stat, end=run.horizon_s
            )
            latency.append(
                plots.Series(label=f"{name} {stat}", t=tb / scale, y=v, color=color, linestyle=style)
            )
    slo_lines = tuple(
        stacked.Line(y=target, label=name)
        for target, name in ((run.slo.ttft_s, "TTFT SLO"), (run.slo.e2e_s, "e2e SLO"))
        if target is not None
    )
    tl = run.timeline
    x = tl.t / scale
    reps = [
        plots.Series(label="desired", t=x, y=tl.desired, style="step", color=pal[1]),
        plots.Series(label="ready", t=x, y=tl.ready, style="step", color=pal[2]),
        plots.Series(label="starting + pending", t=x, y=tl.starting + tl.pending, style="step", color=pal[3]),
    ]
    if orc is not None and orc.reachable:
        reps.append(
            plots.Series(
                label="oracle", t=orc.t / scale, y=orc.replicas, style="step", color="#8c8c8c", linestyle="--"
            )
        )
    reps_top = _top(reps)  # what the forecast needs may go far above what ran: noted, not drawn to its peak
    reps.extend(plan[2:])
    reps.extend(schedule_series(run, scale))
    if tl.workers is not None:
        reps.append(
            plots.Series(label="workers (all replicas)", t=x, y=tl.workers, style="step", color=pal[6])
        )
    events = tuple(
        stacked.Event(t=d.t / scale, before=d.current, after=d.desired, label=d.bound_by)
        for d in run.decisions
        if d.desired != d.current
    )
    nodes = (
        plots.Series(label="ready", t=x, y=tl.nodes, style="step", color=pal[4]),
        plots.Series(label="provisioning", t=x, y=tl.nodes_provisioning, style="step", color=pal[5]),
        *spare_series(run, scale),
    )
    return stacked.figure(
        [
            load_panel,
            stacked.Panel(
                ylabel="replicas" if tl.workers is None else "replicas, workers",
                series=tuple(reps),
                events=events,
                top=reps_top,
            ),
            stacked.Panel(ylabel="nodes", series=nodes, height=0.7),
            stacked.Panel(ylabel="latency (s)", series=tuple(latency), lines=slo_lines, log=True),
        ],
        title=run.policy,
        subtitle=stacked.slo_text(ttft_s=run.slo.ttft_s, e2e_s=run.slo.e2e_s),
        xlabel=f"time ({unit})",
    )


def _worker_change(d: outcomes.Logged) -> str:
    """'; workers 1 → 3: why' when the decision resized the workers in each replica."""
    if d.workers is None or d.workers[0] == d.workers[1]:
        return ""
    return f"; workers {d.workers[0]} → {d.workers[1]}: {d.workers[2]}"


def decisions_html(run: outcomes.Run) -> str:
    changes = [d for d in run.decisions if d.desired != d.current or _worker_change(d)]
    rows = "".join(
        f"<tr><td>{d.t:.0f}</td><td>{d.current} → {d.desired}</td><td>{html_mod.escape(d.bound_by)}</td>"
        f"<td style='text-align:left'>{html_mod.escape(d.reason + _worker_change(d))}</td></tr>"
        for d in changes[:MAX_DECISION_ROWS]
    )
    more = len(changes) - MAX_DECISION_ROWS
    tail = f"<p>… and {more} more changes (all of them are in --json).</p>" if more > 0 else ""
    return (
        f"<details><summary>{len(changes)} scaling decisions of {len(run.decisions)}</summary>"
        f"<table><thead><tr><th>t (s)</th><th>replicas</th><th>bound by</th><th>reason</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{tail}</details>"
    )


def write(
    path: str | pathlib.Path,
    runs: Sequence[outcomes.Run],
    arrival_t: outcomes.Floats,
    orc: oracle_mod.Oracle | None,
    *,
    title: str,
    subtitle: str,
    baselines: Sequence[outcomes.Run] = (),
    notes: Sequence[str] = (),
    suggested: Sequence[str] = (),
) -> pathlib.Path:
    """The comparison table (policies, baselines, the oracle's replay), the suggested schedules
    (`suggested`: preformatted lines; their replays come as runs), then one section per run with its
    stacked figure and its decisions; the oracle's replay last."""
    gpu = not runs or runs[0].config.resources.gpus > 0
    rows = tuple(r for group in table.groups(runs, baselines, orc, gpu=gpu) for r in group)
    sections = [
        html.Section(
            title="Comparison",
            text="; ".join(notes),
            tables=(html.Table(columns=table.columns(gpu=gpu), rows=rows),),
        )
    ]
    if suggested:
        sections.append(html.Section(title="Suggested schedules (known peaks)",
                                     html="<pre>" + html_mod.escape("\n".join(suggested)) + "</pre>"))  # fmt: skip
    shown = [*runs, *baselines]
    if orc is not None and orc.replayed is not None:
        shown.append(orc.replayed)
    for run in shown:
        sections.append(
            html.Section(
                title=run.policy,
                text=f"{run.summary.requests} requests, {run.events} events, simulated in {run.wall_s:.2f} s.",
                figures=(policy_figure(run, np.asarray(arrival_t), orc),),
                html=decisions_html(run),
            )
        )
    return html.write(path, title, sections, subtitle=subtitle)
