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
from swell.core.policies import schedule, steps, threshold

NAME = "panic"


def _need(sig: recipe.Signal, value: float, ready: int) -> int:
    if sig.target_type == "AverageValue":
        return steps.ceil(value / sig.target)
    return steps.ceil(ready * value / sig.target)


def panic_step(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State, stable: float
) -> tuple[int, int, bool, steps.State]:
    """(stable need, panic need, panicking, state) for the recipe's panic section."""
    p = rec.autoscaling.panic
    assert p is not None
    sig = rec.signal(p.signal)
    ready = max(1, snap.ready)
    up_to = math.ceil(p.max_scale_up_rate * ready)
    down_to = math.floor(ready / p.max_scale_down_rate)
    dspc = steps.clamp(_need(sig, stable, ready), down_to, up_to)
    quick = snap.reading(sig.name + signals.PANIC_SUFFIX)
    dppc = (
        steps.clamp(_need(sig, quick.value, ready), down_to, up_to)
        if quick.ok and quick.value is not None
        else dspc
    )
    over = dppc / ready >= p.panic_threshold
    since, max_panic = state.panic_since, state.max_panic
    if over:
        since = snap.now if since is None else max(since, snap.now)
    elif since is not None and snap.now >= since + p.stable_window_s:
        since, max_panic = None, 0
    if since is not None:
        max_panic = max(max_panic, dppc)
    return dspc, dppc, since is not None, replace(state, panic_since=since, max_panic=max_panic)


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
    assert reading.value is not None
    dspc, dppc, panicking, state = panic_step(rec, snap, state, reading.value)
    wanted = max(state.max_panic, snap.current) if panicking else dspc
    if reading.partial and wanted < snap.current:  # some replicas unreadable: never a scale-down
        wanted = snap.current
    props = (
        replace(prop, replicas=dspc, note=f"stable window {p.stable_window_s:g} s"),
        decision.Proposal(
            signal=sig.name + signals.PANIC_SUFFIX,
            value=snap.reading(sig.name + signals.PANIC_SUFFIX).value,
            target=sig.target,
            replicas=dppc,
            note=f"panic window {p.panic_window_s:g} s",
        ),
    )
    lo = max(b.lo, 1)
    final = steps.clamp(wanted, lo, b.hi)
    bound: decision.BoundBy
    if final != wanted:
        bound = (
            "schedule"
            if (final == b.lo and b.floor_raised) or (final == b.hi and b.cap_lowered)
            else ("max" if final == b.hi else "min")
        )
        reason = f"need {wanted}, bounded to {final}"
    elif panicking:
        bound = "panic"
        reason = (
            f"panic mode (panic window asks {dppc} for {max(1, snap.ready)} ready): {final}, no scale-down"
        )
    else:
        bound = "metrics"
        reason = f"stable window asks for {dspc}"
    return decision.Decision(
        t=snap.now,
        policy=NAME,
        current=snap.current,
        desired=final,
        bound_by=bound,
        reason=reason,
        proposals=props,
    ), state
