"""The rules the policies share, so that no policy imports another.

The HPA's replica calculator and its safety rules (per-metric proposals with the missing and
not-ready pod rules, holds, bounds, no scale-down on missing or partial data, normalize =
stabilize + rate-limit + clamp), KEDA's own steps (missing data and fallback, activation from
and cooldown to zero), Knative's panic step, and the reactive rules swell's default policy is
made of (also the planner's safety net). Each is a pure function of (recipe, snapshot, state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from swell import recipe
from swell.core import decision, signals, snapshot
from swell.core.policies import schedule, steps


def _plain_metric(
    sig: recipe.Signal, reading: snapshot.Reading, snap: snapshot.Snapshot, tol: recipe.Tolerance
) -> tuple[int | None, str]:
    """HPA calcPlainMetricReplicas: per-replica values with missing and not-ready replicas."""
    per = reading.per_replica or {}
    current = snap.current
    metrics: dict[str, float] = {}
    missing: list[str] = []
    unready: list[str] = []
    for r in snap.replicas:
        if r.state in ("terminating", "failed"):
            continue
        if r.state in ("pending", "starting"):
            unready.append(r.name)
            continue
        v = per.get(r.name)
        if v is None:
            missing.append(r.name)
        else:
            metrics[r.name] = v
    if not metrics:
        return None, "no ready replica reported a value"
    ratio = sum(metrics.values()) / len(metrics) / sig.target
    with_unready = bool(unready) and ratio > 1.0
    if not with_unready and not missing:
        if steps.within_tolerance(ratio, tol):
            return current, f"ratio {ratio:.2f} within tolerance"
        return steps.ceil(ratio * len(metrics)), f"ratio {ratio:.2f} over {len(metrics)} ready"
    for name in missing:
        metrics[name] = sig.target if ratio < 1.0 else 0.0
    if with_unready:
        for name in unready:
            metrics[name] = 0.0
    new_ratio = sum(metrics.values()) / len(metrics) / sig.target
    note = f"ratio {ratio:.2f} -> {new_ratio:.2f} counting {len(missing)} missing, {len(unready)} not ready"
    if steps.within_tolerance(new_ratio, tol) or (ratio > 1.0 > new_ratio) or (ratio < 1.0 < new_ratio):
        return current, note + ": no change"
    new = steps.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
        return current, note + ": no change"
    return new, note


def pod_rules(sig: recipe.Signal) -> bool:
    """Whether the HPA's missing-pod and not-ready-pod rules apply: always for resource and
    Utilization metrics, as Kubernetes does; for other signals when `per_replica` asks for them."""
    return sig.per_replica or sig.kind == "utilization" or sig.target_type == "Utilization"


def replicas_for(
    sig: recipe.Signal, reading: snapshot.Reading, snap: snapshot.Snapshot, tol: recipe.Tolerance
) -> tuple[int | None, str]:
    """One metric's desired replicas (HPA replica calculator), or None without a value."""
    if not reading.ok or reading.value is None:
        return None, f"no value: {reading.error or 'missing'}"
    value, current = reading.value, snap.current
    if pod_rules(sig) and reading.per_replica is not None:
        return _plain_metric(sig, reading, snap, tol)
    if sig.target_type == "AverageValue":
        if current == 0:
            return steps.ceil(value / sig.target), "from zero"
        ratio = value / (sig.target * current)
        if steps.within_tolerance(ratio, tol):
            return current, f"ratio {ratio:.2f} within tolerance"
        return steps.ceil(value / sig.target), f"{value:.3g} / {sig.target:g} per replica"
    ratio = value / sig.target
    if current == 0:
        return steps.ceil(ratio), "from zero"
    if steps.within_tolerance(ratio, tol):
        return current, f"ratio {ratio:.2f} within tolerance"
    return steps.ceil(ratio * snap.ready), f"ratio {ratio:.2f} x {snap.ready} ready"


def proposals(rec: recipe.Recipe, snap: snapshot.Snapshot) -> tuple[decision.Proposal, ...]:
    out = []
    for sig in rec.autoscaling.signals:
        reading = snap.reading(sig.name)
        n, note = replicas_for(sig, reading, snap, rec.autoscaling.tolerance)
        if reading.partial and n is not None and n < snap.current:  # some targets unreadable
            n, note = snap.current, f"{note}; partial data ({reading.error}): no scale-down"
        out.append(
            decision.Proposal(signal=sig.name, value=reading.value, target=sig.target, replicas=n, note=note)
        )
    return tuple(out)


def doubt(snap: snapshot.Snapshot, props: tuple[decision.Proposal, ...]) -> str:
    """Why this tick's signals cannot justify a scale-down ('' when they can): a signal without
    value, or a partial reading (some replicas could not be read)."""
    missing = [p.signal for p in props if p.replicas is None]
    partial = [p.signal for p in props if snap.reading(p.signal).partial]
    parts = ([f"no value for {', '.join(missing)}"] if missing else []) + (
        [f"partial data for {', '.join(partial)}"] if partial else []
    )
    return "; ".join(parts)


def describe_missing(props: tuple[decision.Proposal, ...]) -> str:
    return "; ".join(f"{p.signal}: {p.note}" for p in props if p.replicas is None)


def normalize(
    rec: recipe.Recipe,
    snap: snapshot.Snapshot,
    state: steps.State,
    wanted: int,
    props: tuple[decision.Proposal, ...],
    policy: str,
    b: schedule.Bounds,
    lo: int | None = None,
    asked: str = "signals ask for",
) -> tuple[decision.Decision, steps.State]:
    """Stabilize, rate-limit and clamp a metric recommendation; record the rescale (HPA normalize).
    `asked`: who asked for `wanted`, as the reason says it."""
    auto, now, current = rec.autoscaling, snap.now, snap.current
    low = b.lo if lo is None else lo
    stabilized, state = steps.stabilize(state, now, current, wanted, auto.behavior)
    final, limit = steps.limit_rate(state, now, current, stabilized, auto.behavior, low, b.hi)
    bound: decision.BoundBy
    if limit is not None:
        bound = limit
        if limit in ("min", "max"):
            bound = schedule.which(b, limit)
        why = {
            "disabled": "scaling in this direction is disabled: stay at",
            "rate": "a rate policy allows",
            "min": "the floor is",
            "max": "the cap is",
            "schedule": f"schedule {', '.join(b.active)} sets",
        }[bound]
        reason = f"{asked} {wanted}; {why} {final}"
    elif stabilized != wanted:
        bound = "stabilization"
        reason = f"{asked} {wanted}; the stabilization window holds {stabilized}"
    elif wanted == current and any(p.replicas == current and "tolerance" in p.note for p in props):
        bound = "tolerance"
        reason = f"within tolerance of the target: stay at {current}"
    else:
        bound = "metrics"
        reason = f"{asked} {wanted}" + ("" if wanted != current else ": no change")
    state = steps.record_scale(state, now, current, final, auto.behavior)
    return decision.Decision(
        t=now, policy=policy, current=current, desired=final, bound_by=bound, reason=reason, proposals=props
    ), state


def hold(
    snap: snapshot.Snapshot,
    policy: str,
    bound: decision.BoundBy,
    reason: str,
    props: tuple[decision.Proposal, ...] = (),
    desired: int | None = None,
) -> decision.Decision:
    return decision.Decision(
        t=snap.now,
        policy=policy,
        current=snap.current,
        desired=snap.current if desired is None else desired,
        bound_by=bound,
        reason=reason,
        proposals=props,
    )


def out_of_bounds(snap: snapshot.Snapshot, b: schedule.Bounds, policy: str) -> decision.Decision | None:
    """The HPA first brings a count outside [min, max] back inside, before reading metrics."""
    n = f"{snap.current} replica" + ("" if snap.current == 1 else "s")
    if snap.current > b.hi:
        bound = schedule.which(b, "max")
        return hold(snap, policy, bound, f"{n} exceed{'s' if snap.current == 1 else ''} the cap of {b.hi}", desired=b.hi)
    if snap.current < b.lo:
        bound = schedule.which(b, "min")
        return hold(snap, policy, bound, f"{n} {'is' if snap.current == 1 else 'are'} below the floor of {b.lo}", desired=b.lo)
    return None


def wanted_or_hold(
    snap: snapshot.Snapshot, props: tuple[decision.Proposal, ...], policy: str
) -> int | decision.Decision:
    """The max over the signals with a value; a hold if none has one, or if some are missing and
    the rest would scale down (the HPA's rule for invalid metrics)."""
    valid = [p.replicas for p in props if p.replicas is not None]
    if not valid:
        why = f"no signal has a value ({describe_missing(props)})" if props else "the recipe has no signals"
        return hold(snap, policy, "no_data", f"{why}: hold", props)
    wanted = max(valid)
    if len(valid) < len(props) and wanted < snap.current:
        why = (
            f"signals with values ask for {wanted}, but {describe_missing(props)}: "
            "no scale-down on partial data"
        )
        return hold(snap, policy, "no_data", why, props)
    return wanted


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
    what = describe_missing(props)
    if fb is not None and failures >= fb.failure_threshold and snap.current > 0:
        # KEDA feeds the fallback to the HPA as a metric: its stabilization window and rate
        # policies apply to it as to any recommendation (never zero, within the schedule)
        b = schedule.bounds(rec, snap.calendar_now)
        n = fb.target(snap.current)
        asked = f"{failures} failed reads in a row ({what}): fallback ({fb.behavior}) asks for"
        d, state = normalize(rec, snap, state, n, props, policy, b, lo=max(b.lo, 1), asked=asked)
        if d.bound_by == "metrics":
            return replace(d, bound_by="fallback", reason=f"{asked} {n}: {d.desired}"), state
        return d, state
    if len(missing) == len(props):
        limit = f", fallback after {fb.failure_threshold}" if fb is not None else ""
        return hold(
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
    waiting: str = "",
) -> tuple[decision.Decision | None, steps.State]:
    """Activation from zero and scale to zero after the cooldown (KEDA's own part of the loop).
    `waiting`: demand the policy itself reads at zero (the planner: requests the gateway holds or
    answered), which activates as a signal does ('' when none).

    A tick with a signal without value, or a partial reading, is not evidence of idleness: it
    neither starts nor ends the cooldown (no scaling to zero because a metric went missing)."""
    auto = rec.autoscaling
    crossed = any(p.value is not None and p.value > auto.activation_for(p.signal) for p in props)
    active = crossed or (snap.current == 0 and bool(waiting))
    doubted = doubt(snap, props)
    if active or state.last_active is None or doubted:
        state = replace(state, last_active=snap.now)
    if snap.current == 0:
        if active or b.lo > 0:
            n = max(b.lo, 1) if b.hi > 0 else 0
            why = ("activation threshold crossed" if crossed else waiting if active
                   else f"schedule {', '.join(b.active)} sets a floor")  # fmt: skip
            return hold(
                snap,
                policy,
                "activation" if active else "schedule",
                f"{why}: scale from zero to {n}",
                props,
                desired=n,
            ), state
        return hold(snap, policy, "cooldown", "idle at zero", props), state
    if b.lo == 0 and not active and not doubted:
        assert state.last_active is not None
        idle = snap.now - state.last_active
        if idle >= auto.cooldown_s:
            return hold(
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
    b = schedule.bounds(rec, snap.calendar_now)
    props = proposals(rec, snap)
    missed, state = on_missing(rec, snap, state, props, policy)
    if missed is not None:
        return missed, state
    early, state = zero_step(rec, snap, state, props, b, policy)
    if early is not None:
        return early, state
    oob = out_of_bounds(snap, b, policy)
    if oob is not None:
        return oob, steps.record_scale(state, snap.now, snap.current, oob.desired, rec.autoscaling.behavior)
    wanted = wanted_or_hold(snap, props, policy)
    if isinstance(wanted, decision.Decision):
        return wanted, state
    return Wanted(replicas=wanted, props=props, bounds=b), state


def need(sig: recipe.Signal, value: float, ready: int) -> float:
    """Replicas one concurrency-like signal asks for, unrounded: a total over the target per replica
    (AverageValue), or a per-replica average over it times the ready replicas (Value)."""
    if sig.target_type == "AverageValue":
        return value / sig.target
    return ready * value / sig.target


def panic_need(sig: recipe.Signal, value: float, ready: int) -> int:
    return steps.ceil(need(sig, value, ready))


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
    raw_stable = panic_need(sig, stable, ready)
    quick = snap.reading(sig.name + signals.PANIC_SUFFIX)
    raw_panic = panic_need(sig, quick.value, ready) if quick.ok and quick.value is not None else raw_stable
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


def reactive(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State, policy: str
) -> tuple[decision.Decision, steps.State]:
    """swell's reactive rules: KEDA's steps, the HPA's proposals, the panic window when the
    recipe has one (no scale-down while panicking), never fewer while nothing serves yet."""
    auto = rec.autoscaling
    got, state = keda_steps(rec, snap, state, policy)
    if isinstance(got, decision.Decision):
        return got, state
    wanted, panicking = got.replicas, False
    if snap.ready == 0 and wanted < snap.current:  # nothing serves yet: no evidence for fewer
        wanted = snap.current
    if auto.panic is not None:
        stable = snap.reading(auto.panic.signal)
        if stable.ok and stable.value is not None:
            need, _, panicking, state = panic_step(rec, snap, state, stable.value)
            if panicking:
                wanted = max(wanted, need, snap.current)
    d, state = normalize(rec, snap, state, wanted, got.props, policy, got.bounds, lo=max(got.bounds.lo, 1))
    if panicking and d.bound_by in ("metrics", "stabilization"):
        d = replace(
            d, bound_by="panic", reason=f"panic mode: {d.desired} replicas, no scale-down ({d.reason})"
        )
    return d, state
