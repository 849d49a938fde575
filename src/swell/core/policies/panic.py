"""Knative KPA: a stable window and a short panic window over one concurrency-like signal.

Panic starts when the panic window asks for at least `panic_threshold` x the ready replicas
(200 % by default); while panicking the count never goes down and follows the highest panic need;
panic ends after a whole stable window without crossing the threshold. Per tick the change is
bounded by max_scale_up_rate x ready and ready / max_scale_down_rate (Knative defaults 1000, 2).
A scale-down applies only once it has held `scale_down_delay_s` (Knative's scale-down-delay, 0 by
default: the highest count of that window, as the HPA's scale-down stabilization keeps it).
"""

from __future__ import annotations

import functools
from dataclasses import replace

from swell import recipe
from swell.core import decision, signals, snapshot
from swell.core.policies import rules, schedule, steps

NAME = "panic"


@functools.lru_cache(maxsize=16)
def _delay(delay_s: float) -> recipe.Behavior:
    """Knative's scale-down delay as a behavior: the HPA's scale-down stabilization over it, no limits."""
    free = {"select_policy": "Disabled", "policies": []}
    return recipe.Behavior.model_validate({"scale_up": {"stabilization_window_s": 0, **free},
                                           "scale_down": {"stabilization_window_s": round(delay_s), **free}})  # fmt: skip


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    p = rec.autoscaling.panic
    assert p is not None, "policy 'panic' needs autoscaling.panic (the recipe validator checks this)"
    b = schedule.bounds(rec, snap.calendar_now)
    sig = rec.signal(p.signal)
    reading = snap.reading(sig.name)
    prop = decision.Proposal(
        signal=sig.name,
        value=reading.value,
        target=sig.target,
        replicas=None if not reading.ok else 0,
        note="" if reading.ok else f"no value: {reading.error}",
    )
    props: tuple[decision.Proposal, ...] = (prop,)
    missed, state = rules.on_missing(rec, snap, state, props, NAME)
    if missed is not None:
        return missed, state
    early, state = rules.zero_step(rec, snap, state, props, b, NAME)
    if early is not None:
        return early, state
    oob = rules.out_of_bounds(snap, b, NAME)
    if oob is not None:
        return oob, state
    assert reading.value is not None
    wanted, dppc, panicking, state = rules.panic_step(rec, snap, state, reading.value)
    if reading.partial and wanted < snap.current:  # some replicas unreadable: never a scale-down
        wanted = snap.current
    props = (
        replace(prop, replicas=wanted, note=f"stable window {p.stable_window_s:g} s"),
        decision.Proposal(
            signal=sig.name + signals.PANIC_SUFFIX,
            value=snap.reading(sig.name + signals.PANIC_SUFFIX).value,
            target=sig.target,
            replicas=dppc,
            note=f"panic window {p.panic_window_s:g} s",
        ),
    )
    asked, delay = wanted, p.scale_down_delay_s
    if delay > 0:
        wanted, state = steps.stabilize(state, snap.now, snap.current, wanted, _delay(delay))
    final = steps.clamp(wanted, max(b.lo, 1), b.hi)
    bound: decision.BoundBy
    if final != wanted:
        bound = schedule.which(b, "max" if final < wanted else "min")
        reason = f"need {wanted}, bounded to {final}"
    elif panicking:
        bound = "panic"
        reason = (
            f"panic mode (panic window asks {dppc} for {max(1, snap.ready)} ready): {final}, no scale-down"
        )
    elif wanted > asked:
        bound = "stabilization"
        reason = f"stable window asks for {asked}; the scale-down delay of {delay:g} s holds {wanted}"
    else:
        bound = "metrics"
        reason = f"stable window asks for {wanted}"
    return decision.Decision(
        t=snap.now,
        policy=NAME,
        current=snap.current,
        desired=final,
        bound_by=bound,
        reason=reason,
        proposals=props,
    ), state
