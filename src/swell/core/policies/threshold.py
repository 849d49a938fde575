"""KEDA / Corrino: 0 <-> 1 on the activation threshold, 1 <-> N by the HPA rule, fallback on failures.

To zero only after `cooldown_s` without activity. After `fallback.failure_threshold` consecutive
ticks with a signal without value, go to `fallback.replicas`. A missing, empty or NaN value is
never read as zero (KEDA's `ignoreNullValues: true` trap): hold, count the failure, say so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from swell import recipe
from swell.core import decision, snapshot
from swell.core.policies import hpa, schedule, steps

NAME = "threshold"


def on_missing(
    rec: recipe.Recipe,
    snap: snapshot.Snapshot,
    state: steps.State,
    props: tuple[decision.Proposal, ...],
    policy: str,
) -> tuple[decision.Decision | None, steps.State]:
    """Count a tick with a signal without value; go to the fallback, or hold if nothing has a value."""
    missing = [p for p in props if p.replicas is None]
    if not missing:
        return None, replace(state, failures=0)
    failures = state.failures + 1
    state = replace(state, failures=failures)
    fb = rec.autoscaling.fallback
    what = hpa.describe_missing(props)
    if fb is not None and failures >= fb.failure_threshold and snap.current > 0:
        b = schedule.bounds(rec, snap.now)
        n = steps.clamp(fb.replicas, max(b.lo, 1), b.hi)  # never zero, within the schedule
        reason = f"{failures} failed reads in a row ({what}): fallback to {n}"
        state = steps.record_scale(state, snap.now, snap.current, n, rec.autoscaling.behavior)
        return hpa.hold(snap, policy, "fallback", reason, props, desired=n), state
    if len(missing) == len(props):
        limit = f", fallback after {fb.failure_threshold}" if fb is not None else ""
        return hpa.hold(
            snap, policy, "no_data", f"no value ({what}); failure {failures}{limit}: hold", props
        ), state
    return None, state


def zero_step(
    rec: recipe.Recipe,
    snap: snapshot.Snapshot,
    state: steps.State,
    props: tuple[decision.Proposal, ...],
    b: schedule.Bounds,
    policy: str,
) -> tuple[decision.Decision | None, steps.State]:
    """Activation from zero and scale to zero after the cooldown (KEDA's own part of the loop).

    A tick with a signal without value, or a partial reading, is not evidence of idleness: it
    neither starts nor ends the cooldown (no scaling to zero because a metric went missing)."""
    auto = rec.autoscaling
    active = any(p.value is not None and p.value > auto.activation_threshold for p in props)
    doubt = hpa.doubt(snap, props)
    if active or state.last_active is None or doubt:
        state = replace(state, last_active=snap.now)
    if snap.current == 0:
        if active or b.lo > 0:
            n = max(b.lo, 1) if b.hi > 0 else 0
            why = "activation threshold crossed" if active else f"schedule {', '.join(b.active)} sets a floor"
            return hpa.hold(
                snap,
                policy,
                "activation" if active else "schedule",
                f"{why}: scale from zero to {n}",
                props,
                desired=n,
            ), state
        return hpa.hold(snap, policy, "cooldown", "idle at zero", props), state
    if b.lo == 0 and not active and not doubt:
        assert state.last_active is not None
        idle = snap.now - state.last_active
        if idle >= auto.cooldown_s:
            return hpa.hold(
                snap,
                policy,
                "cooldown",
                f"no activity for {idle:.0f} s (cooldown {auto.cooldown_s:g} s): scale to zero",
                props,
                desired=0,
            ), replace(state, recommendations=())
    return None, state


@dataclass(frozen=True, kw_only=True)
class Wanted:
    """What the signals ask for once KEDA's own steps did not decide: the HPA part's input."""

    replicas: int
    props: tuple[decision.Proposal, ...]
    bounds: schedule.Bounds


def keda_steps(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State, policy: str
) -> tuple[decision.Decision | Wanted, steps.State]:
    """Missing data and fallback, activation and cooldown, bounds, partial data — or what the
    signals want, for the HPA rules to stabilize and limit (shared by threshold and swell)."""
    b = schedule.bounds(rec, snap.now)
    props = hpa.proposals(rec, snap)
    missed, state = on_missing(rec, snap, state, props, policy)
    if missed is not None:
        return missed, state
    early, state = zero_step(rec, snap, state, props, b, policy)
    if early is not None:
        return early, state
    oob = hpa.out_of_bounds(snap, b, policy)
    if oob is not None:
        return oob, steps.record_scale(state, snap.now, snap.current, oob.desired, rec.autoscaling.behavior)
    wanted = hpa.wanted_or_hold(snap, props, policy)
    if isinstance(wanted, decision.Decision):
        return wanted, state
    return Wanted(replicas=wanted, props=props, bounds=b), state


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    got, state = keda_steps(rec, snap, state, NAME)
    if isinstance(got, decision.Decision):
        return got, state
    return hpa.normalize(
        rec, snap, state, got.replicas, got.props, NAME, got.bounds, lo=max(got.bounds.lo, 1)
    )
