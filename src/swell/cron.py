"""Cron expressions in an IANA timezone, pure standard library.

Five fields (minute hour day-of-month month day-of-week) with `*`, lists, ranges, steps and
names, plus the @hourly/@daily/@weekly/@monthly/@yearly macros; or six, with a seconds field
first, as Alibaba's CronHPA writes them (`0 30 10 * * *`; `?` means `*` in the day fields).
Day-of-month and day-of-week combine with OR when both are restricted, as in Vixie cron. Daylight saving: a local time that a
spring-forward skips fires at the moment of the change; a time that a fall-back repeats fires once,
at its first occurrence.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
SECONDS: tuple[str, int, int, dict[str, int]] = ("second", 0, 59, {})
FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
SEARCH_DAYS = 366 * 5  # far enough back for Feb 29 schedules


@dataclass(frozen=True, kw_only=True)
class Cron:
    seconds: tuple[int, ...]  # descending, for searching backwards; (0,) for five fields
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def day_matches(self, d: dt.date) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # Vixie cron: AND unless both fields are restricted
            return dom and dow
        return dom or dow


def _value(text: str, name: str, names: dict[str, int]) -> int:
    low = text.lower()
    if low in names:
        return names[low]
    if not text.isdigit():
        raise ValueError(
            f"{name} field: {text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else "")
        )
    return int(text)


def _field(text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name} field: step {step_text!r} must be a positive whole number")
            step = int(step_text)
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _value(a, name, names), _value(b, name, names)
        else:
            first = _value(base, name, names)
            last = hi if step_text else first
        if not (lo <= first <= hi and lo <= last <= hi):
            raise ValueError(f"{name} field: {part!r} is outside {lo}-{hi}")
        if first > last:
            raise ValueError(f"{name} field: range {part!r} runs backwards")
        out.update(range(first, last + 1, step))
    return out


@lru_cache(maxsize=256)
def parse(expr: str) -> Cron:
    """Parse a cron expression; ValueError says which field is wrong and why."""
    text = MACROS.get(expr.strip().lower(), expr.strip())
    parts = text.split()
    if len(parts) not in (5, 6):
        raise ValueError(
            "a cron expression has 5 fields (minute hour day month weekday) or 6 with seconds first "
            f"(second minute hour day month weekday), got {len(parts)}"
        )
    seconds = _field(parts.pop(0), *SECONDS) if len(parts) == 6 else {0}
    parts[2], parts[4] = ("*" if p == "?" else p for p in (parts[2], parts[4]))
    values = [_field(p, *spec) for p, spec in zip(parts, FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in values[4])
    return Cron(
        seconds=tuple(sorted(seconds, reverse=True)),
        minutes=tuple(sorted(values[0], reverse=True)),
        hours=tuple(sorted(values[1], reverse=True)),
        days=frozenset(values[2]),
        months=frozenset(values[3]),
        weekdays=weekdays,
        any_day=parts[2].startswith("*"),  # Vixie cron: a field starting with * is unrestricted
        any_weekday=parts[4].startswith("*"),
    )


DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def problem(expr: str) -> str | None:
    """None if `expr` is a valid cron expression that can fire, else what is wrong with it."""
    try:
        c = parse(expr)
    except ValueError as exc:
        return f"{expr!r}: {exc}"
    if c.any_weekday and not any(d <= DAYS_IN_MONTH[m - 1] for m in c.months for d in c.days):
        return f"{expr!r}: no month of the expression has any of its days: it never fires"
    return None


def known_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'America' is tzdata's folder, or too long a name
        return False
    return True


# A daylight-saving change moves wall clocks by at most 2 h (Antarctica/Troll), so on the day of
# `now` the wall-clock hours further than this from now's cannot be the answer: skip them.
NEAR_H = 3


def _instant(local: dt.datetime, zone: ZoneInfo) -> float:
    """The Unix time a wall-clock `local` time fires at in `zone` (see module docstring for DST)."""
    first = local.replace(tzinfo=zone, fold=0)
    ts = first.timestamp()
    back = dt.datetime.fromtimestamp(ts, zone).replace(tzinfo=None)
    if back == local:
        return ts
    # Skipped by a spring-forward: fire at the change. It lies between the two readings.
    # Offsets change on whole seconds: bisect on whole seconds, so `hi` ends on the change itself.
    a, b = local.replace(tzinfo=zone, fold=1).timestamp(), ts
    lo, hi = math.floor(min(a, b)), math.ceil(max(a, b))
    off_lo = dt.datetime.fromtimestamp(lo, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if dt.datetime.fromtimestamp(mid, zone).utcoffset() == off_lo:
            lo = mid
        else:
            hi = mid
    return float(hi)


def previous(expr: str, timezone: str, now: float) -> float | None:
    """The latest fire time at or before `now` (Unix seconds), or None within the search span."""
    c = parse(expr)
    zone = ZoneInfo(timezone)
    local_now = dt.datetime.fromtimestamp(now, zone)
    today = local_now.date()
    for back in range(SEARCH_DAYS):
        day = today - dt.timedelta(days=back)
        if not c.day_matches(day):
            continue
        for h in c.hours:
            if back == 0 and h > local_now.hour + NEAR_H:
                continue
            for m in c.minutes:
                for s in c.seconds:
                    t = _instant(dt.datetime(day.year, day.month, day.day, h, m, s), zone)
                    if t <= now:
                        return t
    return None


def following(expr: str, timezone: str, now: float) -> float | None:
    """The earliest fire time strictly after `now`, or None within the search span."""
    c = parse(expr)
    zone = ZoneInfo(timezone)
    local_now = dt.datetime.fromtimestamp(now, zone)
    today = local_now.date()
    for ahead in range(SEARCH_DAYS):
        day = today + dt.timedelta(days=ahead)
        if not c.day_matches(day):
            continue
        for h in reversed(c.hours):
            if ahead == 0 and h < local_now.hour - NEAR_H:
                continue
            for m in reversed(c.minutes):
                for s in reversed(c.seconds):
                    t = _instant(dt.datetime(day.year, day.month, day.day, h, m, s), zone)
                    if t > now:
                        return t
    return None
