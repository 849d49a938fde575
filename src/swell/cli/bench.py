"""`swell bench`: load an inference endpoint and measure it (genai-perf, vllm bench serve, hey).

Closed loop (--concurrency), open loop (--rate, --burstiness), shaped patterns (--pattern) or
trace replay (--trace, --speedup); always bounded by --duration and/or --requests. Live progress,
a final table, JSON/CSV/HTML outputs; Ctrl-C stops early and still prints what was measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import pathlib
import re
import signal
from collections.abc import Mapping
from typing import Annotated

import typer
from rich import markup as rich_markup
from rich import progress as rich_progress
from rich.console import Console
from rich.table import Table

from swell import durations, errors, files
from swell.cli import checks
from swell.loadgen import charts, export, options, protocols, runner, sender, summary, sweep
from swell.report import html
from swell.workload import shapes, spec

LOAD, BOUNDS, SHAPE, OUTPUT, HTTP = "Load (choose one)", "Bounds", "Request shape", "Output", "HTTP"

EPILOG = (
    "Examples:\n"
    "  swell bench http://127.0.0.1:8000 --concurrency 8 --duration 60s\n"
    "  swell bench http://127.0.0.1:8000 --rate 20 --burstiness 0.5 --requests 1000 --goodput 'ttft:200 tpot:50'\n"
    "  swell bench http://127.0.0.1:8000 --pattern black-friday --report bench.html\n"
    "  swell bench http://127.0.0.1:8000 --trace azure-conv --speedup 10 --duration 5m\n"
    "  swell bench http://127.0.0.1:8000 --rate 5 -n 500 --prompts ShareGPT_V3_unfiltered_cleaned_split.json\n"
    "  swell bench http://127.0.0.1:8000 --sweep concurrency=1,2,4,8,16 -d 60s --goodput 'ttft:500' --report sweep.html\n"
    "  swell bench http://127.0.0.1:8080 --protocol kserve --model iris -c 16 -n 5000 \\\n"
    "      --body '{\"instances\": [[6.8, 2.8, 4.8, 1.4]]}'\n\n"
    "Patterns (--pattern NAME[:KEY=VALUE,...]):\n" + spec.GRAMMAR
)


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return durations.parse(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not {durations.EXAMPLES}", param_hint="--duration") from None


BODY_MAX = 100_000_000  # characters of a --body @FILE: one request's body
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # in a header value: all but tab (RFC 9110)
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110): no spaces


def _headers(values: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{value!r} is not 'Name: value'", param_hint="--header")
        if not HEADER_NAME.match(name.strip()):
            raise typer.BadParameter(
                f"{name.strip()!r}: a header name is letters, digits and -_.!#$%&'*+^`|~ (no spaces)",
                param_hint="--header",
            )
        if CONTROL.search(content):  # CR/LF would split it into two headers: aiohttp refuses every request
            raise typer.BadParameter(
                f"{value!r}: a header value has no control characters (CR, LF, NUL...)", param_hint="--header"
            )
        out.append((name.strip(), content.strip()))
    return tuple(out)


def _body(body: str | None) -> str | None:
    """--body, or the UTF-8 text of the file it names with @file."""
    if body is None or not body.startswith("@"):
        return body
    try:
        return files.read_text(body[1:], BODY_MAX)
    except files.Unreadable as exc:
        raise typer.BadParameter(f"{body[1:]}: {exc}", param_hint="--body") from None


def _expected(opts: options.Options, plan: options.Plan) -> str:
    """How long a count of requests takes at an open-loop rate, where only the count bounds the run
    (`-n 10 --rate 0.001` runs for hours): '' otherwise."""
    rate, n = opts.rate, plan.max_requests
    if rate is None or n is None or not 0 < rate < float("inf") or plan.horizon_s < n / rate:
        return ""
    t = n / rate
    about = f"{t:.0f} s" if t < 120 else f"{t / 60:.0f} min" if t < 7200 else f"{t / 3600:.1f} h"
    return f" (about {about} at {rate:g} req/s)"


def _shape(
    input_tokens: float | None,
    input_stddev: float | None,
    output_tokens: float | None,
    output_stddev: float | None,
) -> shapes.Shape | None:
    given = (input_tokens, input_stddev, output_tokens, output_stddev)
    if all(v is None for v in given):
        return None
    base = shapes.Shape()
    try:
        return shapes.Shape(
            input_mean=base.input_mean if input_tokens is None else input_tokens,
            input_stddev=(0.0 if input_tokens is not None else base.input_stddev)
            if input_stddev is None
            else input_stddev,
            output_mean=base.output_mean if output_tokens is None else output_tokens,
            output_stddev=(0.0 if output_tokens is not None else base.output_stddev)
            if output_stddev is None
            else output_stddev,
        )
    except ValueError as exc:  # the shape's field names, as the options spell them
        text = str(exc)
        for field, option in SHAPE_OPTIONS.items():
            if text.startswith(field + " "):
                raise typer.BadParameter(text.removeprefix(field + " "), param_hint=option) from None
        raise typer.BadParameter(text, param_hint="--input-tokens/--output-tokens") from None


SHAPE_OPTIONS = {"input_mean": "--input-tokens", "input_stddev": "--input-stddev",
                 "output_mean": "--output-tokens", "output_stddev": "--output-stddev"}  # fmt: skip


class _Live:
    """A rich progress bar fed by the runner's progress callback."""

    def __init__(self, console: Console, enabled: bool) -> None:
        columns = (
            rich_progress.SpinnerColumn(),
            rich_progress.BarColumn(),
            rich_progress.TaskProgressColumn(),
            rich_progress.TextColumn("{task.fields[line]}"),
            rich_progress.TimeElapsedColumn(),
        )
        self.bar = rich_progress.Progress(*columns, console=console, transient=True, disable=not enabled)
        self.task = self.bar.add_task("bench", total=1000, line="starting")

    def __call__(self, p: runner.Progress) -> None:
        line = (
            f"{'warmup  ' if p.phase == 'warmup' else ''}"
            f"{p.completion_rps:7.1f} req/s  sent {p.sent}  done {p.done}  in flight {p.in_flight}  "
            f"[{'red' if p.failed else 'green'}]errors {p.failed}[/]"
        )
        self.bar.update(self.task, completed=None if p.fraction is None else p.fraction * 1000, line=line)


def _table(t: html.Table, title: str) -> Table:
    """A report table for the terminal: the first column left, numbers right, floats as people read them."""
    out = Table(title=title, title_justify="left")
    for i, column in enumerate(t.columns):
        out.add_column(column, justify="left" if i == 0 else "right")
    for row in t.rows:
        out.add_row(*("—" if v is None else html.number(v) if isinstance(v, float) else str(v) for v in row))
    return out


def _print_summary(console: Console, result: runner.Result) -> None:
    headline, latency = charts.summary_tables(result.summary)
    console.print(_table(headline, "summary"))
    if latency.rows:
        console.print(_table(latency, "latency (ms)"))
    if result.summary.errors:
        console.print(
            "errors: " + ", ".join(f"{k} ×{v}" for k, v in result.summary.errors.items()), style="red"
        )
        for kind, text in result.summary.error_examples.items():
            console.print(f"  {kind}, e.g.: {text}", style="red", highlight=False, markup=False)


async def _run(opts: options.Options, plan: options.Plan, live: _Live) -> runner.Result:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C ends at once

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        await sender.probe(opts.url)  # nothing serving there: say so, not after a run of refused requests
        with live.bar:
            return await runner.run(opts, progress=live, progress_interval_s=0.25, stop=stop, plan=plan)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)


def bench(
    url: Annotated[str, typer.Argument(metavar="URL", help="Server base URL (http://host:port) or the full endpoint URL.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model name; default: ask /v1/models.")
    ] = None,
    protocol: Annotated[
        str, typer.Option(help="openai-chat, openai-completions, kserve (v1 :predict) or http (JSON POST).")
    ] = "openai-chat",
    stream: Annotated[bool, typer.Option(help="Stream tokens (SSE) to measure TTFT and ITL.")] = True,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", help="Closed loop: N users.", rich_help_panel=LOAD)
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            "-r",
            help="Open loop: requests per second; inf sends all --requests at once.",
            rich_help_panel=LOAD,
        ),
    ] = None,
    burstiness: Annotated[
        float, typer.Option(help="With --rate: gamma shape; 1 Poisson, <1 burstier.", rich_help_panel=LOAD)
    ] = 1.0,
    pattern: Annotated[
        str | None,
        typer.Option(
            "--pattern", "-p", help="A workload, e.g. black-friday (see below).", rich_help_panel=LOAD
        ),
    ] = None,
    trace: Annotated[
        str | None,
        typer.Option(
            help="Replay a trace: a CSV/JSONL file, azure-conv, azure-code or servegen.", rich_help_panel=LOAD
        ),
    ] = None,
    speedup: Annotated[
        float, typer.Option(help="With --trace: play it K× faster.", rich_help_panel=LOAD)
    ] = 1.0,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            "-d",
            help="Stop sending after this long (90, 90s, 5m); then wait for the requests in flight, "
            "each for at most --timeout (300 s by default). Ctrl-C stops at once, with a partial summary.",
            rich_help_panel=BOUNDS,
        ),
    ] = None,
    requests: Annotated[
        int | None, typer.Option("--requests", "-n", help="Stop after N requests.", rich_help_panel=BOUNDS)
    ] = None,
    warmup: Annotated[
        int,
        typer.Option(
            help="Send N requests first and wait for them; no statistic counts them.", rich_help_panel=BOUNDS
        ),
    ] = 0,
    input_tokens: Annotated[
        float | None, typer.Option(help="Mean prompt tokens.", rich_help_panel=SHAPE)
    ] = None,
    input_stddev: Annotated[
        float | None, typer.Option(help="Stddev of prompt tokens.", rich_help_panel=SHAPE)
    ] = None,
    output_tokens: Annotated[
        float | None, typer.Option(help="Mean output tokens.", rich_help_panel=SHAPE)
    ] = None,
    prompts_file: Annotated[
        pathlib.Path | None,
        typer.Option(
            "--prompts",
            help='Prompts from a file, in order: JSON lines ({"prompt": ...} or {"messages": [...]}, '
            "optional max_tokens) or ShareGPT JSON.",
            rich_help_panel=SHAPE,
        ),
    ] = None,
    shuffle_prompts: Annotated[
        bool,
        typer.Option(help="Use the --prompts file in an order drawn from --seed (vLLM's bench shuffles).",
                     rich_help_panel=SHAPE),
    ] = False,
    output_stddev: Annotated[
        float | None, typer.Option(help="Stddev of output tokens.", rich_help_panel=SHAPE)
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of arrivals, sizes and prompts.", rich_help_panel=SHAPE)
    ] = 0,
    goodput: Annotated[
        str | None,
        typer.Option(help="SLO for goodput, ms: 'ttft:200 tpot:50 e2el:2000'.", rich_help_panel=OUTPUT),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Per-request timeout, seconds.", rich_help_panel=HTTP)
    ] = 300.0,
    max_in_flight: Annotated[
        int | None,
        typer.Option(
            help="Cap on requests in flight (open loop; not with --concurrency).", rich_help_panel=HTTP
        ),
    ] = None,
    body: Annotated[
        str | None,
        typer.Option(
            help="JSON body template ({{prompt}}, {{output_tokens}}...; @file reads a file).",
            rich_help_panel=HTTP,
        ),
    ] = None,
    header: Annotated[
        list[str], typer.Option("--header", "-H", help="Extra header 'Name: value'.", rich_help_panel=HTTP)
    ] = [],  # noqa: B006
    ignore_eos: Annotated[
        bool, typer.Option(help="Ask for exactly max_tokens (vLLM).", rich_help_panel=HTTP)
    ] = False,
    json_out: Annotated[
        pathlib.Path | None,
        typer.Option("--json", help="Write summary + timeline JSON.", rich_help_panel=OUTPUT),
    ] = None,
    csv_out: Annotated[
        pathlib.Path | None,
        typer.Option("--csv", help="Write one CSV row per request.", rich_help_panel=OUTPUT),
    ] = None,
    report: Annotated[
        pathlib.Path | None, typer.Option(help="Write an HTML report with plots.", rich_help_panel=OUTPUT)
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No live progress.", rich_help_panel=OUTPUT)
    ] = False,
    sweep_spec: Annotated[
        str | None,
        typer.Option(
            "--sweep",
            help="One run per load level: concurrency=1,2,4,8 or rate=1,2,4 (each bounded like one run); "
            "with --goodput, the highest level sustained within it.",
            rich_help_panel=LOAD,
        ),
    ] = None,
) -> None:
    """Send load to URL and measure throughput, TTFT, ITL, TPOT, latency, errors and goodput."""
    console = Console()
    sw = None
    if sweep_spec is not None:
        try:
            sw = sweep.parse(sweep_spec)
        except errors.SwellError as exc:
            raise typer.BadParameter(str(exc).removeprefix("--sweep: "), param_hint="--sweep") from None
        given = [n for n, v in (("--concurrency", concurrency), ("--rate", rate), ("--pattern", pattern),
                                ("--trace", trace)) if v is not None]  # fmt: skip
        if given:
            raise typer.BadParameter(f"--sweep sets the load of each run: drop {', '.join(given)}", param_hint="--sweep")
        if csv_out is not None:
            raise typer.BadParameter("--csv writes one run's requests: use --json, which has every run", param_hint="--sweep")
    if protocol not in protocols.NAMES:
        raise typer.BadParameter(
            f"{protocol!r}: choose one of {', '.join(protocols.NAMES)}", param_hint="--protocol"
        )
    body = _body(body)
    if shuffle_prompts and prompts_file is None:
        raise typer.BadParameter("--shuffle-prompts orders a --prompts file; give one", param_hint="--shuffle-prompts")
    if prompts_file is not None and (input_tokens is not None or input_stddev is not None):
        raise typer.BadParameter(
            "input lengths come from the prompts file: drop --input-tokens/--input-stddev",
            param_hint="--prompts",
        )
    try:
        for option, out in (("--json", json_out), ("--csv", csv_out), ("--report", report)):
            checks.output_file(option, out)
        opts = options.Options(
            url=url, protocol=protocol, model=model, stream=stream, concurrency=concurrency, rate=rate,
            burstiness=burstiness, pattern=pattern, trace=trace, speedup=speedup, duration_s=_duration(duration),
            requests=requests, shape=_shape(input_tokens, input_stddev, output_tokens, output_stddev), seed=seed,
            timeout_s=timeout, max_in_flight=max_in_flight, slo=summary.parse_slo(goodput) if goodput else None,
            body=body, headers=_headers(header), ignore_eos=ignore_eos, warmup=warmup,
            prompts=None if prompts_file is None else str(prompts_file), shuffle_prompts=shuffle_prompts,
        )  # fmt: skip
        if sw is not None:
            opts = sweep.at(opts, sw, sw.levels[0])
        plan = options.plan(opts)
    except errors.SwellError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if sw is not None:
        _sweep(console, sw, opts, plan, quiet=quiet, json_out=json_out, report=report)
        return
    bound = " and ".join(
        part
        for part in (
            f"{plan.horizon_s:g} s" if plan.horizon_s != float("inf") else "",
            f"{plan.max_requests} requests" if plan.max_requests else "",
        )
        if part
    )
    warm = f", after {opts.warmup} warmup requests" if opts.warmup else ""
    console.print(f"[bold]swell bench[/] {url}: {plan.description}; up to {bound}{warm}{_expected(opts, plan)}",
                  highlight=False)  # fmt: skip
    try:
        result = asyncio.run(_run(opts, plan, _Live(console, enabled=not quiet)))
    except errors.SwellError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(_exit_code(exc)) from None
    if result.interrupted:
        console.print("[yellow]interrupted: partial results[/]")
    if result.warmup:
        failed = sum(1 for r in result.warmup if not r.ok)
        console.print(
            f"warmup: {len(result.warmup)} requests ({failed} failed), not counted", highlight=False
        )
    if result.options.model:
        console.print(f"model: {result.options.model}", highlight=False, markup=False)
    _print_summary(console, result)
    for path, write in ((json_out, export.write_json), (csv_out, export.write_csv), (report, charts.write)):
        if path is not None:
            console.print(f"wrote {write(result, path)}", highlight=False)
    if result.interrupted:
        raise typer.Exit(130)
    s = result.summary
    if s.sent and not s.ok:
        typer.echo(f"error: all {s.failed} requests failed ({', '.join(s.errors)}) — {_failed_hint(s.errors, opts)}",
                   err=True)  # fmt: skip
        raise typer.Exit(1)


def _exit_code(exc: errors.SwellError) -> int:
    """1 where the options were fine but nothing serves at the URL, 2 for options that are wrong."""
    return 1 if isinstance(exc, sender.Unreachable) else 2


def _failed_hint(errs: Mapping[str, int], opts: options.Options) -> str:
    """What to check when every request failed: a server that answers, but 404 or 400 on every one,
    is serving another model or path than asked for; else whether it serves at all."""
    codes = {e.split(" ", 1)[0] for e in errs}
    if codes and codes <= {"404", "400"}:
        model = f"--model {opts.model!r}" if opts.model else "the model the server listed"
        return (f"the server answers, but not to {opts.protocol} requests for {model} at {opts.url}: check "
                "--model and --protocol")  # fmt: skip
    return f"is {opts.url} serving?"


def _sweep(
    console: Console, sw: sweep.Sweep, opts: options.Options, first: options.Plan, *, quiet: bool,
    json_out: pathlib.Path | None, report: pathlib.Path | None,
) -> None:  # fmt: skip
    """One run per level, a line each, then the sweep's table, what is sustained within the SLO,
    and the outputs; Ctrl-C ends the sweep after the partial run it stops."""
    points: list[sweep.Point] = []
    for i, level in enumerate(sw.levels):
        run_opts = sweep.at(opts, sw, level)
        try:
            plan = first if i == 0 else dataclasses.replace(
                options.plan(dataclasses.replace(run_opts, prompts=None)), prompts=first.prompts
            )  # the prompts file is read once
            console.print(f"[bold]{sw.label(level)}[/] ({i + 1}/{len(sw.levels)}): {plan.description}", highlight=False)
            result = asyncio.run(_run(run_opts, plan, _Live(console, enabled=not quiet)))
        except errors.SwellError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(_exit_code(exc)) from None
        points.append(sweep.Point(level=level, result=result))
        s = result.summary
        console.print(
            f"  {s.ok}/{s.sent} ok · {s.request_rate:.3g} req/s · TTFT p95 "
            f"{'—' if s.ttft.p95 is None else f'{s.ttft.p95 * 1000:.0f} ms'} · e2e p95 "
            f"{'—' if s.e2e.p95 is None else f'{s.e2e.p95 * 1000:.0f} ms'}"
            + ("" if s.slo_attainment is None else f" · within SLO {s.slo_attainment:.1%}"),
            highlight=False,
        )
        if result.interrupted:
            console.print("[yellow]interrupted: the sweep ends here[/]")
            break
    console.print(_table(sweep.table(sw, points), f"sweep of {sw.kind}"))
    best = sweep.sustained(points)
    if any(p.result.summary.slo is not None for p in points):
        console.print(
            f"sustained within the goodput SLO ({sweep.SLO_SHARE:.0%} of requests): "
            + (sw.label(best.level) if best is not None else "no level"),
            highlight=False,
        )
    if json_out is not None:
        files.write_text(json_out, json.dumps(sweep.to_dict(sw, points), indent=2) + "\n")
        console.print(f"wrote {json_out}", highlight=False)
    if report is not None:
        console.print(f"wrote {sweep.write_report(sw, points, report)}", highlight=False)
    if points and points[-1].result.interrupted:
        raise typer.Exit(130)
    if all(p.result.summary.sent and not p.result.summary.ok for p in points):
        typer.echo(f"error: every request of every run failed — is {opts.url} serving?", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("bench", epilog=rich_markup.escape(EPILOG))(bench)
