"""Checks of command-line options shared by several commands, as errors.RecipeError naming the
option, the value and the rule (so the CLI prints a message, never a traceback)."""

from __future__ import annotations

import typing

from swell import errors, recipe

POLICY_NAMES: tuple[str, ...] = typing.get_args(recipe.PolicyName)


def policy(name: str | None) -> str | None:
    """`name` if it is a policy a recipe may name (or None: the recipe's own)."""
    if name is not None and name not in POLICY_NAMES:
        raise errors.RecipeError(
            "--policy",
            [errors.Problem(path="--policy", value=name, rule=f"one of {', '.join(POLICY_NAMES)}")],
        )
    return name
