"""Pure scaling policies: decide(config, snapshot, state) -> (Decision, state).

`get(name)` returns a policy by the recipe's `autoscaling.policy` name.
"""

from __future__ import annotations

from collections.abc import Callable

from swell import recipe
from swell.core import decision, snapshot
from swell.core.policies import hpa, panic, planner, ray, reactive, steps, threshold

Decide = Callable[[recipe.Recipe, snapshot.Snapshot, steps.State], tuple[decision.Decision, steps.State]]

POLICIES: dict[str, Decide] = {
    hpa.NAME: hpa.decide,
    threshold.NAME: threshold.decide,
    panic.NAME: panic.decide,
    ray.NAME: ray.decide,
    reactive.NAME: reactive.decide,
    planner.NAME: planner.decide,  # "swell": the default
    "planner": planner.decide,  # its name before it became the default, still accepted
}


def get(name: str) -> Decide:
    try:
        return POLICIES[name]
    except KeyError:
        raise KeyError(f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}") from None


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    """Run the recipe's own policy."""
    return get(rec.autoscaling.policy)(rec, snap, state)
