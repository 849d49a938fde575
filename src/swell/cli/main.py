"""The `swell` command: one typer app whose commands are imported only when they run.

`swell --help` lists the commands from the table below without importing them (matplotlib,
aiohttp and the simulator take seconds to import); a command's module is imported, and its
`register(app)` called, only when that command runs or shows its own help. Every SwellError, and
every error reading or writing a file, becomes a readable message with exit code 1, never a
traceback (SWELL_TRACEBACK=1 shows one for anything unexpected).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import typer.core
import typer.main

from swell import __version__, errors


@dataclass(frozen=True, kw_only=True)
class Entry:
    module: str  # has register(app), which adds this command (and maybe others)
    summary: str  # the line `swell --help` shows


# In the order `swell --help` lists them; tests/cli/test_main.py checks this against register().
COMMANDS = {
    "validate": Entry(module="swell.cli.recipe_cmds", summary="Check a recipe: every problem at once."),
    "plan": Entry(
        module="swell.cli.recipe_cmds",
        summary="Capacity plan: replicas per node, most replicas reachable, time to add capacity, warnings.",
    ),
    "decide": Entry(
        module="swell.cli.recipe_cmds",
        summary="Replay observations through the recipe's policy: one JSON decision per line.",
    ),
    "bench": Entry(
        module="swell.cli.bench",
        summary="Send load to URL and measure throughput, TTFT, ITL, TPOT, latency, errors and goodput.",
    ),
    "up": Entry(
        module="swell.cli.up",
        summary="Serve a recipe on this machine: replicas as processes, a gateway, autoscaling.",
    ),
    "demo": Entry(
        module="swell.cli.up",
        summary="Serve the default model through a compressed Black Friday sized to this machine.",
    ),
    "simulate": Entry(
        module="swell.cli.simulate",
        summary="Replay a workload against a simulated GPU cluster; compare scaling policies.",
    ),
    "controller": Entry(
        module="swell.cli.controller",
        summary="Kubernetes: scale every ScalingRecipe's target on Prometheus signals.",
    ),
    "gateway": Entry(
        module="swell.cli.gateway",
        summary="Kubernetes: route to a Service's ready pods; buffer while none is (scale from zero).",
    ),
    "render": Entry(
        module="swell.cli.render",
        summary="Write the manifests: the workload plus what scales it (swell, HPA, KEDA, CronHPA).",
    ),
    "import": Entry(
        module="swell.cli.import_cmd",
        summary="Recipes from HPA, KEDA, CronHPA, prometheus-adapter, KServe, Ray Serve and ScalingRecipes.",
    ),
    "api": Entry(module="swell.cli.api", summary="Serve the deployment API and live dashboard (POST recipes)."),
}


def load_command(name: str) -> Any:
    """The (click) command `name`, built by importing its module; None if there is no such command."""
    entry = COMMANDS.get(name)
    if entry is None:
        return None
    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    importlib.import_module(entry.module).register(sub)
    built = typer.main.get_command(sub)
    commands = getattr(built, "commands", None)  # several commands: a group of them
    if commands is not None:
        return commands.get(name)
    return built if built.name == name else None


class LazyGroup(typer.core.TyperGroup):
    """Lists commands from COMMANDS; imports a command's module only to run it or show its help."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return load_command(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, e.summary) for name, e in COMMANDS.items()])
        formatter.write_paragraph()
        formatter.write_text("`swell COMMAND --help` for a command's options.")


app = typer.Typer(
    name="swell",
    cls=LazyGroup,
    rich_markup_mode=None,  # plain help: rich and every command's import stay out of `swell --help`
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"swell {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print swell's version and exit."
        ),
    ] = False,
) -> None:
    """Autoscale ML inference services: serve, measure, decide and act — locally, simulated, on
    Kubernetes."""


def main() -> None:
    try:
        app()
    except errors.SwellError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:  # a path that cannot be written, a port already taken, ...
        where = f"{exc.filename}: " if exc.filename is not None else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("SWELL_TRACEBACK"):
            raise
        typer.echo(
            f"error: {type(exc).__name__}: {exc}\n"
            "(an unexpected error in swell; SWELL_TRACEBACK=1 shows where — please report it)",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
