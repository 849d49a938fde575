"""Cron parity: swell.cron (the standard-library parser) against croniter, on next and previous fire times.

Random expressions (5 fields, and 6 with seconds first as Alibaba's CronHPA writes them) in
timezones with and without daylight saving, from start times spread over a year and packed around
DST changes. Prints JSON: how many (expression, zone, start) cases agree, and how the ones that do
not fall: inside a daylight-saving change (±3 h) or not. Needs croniter (pip install croniter).
    python bench/cron_parity.py [--cases 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import time
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from swell import cron

ZONES = (
    "UTC", "Asia/Shanghai", "Asia/Kolkata", "America/New_York", "Europe/London", "Europe/Berlin",
    "Australia/Sydney", "Australia/Lord_Howe", "America/Santiago", "Pacific/Chatham",
)  # fmt: skip
NEAR_DST_S = 3 * 3600


def _field(rng: random.Random, lo: int, hi: int) -> str:
    kind = rng.random()
    if kind < 0.3:
        return "*"
    if kind < 0.5:
        return str(rng.randint(lo, hi))
    if kind < 0.65:
        return f"*/{rng.randint(2, max(2, (hi - lo) // 2))}"
    if kind < 0.8:  # ranges of two values or more: croniter reads "10-10" in the day field as "*"
        a = rng.randint(lo, hi - 1)
        return f"{a}-{rng.randint(a + 1, hi)}"
    if kind < 0.9:
        return ",".join(str(v) for v in sorted(rng.sample(range(lo, hi + 1), 3)))
    a = rng.randint(lo, hi - 1)
    return f"{a}-{rng.randint(a + 1, hi)}/{rng.randint(1, 3)}"


def expression(rng: random.Random) -> str:
    fields = [
        _field(rng, 0, 59),
        _field(rng, 0, 23),
        _field(rng, 1, 28) if rng.random() < 0.5 else "*",
        _field(rng, 1, 12) if rng.random() < 0.3 else "*",
        _field(rng, 0, 6) if rng.random() < 0.4 else "*",
    ]
    if rng.random() < 0.3:
        fields.insert(0, _field(rng, 0, 59))
    return " ".join(fields)


def dst_changes(zone: str, year: int) -> list[float]:
    """Unix times at which `zone` changes its UTC offset during `year` (to the hour)."""
    z = ZoneInfo(zone)
    t = dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp()
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC).timestamp()
    out, last = [], dt.datetime.fromtimestamp(t, z).utcoffset()
    while t < end:
        t += 1800
        off = dt.datetime.fromtimestamp(t, z).utcoffset()
        if off != last:
            out.append(t)
            last = off
    return out


def theirs(expr: str, zone: str, now: float, prev: bool) -> float:
    """croniter's next fire time after `now`, or its last at or before `now` (swell's `previous`):
    fire times are whole seconds, so that is croniter's last before the next whole second."""
    six = len(expr.split()) == 6
    start = dt.datetime.fromtimestamp(int(now) + 1 if prev else now, ZoneInfo(zone))
    it = croniter(expr, start, second_at_beginning=six, implement_cron_bug=True)
    return float(it.get_prev(float) if prev else it.get_next(float))


def run(cases: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    changes = {z: dst_changes(z, 2026) for z in ZONES}
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()
    agree = {"following": 0, "previous": 0}
    differ: dict[str, dict[str, int]] = {
        "following": {"near_dst": 0, "elsewhere": 0},
        "previous": {"near_dst": 0, "elsewhere": 0},
    }
    examples: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for _ in range(cases):
        expr, zone = expression(rng), rng.choice(ZONES)
        if changes[zone] and rng.random() < 0.5:
            now = rng.choice(changes[zone]) + rng.uniform(-2 * 86400, 2 * 86400)
        else:
            now = base + rng.uniform(0, 365 * 86400)
        now = float(int(now)) + rng.choice((0.0, 0.5))
        for name, prev in (("following", False), ("previous", True)):
            ours = cron.previous(expr, zone, now) if prev else cron.following(expr, zone, now)
            other = theirs(expr, zone, now, prev)
            if ours == other:
                agree[name] += 1
                continue
            near = any(abs(c - x) < NEAR_DST_S for c in changes[zone] for x in (now, other, ours or now))
            differ[name]["near_dst" if near else "elsewhere"] += 1
            if not near or sum(e["near_dst"] for e in examples) < 4:
                examples.append({"expr": expr, "zone": zone, "now": now, "op": name, "swell": ours,
                                 "croniter": other, "near_dst": near})  # fmt: skip
    return {
        "cases": cases,
        "seed": seed,
        "zones": list(ZONES),
        "agree": agree,
        "differ": differ,
        "examples": examples,
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=20000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    print(json.dumps(run(args.cases, args.seed), indent=2))


if __name__ == "__main__":
    main()
