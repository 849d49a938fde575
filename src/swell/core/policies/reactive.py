"""The reactive rules (swell's default before the planner): the HPA's rules made safe and quick for LLM serving.

HPA proposals on every signal (LLM-native ones such as waiting and running requests), the
recipe's stabilization and rate policies, plus: a panic window when the recipe has one (scale up
on a surge within seconds, no scale-down while panicking), scale to and from zero with
activation and cooldown, fallback after failed reads, and never a scale-down on missing data.
The planner (`swell`) keeps these rules as its safety net and falls back to them where it has no
capacity model or no load reading.
"""

from __future__ import annotations

from swell import recipe
from swell.core import decision, snapshot
from swell.core.policies import rules, steps

NAME = "reactive"


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    return rules.reactive(rec, snap, state, NAME)
