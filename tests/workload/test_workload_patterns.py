"""Open-loop arrival statistics against their distributions (seeded), closed-loop sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from swell import errors
from swell.workload import arrivals, patterns, rates, rescale, shapes


def _times(
    schedule: rates.RateSchedule, horizon: float, *, burstiness: float = 1.0, seed: int = 7
) -> np.ndarray:
    w = patterns.OpenLoop(schedule=schedule, burstiness=burstiness)
    return arrivals.collect(w, seed=seed, horizon_s=horizon).t


def _ks_exponential(gaps: np.ndarray, rate: float) -> float:
    """Kolmogorov–Smirnov distance between the gaps' empirical CDF and Exp(rate)."""
    x = np.sort(gaps)
    cdf = 1 - np.exp(-rate * x)
    n = len(x)
    return float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n)))


def test_poisson_gaps_are_exponential_with_the_right_mean() -> None:
    t = _times(rates.Constant(rps=50), 2000)
    gaps = np.diff(t)
    assert len(t) == pytest.approx(100_000, rel=0.02)
    assert gaps.mean() == pytest.approx(1 / 50, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.03)
    # 1.63/sqrt(n) is the 1% critical value; the generator is seeded, so this cannot flake.
    assert _ks_exponential(gaps, 50) < 1.63 / math.sqrt(len(gaps))


@pytest.mark.parametrize("burstiness", [0.25, 0.5, 4.0])
def test_gamma_burstiness_sets_the_coefficient_of_variation(burstiness: float) -> None:
    gaps = np.diff(_times(rates.Constant(rps=20), 3000, burstiness=burstiness))
    assert gaps.mean() == pytest.approx(1 / 20, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1 / math.sqrt(burstiness), rel=0.05)


def test_constant_spacing_is_exact() -> None:
    t = _times(rates.Constant(rps=4), 10, burstiness=math.inf)
    np.testing.assert_allclose(t, np.arange(1, 40) * 0.25, atol=1e-9)


def test_arrivals_are_sorted_within_the_horizon_and_seeded() -> None:
    w = patterns.OpenLoop(schedule=rates.BlackFriday())
    a = arrivals.collect(w, seed=3, horizon_s=500)
    b = arrivals.collect(w, seed=3, horizon_s=500)
    c = arrivals.collect(w, seed=4, horizon_s=500)
    assert np.all(np.diff(a.t) >= 0) and a.t.min() >= 0 and a.t.max() < 500
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.input_tokens, b.input_tokens)
    assert len(a) != len(c) or not np.array_equal(a.t, c.t)


def test_the_process_runs_on_across_chunk_boundaries() -> None:
    # A gap covering a fixed instant is length-biased: its mean is mean·(1 + cv²) = 1.25·mean for
    # burstiness 4. A process restarted at each chunk boundary would give a different mean.
    t = _times(rates.Constant(rps=10), 20_000, burstiness=4.0)
    gaps = np.diff(t)
    straddle = np.floor(t[1:] / patterns.CHUNK_S) != np.floor(t[:-1] / patterns.CHUNK_S)
    assert straddle.sum() > 300
    assert gaps[straddle].mean() / gaps.mean() == pytest.approx(1.25, rel=0.08)
    even = _times(rates.Constant(rps=3), 200, burstiness=math.inf)
    np.testing.assert_allclose(np.diff(even), 1 / 3, atol=1e-9)


def test_steps_give_each_step_its_rate_and_zero_means_none() -> None:
    t = _times(rates.Steps(starts=(0, 100, 200), rates=(0, 30, 5), last_s=100), 300)
    counts = np.histogram(t, bins=[0, 100, 200, 300])[0]
    assert counts[0] == 0
    for got, expected in zip(counts[1:], (3000, 500), strict=True):
        assert abs(got - expected) < 4 * math.sqrt(expected)


def test_black_friday_surges_ten_times_within_minutes_then_decays() -> None:
    schedule = rates.BlackFriday(base_rps=5, surge=10, start_s=300, ramp_s=120, plateau_s=600, decay_s=300)
    t = _times(schedule, schedule.natural_duration_s or 0)
    per_min = np.histogram(t, bins=np.arange(0, 2941, 60))[0] / 60
    assert per_min[:5].mean() == pytest.approx(5, rel=0.1)
    plateau = per_min[(420 // 60) : (1020 // 60)]
    assert plateau.mean() == pytest.approx(50, rel=0.05)
    assert per_min[-1] < 10  # three time constants later, almost back to base


def test_ramp_and_diurnal_follow_their_curves() -> None:
    ramp = rates.Ramp(start_rps=1, end_rps=41, over_s=400, hold_s=0)
    t = _times(ramp, 400)
    assert len(t) == pytest.approx(21 * 400, rel=0.05)
    assert (t > 300).sum() > 3 * (t < 100).sum()
    diurnal = rates.Diurnal(mean_rps=10, amplitude=0.8, period_s=1000, peak_s=500)
    t = _times(diurnal, 1000)
    near_peak = ((t > 450) & (t < 550)).sum()
    near_trough = (t < 50).sum() + (t > 950).sum()
    assert near_peak == pytest.approx(10 * 100 * (1 + 0.8 * 0.9836), rel=0.15)
    assert near_peak > 5 * near_trough


@pytest.mark.parametrize("peak", [500.0, 1500.0, 1e308], ids=["within the period", "a period later", "1e308 s"])
def test_a_diurnal_peak_counts_within_its_period(peak: float) -> None:
    got = rates.Diurnal(mean_rps=10, amplitude=0.8, period_s=1000, peak_s=peak % 1000 if peak > 1e300 else peak)
    far = rates.Diurnal(mean_rps=10, amplitude=0.8, period_s=1000, peak_s=peak)
    t = np.arange(0.0, 1000.0, 10.0)
    assert np.all(np.isfinite(far.rate(t))) and np.allclose(far.rate(t), got.rate(t))
    assert np.allclose(rates.Diurnal(mean_rps=10, amplitude=0.8, period_s=1000, peak_s=1500).rate(t),
                       rates.Diurnal(mean_rps=10, amplitude=0.8, period_s=1000, peak_s=500).rate(t))  # fmt: skip


def test_scaled_schedule_multiplies_the_rate() -> None:
    t = _times(rates.Scaled(inner=rates.Constant(rps=10), factor=0.5), 1000)
    assert len(t) == pytest.approx(5000, rel=0.05)


@pytest.mark.parametrize(
    "make",
    [
        lambda: rates.Constant(rps=0),
        lambda: rates.Steps(starts=(0, 0), rates=(1, 2), last_s=1),
        lambda: rates.Diurnal(mean_rps=1, amplitude=2),
        lambda: patterns.OpenLoop(schedule=rates.Constant(rps=1), burstiness=0),
        lambda: patterns.ClosedLoop(users=0),
    ],
    ids=["zero rate", "steps not increasing", "amplitude above 1", "burstiness 0", "no users"],
)
def test_invalid_values_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_shapes_follow_mean_and_stddev_and_stay_positive() -> None:
    shape = shapes.Shape(input_mean=512, input_stddev=64, output_mean=3, output_stddev=10)
    inp, out = shape.sample(np.random.default_rng(0), 20_000)
    assert inp.mean() == pytest.approx(512, rel=0.01) and inp.std() == pytest.approx(64, rel=0.03)
    assert out.min() >= 1
    closed = patterns.ClosedLoop(users=3, shape=shapes.Shape(input_mean=10, input_stddev=0))
    sizes = closed.sizes(np.random.default_rng(0), 5)
    assert sizes.input_tokens.tolist() == [10] * 5


@pytest.mark.parametrize(
    ("schedule", "where"),
    [
        (rates.Scaled(inner=rates.Constant(rps=1), factor=1e12), "1e+12 req/s from t = 0 s"),  # --scale 1e12
        (rescale.Compressed(inner=rates.Constant(rps=1), factor=1e12), "1e+12 req/s from t = 0 s"),  # --speedup
        (rates.Scaled(inner=rates.Steps(starts=(0, 60), rates=(1, 80_000), last_s=60), factor=2),
         "1.6e+05 req/s from t = 60 s"),  # within bounds until the second step
    ],
)  # fmt: skip
def test_a_derived_rate_past_max_rps_is_refused_before_it_is_drawn(
    schedule: rates.RateSchedule, where: str
) -> None:
    """A rate multiplied past rates.MAX_RPS asked numpy for terabytes (a MemoryError) or never ended."""
    with pytest.raises(errors.RecipeError) as info:
        arrivals.collect(patterns.OpenLoop(schedule=schedule), seed=0, horizon_s=120)
    (p,) = info.value.problems
    assert p.path == "rate" and p.value == where and "at most 100000 req/s" in p.rule
