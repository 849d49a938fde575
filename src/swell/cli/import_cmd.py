"""`swell import FILE… [-o DIR]`: recipes from HPA, KEDA, CronHPA, prometheus-adapter and KServe
manifests, Ray Serve configs (a file, or a KubeRay RayService) and swell's own ScalingRecipes. One recipe per scale target (YAML on stdout, or DIR/<name>.yaml); what could not be
carried over goes to stderr, and into each recipe as a comment. `swell render` writes them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from swell import errors, recipe
from swell import files as files_mod
from swell.cli import checks
from swell.render import importers


def _text(imp: importers.Imported) -> str:
    head = [f"# imported by swell from {', '.join(imp.sources)} (namespace {imp.namespace})"]
    head += [f"# not carried over: {n}" for n in imp.left_out]
    return "\n".join(head) + "\n" + yaml.safe_dump(imp.recipe(), sort_keys=False, width=120)


def import_(
    files: Annotated[list[Path], typer.Argument(metavar="FILES", help="YAML or JSON manifests (several per file is fine); '-' for stdin.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="directory (default: stdout)")] = None,
) -> None:
    """Write swell recipes equivalent to HPA / KEDA / CronHPA / KServe manifests, Ray Serve configs or ScalingRecipes."""
    checks.directory("--output", output)  # the recipes go in it
    texts = {str(f): checks.stdin_text("files") if str(f) == "-" else recipe.read_text(f) for f in files}
    try:
        objs = importers.documents(texts)
    except yaml.YAMLError as exc:
        raise errors.RecipeError(
            ", ".join(texts), [errors.Problem(path="", value=None, rule=f"not YAML: {exc}")]
        ) from None
    found, unknown = importers.run(objs)
    for u in unknown:
        typer.echo(f"skipped: {u}", err=True)
    if not found:
        raise errors.RecipeError(
            ", ".join(texts),
            [
                errors.Problem(
                    path="", value=None, rule="no HPA, ScaledObject, CronHPA, InferenceService, RayService, ScalingRecipe or Serve config found"
                )
            ],
        )
    problems: list[errors.Problem] = []
    for imp in found:
        try:
            recipe.parse(imp.recipe(), f"{imp.namespace}/{imp.name}")
        except errors.RecipeError as exc:
            problems += [
                errors.Problem(path=f"{imp.name}.{p.path}", value=p.value, rule=p.rule) for p in exc.problems
            ]
        for n in imp.left_out:
            typer.echo(f"not carried over ({imp.namespace}/{imp.name}): {n}", err=True)
    if problems:
        raise errors.RecipeError("swell import", problems)
    if output is None:
        typer.echo("---\n".join(_text(i) for i in found), nl=False)
        return
    output.mkdir(parents=True, exist_ok=True)
    for imp in found:
        path = output / f"{imp.name}.yaml"
        files_mod.write_text(path, _text(imp))
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
