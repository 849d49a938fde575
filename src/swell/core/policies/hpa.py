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
from swell.core.policies import rules, schedule, steps

NAME = "hpa"


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    b = schedule.bounds(rec, snap.calendar_now)
    if snap.current == 0 and rec.autoscaling.min_replicas > 0:
        return rules.hold(snap, NAME, "disabled", "the target is scaled to zero: autoscaling is disabled"), state
    early = rules.out_of_bounds(snap, b, NAME)
    if early is not None:
        return early, steps.record_scale(
            state, snap.now, snap.current, early.desired, rec.autoscaling.behavior
        )
    props = rules.proposals(rec, snap)
    wanted = rules.wanted_or_hold(snap, props, NAME)
    if isinstance(wanted, decision.Decision):
        return wanted, state
    return rules.normalize(rec, snap, state, wanted, props, NAME, b)
