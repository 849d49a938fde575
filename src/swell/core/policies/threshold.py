"""KEDA / Corrino: 0 <-> 1 on the activation threshold, 1 <-> N by the HPA rule, fallback on failures.

To zero only after `cooldown_s` without activity. After `fallback.failure_threshold` consecutive
ticks with a signal without value, go to `fallback.replicas`. A missing, empty or NaN value is
never read as zero (KEDA's `ignoreNullValues: true` trap): hold, count the failure, say so.
"""

from __future__ import annotations

from swell import recipe
from swell.core import decision, snapshot
from swell.core.policies import rules, steps

NAME = "threshold"


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    got, state = rules.keda_steps(rec, snap, state, NAME)
    if isinstance(got, decision.Decision):
        return got, state
    return rules.normalize(
        rec, snap, state, got.replicas, got.props, NAME, got.bounds, lo=max(got.bounds.lo, 1)
    )
