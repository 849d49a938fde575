"""The scorecard as a self-contained HTML page: the summary per policy, then one section per
workload with its table and one figure (offered load above; every policy's replicas, the best
fixed fleet and the oracle's schedule below, on one time axis)."""

from __future__ import annotations

import pathlib

from matplotlib import figure as mpl_figure

from swell.clusters.sim import outcomes, replicas, table
from swell.report import html, plots
from swell.runtime import scorecard, sim

SUMMARY_COLUMNS = ("policy", "SLO met on", "median ×oracle where met", "worst attainment")


def summary_rows(card: scorecard.Scorecard) -> tuple[tuple[object, ...], ...]:
    return tuple(
        (s.policy, f"{s.met}/{s.ran}", "—" if s.median_ratio is None else f"{s.median_ratio:.2f}",
         outcomes.percent(s.worst_attainment))
        for s in card.standings()
    )  # fmt: skip


def workload_figure(comp: sim.Comparison) -> mpl_figure.Figure:
    scale, unit = (3600.0, "h") if comp.horizon_s > 4 * 3600 else (60.0, "min")
    width = max(10.0, comp.horizon_s / 200.0)
    t, load = plots.bucketed(comp.arrivals.t, width_s=width, stat="rate", end=comp.horizon_s)
    fig = mpl_figure.Figure(figsize=(9.0, 5.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 2))
    top.plot(t / scale, load, color=plots.PALETTE[0])
    top.set_ylabel("offered req/s")
    top.set_title(comp.workload, fontsize=10, loc="left")
    runs = [*comp.runs, *(b for b in comp.baselines if b.policy.startswith("best fixed"))]
    for i, run in enumerate(runs):
        tl = run.timeline
        bottom.step(tl.t / scale, tl.ready, where="post", label=run.policy,
                    color=plots.PALETTE[(i + 1) % len(plots.PALETTE)], linewidth=1.2)  # fmt: skip
    o = comp.oracle
    if o is not None and o.reachable:
        bottom.step(o.t / scale, o.replicas, where="post", label="oracle", color="#222222", linestyle="--")
    bottom.set_ylabel("ready replicas")
    bottom.set_xlabel(f"time ({unit})")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    bottom.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4, frameon=False)
    return fig


def write(path: str | pathlib.Path, card: scorecard.Scorecard) -> pathlib.Path:
    sections = [
        html.Section(
            title="Summary",
            text="Each policy on each workload from the same starting fleet; ×oracle only where the SLO was met.",
            tables=(html.Table(columns=SUMMARY_COLUMNS, rows=summary_rows(card)),),
        )
    ]
    for res in card.results:
        comp = res.comparison
        if comp is None:
            sections.append(html.Section(title=res.entry.name, text=f"skipped: {res.skipped}"))
            continue
        gpu = not comp.runs or comp.runs[0].config.resources.gpus > 0
        rows = tuple(
            r for group in table.groups(comp.runs, comp.baselines, comp.oracle, gpu=gpu) for r in group
        )
        slo = sim.slo_text(comp.runs[0].slo if comp.runs else sim.DEFAULT_SLO)
        engine = replicas.engine_note(comp.runs[0].config) if comp.runs else ""
        notes = table.notes(slo, comp.capacity_rps, comp.oracle, comp.baselines, comp.warnings, engine)
        sections.append(
            html.Section(
                title=res.entry.name,
                text=f"{res.entry.about}. {len(comp.arrivals)} requests over {comp.horizon_s:.0f} s, "
                f"starting from {comp.initial_replicas} replicas. " + "; ".join(notes),
                tables=(html.Table(columns=table.columns(gpu=gpu), rows=rows),),
                figures=(workload_figure(comp),),
            )
        )
    return html.write(path, "swell scorecard", sections, subtitle=f"seed {card.seed}")
