"""`swell demo`: the default stack under a compressed Black Friday, scaling shown live, then a report.

Starts the embedded recipe (SmolLM2 on llama.cpp behind the gateway), drives quiet → a surge of
`--surge`× within seconds → quiet with the load generator for `--duration` seconds, shows the
replicas and decisions live, and ends with a summary (requests, errors, latency percentiles,
replicas over time) and a self-contained HTML report with plots.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from swell import errors, recipe
from swell.cli import up as up_cmd
from swell.loadgen import charts, options, runner, summary
from swell.report import html, plots
from swell.runtime import local
from swell.workload import patterns, rates, shapes


def black_friday(duration_s: float, base_rps: float, surge: float) -> rates.BlackFriday:
    """Quiet for a fifth of the run, up to `surge`× within seconds, a plateau, back to quiet."""
    return rates.BlackFriday(
        base_rps=base_rps,
        surge=surge,
        start_s=0.2 * duration_s,
        ramp_s=max(1.0, min(5.0, 0.04 * duration_s)),
        plateau_s=0.3 * duration_s,
        decay_s=max(1.0, 0.04 * duration_s),
    )


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v * 1000:.0f} ms"


def replicas_section(rt: local.LocalRuntime, t0: float) -> html.Section:
    line = list(rt.timeline)
    t = [p.t - t0 for p in line]
    fig = plots.time_series(
        "Replicas over time",
        [
            plots.Series(label="asked for", t=t, y=[p.target for p in line], style="step"),
            plots.Series(label="ready", t=t, y=[p.ready for p in line], style="step", color="#55a868"),
            plots.Series(label="starting", t=t, y=[p.starting for p in line], style="step", color="#dd8452"),
            plots.Series(label="pending", t=t, y=[p.pending for p in line], style="step", color="#8172b3"),
        ],
        ylabel="replicas",
    )
    changes = [e for e in rt.history if e.decision.changes]
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
        caption="Every decision that changed the replica count",
    )
    return html.Section(title="Replicas and scaling decisions", figures=(fig,), tables=(table,))


def summary_table(result: runner.Result, rt: local.LocalRuntime) -> Table:
    s = result.summary
    step = max(1.0, round(s.duration_s / 30))
    peak = max((p.ready for p in rt.timeline), default=0)
    table = Table(title="demo summary", show_header=False)
    table.add_row("requests", f"{s.sent} sent · {s.ok} ok · {s.failed} failed · {s.cancelled} cancelled")
    if s.errors:
        table.add_row("errors", ", ".join(f"{k}: {n}" for k, n in s.errors.items()))
    for name, st in (("end-to-end", s.e2e), ("time to first token", s.ttft)):
        table.add_row(name, f"p50 {_ms(st.p50)} · p95 {_ms(st.p95)} · p99 {_ms(st.p99)} · max {_ms(st.max)}")
    if s.slo_attainment is not None:
        table.add_row("SLO attainment", f"{100 * s.slo_attainment:.1f} %")
    ups = sum(1 for e in rt.history if e.decision.desired > e.decision.current)
    downs = sum(1 for e in rt.history if e.decision.desired < e.decision.current)
    table.add_row("replicas", f"peak {peak} ready · {ups} scale-ups · {downs} scale-downs")
    table.add_row(
        f"ready every {step:g} s", " ".join(str(n) for n in ready_every(rt, result.started_at, step))
    )
    return table


def ready_every(rt: local.LocalRuntime, t0: float, step: float) -> list[int]:
    """Ready replicas sampled every `step` seconds from the start of the load (the terminal's plot)."""
    out: list[int] = []
    line = list(rt.timeline)
    t = t0
    for p in line:
        while p.t >= t:
            out.append(p.ready)
            t += step
    return out


def default_base_rps(rec: recipe.Recipe) -> float:
    """Quiet load the machine can take: 0.2 req/s per replica that has a core of its own."""
    cores = os.cpu_count() or 1
    return 0.2 * max(1, min(rec.autoscaling.max_replicas, cores))


def _slo(rec: recipe.Recipe) -> summary.Slo | None:
    if rec.slo.ttft_s is None and rec.slo.e2e_s is None:
        return None
    return summary.Slo(ttft_s=rec.slo.ttft_s, e2e_s=rec.slo.e2e_s)


async def _demo(
    rec: recipe.Recipe, *, duration_s: float, base_rps: float, surge: float, port: int | None, report: Path
) -> runner.Result:
    console = Console()
    rt = local.LocalRuntime(rec, port=port)
    stop = asyncio.Event()
    up_cmd.install_stop_handlers(stop.set)
    schedule = black_friday(duration_s, base_rps, surge)
    shape = shapes.Shape(input_mean=48, input_stddev=16, output_mean=24, output_stddev=8, maximum=128)
    console.print(f"swell demo: {schedule.description}, {duration_s:g} s", highlight=False)
    async with rt:
        opts = options.Options(
            url=rt.endpoint,
            protocol="openai-chat",
            workload=patterns.OpenLoop(schedule=schedule, shape=shape),
            duration_s=duration_s,
            timeout_s=max(60.0, duration_s),
            slo=_slo(rec),
            ignore_eos=True,
        )
        console.print(
            f"serving {rec.service.name} on [bold cyan]{rt.endpoint}/v1[/]; waiting for a ready replica …"
        )
        while not any(r.state == "ready" for r in rt.status().replicas) and not stop.is_set():
            await asyncio.sleep(0.2)
        latest: list[runner.Progress] = []
        load = asyncio.ensure_future(runner.run(opts, progress=latest.append, stop=stop))

        def progress() -> Text:
            if not latest:
                return Text("load: starting …")
            p = latest[-1]
            now_rps = float(schedule.rate(np.array([p.elapsed_s]))[0])
            return Text(
                f"load: {p.elapsed_s:5.1f}/{duration_s:g} s · offered {now_rps:4.1f} req/s · sent {p.sent} · "
                f"done {p.done} · failed {p.failed} · in flight {p.in_flight}",
                "bold",
            )

        await up_cmd.show_live(rt, console, load, progress)
        result = await load
        t0 = result.started_at
        sections = [*charts.sections(result), replicas_section(rt, t0)]
        html.write(
            report,
            f"swell demo: {rec.service.name} under a compressed Black Friday",
            sections,
            subtitle=f"{schedule.description}; policy {rec.autoscaling.policy}",
        )
        console.print(summary_table(result, rt))
        console.print(f"report: [bold]{report}[/]")
    return result


def demo(
    duration: Annotated[float, typer.Option(help="Seconds of load (the surge scales with it).")] = 150.0,
    surge: Annotated[float, typer.Option(help="Peak load as a multiple of the quiet load.")] = 6.0,
    base_rps: Annotated[
        float | None,
        typer.Option(
            help="Quiet load in requests per second (default: 0.2 per replica this machine has cores for)."
        ),
    ] = None,
    recipe_path: Annotated[
        Path | None, typer.Option("--recipe", help="Recipe (default: the embedded llama-cpp recipe).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Gateway port (default: the recipe's, 8000).")] = None,
    report: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path("swell-demo.html"),
) -> None:
    """Serve the default model, drive a compressed Black Friday at it, show the scaling, report."""
    rec = up_cmd.load_recipe(recipe_path)
    base_rps = default_base_rps(rec) if base_rps is None else base_rps
    for name, value in (("duration", duration), ("surge", surge), ("base-rps", base_rps)):
        if not (value > 0 and math.isfinite(value)):
            raise errors.RecipeError(
                "demo options", [errors.Problem(path=name, value=value, rule="must be a positive number")]
            )
    with contextlib.suppress(KeyboardInterrupt):
        result = asyncio.run(
            _demo(rec, duration_s=duration, base_rps=base_rps, surge=surge, port=port, report=report)
        )
        if result.summary.failed:
            raise typer.Exit(1)
