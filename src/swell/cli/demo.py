"""`swell demo`: the default stack under a compressed Black Friday sized to this machine, then a report.

Starts the embedded recipe (SmolLM2 on llama.cpp behind the gateway) with as many replicas and CPU
slots as the cores this process may use (`os.sched_getaffinity`, at least 2), measures what one
replica serves, and sizes the load from that: a quiet phase one replica takes easily, a surge
that needs more than one replica but fits the machine, quiet again long enough to scale back
down. It shows the replicas and decisions live and ends with a summary (SLO attainment,
scale-ups and -downs, whether the machine was the limit) and a self-contained HTML report of one
stacked picture per run. `--compare` runs an HPA on average latency (seed 000's rule) on the
same load afterwards and shows both.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.text import Text

from swell import durations, errors, recipe
from swell.cli import checks, demo_report
from swell.cli import up as up_cmd
from swell.loadgen import charts, options, runner, summary
from swell.report import html, stacked
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


# short chat turns: on a busy 2-core machine llama.cpp reads a prompt at ~25 tokens/s on one
# thread, so a 48-token prompt alone would take the whole 1 s TTFT budget
SHAPE = shapes.Shape(input_mean=16, input_stddev=4, output_mean=16, output_stddev=4, maximum=64)
QUIET_SHARE = 0.2  # the quiet load: this share of what one replica serves
PEAK_SHARE = 0.7  # the surge: this share of what the replicas the free cores run serve
MIN_PEAK = 0.7  # ... and at least this share of what one replica serves flat out: two requests at a
# time (the recipe's target is 1.5 a replica), more than one replica must help to keep TTFT low
SELF_CPU = 0.5  # cores the demo's own gateway, load generator and control loop keep busy
CALIBRATION_REQUESTS = 8
HPA_LATENCY = "swell_gateway_request_duration_seconds"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; a container's cpuset shows here)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def sized(rec: recipe.Recipe, cpus: int) -> recipe.Recipe:
    """The recipe with as many replicas (and CPU slots) as the machine has cores for, at least 2 so
    a surge can need more than one; a GPU recipe is left as written."""
    if rec.resources.gpus:
        return rec
    n = max(2, min(rec.autoscaling.max_replicas, int(cpus // max(1.0, rec.resources.cpu))))
    data = rec.model_dump(by_alias=True)
    data["autoscaling"]["max_replicas"] = n
    data["autoscaling"]["min_replicas"] = min(rec.autoscaling.min_replicas, n)
    data["local"]["cpu_slots"] = n
    return recipe.Recipe.model_validate(data)


def per_replica_concurrency(rec: recipe.Recipe) -> float:
    """Requests one replica is meant to hold: the AverageValue target of a concurrency signal, or 1."""
    for s in rec.autoscaling.signals:
        if s.target_type == "AverageValue" and s.metric and "concurrency" in s.metric:
            return float(s.target)
    return 1.0


@dataclass(frozen=True, kw_only=True)
class LoadPlan:
    base_rps: float
    peak_rps: float
    capacity_rps: float | None  # what one replica served during calibration (None: not measured)

    @property
    def surge(self) -> float:
        return self.peak_rps / self.base_rps


def free_cpus(cpus: int) -> float:
    """Cores the demo can count on: those usable less what other work keeps busy (the 1-minute
    load average, read before the demo starts anything), at least one."""
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on this system
        busy = 0.0
    return max(1.0, min(float(cpus), cpus - busy))


def plan_load(
    capacity_rps: float | None,
    replicas: int,
    *,
    base_rps: float | None,
    surge: float | None,
    free: float | None = None,
) -> LoadPlan:
    """Quiet load one replica takes easily; a surge that needs more than one replica and fits what
    the machine serves: 70 % of what `replicas` serve, counting only as many replicas as there
    are free cores left after the demo's own work (`free` - SELF_CPU; two replicas on one free
    core serve little more than one), and at least 70 % of one replica flat out (more than one
    replica's concurrency target). Options given by the user win.

    Measured on a 2-core machine: a surge to one replica's full throughput (the earlier floor)
    met the SLO for 52 % of requests at 2 replicas; to 70 % of it, 94 %."""
    c = capacity_rps if capacity_rps is not None and capacity_rps > 0 else 1.0
    cores = free if free is not None else float(replicas) + SELF_CPU
    room = min(float(replicas), cores - SELF_CPU)
    base = base_rps if base_rps is not None else QUIET_SHARE * c
    peak = base * surge if surge is not None else max(base * 1.5, max(MIN_PEAK, PEAK_SHARE * room) * c)
    return LoadPlan(base_rps=base, peak_rps=peak, capacity_rps=capacity_rps)


def hpa_latency(rec: recipe.Recipe, target_s: float | None = None) -> recipe.Recipe:
    """Seed 000's rule on this machine: an HPA on average latency (rate of the gateway's duration
    sum over its count, 1 m) with target `target_s` (default half the end-to-end SLO), synced every
    15 s, scraped every 10 s, the HPA's default behavior (llama.cpp has no latency histogram of its own)."""
    data = rec.model_dump(by_alias=True)
    target = target_s if target_s is not None else (rec.slo.e2e_s or 4.0) / 2
    data["autoscaling"] = {
        "min_replicas": rec.autoscaling.min_replicas,
        "max_replicas": rec.autoscaling.max_replicas,
        "policy": "hpa",
        "polling_interval_s": 15.0,
        "metrics": {"source": "embedded", "scrape_interval_s": 10.0},
        "signals": [
            {"name": "avg_latency", "kind": "ratio", "numerator": HPA_LATENCY + "_sum",
             "denominator": HPA_LATENCY + "_count", "window_s": 60.0, "target": target, "target_type": "Value"},
        ],
    }  # fmt: skip
    return recipe.Recipe.model_validate(data)


def _s(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} s"


def _slo(rec: recipe.Recipe) -> summary.Slo | None:
    if rec.slo.ttft_s is None and rec.slo.e2e_s is None:
        return None
    return summary.Slo(ttft_s=rec.slo.ttft_s, e2e_s=rec.slo.e2e_s)


def slo_text(rec: recipe.Recipe) -> str:
    return stacked.slo_text(ttft_s=rec.slo.ttft_s, e2e_s=rec.slo.e2e_s)


async def _wait_ready(rt: local.LocalRuntime, stop: asyncio.Event) -> None:
    while not any(r.state == "ready" for r in rt.status().replicas) and not stop.is_set():
        if rt.failure is not None:
            raise errors.ClusterError(rt.failure)
        await asyncio.sleep(0.2)


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """One replica measured alone: latency one request at a time, throughput at its target."""

    ttft_p50_s: float | None
    e2e_p50_s: float | None
    capacity_rps: float | None


async def _closed_loop(url: str, concurrency: int, requests: int, stop: asyncio.Event) -> runner.Result:
    opts = options.Options(
        url=url,
        protocol="openai-chat",
        concurrency=concurrency,
        requests=requests,
        shape=SHAPE,
        timeout_s=60.0,
        ignore_eos=True,
    )
    return await runner.run(opts, stop=stop)


async def calibrate(url: str, concurrency: int, stop: asyncio.Event) -> Calibration:
    """Measure one replica, sending to the replica itself (the gateway's concurrency signal must
    not see these requests): a few requests one at a time (the first warms it up), then the
    requests per second it serves holding `concurrency` requests (closed loop)."""
    alone = (await _closed_loop(url, 1, CALIBRATION_REQUESTS // 2, stop)).summary
    busy = (await _closed_loop(url, concurrency, CALIBRATION_REQUESTS, stop)).summary
    return Calibration(
        ttft_p50_s=alone.ttft.p50,
        e2e_p50_s=alone.e2e.p50,
        capacity_rps=busy.request_rate if busy.ok and busy.request_rate > 0 else None,
    )


def too_slow(cal: Calibration, rec: recipe.Recipe) -> str | None:
    """Why the SLO is out of reach even for one request at a time, if it is."""
    for name, got, target in (
        ("TTFT", cal.ttft_p50_s, rec.slo.ttft_s),
        ("end-to-end", cal.e2e_p50_s, rec.slo.e2e_s),
    ):
        if got is not None and target is not None and got > target:
            return (
                f"this machine is too slow or too busy for the SLO: one request at a time already takes "
                f"{got:.2f} s {name} (p50) against {target:g} s"
            )
    return None


async def _one_run(
    rec: recipe.Recipe,
    label: str,
    console: Console,
    *,
    duration_s: float,
    port: int | None,
    plan: LoadPlan | None,
    base_rps: float | None,
    surge: float | None,
) -> tuple[demo_report.Outcome, LoadPlan, rates.BlackFriday] | None:
    """Serve `rec`, calibrate if no plan is given yet, drive the surge, collect what happened."""
    cpus = usable_cpus()
    free = free_cpus(cpus)  # before this run adds load of its own
    rt = local.LocalRuntime(rec, port=port, give_up_after=up_cmd.START_ATTEMPTS)
    stop = asyncio.Event()
    up_cmd.install_stop_handlers(stop.set)
    async with rt:
        console.print(
            f"[bold]{label}[/]: serving {rec.service.name} on [bold cyan]{rt.endpoint}/v1[/] "
            f"(policy {rec.autoscaling.policy}, up to {rec.autoscaling.max_replicas} replicas); "
            "waiting for a ready replica …",
            highlight=False,
        )
        await _wait_ready(rt, stop)
        if plan is None:
            conc = max(1, round(per_replica_concurrency(rec)))
            console.print(f"measuring one replica at {conc} requests at a time …", highlight=False)
            url = next(r.url for r in rt.status().replicas if r.state == "ready" and r.url)
            cal = await calibrate(url, conc, stop)
            plan = plan_load(
                cal.capacity_rps, rec.autoscaling.max_replicas, base_rps=base_rps, surge=surge, free=free
            )
            measured = "not measured" if cal.capacity_rps is None else f"{cal.capacity_rps:.2f} req/s"
            console.print(
                f"one replica: alone TTFT p50 {_s(cal.ttft_p50_s)}, end-to-end p50 {_s(cal.e2e_p50_s)}; "
                f"{measured} at {conc} at a time; {cpus} CPUs usable, ~{free:.1f} free → quiet {plan.base_rps:.2f} req/s, surge to "
                f"{plan.peak_rps:.2f} req/s (×{plan.surge:.1f})",
                highlight=False,
            )
            if (why := too_slow(cal, rec)) is not None:
                console.print(f"[yellow]warning:[/] {why}", highlight=False)
        if stop.is_set():
            return None
        schedule = black_friday(duration_s, plan.base_rps, plan.surge)
        opts = options.Options(
            url=rt.endpoint,
            protocol="openai-chat",
            workload=patterns.OpenLoop(schedule=schedule, shape=SHAPE),
            duration_s=duration_s,
            timeout_s=max(60.0, duration_s),
            slo=_slo(rec),
            ignore_eos=True,
        )
        console.print(f"load: {schedule.description}, {duration_s:g} s", highlight=False)
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
        outcome = demo_report.Outcome(
            label=label,
            recipe=rec,
            result=result,
            timeline=tuple(rt.timeline),
            decisions=tuple(rt.history),
            pending_for_slots=any(p.pending for p in rt.timeline if p.t >= result.started_at),
        )
    return outcome, plan, schedule


def idle_note(o: demo_report.Outcome, plan: LoadPlan | None) -> str:
    """Why a demo showed no scaling ('' when it scaled): the surge stayed within what the replicas
    it started with serve by the recipe's own targets."""
    if demo_report.verdict(o).scale_ups:
        return ""
    peak = f" (peak {plan.peak_rps:.2f} req/s)" if plan is not None else ""
    return (f"{o.label} never scaled up: the surge{peak} stayed within what the replicas it started with "
            "serve by the recipe's signals and targets; give a larger --surge or --base-rps, or lower a target")


async def _demo(
    rec: recipe.Recipe,
    *,
    duration_s: float,
    base_rps: float | None,
    surge: float | None,
    port: int | None,
    report: Path,
    compare: bool,
) -> list[demo_report.Outcome]:
    console = Console()
    got = await _one_run(
        rec, "swell", console, duration_s=duration_s, port=port, plan=None, base_rps=base_rps, surge=surge
    )
    if got is None:
        return []
    first, plan, schedule = got
    outcomes = [first]
    if compare:
        again = await _one_run(
            hpa_latency(rec), "hpa-latency", console, duration_s=duration_s, port=port, plan=plan,
            base_rps=None, surge=None,
        )  # fmt: skip
        if again is not None:
            outcomes.append(again[0])
    slo, text = _slo(rec), slo_text(rec)
    sections = [demo_report.section(o, schedule, slo, text) for o in outcomes]
    sections += charts.sections(first.result)[:1]
    html.write(
        report,
        f"swell demo: {rec.service.name} under a compressed Black Friday",
        sections,
        subtitle=f"{schedule.description}; {text}; {rec.autoscaling.max_replicas} replicas at most "
        f"({usable_cpus()} CPUs usable)",
    )
    console.print(demo_report.summary_table(outcomes, text))
    if note := idle_note(first, plan):
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"report: [bold]{report}[/]")
    return outcomes


def demo(
    duration_text: Annotated[
        str, typer.Option("--duration", help="How long the load runs: 150, 150s, 5m (the surge scales with it).")
    ] = "150",
    surge: Annotated[
        float | None,
        typer.Option(help="Peak load as a multiple of the quiet load (default: sized to this machine)."),
    ] = None,
    base_rps: Annotated[
        float | None,
        typer.Option(
            help="Quiet load in requests per second (default: a fifth of what one replica serves)."
        ),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Then run an HPA on average latency on the same load; show both."),
    ] = False,
    recipe_path: Annotated[
        Path | None, typer.Option("--recipe", help="Recipe (default: the embedded llama-cpp recipe).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Gateway port (default: the recipe's, 8000).")
    ] = None,
    report: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path("swell-demo.html"),
) -> None:
    """Serve the default model, drive a compressed Black Friday sized to this machine, show the
    scaling, summarise and report."""
    try:
        duration = durations.parse(duration_text)
    except ValueError:
        raise errors.RecipeError("demo options", [errors.Problem(path="duration", value=duration_text,
                                                                 rule=durations.EXAMPLES)]) from None  # fmt: skip
    rec = sized(up_cmd.load_recipe(recipe_path), usable_cpus())
    for name, value in (("duration", duration), ("surge", surge), ("base-rps", base_rps)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise errors.RecipeError(
                "demo options", [errors.Problem(path=name, value=value, rule="must be a positive number")]
            )
    checks.output_file("--report", report)  # before minutes of load, not after
    with contextlib.suppress(KeyboardInterrupt):
        outcomes = asyncio.run(
            _demo(
                rec,
                duration_s=duration,
                base_rps=base_rps,
                surge=surge,
                port=port,
                report=report,
                compare=compare,
            )
        )
        if not outcomes or outcomes[0].result.summary.failed:
            raise typer.Exit(1)
