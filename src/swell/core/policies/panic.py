"""Knative KPA: a stable window and a short panic window over one concurrency-like signal.

Panic starts when the panic window asks for at least `panic_threshold` x the ready replicas
(200 % by default); while panicking the count never goes down and follows the highest panic need;
panic ends after a whole stable window without crossing the threshold. Per tick the change is
bounded by max_scale_up_rate x ready and ready / max_scale_down_rate (Knative defaults 1000, 2).
"""

from __future__ import annotations

import math
from dataclasses import replace

from swell import recipe
from swell.core import decision, signals, snapshot
from swell.core.policies import hpa, schedule, steps, threshold

NAME = "panic"


def _need(sig: recipe.Signal, value: float, ready: int) -> int:
    if sig.target_type == "AverageValue":
        return steps.ceil(value / sig.target)
    return steps.ceil(ready * value / sig.target)


def panic_step(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State, stable: float
) -> tuple[int, int, bool, steps.State]:
    """(desired, panic need, panicking, state): Knative's autoscaler.Scale for the panic section.

    The threshold is judged on the panic window's raw need; while panicking the desired count is
    the larger of the stable and panic needs and never below the highest seen in this panic."""
    p = rec.autoscaling.panic
    assert p is not None
    sig = rec.signal(p.signal)
    ready = max(1, snap.ready)
    up_to = math.ceil(p.max_scale_up_rate * ready)
    down_to = math.floor(ready / p.max_scale_down_rate)
    raw_stable = _need(sig, stable, ready)
    quick = snap.reading(sig.name + signals.PANIC_SUFFIX)
    raw_panic = _need(sig, quick.value, ready) if quick.ok and quick.value is not None else raw_stable
    dspc, dppc = steps.clamp(raw_stable, down_to, up_to), steps.clamp(raw_panic, down_to, up_to)
    over = raw_panic / ready >= p.panic_threshold
    since, max_panic = state.panic_since, state.max_panic
    if over:
        since = snap.now
    elif since is not None and since + p.stable_window_s < snap.now:
        since, max_panic = None, 0
    desired = dspc
    if since is not None:
        desired = max(dspc, dppc, max_panic)
        max_panic = desired
    return desired, dppc, since is not None, replace(state, panic_since=since, max_panic=max_panic)


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    p = rec.autoscaling.panic
    assert p is not None, "policy 'panic' needs autoscaling.panic (the recipe validator checks this)"
    b = schedule.bounds(rec, snap.now)
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
    missed, state = threshold.on_missing(rec, snap, state, props, NAME)
    if missed is not None:
        return missed, state
    early, state = threshold.zero_step(rec, snap, state, props, b, NAME)
    if early is not None:
        return early, state
    oob = hpa.out_of_bounds(snap, b, NAME)
    if oob is not None:
        return oob, state
    assert reading.value is not None
    wanted, dppc, panicking, state = panic_step(rec, snap, state, reading.value)
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
