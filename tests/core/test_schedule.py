"""Cron windows in a timezone raise the floor or lower the cap; DST handled."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from swell import cron
from swell.core.policies import hpa, schedule, steps
from tests.conftest import make_recipe, snap


def at(text: str, tz: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


CRONHPA = [
    {
        "name": "late-morning",
        "start": "30 10 * * *",
        "end": "0 12 * * *",
        "timezone": "Asia/Shanghai",
        "min_replicas": 2,
    }
]


@pytest.mark.parametrize(
    ("local", "floor"),
    [
        ("2026-11-20 10:29", 1),
        ("2026-11-20 10:30", 2),
        ("2026-11-20 11:59", 2),
        ("2026-11-20 12:00", 1),
        ("2026-11-21 03:00", 1),
    ],
    ids=lambda v: str(v),
)
def test_cronhpa_scales_to_two_at_1030_and_back_to_one_at_noon_beijing_time(local: str, floor: int) -> None:
    rec = make_recipe(min_replicas=1, schedules=CRONHPA)
    assert schedule.bounds(rec, at(local, "Asia/Shanghai")).lo == floor


def test_schedule_floor_lifts_the_hpa_decision_and_says_so() -> None:
    rec = make_recipe(min_replicas=1, schedules=CRONHPA)
    d, _ = hpa.decide(rec, snap(at("2026-11-20 10:45", "Asia/Shanghai"), 1, latency=10), steps.State())
    assert (d.desired, d.bound_by) == (2, "schedule")


def test_a_cap_may_go_to_zero_at_night_and_a_floor_never_exceeds_max() -> None:
    rec = make_recipe(
        min_replicas=1,
        max_replicas=3,
        schedules=[
            {"start": "0 22 * * *", "end": "0 6 * * *", "timezone": "UTC", "max_replicas": 0},
            {"start": "0 9 * * mon-fri", "end": "0 17 * * mon-fri", "timezone": "UTC", "min_replicas": 9},
        ],
    )
    night = schedule.bounds(rec, at("2026-11-20 23:00", "UTC"))
    assert (night.lo, night.hi, night.cap_lowered) == (0, 0, True)
    workday = schedule.bounds(rec, at("2026-11-20 10:00", "UTC"))  # a Friday
    assert (workday.lo, workday.hi) == (3, 3)
    weekend = schedule.bounds(rec, at("2026-11-21 10:00", "UTC"))  # a Saturday
    assert (weekend.lo, weekend.hi) == (1, 3)


def test_dst_spring_forward_fires_a_skipped_time_at_the_change() -> None:
    # Europe/Berlin skips 02:00-03:00 on 2026-03-29: a 02:30 job fires at 03:00 CEST (01:00 UTC)
    fired = cron.following("30 2 * * *", "Europe/Berlin", at("2026-03-29 00:00", "Europe/Berlin"))
    assert fired == dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC).timestamp()


def test_dst_fall_back_fires_a_repeated_time_once() -> None:
    # 02:30 happens twice on 2026-10-25 in Berlin; the job fires at the first (00:30 UTC) only
    start = at("2026-10-25 00:00", "Europe/Berlin")
    first = cron.following("30 2 * * *", "Europe/Berlin", start)
    assert first == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC).timestamp()
    again = cron.following("30 2 * * *", "Europe/Berlin", first)
    assert again is not None and again - first > 23 * 3600


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("61 * * * *", "minute field: '61' is outside 0-59"),
        ("* * * *", "has 5 fields"),
        ("0 0 0 * * * *", "or 6 with seconds first"),
        ("60 30 10 * * *", "second field: '60' is outside 0-59"),
        ("*/0 * * * *", "step '0' must be a positive whole number"),
        ("0 0 * * funday", "day of week field: 'funday' is not a number"),
        ("0 5-2 * * *", "runs backwards"),
    ],
)
def test_bad_cron_expressions_say_what_is_wrong(expr: str, fragment: str) -> None:
    problem = cron.problem(expr)
    assert problem is not None and fragment in problem


def test_day_of_month_and_weekday_combine_with_or() -> None:
    c = cron.parse("0 0 1 * mon")
    assert c.day_matches(dt.date(2026, 12, 1))  # a Tuesday, the 1st
    assert c.day_matches(dt.date(2026, 11, 23))  # a Monday
    assert not c.day_matches(dt.date(2026, 11, 24))


def test_a_starred_step_in_a_day_field_is_unrestricted_as_in_vixie_cron() -> None:
    c = cron.parse("0 0 */2 * mon")  # day-of-month starts with *: AND with the weekday, not OR
    assert c.day_matches(dt.date(2026, 11, 23))  # Monday the 23rd
    assert not c.day_matches(dt.date(2026, 11, 24))  # Tuesday
    assert not c.day_matches(dt.date(2026, 11, 30))  # a Monday, but an even day


def test_an_impossible_date_is_rejected() -> None:
    problem = cron.problem("0 0 30 2 *")
    assert problem is not None and "never fires" in problem
    assert cron.problem("0 0 29 2 *") is None  # leap years


# ---------------------------------------------------------------------------------------------
# Alibaba CronHPA's six fields, seconds first


def test_a_cronhpa_schedule_with_seconds_is_accepted_and_fires_on_the_second() -> None:
    rec = make_recipe(
        min_replicas=1,
        schedules=[{**CRONHPA[0], "start": "0 30 10 * * *", "end": "0 0 12 * * ?"}],
    )
    assert schedule.bounds(rec, at("2026-11-20 10:29:59", "Asia/Shanghai")).lo == 1
    assert schedule.bounds(rec, at("2026-11-20 10:30:00", "Asia/Shanghai")).lo == 2
    fired = cron.following("15 30 10 * * *", "Asia/Shanghai", at("2026-11-20 10:30:00", "Asia/Shanghai"))
    assert fired == at("2026-11-20 10:30:15", "Asia/Shanghai")
    every = cron.following("*/20 * * * * *", "UTC", at("2026-11-20 10:30:41", "UTC"))
    assert every == at("2026-11-20 10:31:00", "UTC")


def test_a_skipped_midnight_fires_exactly_at_the_change() -> None:
    # America/Santiago springs forward at 00:00 on 2026-09-06: midnight fires at 01:00 -04, to the second
    change = dt.datetime(2026, 9, 6, 4, 0, tzinfo=dt.UTC).timestamp()
    assert cron.previous("* */9 * * *", "America/Santiago", change + 7651) == change


# ---------------------------------------------------------------------------------------------
# parity with croniter (bench/cron_parity.py runs the full comparison, DST changes included)

ZONES = ("UTC", "Asia/Shanghai", "Asia/Kolkata", "America/New_York", "Europe/Berlin", "Australia/Sydney")
PARITY_EXPRESSIONS = (
    "0 30 10 * * *", "*/15 * * * *", "5 4 * * sun", "0 22 * * 1-5", "0 0 1,15 * *", "30 2 * * *",
    "0 */3 * * *", "7 7 7 7 *", "0 9 * * mon-fri", "0 0 */2 * mon", "0 0 1 * mon", "0 12 29 2 *",
    "30 15 10 * * *", "*/10 * 8-17 * * 1-5", "0 0 0 1 jan *", "45 59 23 31 12 *",
)  # fmt: skip


def test_swell_cron_agrees_with_croniter_away_from_daylight_saving_changes() -> None:
    croniter = pytest.importorskip("croniter").croniter
    checked = 0
    for expr in PARITY_EXPRESSIONS:
        for zone in ZONES:
            for start in (
                "2026-01-15 03:04:05",
                "2026-05-31 23:59:59",
                "2026-07-04 12:00:00",
                "2026-12-31 23:00:00",
            ):
                now = at(start, zone)
                local = dt.datetime.fromtimestamp(now, ZoneInfo(zone))
                six = len(expr.split()) == 6
                theirs = croniter(expr, local, second_at_beginning=six, implement_cron_bug=True)
                nxt = theirs.get_next(float)
                before = croniter(
                    expr, local + dt.timedelta(seconds=1), second_at_beginning=six, implement_cron_bug=True
                ).get_prev(float)
                assert cron.following(expr, zone, now) == nxt, (expr, zone, start)
                assert cron.previous(expr, zone, now) == before, (expr, zone, start)
                checked += 1
    assert checked == len(PARITY_EXPRESSIONS) * len(ZONES) * 4
