"""`swell render RECIPE --mode swell|hpa|keda|cronhpa|kserve [--gateway] [-o DIR]`: Kubernetes manifests for a recipe.

Without -o the manifests go to stdout as one multi-document YAML; with -o each goes to its own
file next to a kustomization.yaml, so `kubectl apply -k DIR` installs them. Warnings (what a mode
cannot express) go to stderr.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from swell import errors, recipe
from swell.cli import checks
from swell.render import manifests, workload

LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"  # a label's name, and a value that is not empty
LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{LABEL_NAME}$")  # an optional DNS prefix/
LABEL_VALUE = re.compile(rf"^({LABEL_NAME})?$")


def _selector(pairs: list[str]) -> dict[str, str]:
    """--node-selector KEY=VALUE pairs, as Kubernetes' label syntax allows them (else it refuses the Deployment)."""
    out, problems = {}, []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            problems.append(errors.Problem(path="--node-selector", value=pair, rule="KEY=VALUE, e.g. pool=a10"))
        elif not LABEL_KEY.match(key):
            problems.append(errors.Problem(path="--node-selector", value=pair, rule=(
                f"{key!r} is no label key: [prefix/]name, the name 1-63 letters, digits, '-', '_' or '.' "
                "starting and ending with a letter or digit")))  # fmt: skip
        elif not LABEL_VALUE.match(value):
            problems.append(errors.Problem(path="--node-selector", value=pair, rule=(
                f"{value!r} is no label value: up to 63 letters, digits, '-', '_' or '.', starting and "
                "ending with a letter or digit")))  # fmt: skip
        else:
            out[key] = value
    if problems:
        raise errors.RecipeError("swell render", problems)
    return out


def render(
    path: Annotated[
        Path, typer.Argument(metavar="RECIPE", help="Recipe file (YAML or JSON; swell's form or a Corrino payload).")
    ],
    mode: Annotated[
        str, typer.Option("--mode", "-m", help="swell | hpa | keda | cronhpa | kserve")
    ] = "swell",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="directory (default: stdout)")] = None,
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="namespace of the workload")
    ] = "default",
    prometheus_url: Annotated[
        str, typer.Option(help="Prometheus for KEDA triggers when the recipe names none")
    ] = workload.Options().prometheus_url,
    adapter_namespace: Annotated[
        str, typer.Option(help="namespace of prometheus-adapter (hpa)")
    ] = "monitoring",
    node_selector: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE of the GPU pool's nodes (default: instance type = node_pool.shape)"),
    ] = None,
    gateway: Annotated[
        bool,
        typer.Option(help="swell's gateway in front of the pods: requests wait in its buffer at zero replicas "
                     "(scale from zero), clients call NAME-gateway"),
    ] = False,
) -> None:
    """Write the manifests a user would otherwise write by hand: workload plus what scales it."""
    problems = [
        *checks.namespace_problems("--namespace", namespace),
        *checks.namespace_problems("--adapter-namespace", adapter_namespace),
        *checks.url_problems("--prometheus-url", prometheus_url),
    ]
    checks.raise_problems("swell render", problems)
    checks.directory("--output", output)  # the manifests go in it
    rec = recipe.load(path)
    opts = workload.Options(
        namespace=namespace,
        prometheus_url=prometheus_url,
        adapter_namespace=adapter_namespace,
        node_selector=_selector(node_selector or []),
        gateway=gateway,
    )
    try:
        bundle = manifests.render(rec, mode, opts)
    except errors.RecipeError as exc:  # what the recipe lacks for Kubernetes: named against its file
        if all(p.path.startswith("--") for p in exc.problems):
            raise  # an option's problem, not the file's
        raise errors.RecipeError(str(path), exc.problems) from None
    for w in bundle.warnings:
        typer.echo(f"warning: {w}", err=True)
    if output is None:
        typer.echo(manifests.dump(bundle.objects), nl=False)
        return
    for p in manifests.write(bundle, output):
        typer.echo(str(p))


def register(app: typer.Typer) -> None:
    app.command("render")(render)
