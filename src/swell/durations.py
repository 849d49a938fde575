"""Durations as people write them, one grammar wherever swell reads one: 90, 90s, 500ms, 5m,
1.5h, 1d -> seconds. bench, simulate and demo's --duration, a workload pattern's times, a Corrino
payload's windows, and the hint for a recipe's `_s` field written as text all read it."""

from __future__ import annotations

import re

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
TEXT = re.compile(r"\s*((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(ms|s|m|h|d)?\s*")
EXAMPLES = "a duration such as 90, 90s, 500ms, 5m, 2h or 1d"


def parse(text: str) -> float:
    """Seconds; a ValueError saying what a duration looks like for anything else (a negative, an
    unknown unit). Digits past float's range read as infinity, for the caller's bound to name."""
    m = TEXT.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not {EXAMPLES}")
    return float(m.group(1)) * UNITS[m.group(2) or "s"]


def with_unit(text: str) -> float | None:
    """Seconds if `text` is a duration with its unit written ("30s", "5m"), else None: text that a
    field counted in seconds would read as a number needs no hint."""
    m = TEXT.fullmatch(text)
    return float(m.group(1)) * UNITS[m.group(2)] if m and m.group(2) else None
