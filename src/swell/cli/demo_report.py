"""What `swell demo` shows after a run: the summary table and the report's one stacked picture.

`Outcome` keeps what one run left (the load generator's result, the replica timeline, the
decisions); `verdict` counts scale-ups and -downs and says whether the machine was the limit
(a signal asked for more replicas than `max_replicas`, or a replica waited for a CPU slot);
`figure` stacks offered load, latency against the SLO and replicas with each scale event and
the bound that held, on one time axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib import figure as mpl_figure
from rich.table import Table

from swell import recipe
from swell.control import history as history_mod
from swell.loadgen import runner, summary
from swell.report import html, plots, stacked
from swell.runtime import local
from swell.workload import rates


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """One demo run: which recipe (and under what label), the load, and what happened."""

    label: str
    recipe: recipe.Recipe
    result: runner.Result
    timeline: tuple[local.Point, ...]
    decisions: tuple[history_mod.Entry, ...]
    pending_for_slots: bool  # a replica waited Pending for a device slot at some point


@dataclass(frozen=True, kw_only=True)
class Verdict:
    attainment: float | None
    scale_ups: int
    scale_downs: int
    peak_ready: int
    machine_limited: bool
    limit_text: str


def verdict(o: Outcome) -> Verdict:
    ds = [e.decision for e in o.decisions]
    cap = o.recipe.autoscaling.max_replicas
    capped = sum(1 for d in ds if d.bound_by == "max" and d.desired >= cap)
    # what any signal proposed, or a decision asked (panic mode asks beyond its signals' proposals)
    asked = [p.replicas for d in ds for p in d.proposals if p.replicas is not None] + [d.desired for d in ds]
    wanted = max(asked, default=0)
    if capped or wanted > cap:
        text = f"yes: the signals asked for more than the {cap} replicas it has room for"
        text += f" ({capped} decisions held at max_replicas)" if capped else ""
    elif o.pending_for_slots:
        text = "yes: a replica waited for a CPU slot"
    else:
        text = f"no: at most {max(wanted, 1)} of the {cap} replicas it has room for were asked for"
    return Verdict(
        attainment=o.result.summary.slo_attainment,
        scale_ups=sum(1 for d in ds if d.desired > d.current),
        scale_downs=sum(1 for d in ds if d.desired < d.current),
        peak_ready=max((p.ready for p in o.timeline), default=0),
        machine_limited=bool(capped or wanted > cap or o.pending_for_slots),
        limit_text=text,
    )


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v * 1000:.0f} ms"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def summary_table(outcomes: list[Outcome], slo_text: str) -> Table:
    """One column per run: requests, latency, SLO attainment, scale-ups and -downs, the machine."""
    table = Table(title=f"demo summary · {slo_text}")
    table.add_column("")
    for o in outcomes:
        table.add_column(o.label)
    vs = [verdict(o) for o in outcomes]
    ss = [o.result.summary for o in outcomes]
    rows: list[tuple[str, list[str]]] = [
        ("requests", [f"{s.sent} sent · {s.ok} ok · {s.failed} failed" for s in ss]),
        ("SLO attainment", [_pct(v.attainment) for v in vs]),
        ("time to first token", [f"p50 {_ms(s.ttft.p50)} · p95 {_ms(s.ttft.p95)}" for s in ss]),
        ("end-to-end", [f"p50 {_ms(s.e2e.p50)} · p95 {_ms(s.e2e.p95)}" for s in ss]),
        ("scale-ups / downs", [f"{v.scale_ups} up · {v.scale_downs} down" for v in vs]),
        ("peak ready replicas", [str(v.peak_ready) for v in vs]),
        ("machine the limit?", [v.limit_text for v in vs]),
    ]
    if any(s.errors for s in ss):
        rows.append(("errors", [", ".join(f"{k}: {n}" for k, n in s.errors.items()) or "—" for s in ss]))
    for name, cells in rows:
        table.add_row(name, *cells)
    return table


def _width(duration_s: float) -> float:
    """Seconds per point of the load and latency lines: about 40 points a run, at least 2 s."""
    return max(2.0, round(duration_s / 40.0))


def figure(
    o: Outcome, schedule: rates.RateSchedule, slo: summary.Slo | None, slo_text: str
) -> mpl_figure.Figure:
    """Offered load; TTFT and end-to-end p50/p95 with the SLO; replicas with scale events."""
    res = o.result
    t0 = res.started_at
    dur = res.summary.duration_s or 1.0
    w = _width(dur)
    pal = plots.PALETTE
    grid = np.linspace(0.0, dur, 400)
    ok = [r for r in res.records if r.ok]
    done_t, done_rate = plots.bucketed([r.end_s for r in ok], width_s=w, stat="rate", end=dur)
    load = stacked.Panel(
        ylabel="req/s",
        series=(
            plots.Series(label="offered", t=grid, y=schedule.rate(grid), color=pal[0]),
            plots.Series(label="completed", t=done_t, y=done_rate, style="step", color=pal[2]),
        ),
    )
    starts = [r.start_s for r in ok]
    latency: list[plots.Series] = []
    stats: tuple[tuple[plots.Stat, str], ...] = (("p50", ":"), ("p95", "-"))
    for name, values, color in (
        ("TTFT", [np.nan if r.ttft_s is None else r.ttft_s for r in ok], pal[6]),
        ("e2e", [r.e2e_s for r in ok], pal[0]),
    ):
        for stat, style in stats:
            tb, v = plots.bucketed(starts, values, width_s=w, stat=stat, end=dur)
            latency.append(plots.Series(label=f"{name} {stat}", t=tb, y=v, color=color, linestyle=style))
    lines: tuple[stacked.Line, ...] = ()
    if slo is not None:
        lines = tuple(
            stacked.Line(y=v, label=n)
            for v, n in ((slo.ttft_s, "TTFT SLO"), (slo.e2e_s, "e2e SLO"))
            if v is not None
        )
    before = [p for p in o.timeline if p.t < t0][-1:]  # the replicas as the load starts
    tl = [*before, *(p for p in o.timeline if p.t >= t0)]
    x = [max(0.0, p.t - t0) for p in tl]
    cap = o.recipe.autoscaling.max_replicas
    replicas = stacked.Panel(
        ylabel="replicas",
        series=(
            plots.Series(label="asked for", t=x, y=[p.target for p in tl], style="step", color=pal[1]),
            plots.Series(label="ready", t=x, y=[p.ready for p in tl], style="step", color=pal[2]),
            plots.Series(label="starting", t=x, y=[p.starting for p in tl], style="step", color=pal[5]),
            plots.Series(label="pending", t=x, y=[p.pending for p in tl], style="step", color=pal[4]),
        ),
        lines=(stacked.Line(y=cap, label=f"max_replicas {cap}", color="#8c8c8c"),),
        events=tuple(
            stacked.Event(
                t=e.decision.t - t0,
                before=e.decision.current,
                after=e.decision.desired,
                label=e.decision.bound_by,
            )
            for e in o.decisions
            if e.decision.changes and e.decision.t >= t0
        ),
    )
    verdict_ = verdict(o)
    return stacked.figure(
        [load, stacked.Panel(ylabel="latency (s)", series=tuple(latency), lines=lines, log=True), replicas],
        title=f"{o.label}: {o.recipe.service.name}, policy {o.recipe.autoscaling.policy} · {slo_text}",
        subtitle=(
            f"SLO attainment {_pct(verdict_.attainment)} · {verdict_.scale_ups} scale-ups, "
            f"{verdict_.scale_downs} scale-downs\nmachine the limit: {verdict_.limit_text}"
        ),
    )


def section(o: Outcome, schedule: rates.RateSchedule, slo: summary.Slo | None, slo_text: str) -> html.Section:
    """The run's picture and every decision that changed the replica count."""
    t0 = o.result.started_at
    changes = [e for e in o.decisions if e.decision.changes]
    table = html.Table(
        columns=("t (s)", "from", "to", "bound by", "why"),
        rows=tuple(
            (
                round(e.decision.t - t0, 1),
                e.decision.current,
                e.decision.desired,
                e.decision.bound_by,
                e.decision.reason,
            )
            for e in changes
        ),
        caption="Every decision that changed the replica count (t from the start of the load)",
    )
    return html.Section(title=o.label, figures=(figure(o, schedule, slo, slo_text),), tables=(table,))
