"""`swell simulate`: replay a workload against a simulated GPU cluster, policies side by side.

Every policy sees the same arrivals (drawn once from --seed) on the same simulated cluster; the
table shows SLO attainment, latency percentiles, dropped and timed-out requests, GPU-hours, cost
and the ratio to the oracle. --json writes everything (timelines, every decision); --report
writes an HTML page with the plots.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import markup as rich_markup
from rich import progress as rich_progress
from rich.console import Console
from rich.table import Table

from swell import errors, recipe
from swell.clusters.sim import cluster, nodes, outcomes, report, router
from swell.core.policies import presets
from swell.runtime import sim
from swell.workload import spec, traces

ALIBABA_LOAD = "alibaba_genai_2026/basemodel_update_latency_anon.csv.gz"
HELP = (
    "Replay a workload against a simulated GPU cluster and compare scaling policies side by side.\n\n"
    "Policies (--compare): " + ", ".join(presets.NAMES) + " ('recipe' is the recipe as written)."
)
EPILOG = "Workloads (--workload KIND[:KEY=VALUE,...]):\n\n" + spec.GRAMMAR


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
        raise _problem("--model-load", value, "use 'fixed', 'alibaba' or a CSV file of latencies in ms")
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


def _clean(value: object) -> object:
    """JSON without NaN or infinity (they become null): strict parsers reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _pair(a: float | None, b: float | None) -> str:
    return "/".join("—" if v is None else f"{v:.0f}" if v >= 10 else f"{v:.2g}" for v in (a, b))


def _cost(run: outcomes.Run) -> str:
    return f"{run.cost:.3g}" if run.config.node_pool.price_per_gpu_hour > 0 else "—"


def _row(run: outcomes.Run, ref: float | None, gpu: bool) -> list[str]:
    s = run.summary
    ratio = run.oracle_ratio(ref)
    peak = int(run.timeline.desired.max()) if len(run.timeline.desired) else 0
    met = f"{100 * s.attainment:.1f}%" + ("" if run.meets_slo else " ✗")
    hours = [f"{run.gpu_hours:.3g}"] if gpu else []
    return [run.policy, met, _pair(s.ttft["p50"], s.ttft["p95"]), _pair(s.e2e["p50"], s.e2e["p95"]),
            str(s.dropped), str(s.timed_out + s.unfinished), *hours, f"{run.node_hours:.3g}", _cost(run),
            "miss" if not run.meets_slo else "—" if ratio is None else f"{ratio:.2f}",
            str(run.scale_events), str(peak)]  # fmt: skip


def _table(comp: sim.Comparison) -> Table:
    """The comparison, narrow enough for a terminal (the report and --json have every column).

    Policies first, then the baselines (best fixed fleet, max fleet) and the replayed oracle.
    ×oracle is shown only for a run that met the SLO; a miss is marked ✗."""
    rec = comp.runs[0].config if comp.runs else None
    gpu = rec is None or rec.resources.gpus > 0
    start = "" if comp.initial_replicas is None else f", starting from {comp.initial_replicas} replicas"
    t = Table(
        title=f"{comp.workload}\n{len(comp.arrivals)} requests over {comp.horizon_s:.0f} s, seed {comp.seed}{start}"
    )
    t.add_column("policy", no_wrap=True)
    cols = ["SLO", "TTFT p50/95", "e2e p50/95", "drop", "t/o", *(["GPU-h"] if gpu else []), "node-h", "cost",
            "×oracle", "events", "peak"]  # fmt: skip
    for col in cols:
        t.add_column(col, justify="right")
    ref = comp.oracle_gpu_hours
    for r in comp.runs:
        t.add_row(*_row(r, ref, gpu))
    if comp.baselines:
        t.add_section()
        for r in comp.baselines:
            t.add_row(*_row(r, ref, gpu))
    o = comp.oracle
    if o is not None and o.replayed is not None:
        t.add_section()
        row = _row(dataclasses.replace(o.replayed, policy="oracle (replayed)"), ref, gpu)
        if not o.reachable:
            row[-3] = "—"
        t.add_row(*row)
    notes = [f"latencies in s; SLO {_slo(comp)}"]
    if comp.capacity_rps is not None and comp.capacity_rps > 0 and math.isfinite(comp.capacity_rps):
        notes.append(f"one replica meets it up to {comp.capacity_rps:.3g} req/s (engine model)")
    if o is not None:
        if o.capacity_rps <= 0:
            notes.append("oracle: out of reach even one request at a time")
        elif o.note:
            notes.append(f"oracle: {o.note}")
    if comp.baselines and not any(r.policy.startswith("best fixed") for r in comp.baselines):
        notes.append(f"no fixed fleet within max_replicas meets the SLO ({comp.baselines[-1].policy})")
    notes.extend(f"warning: {w}" for w in comp.warnings)
    t.caption = "\n".join(notes)
    return t


def _slo(comp: sim.Comparison) -> str:
    return sim.slo_text(comp.runs[0].slo if comp.runs else sim.DEFAULT_SLO)


def simulate(
    path: Annotated[Path, typer.Argument(help="Recipe file (YAML or JSON).")],
    workload: Annotated[
        str, typer.Option("--workload", "-w", help="A workload, e.g. azure-conv or black-friday.")
    ],
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
    oracle: Annotated[bool, typer.Option(help="Compute the oracle's lower bound on GPU-hours.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    console = Console(stderr=json_out == Path("-"))
    if not console.is_terminal:
        console.width = max(console.width, 132)  # a pipe or a file: keep every column readable
    try:
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
        for name in policies:
            sim.policy_recipe(rec, name)
        dur = None
        if duration is not None:
            try:
                dur = spec._duration(duration)
            except ValueError:
                raise _problem("--duration", duration, "a duration such as 90, 90s, 5m or 2h") from None
        wl = sim.rescale(spec.parse(workload), scale=scale, speedup=speedup)
        opts = cluster.Options(
            router=route,  # checked against router.KINDS above
            request_timeout_s=timeout,
            model_load_samples=_model_load(model_load),
            initial_replicas=start,
        )
        with rich_progress.Progress(
            rich_progress.TextColumn("{task.description:>18}"),
            rich_progress.BarColumn(),
            rich_progress.TaskProgressColumn(),
            rich_progress.TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=quiet,
        ) as bar:
            tasks: dict[str, rich_progress.TaskID] = {}

            def progress(name: str, fraction: float) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=1.0)
                bar.update(tasks[name], completed=fraction)

            comp = sim.compare(
                rec,
                wl,
                policies,
                seed=seed,
                duration_s=dur,
                options=opts,
                with_oracle=oracle,
                progress=progress,
            )
    except errors.SwellError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if json_out is not None:
        text = json.dumps(_clean(comp.to_json()), allow_nan=False, default=str)
        if json_out == Path("-"):
            sys.stdout.write(text + "\n")
        else:
            json_out.write_text(text, encoding="utf-8")
    console.print(_table(comp))
    if report_out is not None:
        written = report.write(
            report_out,
            comp.runs,
            comp.arrivals.t,
            comp.oracle,
            title=f"swell simulate: {rec.service.name}",
            subtitle=f"{comp.workload}; {len(comp.arrivals)} requests; seed {seed}",
        )
        console.print(f"report: {written}")


def register(app: typer.Typer) -> None:
    app.command("simulate", help=HELP, epilog=rich_markup.escape(EPILOG))(simulate)
