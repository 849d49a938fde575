"""The simulator's calendar (`swell simulate --start`): a run starts at a date, so schedule windows
with a date in their cron fire on it, and suggested windows carry it."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from swell.clusters.sim import outcomes, report
from swell.core import snapshot
from swell.runtime import sim, suggest
from swell.workload import arrivals, spec
from tests.clusters.sim.simhelp import SURGE, surge_recipe

SALE = [{"name": "sale", "start": "5 9 27 11 *", "end": "8 9 27 11 *", "timezone": "UTC", "min_replicas": 4}]
NOV27_0900 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC).timestamp()
QUIET = "constant:rate=1,input=100,output=50"  # one replica serves it: only the window scales


def _run(policy: str, start_s: float, horizon_s: float = 600.0) -> outcomes.Run:
    opts = dataclasses.replace(sim.DEFAULT_OPTIONS, initial_replicas=1, start_s=start_s)
    arr = arrivals.collect(spec.parse(QUIET), seed=0, horizon_s=horizon_s)
    return sim.simulate(surge_recipe(schedules=SALE), arr, horizon_s=horizon_s, policy=policy, options=opts)


def _desired_by_minute(run: outcomes.Run) -> list[int]:
    tl = run.timeline
    return [int(tl.desired[(tl.t >= m * 60.0) & (tl.t < (m + 1) * 60.0)].max()) for m in range(10)]


def test_a_snapshot_reads_the_calendar_from_its_epoch() -> None:
    assert snapshot.Snapshot(now=300.0, current=1).calendar_now == 300.0  # now is Unix time
    assert snapshot.Snapshot(now=300.0, current=1, epoch_s=NOV27_0900).calendar_now == NOV27_0900 + 300.0


@pytest.mark.parametrize(
    ("policy", "first"),
    [("swell", 4), ("reactive", 5)],
    ids=["the-planner-provisions-the-floor-a-lead-time-ahead", "the-reactive-rules-from-the-windows-start"],
)
def test_a_dated_window_fires_when_the_run_starts_on_its_date(policy: str, first: int) -> None:
    on_the_day = _desired_by_minute(_run(policy, NOV27_0900))
    assert on_the_day[: first] == [1] * first, on_the_day
    assert on_the_day[first:8] == [4] * (8 - first), on_the_day  # the window is 09:05-09:08
    assert max(on_the_day[9:]) < 4, on_the_day


@pytest.mark.parametrize(
    "start",
    [0.0, NOV27_0900 + 86400.0, NOV27_0900 - 3600.0],
    ids=["the-default-1-january-1970", "the-day-after", "an-hour-early"],
)
def test_a_dated_window_never_fires_on_another_day_or_hour(start: float) -> None:
    assert _desired_by_minute(_run("swell", start)) == [1] * 10


@pytest.mark.parametrize(
    ("t", "start", "expr"),
    [
        (40 * 60.0, NOV27_0900, "40 9 27 11 *"),
        (15 * 3600.0 + 20 * 60.0, NOV27_0900, "20 0 28 11 *"),
        (-300.0, NOV27_0900, "0 9 27 11 *"),
    ],
    ids=["a-minute-into-the-run", "past-midnight-is-the-next-day", "before-the-start-is-the-start"],
)
def test_cron_at_names_the_minute_on_the_runs_calendar(t: float, start: float, expr: str) -> None:
    assert suggest.cron_at(t, start) == expr


def test_suggested_windows_carry_the_runs_date_and_reproduce_their_replay() -> None:
    opts = dataclasses.replace(sim.DEFAULT_OPTIONS, initial_replicas=1, start_s=NOV27_0900)
    comp = sim.compare(surge_recipe(), spec.parse(SURGE), ["swell"], seed=0, options=opts, with_oracle=False,
                       with_baselines=False, with_suggestions=True)  # fmt: skip
    (x,) = comp.suggestions
    assert x.after is not None and x.after.meets_slo and x.windows
    for w in x.windows:
        _, hour, day, month, _ = w.start.split()
        assert (hour, day, month) == ("9", "27", "11"), w.start  # the surge comes in the run's first minutes
    assert "Dates are the run's: it starts 2026-11-27T09:00:00Z" in x.note
    # the windows, pasted into the recipe and run on the same date, replay the same run
    pasted = surge_recipe().model_copy(update={"schedules": x.windows})
    again = sim.simulate(pasted, comp.arrivals, horizon_s=comp.horizon_s, policy="swell", seed=0, options=opts)
    assert again.summary.attainment == x.after.summary.attainment and again.gpu_hours == x.after.gpu_hours
    assert comp.to_json()["start"] == "2026-11-27T09:00:00Z"


def test_the_reports_scheduled_floor_is_read_on_the_runs_calendar() -> None:
    run = _run("swell", NOV27_0900)
    (floor,) = report.schedule_series(run, 60.0)
    by_minute = dict(zip(np.asarray(floor.t).round().astype(int).tolist(), np.asarray(floor.y).tolist(), strict=True))
    assert by_minute[4] == 1 and by_minute[5] == by_minute[7] == 4 and by_minute[8] == 1
    assert report.schedule_series(_run("swell", 0.0), 60.0) == [], "the window is not on 1 January 1970"

