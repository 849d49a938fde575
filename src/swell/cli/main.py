"""The `swell` command: one typer app, one module per command group.

Each command module exposes `register(app)`; this file only wires them together and turns
every SwellError into a readable message with exit code 1 (never a traceback).
"""

from __future__ import annotations

import importlib
import sys

import typer

from swell import errors

# Command modules, in the order `swell --help` lists them. Each has register(app).
COMMAND_MODULES = [
    "swell.cli.recipe_cmds",  # validate, plan, decide
    "swell.cli.bench",
    "swell.cli.up",
    "swell.cli.simulate",
    "swell.cli.controller",
    "swell.cli.render",
]

app = typer.Typer(
    name="swell",
    help="Autoscale ML inference services: serve, measure, decide and act — locally, simulated, on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def main() -> None:
    try:
        app()
    except errors.SwellError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
