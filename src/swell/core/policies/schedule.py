"""Schedule windows (CronHPA-style): a cron start and end in a timezone raise the floor or cap.

Combined with the reactive policy by max (floor) and min (cap): the effective bounds of a tick
are the recipe's min/max, raised by the highest active floor and lowered by the lowest active cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from swell import cron, recipe
from swell.core import decision


@dataclass(frozen=True, kw_only=True)
class Bounds:
    lo: int
    hi: int
    active: tuple[str, ...]  # names (or "start→end") of the windows in force
    floor_raised: bool
    cap_lowered: bool


def which(b: Bounds, side: str) -> decision.BoundBy:
    """Name the limit that bound a result: the schedule when it moved that side, else min/max."""
    if side == "min":
        return "schedule" if b.floor_raised else "min"
    return "schedule" if b.cap_lowered else "max"


def is_active(w: recipe.ScheduleWindow, now: float) -> bool:
    """In a window from its latest start until the end that follows it."""
    start = cron.previous(w.start, w.timezone, now)
    if start is None:
        return False
    end = cron.previous(w.end, w.timezone, now)
    return end is None or start > end


def label(w: recipe.ScheduleWindow) -> str:
    return w.name or f"{w.start} → {w.end} {w.timezone}"


def bounds(rec: recipe.Recipe, now: float) -> Bounds:
    auto = rec.autoscaling
    lo, hi = auto.min_replicas, auto.max_replicas
    active = [w for w in rec.schedules if is_active(w, now)]
    floors = [w.min_replicas for w in active if w.min_replicas is not None]
    caps = [w.max_replicas for w in active if w.max_replicas is not None]
    new_hi = min([hi, *caps])  # a cap may go below min_replicas (e.g. 0 at night)
    new_lo = min(max([lo, *floors]), new_hi)  # a floor never exceeds the cap or max_replicas
    return Bounds(
        lo=new_lo,
        hi=new_hi,
        active=tuple(label(w) for w in active),
        floor_raised=new_lo > lo,
        cap_lowered=new_hi < hi,
    )


def next_change(rec: recipe.Recipe, now: float) -> float | None:
    """When the next window starts or ends (for `swell plan` and pre-provisioning)."""
    times = [
        t
        for w in rec.schedules
        for t in (cron.following(w.start, w.timezone, now), cron.following(w.end, w.timezone, now))
        if t is not None
    ]
    return min(times) if times else None
