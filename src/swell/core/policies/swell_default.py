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
from swell.core.policies import hpa, panic, schedule, steps, threshold

NAME = "swell"


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    auto = rec.autoscaling
    b = schedule.bounds(rec, snap.now)
    props = hpa.proposals(rec, snap)
    missed, state = threshold.on_missing(rec, snap, state, props, NAME)
    if missed is not None:
        return missed, state
    early, state = threshold.zero_step(rec, snap, state, props, b, NAME)
    if early is not None:
        return early, state
    oob = hpa.out_of_bounds(snap, b, NAME)
    if oob is not None and oob.desired > 0:
        return oob, steps.record_scale(state, snap.now, snap.current, oob.desired, auto.behavior)
    valid = [p.replicas for p in props if p.replicas is not None]
    wanted = max(valid)
    if len(valid) < len(props) and wanted < snap.current:
        return hpa.hold(
            snap,
            NAME,
            "no_data",
            f"signals with values ask for {wanted}, but "
            f"{hpa.describe_missing(props)}: no scale-down on partial data",
            props,
        ), state
    panicking = False
    if auto.panic is not None:
        stable = snap.reading(auto.panic.signal)
        if stable.ok and stable.value is not None:
            _, _dppc, panicking, state = panic.panic_step(rec, snap, state, stable.value)
            if panicking:
                wanted = max(wanted, state.max_panic, snap.current)
    d, state = hpa.normalize(rec, snap, state, wanted, props, NAME, b, lo=max(b.lo, 1))
    if panicking and d.bound_by in ("metrics", "stabilization"):
        d = replace(
            d, bound_by="panic", reason=f"panic mode: {d.desired} replicas, no scale-down ({d.reason})"
        )
    return d, state
