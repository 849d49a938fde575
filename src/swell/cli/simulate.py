"""`swell simulate`: replay a workload against a simulated GPU cluster, policies side by side.

Every policy sees the same arrivals (drawn once from --seed) on the same simulated cluster; the
table shows SLO attainment, latency percentiles, dropped and timed-out requests, GPU-hours, cost
and the ratio to the oracle. --json writes everything (timelines, every decision); --report
writes an HTML page with the plots.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich import markup as rich_markup
from rich import progress as rich_progress
from rich.console import Console
from rich.table import Table

from swell import durations, errors, files, recipe
from swell.cli import checks
from swell.clusters.sim import cluster, nodes, replicas, report, router, table
from swell.core.policies import presets
from swell.runtime import sim
from swell.workload import rescale, spec, traces

MIN_DURATION_S = 1.0  # --duration: less offers no request to decide on
ALIBABA_LOAD = "alibaba_genai_2026/basemodel_update_latency_anon.csv.gz"
HELP = (
    "Replay a workload against a simulated GPU cluster and compare scaling policies side by side.\n\n"
    "Policies (--compare): " + ", ".join(presets.NAMES) + " ('recipe' is the recipe as written); "
    "a preset on one signal takes its target: kpa-concurrency:target=8."
)
EPILOG = ("Workloads (--workload KIND[:KEY=VALUE,...]; closed:... is swell bench's, as a simulation replays "
          "arrivals):\n\n" + spec.GRAMMAR)


def _problem(path: str, value: object, rule: str) -> errors.RecipeError:
    return errors.RecipeError("swell simulate", [errors.Problem(path=path, value=value, rule=rule)])


def _positive(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise _problem(name, value, "must be a number > 0")


def _model_load(value: str) -> tuple[float, ...]:
    if value == "fixed":
        return ()
    path = traces.traces_dir() / ALIBABA_LOAD if value == "alibaba" else Path(value)
    if not path.is_file():
        where = "no such file" if value == "alibaba" or not path.exists() else "not a file"
        raise _problem("--model-load", value, f"use 'fixed', 'alibaba' or a CSV file of latencies in ms ({path}: {where})")
    return tuple(nodes.load_latencies(path))


def _initial(value: str, top: int) -> int | None:
    if value.strip().lower() == "auto":
        return None
    try:
        n = int(value)
    except ValueError:
        raise _problem("--initial-replicas", value, "a whole number of replicas or 'auto'") from None
    if not 0 <= n <= top:
        raise _problem("--initial-replicas", n, f"must be within [0, max_replicas {top}]")
    return n


START_FIRST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
START_LAST = dt.datetime(5000, 1, 1, tzinfo=dt.UTC)


def _start(value: str | None, wl: object = None) -> float:
    """--start as Unix seconds: an ISO 8601 date or date-time (one without an offset is UTC), or
    'auto': the date a trace's file records for its first request."""
    if value is None:
        return 0.0
    if value.strip().lower() == "auto":
        dated, why = wl.calendar() if isinstance(wl, traces.Replay) else (None, "the workload is not a trace replay")
        if dated is None:
            raise _problem("--start", value, f"'auto' takes the date a trace file records ({why}): give a date")
        return dated
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise _problem("--start", value, "an ISO 8601 date or date-time, e.g. 2026-11-27 or 2026-11-27T08:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if not START_FIRST <= when <= START_LAST:  # a schedule's cron looks days back and ahead of the run
        raise _problem("--start", value, f"a date from {START_FIRST:%Y-%m-%d} to {START_LAST:%Y-%m-%d}")
    return when.timestamp()


def _clean(value: object) -> object:
    """JSON without NaN or infinity (they become null): strict parsers reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _table(comp: sim.Comparison) -> Table:
    """The comparison, narrow enough for a terminal (the report and --json have every column)."""
    rec = comp.runs[0].config if comp.runs else None
    gpu = rec is None or rec.resources.gpus > 0
    start = "" if comp.initial_replicas is None else f", starting from {comp.initial_replicas} replicas"
    if comp.start_s:
        start += f" at {cluster.start_text(comp.start_s)}"
    t = Table(
        title=f"{comp.workload}\n{len(comp.arrivals)} requests over {comp.horizon_s:.0f} s, seed {comp.seed}{start}"
    )
    for i, col in enumerate(table.columns(gpu=gpu)):
        t.add_column(col, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for i, group in enumerate(table.groups(comp.runs, comp.baselines, comp.oracle, gpu=gpu)):
        if i:
            t.add_section()
        for cells in group:
            t.add_row(*cells)
    slo = sim.slo_text(comp.runs[0].slo if comp.runs else sim.DEFAULT_SLO)
    engine = replicas.engine_note(rec) if rec is not None else ""
    t.caption = "\n".join(table.notes(slo, comp.capacity_rps, comp.oracle, comp.baselines, comp.warnings, engine))
    return t


def simulate(
    path: Annotated[
        Path | None, typer.Argument(metavar="RECIPE", help="Recipe file (YAML or JSON); not with --scorecard.")
    ] = None,
    workload: Annotated[
        str | None, typer.Option("--workload", "-w", help="A workload, e.g. azure-conv or black-friday.")
    ] = None,
    scorecard_flag: Annotated[
        bool,
        typer.Option("--scorecard", help="Run the fixed suite (workloads x every preset, baselines, oracle)."),
    ] = False,
    only: Annotated[
        str | None, typer.Option(help="With --scorecard: only these workloads, comma-separated.")
    ] = None,
    compare: Annotated[str, typer.Option(help="Policies to compare, comma-separated.")] = "recipe",
    scale: Annotated[float, typer.Option(help="Multiply the request rate by X.")] = 1.0,
    speedup: Annotated[float, typer.Option(help="Compress time K× (a trace plays K× faster).")] = 1.0,
    duration: Annotated[
        str | None, typer.Option(help="Offer load this long (90s, 5m, 2h); default: the workload's length.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of arrivals, request sizes and load times.")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write all results as JSON ('-' for stdout).")
    ] = None,
    report_out: Annotated[Path | None, typer.Option("--report", help="Write an HTML report.")] = None,
    route: Annotated[
        str, typer.Option("--router", help="least-outstanding or round-robin.")
    ] = "least-outstanding",
    model_load: Annotated[
        str, typer.Option(help="'fixed' (the recipe's model_load_s), 'alibaba' (sampled) or a CSV.")
    ] = "fixed",
    timeout: Annotated[float, typer.Option(help="Client timeout per request, seconds.")] = 600.0,
    initial_replicas: Annotated[
        str,
        typer.Option(help="Replicas ready at the start: a number, or 'auto' (what the first minute needs)."),
    ] = "auto",
    start_at: Annotated[
        str | None,
        typer.Option("--start",
                     help="When the workload starts on the calendar (ISO 8601, UTC unless it says: "
                          "2026-11-27T08:00Z; or 'auto': the date a trace file records, e.g. the Azure "
                          "traces'), for the recipe's schedule windows and the dates of suggested "
                          "ones; default 1970-01-01T00:00Z, a Thursday."),
    ] = None,
    oracle: Annotated[bool, typer.Option(help="Compute the oracle's lower bound on GPU-hours.")] = True,
    reaction: Annotated[
        bool,
        typer.Option(help="Also run perfect reaction: each minute's load known when it comes, capacity a node "
                          "lead time later (what reacting alone can reach on this workload; with --scorecard, "
                          "on each of its workloads)."),
    ] = False,
    suggest_schedule: Annotated[
        bool,
        typer.Option("--suggest-schedule",
                     help="For each policy that misses the SLO on surges faster than a node's lead time: "
                          "schedule windows (known peaks) that meet it, checked by replaying the policy "
                          "with them (a few more simulations)."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    console = Console(stderr=json_out == Path("-"))
    if not console.is_terminal:
        console.width = max(console.width, 132)  # a pipe or a file: keep every column readable
    if scorecard_flag:
        fixed = {  # what the scorecard fixes itself, given anyway: (given, value)
            "--suggest-schedule": (suggest_schedule, True), "--compare": (compare != "recipe", compare),
            "--scale": (scale != 1.0, scale), "--speedup": (speedup != 1.0, speedup),
            "--duration": (duration is not None, duration), "--router": (route != "least-outstanding", route),
            "--model-load": (model_load != "fixed", model_load), "--timeout": (timeout != 600.0, timeout),
            "--initial-replicas": (initial_replicas != "auto", initial_replicas),
            "--start": (start_at is not None, start_at), "--no-oracle": (not oracle, True),
        }  # fmt: skip
        why = ("not with --scorecard: its recipe, workloads, lengths, fair starts and yardsticks are fixed "
               "(choose workloads with --only, arrivals with --seed; or give a recipe and a workload)")  # fmt: skip
        problems = [errors.Problem(path=k, value=v, rule=why) for k, (given, v) in fixed.items() if given]
        if problems:
            typer.echo(f"error: {errors.RecipeError('swell simulate --scorecard', problems)}", err=True)
            raise typer.Exit(1)
        _run_scorecard(console, path, workload, only, seed, json_out, report_out, quiet, reaction)
        return
    try:
        if only is not None:
            raise _problem("--only", only, "only with --scorecard (it picks the scorecard's workloads)")
        checks.output_file("--json", json_out, stdout=True)
        checks.output_file("--report", report_out)
        if path is None:
            raise _problem("PATH", None, "give a recipe file (or --scorecard)")
        if workload is None:
            raise _problem("--workload", None, "give a workload, e.g. -w azure-conv (see --help)")
        rec = recipe.load(path)
        _positive("--scale", scale)
        _positive("--speedup", speedup)
        _positive("--timeout", timeout)
        if seed < 0:
            raise _problem("--seed", seed, "must be >= 0")
        start = _initial(initial_replicas, rec.autoscaling.max_replicas)
        if route not in router.KINDS:
            raise _problem("--router", route, f"one of {', '.join(router.KINDS)}")
        policies = [p.strip() for p in compare.split(",") if p.strip()]
        if not policies:
            raise _problem("--compare", compare, "name at least one policy")
        if twice := sorted({p for p in policies if policies.count(p) > 1}):
            raise _problem("--compare", compare, f"names {', '.join(twice)} twice: each policy once")
        bad: list[errors.Problem] = []
        for name in policies:  # every policy that cannot run, at once
            try:
                sim.policy_recipe(rec, name)
            except errors.RecipeError as exc:
                bad += exc.problems
        checks.raise_problems("--compare", bad)
        dur = None
        if duration is not None:
            try:
                dur = durations.parse(duration)
            except ValueError:
                raise _problem("--duration", duration, durations.EXAMPLES) from None
            if dur < MIN_DURATION_S:
                raise _problem("--duration", duration, f"at least {MIN_DURATION_S:g} s (a few scrapes and decisions)")
        wl = rescale.rescale(spec.parse(workload), scale=scale, speedup=speedup)
        opts = cluster.Options(
            router=route,  # checked against router.KINDS above
            request_timeout_s=timeout,
            model_load_samples=_model_load(model_load),
            initial_replicas=start,
            start_s=_start(start_at, wl),
        )
        with _bar(quiet) as bar:
            progress = _tracker(bar, quiet)

            comp = sim.compare(
                rec,
                wl,
                policies,
                seed=seed,
                duration_s=dur,
                options=opts,
                with_oracle=oracle,
                with_reaction=reaction,
                with_suggestions=suggest_schedule,
                progress=progress,
            )
    except errors.SwellError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if json_out is not None:
        _write_json(json_out, comp.to_json())
    console.print(_table(comp))
    suggested = [line for x in comp.suggestions for line in x.lines()]
    if suggest_schedule and not suggested:
        console.print("suggested schedules (known peaks): none, every policy met the SLO", highlight=False)
    if suggested:
        console.print("suggested schedules (known peaks):", highlight=False)
        for line in suggested:
            console.print(line, markup=False, highlight=False)
    if report_out is not None:
        written = report.write(
            report_out,
            [*comp.runs, *(x.after for x in comp.suggestions if x.after is not None)],
            comp.arrivals.t,
            comp.oracle,
            title=f"swell simulate: {rec.service.name}",
            subtitle=f"{comp.workload}; {len(comp.arrivals)} requests; seed {seed}; "
            f"starting from {comp.initial_replicas} replicas"
            + (f" at {cluster.start_text(comp.start_s)}" if comp.start_s else ""),
            baselines=comp.baselines,
            notes=table.notes(sim.slo_text(sim.slo_of(rec)), comp.capacity_rps, comp.oracle, comp.baselines,
                              comp.warnings, replicas.engine_note(rec)),
            suggested=suggested,
        )
        console.print(f"report: {written}")


def _bar(quiet: bool) -> rich_progress.Progress:
    return rich_progress.Progress(
        rich_progress.TextColumn("{task.description:>30}"),
        rich_progress.BarColumn(),
        rich_progress.TaskProgressColumn(),
        rich_progress.TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=quiet,
    )


def _tracker(bar: rich_progress.Progress, quiet: bool) -> Callable[[str, float], None]:
    """A progress callback: a bar per task on a terminal; elsewhere (a log, CI) a line as each task
    finishes, so a run of minutes is never silent."""
    tasks: dict[str, rich_progress.TaskID] = {}
    began: dict[str, float] = {}
    said: set[str] = set()
    plain = not quiet and not bar.console.is_terminal

    def step(key: str, fraction: float) -> None:
        if key not in tasks:
            tasks[key], began[key] = bar.add_task(key, total=1.0), time.monotonic()
        if plain and fraction >= 1.0 and key not in said:
            said.add(key)
            typer.echo(f"done: {key} ({time.monotonic() - began[key]:.0f} s)", err=True)
        bar.update(tasks[key], completed=fraction)

    return step


def _write_json(json_out: Path, data: object) -> None:
    text = json.dumps(_clean(data), allow_nan=False, default=str)
    if json_out == Path("-"):
        sys.stdout.write(text + "\n")
    else:
        files.write_text(json_out, text)


def _run_scorecard(
    console: Console,
    path: Path | None,
    workload: str | None,
    only: str | None,
    seed: int,
    json_out: Path | None,
    report_out: Path | None,
    quiet: bool,
    reaction: bool = False,
) -> None:
    from swell.runtime import scorecard, scorecard_report

    try:
        if path is not None or workload is not None:
            raise _problem("--scorecard", str(path or workload), "runs its own recipe and workloads: give neither")
        if seed < 0:
            raise _problem("--seed", seed, "must be >= 0")
        names = [n.strip() for n in (only or "").split(",") if n.strip()]
        if only is not None and not names:
            raise _problem("--only", only, "name at least one workload (or leave --only out for all of them)")
        checks.output_file("--json", json_out, stdout=True)
        checks.output_file("--report", report_out)
        with _bar(quiet) as bar:
            track = _tracker(bar, quiet)

            def progress(entry: str, what: str, fraction: float) -> None:
                track(f"{entry}: {what}", fraction)

            card = scorecard.run(only=names, seed=seed, progress=progress, with_reaction=reaction)
    except errors.SwellError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if json_out is not None:
        _write_json(json_out, card.to_json())
    for res in card.results:
        if res.comparison is None:
            console.print(f"[bold]{res.entry.name}[/bold]: skipped: {res.skipped}")
        else:
            console.print(_table(res.comparison))
    summary = Table(title=f"scorecard summary (seed {seed})")
    for i, col in enumerate(scorecard_report.SUMMARY_COLUMNS):
        summary.add_column(col, justify="left" if i == 0 else "right")
    for row in scorecard_report.summary_rows(card):
        summary.add_row(*(str(c) for c in row))
    console.print(summary)
    if report_out is not None:
        console.print(f"report: {scorecard_report.write(report_out, card)}")


def register(app: typer.Typer) -> None:
    app.command("simulate", help=HELP, epilog=rich_markup.escape(EPILOG))(simulate)
