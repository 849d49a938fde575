"""The named steps every policy shares: tolerance, stabilization, rate limits, clamp, the state.

Faithful to the Kubernetes HPA controller (autoscaling/v2 behavior): stabilization keeps the
unstabilized recommendations of the window and takes the max (down) / min (up); rate policies
limit the change per period from the replica count at the period's start, choosing Max/Min of
the policies or Disabled. The state is a value the policy returns, so a restarted controller can
carry on (it serializes to JSON).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from swell import recipe
from swell.core import decision
from swell.core.policies import plan_state

Bound = decision.BoundBy


@dataclass(frozen=True, kw_only=True)
class State:
    recommendations: tuple[tuple[float, int], ...] = ()  # (t, unstabilized desired)
    up_events: tuple[tuple[float, int], ...] = ()  # (t, replicas added)
    down_events: tuple[tuple[float, int], ...] = ()  # (t, replicas removed)
    failures: int = 0  # consecutive ticks with a signal without value
    last_active: float | None = None  # last tick a signal was above activation
    panic_since: float | None = None  # Knative panicTime
    max_panic: int = 0
    # Ray Serve's delay: the direction asked for (+1 up, -1 down) and since when, without a break
    trend: tuple[int, float] | None = None
    plan: plan_state.PlanState | None = None  # the planner's memory (None for other policies)
    workers: int | None = None  # workers per replica last decided (None: none yet)
    worker_asks: tuple[tuple[float, int], ...] = ()  # (t, workers the queue asked for), newest last

    # ---- named operations on the state (the loop's, not a policy's) --------------------------

    def forget_rescale(self, before: State) -> State:
        """The rescale decided after `before` did not happen: the rate policies must not count it
        (the HPA stores a scale event only after a successful update)."""
        return replace(self, up_events=before.up_events, down_events=before.down_events)

    def restart_from(self, now: float, count: int) -> State:
        """Someone else set the count: start over from it (the stabilization windows hold it and
        the rate history restarts) instead of undoing it."""
        return replace(self, recommendations=((now, count),), up_events=(), down_events=())

    def to_json(self) -> dict[str, Any]:
        return {
            "recommendations": [list(x) for x in self.recommendations],
            "up_events": [list(x) for x in self.up_events],
            "down_events": [list(x) for x in self.down_events],
            "failures": self.failures,
            "last_active": self.last_active,
            "panic_since": self.panic_since,
            "max_panic": self.max_panic,
        } | ({} if self.trend is None else {"trend": list(self.trend)}) | ({} if self.plan is None else {"plan": self.plan.to_json()}) | (
            {} if self.workers is None else {"workers": self.workers, "worker_asks": [list(x) for x in self.worker_asks]}
        )

    @staticmethod
    def from_json(data: dict[str, Any]) -> State:
        def pairs(key: str) -> tuple[tuple[float, int], ...]:
            return tuple((float(t), int(n)) for t, n in data.get(key, ()))

        return State(
            recommendations=pairs("recommendations"),
            up_events=pairs("up_events"),
            down_events=pairs("down_events"),
            failures=int(data.get("failures", 0)),
            last_active=data.get("last_active"),
            panic_since=data.get("panic_since"),
            max_panic=int(data.get("max_panic", 0)),
            trend=(int(data["trend"][0]), float(data["trend"][1])) if data.get("trend") else None,
            plan=plan_state.PlanState.from_json(data["plan"]) if data.get("plan") else None,
            workers=int(data["workers"]) if data.get("workers") is not None else None,
            worker_asks=pairs("worker_asks"),
        )


def within_tolerance(ratio: float, tol: recipe.Tolerance) -> bool:
    """HPA `Tolerances.isWithin`: no change while 1 - down <= ratio <= 1 + up."""
    return (1.0 - tol.down) <= ratio <= (1.0 + tol.up)


COUNT_MAX = 2**31 - 1  # the most replicas any rule proposes (a Deployment's int32 replica count): a
# finite reading far beyond its target (1e308 against 0.5) makes an infinite ratio, not an error


def ceil(x: float) -> int:
    """The least whole count >= x, within +-COUNT_MAX (float noise such as 2.0000000000000004 -> 2)."""
    return math.ceil(round(min(COUNT_MAX, max(-COUNT_MAX, x)), 9))


def stabilize(
    state: State, now: float, current: int, desired: int, behavior: recipe.Behavior
) -> tuple[int, State]:
    """HPA stabilizeRecommendationWithBehaviors: bounded by min over the up window and max over the down window.

    Like the HPA's maybeInitScaleDownStabilizationWindow, a fresh state starts its down window
    with the current count, so a new controller does not scale down in its first window."""
    if not state.recommendations and behavior.scale_down.stabilization_window_s > 0:
        state = replace(state, recommendations=((now, current),))
    up_cut = now - behavior.scale_up.stabilization_window_s
    down_cut = now - behavior.scale_down.stabilization_window_s
    up_rec, down_rec = desired, desired
    for t, rec in state.recommendations:
        if t > up_cut:
            up_rec = min(up_rec, rec)
        if t > down_cut:
            down_rec = max(down_rec, rec)
    result = max(current, up_rec)
    result = min(result, down_rec)
    keep_after = now - max(
        behavior.scale_up.stabilization_window_s, behavior.scale_down.stabilization_window_s
    )
    recs = (*tuple(r for r in state.recommendations if r[0] > keep_after), (now, desired))
    return result, replace(state, recommendations=recs)


def _changed_in_period(events: tuple[tuple[float, int], ...], now: float, period: int) -> int:
    cut = now - period
    return sum(n for t, n in events if t > cut)


def _period_start(state: State, now: float, current: int, period: int) -> int:
    return (
        current
        - _changed_in_period(state.up_events, now, period)
        + _changed_in_period(state.down_events, now, period)
    )


def scale_up_limit(state: State, now: float, current: int, rules: recipe.ScalingRules) -> int:
    if rules.select_policy == "Disabled":
        return current
    pick = min if rules.select_policy == "Min" else max
    proposed: list[int] = []
    for p in rules.policies:
        start = _period_start(state, now, current, p.period_s)
        proposed.append(start + p.value if p.type == "Pods" else ceil(start * (1 + p.value / 100)))
    return pick(proposed)


def scale_down_limit(state: State, now: float, current: int, rules: recipe.ScalingRules) -> int:
    if rules.select_policy == "Disabled":
        return current
    pick = max if rules.select_policy == "Min" else min
    proposed: list[int] = []
    for p in rules.policies:
        start = _period_start(state, now, current, p.period_s)
        proposed.append(start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100)))
    return pick(proposed)


def limit_rate(
    state: State, now: float, current: int, desired: int, behavior: recipe.Behavior, lo: int, hi: int
) -> tuple[int, Bound | None]:
    """HPA convertDesiredReplicasWithBehaviorRate: the rate policies, then min/max.

    Returns the allowed count and which limit bound it ("rate", "max", "min"), or None."""
    if desired > current and behavior.scale_up.select_policy == "Disabled":
        return min(current, hi), "disabled"
    if desired < current and behavior.scale_down.select_policy == "Disabled":
        return max(current, lo), "disabled"
    if desired > current:
        limit = max(scale_up_limit(state, now, current, behavior.scale_up), current)
        allowed, why = (limit, "rate") if hi > limit else (hi, "max")
        if desired > allowed:
            return allowed, why  # type: ignore[return-value]
    elif desired < current:
        limit = min(scale_down_limit(state, now, current, behavior.scale_down), current)
        allowed, why = (limit, "rate") if lo < limit else (lo, "min")
        if desired < allowed:
            return allowed, why  # type: ignore[return-value]
    if desired > hi:
        return hi, "max"
    if desired < lo:
        return lo, "min"
    return desired, None


def record_scale(state: State, now: float, current: int, desired: int, behavior: recipe.Behavior) -> State:
    """Remember a rescale for the rate policies; forget events older than every period."""
    longest = max([p.period_s for p in behavior.scale_up.policies + behavior.scale_down.policies] or [0])
    cut = now - longest
    up = tuple(e for e in state.up_events if e[0] > cut)
    down = tuple(e for e in state.down_events if e[0] > cut)
    if desired > current:
        up += ((now, desired - current),)
    elif desired < current:
        down += ((now, current - desired),)
    return replace(state, up_events=up, down_events=down)


def clamp(n: int, lo: int, hi: int) -> int:
    """n within [lo, hi]; when lo > hi (a schedule cap below the floor) the cap wins."""
    return min(hi, max(lo, n))
