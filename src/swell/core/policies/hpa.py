"""The Kubernetes HPA (autoscaling/v2), faithfully: per metric desired, max over metrics, behavior.

Per signal: Value/Utilization -> ceil(ready x value / target); AverageValue -> ceil(value / target);
per-replica readings of resource and Utilization signals (and of any `per_replica` signal) follow
the HPA's missing-pod and not-ready-pod rules. No change within the
tolerance. If every signal is missing: no change; if some are and the rest would scale down: no
change. Then stabilization, the rate policies and min/max (raised or capped by schedule windows).
"""

from __future__ import annotations

from swell import recipe
from swell.core import decision, snapshot
from swell.core.policies import schedule, steps

NAME = "hpa"


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
) -> tuple[decision.Decision, steps.State]:
    """Stabilize, rate-limit and clamp a metric recommendation; record the rescale (HPA normalize)."""
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
        reason = f"signals ask for {wanted}; {why} {final}"
    elif stabilized != wanted:
        bound = "stabilization"
        reason = f"signals ask for {wanted}; the stabilization window holds {stabilized}"
    elif wanted == current and any(p.replicas == current and "tolerance" in p.note for p in props):
        bound = "tolerance"
        reason = f"within tolerance of the target: stay at {current}"
    else:
        bound = "metrics"
        reason = f"signals ask for {wanted}" + ("" if wanted != current else ": no change")
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
    if snap.current > b.hi:
        bound = schedule.which(b, "max")
        return hold(snap, policy, bound, f"{snap.current} replicas exceed the cap of {b.hi}", desired=b.hi)
    if snap.current < b.lo:
        bound = schedule.which(b, "min")
        return hold(
            snap, policy, bound, f"{snap.current} replicas are below the floor of {b.lo}", desired=b.lo
        )
    return None


def wanted_or_hold(
    snap: snapshot.Snapshot, props: tuple[decision.Proposal, ...], policy: str
) -> int | decision.Decision:
    """The max over the signals with a value; a hold if none has one, or if some are missing and
    the rest would scale down (the HPA's rule for invalid metrics)."""
    valid = [p.replicas for p in props if p.replicas is not None]
    if not valid:
        return hold(
            snap, policy, "no_data", f"no signal has a value ({describe_missing(props)}): hold", props
        )
    wanted = max(valid)
    if len(valid) < len(props) and wanted < snap.current:
        why = (
            f"signals with values ask for {wanted}, but {describe_missing(props)}: "
            "no scale-down on partial data"
        )
        return hold(snap, policy, "no_data", why, props)
    return wanted


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    b = schedule.bounds(rec, snap.now)
    if snap.current == 0 and rec.autoscaling.min_replicas > 0:
        return hold(snap, NAME, "disabled", "the target is scaled to zero: autoscaling is disabled"), state
    early = out_of_bounds(snap, b, NAME)
    if early is not None:
        return early, steps.record_scale(
            state, snap.now, snap.current, early.desired, rec.autoscaling.behavior
        )
    props = proposals(rec, snap)
    wanted = wanted_or_hold(snap, props, NAME)
    if isinstance(wanted, decision.Decision):
        return wanted, state
    return normalize(rec, snap, state, wanted, props, NAME, b)
