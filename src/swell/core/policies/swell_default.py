"""swell's default policy: the HPA's rules made safe and quick for LLM serving.

HPA proposals on every signal (LLM-native ones such as waiting and running requests), the
recipe's stabilization and rate policies, plus: a panic window when the recipe has one (scale up
on a surge within seconds, no scale-down while panicking), scale to and from zero with
activation and cooldown, fallback after failed reads, and never a scale-down on missing data.
"""

from __future__ import annotations

from dataclasses import replace

from swell import recipe
from swell.core import decision, snapshot
from swell.core.policies import hpa, panic, steps, threshold

NAME = "swell"


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    auto = rec.autoscaling
    got, state = threshold.keda_steps(rec, snap, state, NAME)
    if isinstance(got, decision.Decision):
        return got, state
    wanted, panicking = got.replicas, False
    if snap.ready == 0 and wanted < snap.current:  # nothing serves yet: no evidence for fewer
        wanted = snap.current
    if auto.panic is not None:
        stable = snap.reading(auto.panic.signal)
        if stable.ok and stable.value is not None:
            need, _, panicking, state = panic.panic_step(rec, snap, state, stable.value)
            if panicking:
                wanted = max(wanted, need, snap.current)
    d, state = hpa.normalize(rec, snap, state, wanted, got.props, NAME, got.bounds, lo=max(got.bounds.lo, 1))
    if panicking and d.bound_by in ("metrics", "stabilization"):
        d = replace(
            d, bound_by="panic", reason=f"panic mode: {d.desired} replicas, no scale-down ({d.reason})"
        )
    return d, state
