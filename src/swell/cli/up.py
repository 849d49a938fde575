"""`swell up [RECIPE]`: serve a recipe on this machine with autoscaling; `swell demo` (see demo.py).

Prints the endpoint, then a live status (replicas ready / starting / pending, each signal's value,
the last decision and why) until Ctrl-C or SIGTERM, which stop every replica and the gateway.
Without a recipe it runs the embedded default: SmolLM2 on llama.cpp, scaled on gateway concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from swell import errors, recipe
from swell.cli import checks
from swell.clusters.local import engines, procs
from swell.clusters.local import replicas as replicas_mod
from swell.core import load, snapshot
from swell.runtime import local

DEFAULT_RECIPE = "default-recipe.yaml"
START_ATTEMPTS = 3  # a replica that fails to start this often, none ever ready: swell up stops
STATE_STYLE = {"ready": "green", "starting": "yellow", "pending": "magenta", "terminating": "dim"}


def load_recipe(path: Path | None) -> recipe.Recipe:
    """The recipe at `path`, or the embedded default recipe."""
    if path is not None:
        return recipe.load(path)
    text = (importlib.resources.files("swell") / "data" / DEFAULT_RECIPE).read_text(encoding="utf-8")
    return recipe.load_text(text, f"<embedded {DEFAULT_RECIPE}>")


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3g}"


def render_status(rec: recipe.Recipe, st: local.Status, extra: RenderableType | None = None) -> Group:
    """The live status screen of `swell up` and `swell demo`."""
    counts = {s: sum(1 for r in st.replicas if r.state == s) for s in STATE_STYLE}
    head = Text.assemble(
        (f"{rec.service.name}", "bold"),
        f" ({rec.service.engine}) · policy {rec.autoscaling.policy} · endpoint ",
        (engines.protocol_text(rec.service, st.endpoint), "bold cyan"),
        "\n",
        f"replicas: target {st.target} · ",
        *[(f"{n} {s}  ", STATE_STYLE[s]) for s, n in counts.items() if n or s == "ready"],
        f"· gateway: {st.gateway.requests} requests, {st.gateway.errors} errors"
        + (f" ({st.gateway.shed} shed at the {rec.slo.deadline_s:g} s deadline)" if rec.slo.deadline_s else "")
        + f", {st.gateway.in_flight} in flight, {st.gateway.buffered} buffered",
    )
    reps = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for col in ("replica", "state", "slot", "address", "pid", "restarts", "reason"):
        reps.add_column(col, overflow="fold")
    for r in st.replicas:
        reps.add_row(
            r.name,
            Text(r.state, STATE_STYLE.get(r.state, "")),
            r.slot,
            (r.url or "").removeprefix("http://"),
            str(r.pid or ""),
            str(r.restarts),
            r.reason,
        )
    sigs = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for col in ("signal", "value", "target", "wants", "note"):
        sigs.add_column(col, overflow="fold")
    props = {p.signal: p for p in st.last.decision.proposals} if st.last else {}
    targets = {s.name: s.target for s in rec.autoscaling.signals}
    for name, reading in shown(st.signals).items():
        p = props.get(name)
        target = p.target if p else targets.get(name)
        sigs.add_row(
            name,
            _fmt(reading.value),
            "" if target is None else _fmt(target),
            "" if p is None or p.replicas is None else str(p.replicas),
            reading.error or (p.note if p else ""),
        )
    for p in (p for name, p in props.items() if name.startswith(load.PREFIX)):  # the planner's plan: load
        # and forecast (req/s) against what one replica serves, and the replicas each needs
        sigs.add_row(p.signal, _fmt(p.value), _fmt(p.target), "" if p.replicas is None else str(p.replicas), p.note)
    parts: list[RenderableType] = [head, reps, sigs]
    if st.last is not None:
        d = st.last.decision
        age = time.time() - d.t
        parts.append(
            Text.assemble(
                ("last decision ", "bold"),
                f"{age:.0f} s ago: {d.current} → {d.desired} (bound by {d.bound_by}): {d.reason}",
            )
        )
        if d.workers is not None:
            w = d.workers
            parts.append(
                Text.assemble(("workers per replica ", "bold"), f"{w.current} → {w.desired}: {w.reason}")
            )
    for e in st.events[-4:]:
        parts.append(Text(f"  {time.strftime('%H:%M:%S', time.localtime(e.t))} {e.replica}: {e.text}", "dim"))
    if extra is not None:
        parts.append(extra)
    parts.append(Text(f"Ctrl-C stops everything · replica logs in {st.run_dir}", "dim"))
    return Group(*parts)


def shown(readings: Mapping[str, snapshot.Reading]) -> dict[str, snapshot.Reading]:
    """The readings worth a column: the recipe's signals, and the planner's own load reads only where
    they have a value (an engine without vLLM's counters leaves most of them empty)."""
    return {k: v for k, v in readings.items() if v.value is not None or not k.startswith(load.PREFIX)}


def status_line(st: local.Status) -> str:
    """One plain line for logs and terminals without live display."""
    counts = {s: sum(1 for r in st.replicas if r.state == s) for s in STATE_STYLE}
    last = st.last.decision if st.last else None
    sig = ", ".join(f"{k}={_fmt(v.value)}" for k, v in shown(st.signals).items())
    why = f"{last.current}→{last.desired} ({last.bound_by}): {last.reason}" if last else "no decision yet"
    if last is not None and last.workers is not None:
        why += f" | workers {last.workers.current}→{last.workers.desired}: {last.workers.reason}"
    failing = "".join(f" | {r.name} not ready: {_why_not_ready(r)}" for r in st.replicas
                      if r.state != "ready" and (r.last_error or r.reason))  # fmt: skip
    return (
        f"target {st.target} ready {counts['ready']} starting {counts['starting']} "
        f"pending {counts['pending']} | {sig} | {why}{failing}"
    )


def _why_not_ready(r: replicas_mod.ReplicaInfo) -> str:
    """What the status screen's reason column says of a replica, for a plain line: why its last
    process ended, and its state's reason where that says more (waiting for a device slot)."""
    if r.last_error and r.last_error in r.reason:
        return r.last_error
    return "; ".join(x for x in (r.last_error, r.reason) if x)


def install_stop_handlers(stop: Callable[[], None]) -> None:
    """First Ctrl-C / SIGTERM: a clean stop. A second one: kill every replica now and exit."""
    loop = asyncio.get_running_loop()
    asked = [False]

    def handler() -> None:
        if asked[0]:
            procs.kill_all()
            os._exit(130)
        asked[0] = True
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handler)


async def show_live(
    rt: local.LocalRuntime,
    console: Console,
    until: asyncio.Future[Any] | asyncio.Event,
    extra: Callable[[], RenderableType | None] = lambda: None,
) -> None:
    """Refresh the status (live on a terminal, a line per change otherwise) until `until` is done."""

    def done() -> bool:
        return until.is_set() if isinstance(until, asyncio.Event) else until.done()

    if console.is_terminal:
        with Live(
            render_status(rt.recipe, rt.status(), extra()), console=console, auto_refresh=False
        ) as live:
            while not done():
                live.update(render_status(rt.recipe, rt.status(), extra()), refresh=True)
                await asyncio.sleep(0.5)
        return
    last = ""
    while not done():
        line = status_line(rt.status())
        if line != last:
            console.print(line, highlight=False, soft_wrap=True)
            last = line
        await asyncio.sleep(0.5)


WATCH_S = 1.0  # how often --watch looks at the recipe file


async def watch_file(path: Path, rt: local.LocalRuntime, console: Console) -> None:
    """`swell up --watch`: each edit of the recipe file goes onto the running service
    (`LocalRuntime.apply_recipe`: at once, or rolled onto the replicas); what cannot be applied is
    said, and the service runs on as it was."""
    seen = recipe.read_text(path)
    said = ""  # the last reading problem said (each is said once, until the file reads again)
    while True:
        await asyncio.sleep(WATCH_S)
        why = "" if path.is_file() else f"{path} is not a regular file" if path.exists() else "no such file"
        try:  # a FIFO or device would block the read: not a recipe file, not read
            text = await asyncio.wait_for(asyncio.to_thread(recipe.read_text, path), timeout=10.0) if not why else ""
        except errors.RecipeError as exc:
            why = exc.problems[0].rule
        except TimeoutError:
            why = "no answer within 10 s"
        if why:
            if why != said:
                console.print(f"[yellow]--watch: cannot read {path}: {why}; the service runs as it was[/]",
                              highlight=False)  # fmt: skip
                said = why
            continue
        said = ""
        if text == seen:
            continue
        seen = text
        try:
            applied = rt.apply_recipe(recipe.load_text(text, str(path)))  # what was read, not a second read
        except errors.SwellError as exc:
            console.print(f"[yellow]{path} changed, not applied (the service runs as it was):[/] {exc}",
                          highlight=False, soft_wrap=True)  # fmt: skip
            continue
        what = "; ".join(applied.changed) or "nothing that matters"
        if not applied.rolled:
            console.print(f"{path} changed: applied at once: {what}", highlight=False, soft_wrap=True)
            continue
        console.print(f"{path} changed: rolling its replicas onto it one at a time: {what}", highlight=False,
                      soft_wrap=True)  # fmt: skip
        error = await rt.rolled()
        if error is None:
            console.print(f"every replica runs the edited {path}", highlight=False, soft_wrap=True)
        else:
            console.print(f"[yellow]rolled back to the previous recipe:[/] {error}", highlight=False, soft_wrap=True)


async def _up(
    rec: recipe.Recipe, port: int | None, policy: str | None, run_dir: Path | None, watch: Path | None = None
) -> None:
    console = Console()
    rt = local.LocalRuntime(rec, port=port, policy=policy, run_dir=run_dir, give_up_after=START_ATTEMPTS)
    install_stop_handlers(rt.request_stop)
    console.print(f"starting {rec.service.name} ({rec.service.engine}) …", highlight=False)
    async with rt:
        watching = asyncio.ensure_future(watch_file(watch, rt, console)) if watch is not None else None
        console.print(
            f"serving on [bold cyan]{engines.protocol_text(rec.service, rt.endpoint)}[/] · "
            f"metrics {rt.endpoint}/metrics",
            highlight=False,
        )
        if rec.autoscaling.metrics.source == "prometheus":
            console.print(
                f"signals from {rec.autoscaling.metrics.prometheus_url}: have it scrape the targets in "
                f"file_sd_configs: [{{files: ['{rt.sd_file}']}}]",
                highlight=False,
            )
        stop = asyncio.Event()
        waiter = asyncio.ensure_future(rt.wait())
        waiter.add_done_callback(lambda _: stop.set())
        await show_live(rt, console, stop)
        if watching is not None:
            watching.cancel()
        console.print(
            f"stopping: requests in flight finish (up to {rec.drain_s:g} s; Ctrl-C again "
            f"to cut them), then every replica stops (SIGTERM, SIGKILL after {rec.local.grace_period_s:g} s) …",
            highlight=False,
        )
    console.print("stopped; no replica left running")
    if rt.failure is not None:
        raise errors.ClusterError(rt.failure)


def up(
    recipe_path: Annotated[
        Path | None,
        typer.Argument(metavar="RECIPE", help="Recipe file (default: the embedded llama-cpp recipe)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Gateway port (default: the recipe's local.port).")
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help=f"Policy instead of the recipe's ({', '.join(checks.POLICY_NAMES)}).")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Where replica logs go (default: a new temporary directory).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every scaling step.")] = False,
    api: Annotated[
        bool, typer.Option("--api", help="Also serve the API and dashboard (docs/api.md).")
    ] = False,
    api_port: Annotated[int, typer.Option(min=0, max=65535, help="With --api: its port.")] = 8080,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Put each edit of the recipe file onto the running service: scaling at "
                     "once, a changed service rolled onto the replicas one at a time."),
    ] = False,
) -> None:
    """Serve a recipe on this machine: replicas as processes, a gateway, autoscaling. Ctrl-C stops."""
    if watch and recipe_path is None:
        raise typer.BadParameter("--watch follows a recipe file: give one", param_hint="--watch")
    if watch and api:
        raise typer.BadParameter("--watch and --api: PUT the edited recipe to the API instead", param_hint="--watch")
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rec = load_recipe(recipe_path)
    checks.policy(policy, rec)
    checks.directory("--run-dir", run_dir)
    if api:  # the recipe becomes a deployment of the API (swell.cli.api), kept in its state file
        from swell.cli import api as api_cmd

        return api_cmd.up_with_api(recipe_path, port, policy, api_port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_up(rec, port, policy, run_dir, recipe_path if watch else None))


def register(app: typer.Typer) -> None:
    from swell.cli import demo

    app.command(name="up")(up)
    app.command(name="demo")(demo.demo)
