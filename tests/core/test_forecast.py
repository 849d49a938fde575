"""The planner's forecaster on synthetic series with known answers."""

from __future__ import annotations

import json

import pytest

from swell.core import forecast


def feed(values: list[tuple[float, float]], h: forecast.History | None = None) -> forecast.History:
    h = h or forecast.History()
    for t, v in values:
        h = forecast.observe(h, t, v)
    return h


def series(fn, start: float, end: float, step: float = 5.0) -> list[tuple[float, float]]:  # type: ignore[no-untyped-def]
    out, t = [], start
    while t < end:
        out.append((t, fn(t)))
        t += step
    return out


H = 960.0


@pytest.mark.parametrize(
    ("name", "fn", "now", "expect"),
    [
        ("a constant load forecasts itself", lambda t: 4.0, 1800.0, 4.0),
        ("a burst 5 minutes ago is held over H", lambda t: 10.0 if 1200 <= t < 1320 else 2.0, 1620.0, 10.0),
        ("a burst 1.9 H ago is still held", lambda t: 10.0 if 0 <= t < 60 else 2.0, 60.0 + 1.9 * H, 10.0),
        ("a burst 2.5 H ago has halved", lambda t: 10.0 if 0 <= t < 60 else 2.0, 60.0 + 2.5 * H, 5.0),
        (
            "a burst 3.5 H ago is forgotten under today's level",
            lambda t: 10.0 if t < 60 else 2.0,
            60 + 3.5 * H,
            2.0,
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_envelope(name: str, fn, now: float, expect: float) -> None:  # type: ignore[no-untyped-def]
    h = feed(series(fn, 0.0, now))
    f = forecast.forecast(h, now, H)
    assert f.value == pytest.approx(expect, rel=0.02)


def test_with_a_horizon_of_seconds_a_burst_halves_every_ten_seconds_after_its_minute() -> None:
    h = feed(series(lambda t: 8.0 if t < 60 else 1.0, 0.0, 140.0))
    # the burst's minute ended at 60 s; held 2 H = 4 s, then halved every 10 s: at 84 s, 8 / 4
    assert forecast.envelope(h, 84.0, 2.0) == pytest.approx(2.0, rel=0.01)


def test_a_clean_ramp_is_projected_over_the_whole_horizon_by_its_slope() -> None:
    slope = 0.01  # per second
    h = feed(series(lambda t: 1.0 + slope * t, 0.0, 1200.0))
    f = forecast.forecast(h, 1200.0, H)
    last_minute_mean = 1.0 + slope * (1140.0 + 1195.0) / 2
    assert f.which == "trend"
    assert f.trend == pytest.approx(last_minute_mean + slope * H, rel=0.02)


def test_a_noisy_rise_is_projected_at_most_five_minutes_scaled_by_its_fit() -> None:
    def noisy(t: float) -> float:
        return 5.0 + 0.002 * t + (3.0 if int(t // 60) % 2 else -3.0)

    h = feed(series(noisy, 0.0, 1200.0))
    f = forecast.forecast(h, 1200.0, H)
    assert f.trend < h.means()[-1][1] + 0.002 * 300.0 + 1e-9


def test_a_clean_fall_lowers_the_held_peaks_to_where_it_has_taken_the_load() -> None:
    h = feed(series(lambda t: 20.0 - 0.01 * t, 0.0, 1200.0))
    assert forecast.decline(h, 1200.0, H) == pytest.approx(-0.01, rel=0.01)
    f = forecast.forecast(h, 1200.0, H)
    # the line is at 8 now; the last minute reads halfway to its highest tick, 8.3 to 8.6
    assert 8.0 <= f.value <= 8.6 and f.which == "recent peak"


def _zigzag(t: float) -> float:  # falling 0.2 a minute, but ±6 from one minute to the next
    return 20.0 - 0.2 * (t // 60) + (6.0 if int(t // 60) % 2 else -6.0)


@pytest.mark.parametrize(
    ("fn", "now"),
    [
        (lambda t: 10.0 if 600 <= t < 660 else 2.0, 1500.0),
        (_zigzag, 1800.0),
        (lambda t: 2.0 + 0.01 * t, 1800.0),
        (lambda t: 20.0 - 0.01 * t, 300.0),
    ],
    ids=[
        "a-burst-that-fell-back-at-once-is-no-clean-fall",
        "a-fall-too-noisy-to-fit-is-none",
        "a-rise-is-none",
        "five-minutes-are-too-few-to-tell",
    ],
)
def test_no_clean_fall_keeps_the_held_peak(fn, now: float) -> None:  # type: ignore[no-untyped-def]
    h = feed(series(fn, 0.0, now))
    assert forecast.decline(h, now, H) == 0.0
    highest = max(v for _, v in h.peaks())
    assert forecast.envelope(h, now, H) == pytest.approx(highest)  # every peak is within its 2 H hold


def test_a_day_of_history_brings_yesterdays_peak_of_the_coming_window() -> None:
    day = forecast.DAY

    def daily(t: float) -> float:  # a peak of 10 every day from 12:00 to 12:30, else 1
        s = t % day
        return 10.0 if 43200 <= s < 45000 else 1.0

    h = feed(series(daily, 0.0, day + 43200.0 - 600.0, step=30.0))
    now = day + 43200.0 - 600.0  # ten minutes before today's peak
    f = forecast.forecast(h, now, H)
    assert f.seasonal == pytest.approx(10.0)
    assert f.which == "a day ago"
    assert f.envelope == pytest.approx(1.0)


def test_no_seasonal_part_before_a_day_of_history() -> None:
    h = feed(series(lambda t: 3.0, 0.0, 3600.0))
    assert forecast.forecast(h, 3600.0, H).seasonal is None


def test_the_history_stays_small_and_round_trips_through_json() -> None:
    h = feed(series(lambda t: (t % 977) / 100.0, 0.0, 2 * forecast.DAY, step=15.0))
    assert len(h.minutes) <= forecast.RECENT_KEEP_S / 60 + 1
    assert len(h.daily) <= forecast.DAILY_KEEP_S / forecast.SLOT + 1
    assert len(h.busiest) == len(h.daily)
    again = forecast.History.from_json(json.loads(json.dumps(h.to_json())))
    assert again == h
    now = 2 * forecast.DAY
    assert forecast.forecast(again, now, H) == forecast.forecast(h, now, H)
    # a state written before `busiest` existed reads as none yet: nothing to raise for
    older = forecast.History.from_json({k: v for k, v in h.to_json().items() if k != "busiest"})
    assert older.busiest == () and forecast.surprise(older, now, H) == (0.0, None)


def _flat_then_ramp(flat: float, per_minute: float, from_s: float):  # type: ignore[no-untyped-def]
    return lambda t: flat if t < from_s else flat + per_minute * (t - from_s) / 60.0


@pytest.mark.parametrize(
    ("fn", "now", "seen"),
    [
        pytest.param(_flat_then_ramp(2.0, 0.5, 1800.0), 1800.0 + 300.0, True,
                     id="a ramp 5 minutes old after a flat half hour is projected over H by its slope"),
        pytest.param(_flat_then_ramp(2.0, 0.5, 1800.0), 1800.0 + 120.0, False,
                     id="two minutes of rise are not yet a ramp"),
        pytest.param(_flat_then_ramp(2.0, 0.25, 1800.0), 1800.0 + 300.0, False,
                     id="a clean rise of less than 80 percent of the level is no ramp"),
        pytest.param(lambda t: 5.0 + (3.0 if int(t // 60) % 2 else -3.0), 2400.0, False,
                     id="alternating noise is no ramp"),
    ],
)  # fmt: skip
def test_a_ramp_is_seen_within_its_first_five_minutes(fn, now: float, seen: bool) -> None:  # type: ignore[no-untyped-def]
    h = feed(series(fn, 0.0, now))
    f = forecast.forecast(h, now, H)
    last = h.means()[-1][1]
    if seen:
        assert f.which == "ramp"
        assert f.value == pytest.approx(last + 0.5 / 60.0 * H, rel=0.05)
    else:
        assert forecast.ramp(h, now, H) == 0.0


def test_a_ramp_is_projected_to_at_most_four_times_the_last_minute() -> None:
    h = feed(series(_flat_then_ramp(1.0, 2.0, 1800.0), 0.0, 2100.0))
    last = h.means()[-1][1]
    assert forecast.ramp(h, 2100.0, H) == pytest.approx(forecast.RAMP_MAX * last)


def test_the_minute_the_history_began_in_is_neither_a_ramp_nor_a_trend() -> None:
    """The first minute is part of one, read while the rate windows fill: from nothing to the load.
    Without it four minutes of a load rising 2.5 % a minute are neither a ramp nor a trend above the
    last minute (with it the trend read one); a ramp of the load after a settled first minute is seen."""
    warming = [(5.0 * i, min(4.0, 0.2 * i)) for i in range(12)]  # 0 -> 4 within the first minute
    h = feed(warming + series(lambda t: 4.0 + (t - 60.0) / 60.0 * 0.1, 60.0, 300.0))
    assert len(h.means()) == 5 and len(h.settled_means()) == 4
    assert forecast.ramp(h, 300.0, H) == 0.0 and forecast.trend(h, 300.0, H) == pytest.approx(h.means()[-1][1])
    fed_from_the_start = feed(series(lambda t: 4.0, 0.0, 60.0) + series(_flat_then_ramp(4.0, 4.0, 60.0), 60.0, 360.0))
    assert forecast.ramp(fed_from_the_start, 360.0, H) > 0.0


@pytest.mark.parametrize(
    ("values", "now", "expect"),
    [
        pytest.param([5.0] * 10, 600.0, None, id="load read: not silent"),
        pytest.param([5.0] * 5 + [0.0] * 5, 600.0, 300.0, id="silent since the first minute with no reading above 0"),
        pytest.param([5.0] * 9 + [0.0], 600.0, 540.0, id="a whole minute of zeros is a silence"),
        pytest.param([5.0] * 9 + [0.0], 599.0, None, id="a minute not yet over is not"),
        pytest.param([0.0, 5.0] * 5, 600.0, None, id="zeros between readings are not a silence"),
    ],
)  # fmt: skip
def test_a_silence_is_a_whole_minute_or_more_with_no_load_at_all(
    values: list[float], now: float, expect: float | None
) -> None:
    h = forecast.History()
    for i, v in enumerate(values):  # one minute each: readings at its start and 30 s in
        h = forecast.observe(h, 60.0 * i, v)
        h = forecast.observe(h, 60.0 * i + 30.0, v)
    assert forecast.silent(h, now) == expect


def _burst(level: float, peak: float, at: float, length: float = 300.0):  # type: ignore[no-untyped-def]
    return lambda t: peak if at <= t < at + length else level


@pytest.mark.parametrize(
    ("fn", "now", "raised"),
    [
        (_burst(2.0, 6.0, 3 * H), 3 * H + 300 + 1.5 * H, forecast.SURPRISE_MAX),
        (_burst(20.0, 30.0, 3000.0), 3000.0 + 4 * H, 0.25),  # the burst fills the slot at 3000 s
        (_burst(20.0, 30.0, 3000.0), 3000.0 + 8 * H, 0.125),
        (_burst(2.0, 3.5, 3 * H), 3 * H + 300 + 1.5 * H, 0.0),
        (_burst(20.0, 28.0, 3 * H), 3 * H + 300 + 1.5 * H, 0.0),
        (_burst(2.0, 6.0, 3 * H), 3 * H + 25 * H, 0.0),
        (_burst(2.0, 6.0, 0.5 * H), 6 * H, 0.0),
        (lambda t: 6.0 if (t // 600) % 3 == 0 else 2.0, 8 * H, 0.0),
        (lambda t: 4.0, 6 * H, 0.0),
    ],
    ids=[
        "a burst 3x the load before it: the most, SURPRISE_MAX",
        "a burst 50 % past: 50 %, halved after 4 H",
        "... and halved again after 8 H",
        "+75 % but less than two replicas' load: noise",
        "8 replicas' load but +40 %: less than SURPRISE_RISE",
        "a burst older than 24 H is forgotten",
        "a burst with less than 2 H of load before it says nothing",
        "bursts like those of the 2 H before them are no surprise",
        "a constant load: none",
    ],
)
def test_a_burst_past_what_the_load_before_it_said_is_a_surprise(fn, now: float, raised: float) -> None:  # type: ignore[no-untyped-def]
    h = feed(series(fn, 0.0, now))
    assert forecast.surprise(h, now, H)[0] == pytest.approx(raised, rel=0.03, abs=0.002)


def test_a_rise_along_its_own_line_is_no_surprise() -> None:
    slope = 4.0 / (6 * H)  # 1 -> 5 over 6 H: the morning of a diurnal load
    now = 6 * H
    h = feed(series(lambda t: 1.0 + slope * t, 0.0, now))
    assert forecast.surprise(h, now, H)[0] < 0.02


def test_after_a_burst_past_its_forecast_the_held_peak_is_raised_while_the_load_is_back_down() -> None:
    fn = _burst(2.0, 6.0, 3 * H)
    now = 3 * H + 300 + 1.5 * H  # the burst's peak is still held (2 H)
    f = forecast.forecast(feed(series(fn, 0.0, now)), now, H)
    assert f.envelope == pytest.approx(6.0, rel=0.01)
    assert f.raised == forecast.SURPRISE_MAX
    assert f.value == pytest.approx(6.0 * (1 + forecast.SURPRISE_MAX), rel=0.01)
    assert "for a burst past its forecast" in f.which


def test_a_surge_that_stays_is_planned_as_it_is() -> None:
    # the same surprise, but the load stays at its new level: the plateau is not raised
    now = 3 * H + 1.5 * H
    f = forecast.forecast(feed(series(lambda t: 6.0 if t >= 3 * H else 2.0, 0.0, now)), now, H)
    assert forecast.surprise(feed(series(lambda t: 6.0 if t >= 3 * H else 2.0, 0.0, now)), now, H)[0] > 0
    assert f.raised == 0.0 and f.value == pytest.approx(6.0, rel=0.01)


def test_on_one_machine_a_burst_raises_nothing() -> None:
    # H is a replica's start (seconds): no 5-minute slot has 2 H of load before it
    fn = _burst(1.0, 8.0, 1200.0, 60.0)
    h = feed(series(fn, 0.0, 1500.0))
    assert forecast.surprise(h, 1500.0, 5.0) == (0.0, None)
