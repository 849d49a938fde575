"""Ray Serve's default autoscaling policy (its replica queue length policy), over one signal.

The need is the ongoing requests (queued and running, summed over replicas, averaged over the
signal's window: Ray's look-back period) over the target per replica (`target_ongoing_requests`).
Each step moves `upscaling_factor` (or `downscaling_factor`) of the way from the running replicas
to the need, rounded up; a scale-down the factor would round away still takes one replica. Then
the bounds, then the delays: a new count applies only once every tick for `upscale_delay_s`
(`downscale_delay_s`) has asked for a move in that direction, and the wait starts again after each
move. To zero only from one replica, after `downscale_to_zero_delay_s`. At zero running replicas
a request starts one at once (Ray's cold-start path). swell's safety net is kept: a signal without
value holds (or goes to the fallback), and a partial reading never scales down.
"""

from __future__ import annotations

import math
from dataclasses import replace

from swell import recipe
from swell.core import decision, snapshot
from swell.core.policies import rules, schedule, steps

NAME = "ray"


def signal_of(auto: recipe.Autoscaling) -> recipe.Signal:
    name = auto.ray_settings.signal
    return next(s for s in auto.signals if s.name == name) if name else auto.signals[0]


def smoothed(wanted: float, running: int, cfg: recipe.RayServe) -> int:
    """Ray's scaling factors: a share of the way from `running` to `wanted`, rounded up; a
    scale-down the factor rounds away to nothing still takes one replica."""
    delta = wanted - running
    factor = cfg.upscaling_factor if delta > 0 else cfg.downscaling_factor
    out = steps.ceil(running + factor * delta)
    if steps.ceil(wanted) < running and out == running:
        out -= 1
    return out


def delayed(
    bounded: int, current: int, now: float, cfg: recipe.RayServe, state: steps.State
) -> tuple[int, float | None, steps.State]:
    """Ray's delays: (the count to set, the seconds it still waits (None: no wait), the state). A
    count different from `current` applies once every tick for the delay asked to move that way."""
    if bounded == current:
        return current, None, replace(state, trend=None)
    way = 1 if bounded > current else -1
    if way < 0 and current > 1:
        bounded = max(1, bounded)  # to zero only from one replica
    delay = cfg.upscale_delay_s if way > 0 else cfg.downscale_delay_s
    if way < 0 and current == 1 and cfg.downscale_to_zero_delay_s is not None:
        delay = cfg.downscale_to_zero_delay_s
    since = state.trend[1] if state.trend is not None and state.trend[0] == way else now
    if now - since >= delay:
        return bounded, None, replace(state, trend=None)
    return current, delay - (now - since), replace(state, trend=(way, since))


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision.Decision, steps.State]:
    auto = rec.autoscaling
    cfg = auto.ray_settings
    sig = signal_of(auto)
    b = schedule.bounds(rec, snap.calendar_now)
    reading = snap.reading(sig.name)
    prop = decision.Proposal(
        signal=sig.name, value=reading.value, target=sig.target, replicas=None if not reading.ok else 0,
        note="" if reading.ok else f"no value: {reading.error}",
    )  # fmt: skip
    missed, state = rules.on_missing(rec, snap, state, (prop,), NAME)
    if missed is not None:
        return missed, state
    oob = rules.out_of_bounds(snap, b, NAME)
    if oob is not None:
        return oob, replace(state, trend=None)
    assert reading.value is not None
    wanted = rules.need(sig, reading.value, snap.ready)
    if snap.ready == 0:  # Ray's cold start: no running replica
        n = steps.clamp(max(math.ceil(cfg.upscaling_factor), snap.current), b.lo, b.hi) if reading.value > 0 else snap.current
        prop = replace(prop, replicas=n, note="no replica running")
        if n == snap.current:
            return rules.hold(snap, NAME, "metrics", "no replica running yet: wait for those asked for", (prop,)), state
        return rules.hold(snap, NAME, "activation", f"{reading.value:.3g} ongoing at zero running: start {n}",
                          (prop,), desired=n), replace(state, trend=None)  # fmt: skip
    step = smoothed(wanted, snap.ready, cfg)
    if reading.partial and step < snap.current:  # some replicas unreadable: never a scale-down
        step = snap.current
    bounded = steps.clamp(step, b.lo, b.hi)
    prop = replace(prop, replicas=step, note=f"{reading.value:.3g} ongoing / {sig.target:g} per replica = {wanted:.2f}")
    final, waits, state = delayed(bounded, snap.current, snap.now, cfg, state)
    bound: decision.BoundBy
    if waits is not None:
        bound, reason = "stabilization", f"asks for {bounded}; held at {final} for {waits:.0f} s more (Ray's delay)"
    elif bounded != step:
        bound = schedule.which(b, "max" if bounded < step else "min")
        reason = f"asks for {step}, bounded to {bounded}"
    else:
        bound, reason = "metrics", f"asks for {final}" + ("" if final != snap.current else ": no change")
    state = steps.record_scale(state, snap.now, snap.current, final, auto.behavior)
    return decision.Decision(
        t=snap.now, policy=NAME, current=snap.current, desired=final, bound_by=bound, reason=reason, proposals=(prop,)
    ), state
