"""`swell api`: serve the deployment API and dashboard alone; deployments are posted to it.

Loopback by default. The token is printed once when it is generated (kept 0600 in the data
directory) or given with --token. Ctrl-C / SIGTERM drain and stop every deployment; the state
file keeps them, so the next `swell api` starts them again with their history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from swell.cli import checks


async def _serve(host: str, port: int, data_dir: Path | None, token: str | None, allow_command: bool) -> None:
    from swell.api import server
    from swell.cli import up

    async with server.Server(
        data_dir=data_dir, host=host, port=port, token=token, allow_command=allow_command
    ) as srv:
        assert srv.token is not None and srv.manager is not None
        typer.echo(f"swell API on {srv.url} · dashboard {srv.url}/ · spec {srv.url}/openapi.json")
        typer.echo(f"state in {srv.data_dir}")
        if srv.token.created:
            typer.echo(f"API token (shown once; kept in {srv.token.path}, mode 600):\n  {srv.token.value}")
            typer.echo(f"dashboard with the token: {srv.url}/#token={srv.token.value}")
        for name in srv.manager.deployments:
            typer.echo(f"resumed {name}")
        for problem in srv.resume_problems:
            typer.echo(f"warning: {problem}", err=True)
        stop = asyncio.Event()
        up.install_stop_handlers(stop.set)
        await stop.wait()
        typer.echo("stopping: every deployment drains, then stops (kept for the next start) …")


def _payload(recipe_path: Path | None, port: int | None, policy: str | None) -> dict[str, Any]:
    """The recipe file (or the embedded default) as the mapping the API stores."""
    import importlib.resources

    import yaml

    from swell import recipe
    from swell.cli import up

    if recipe_path is not None:
        text, source = recipe.read_text(recipe_path), str(recipe_path)
    else:
        text = (importlib.resources.files("swell") / "data" / up.DEFAULT_RECIPE).read_text(encoding="utf-8")
        source = up.DEFAULT_RECIPE
    recipe.load_text(text, source)  # every problem named in the file's terms before anything starts
    data = yaml.safe_load(text)
    if port is not None:
        data.setdefault("local", {})["port"] = port
    if policy is not None:
        data.setdefault("autoscaling", {})["policy"] = policy
    return dict(data)


async def _up_with_api(payload: dict[str, Any], api_port: int, data_dir: Path | None) -> None:
    from rich.console import Console

    from swell import errors, recipe
    from swell.api import server
    from swell.cli import up

    console = Console()
    token = os.environ.get("SWELL_API_TOKEN") or None
    async with server.Server(data_dir=data_dir, port=api_port, token=token, allow_command=True) as srv:
        assert srv.token is not None and srv.manager is not None
        for problem in srv.resume_problems:
            typer.echo(f"warning: {problem}", err=True)
        if srv.token.created:
            console.print(
                f"API token (shown once; kept in {srv.token.path}):\n  {srv.token.value}", highlight=False
            )
        name = str(payload.get("service", {}).get("name", ""))
        dep = srv.manager.deployments.get(name)
        if dep is None:
            dep = await srv.manager.create(payload)
        elif not (changed := recipe.differences(dep.payload, payload)):
            console.print(f"resumed {name} as stored, with its history")
        else:
            shown = "; ".join(changed[:6]) + (f"; and {len(changed) - 6} more" if len(changed) > 6 else "")
            try:
                dep = await srv.manager.replace(name, payload)
            except errors.SwellError as exc:
                typer.echo(f"warning: the file differs from the stored {name} ({shown}), which runs as stored: "
                           f"{exc}", err=True)  # fmt: skip
            else:
                how = ("its replicas are rolled onto it one at a time" if dep.rollout and dep.rollout.state == "rolling"
                       else "applied at once")  # fmt: skip
                console.print(f"resumed {name} with its history; the file changed ({shown}): {how}", highlight=False,
                              soft_wrap=True)
        console.print(
            f"serving on [bold cyan]{dep.rt.endpoint}[/] · API and dashboard {srv.url}/", highlight=False
        )
        stop = asyncio.Event()
        up.install_stop_handlers(stop.set)
        waiter = asyncio.ensure_future(dep.rt.wait())
        waiter.add_done_callback(lambda _: stop.set())
        await up.show_live(dep.rt, console, stop)
        failure = dep.rt.failure
        console.print("stopping: every deployment drains, then stops (kept for the next start) …")
    if failure is not None:
        raise errors.ClusterError(failure)


def up_with_api(recipe_path: Path | None, port: int | None, policy: str | None, api_port: int) -> None:
    """`swell up --api`: the recipe as a deployment of the API (resumed after a restart)."""
    from swell import errors, recipe

    payload = _payload(recipe_path, port, policy)
    gateway = recipe.parse(payload).local.port
    if api_port and api_port == gateway:
        checks.raise_problems("--api-port", [errors.Problem(
            path="--api-port", value=api_port, rule=f"the service's gateway listens there (local.port / --port {gateway}): give another")])  # fmt: skip
    _run_serving(_up_with_api(payload, api_port, None), "--api-port", api_port)


def api(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="API port.")] = 8080,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="State (SQLite), token and replica logs (default: $XDG_DATA_HOME/swell)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="SWELL_API_TOKEN", help="Bearer token to require (default: generated once, kept 0600)."
        ),
    ] = None,
    allow_command: Annotated[
        bool, typer.Option("--allow-command", help="Accept recipes with engine 'command' (runs any program).")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every scaling step.")] = False,
) -> None:
    """Serve the deployment API and live dashboard: POST recipes or Corrino payloads to run them here."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    checks.directory("--data-dir", data_dir)
    checks.host("--host", host)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: the API is reachable beyond this machine", err=True)
    _run_serving(_serve(host, port, data_dir, token, allow_command), "--port", port)


def _run_serving(main: Coroutine[Any, Any, None], option: str, port: int) -> None:
    """Run the API until stopped (Ctrl-C ends it quietly); an address it cannot listen on is named
    by the option that gave its port."""
    from swell.api import server

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main)
    except server.CannotListen as exc:
        typer.echo(f"error: {option} {port}: {exc}; give another {option} (0: any free one)", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command(name="api")(api)
