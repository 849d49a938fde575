"""Rate schedules: the expected request rate (req/s) as a function of time.

An open-loop pattern draws arrivals from a schedule (see patterns.OpenLoop). Each schedule is a
small frozen value with a vectorised `rate(t)`; `natural_duration_s` is how long it takes to play
out (None for schedules that go on for ever).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from swell.workload import arrivals

# The most requests per second a schedule may ask for: no inference service nor this load generator
# sees more, and a chunk of arrivals at this rate still fits in memory (1e12 would need terabytes).
MAX_RPS = 100_000.0


class RateSchedule(Protocol):
    """Expected arrivals per second at each time `t` (seconds from the start)."""

    def rate(self, t: arrivals.FloatArray) -> arrivals.FloatArray: ...

    @property
    def natural_duration_s(self) -> float | None: ...

    @property
    def description(self) -> str: ...


def _check(name: str, value: float, *, positive: bool = False) -> None:
    ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


def _check_rate(
    name: str, value: float, *, positive: bool = False, peak: tuple[str, float] | None = None
) -> None:
    """A rate in req/s: finite, >= 0 (> 0 if `positive`), and at most MAX_RPS; or, given `peak`
    (its formula, its value), the peak rate it leads to at most MAX_RPS."""
    _check(name, value, positive=positive)
    if peak is None and value > MAX_RPS:
        raise ValueError(f"{name} must be at most {MAX_RPS:g} req/s, got {value!r}")
    if peak is not None and peak[1] > MAX_RPS:
        raise ValueError(
            f"{name} must keep the peak rate, {peak[0]} = {peak[1]:g} req/s, at most {MAX_RPS:g} req/s, got {value!r}"
        )


@dataclass(frozen=True, kw_only=True)
class Constant:
    """The same rate for ever."""

    rps: float

    def __post_init__(self) -> None:
        _check_rate("rate", self.rps, positive=True)

    def rate(self, t: arrivals.FloatArray) -> arrivals.FloatArray:
        return np.full(np.shape(t), self.rps)

    @property
    def natural_duration_s(self) -> float | None:
        return None

    @property
    def description(self) -> str:
        return f"{self.rps:g} req/s"


@dataclass(frozen=True, kw_only=True)
class Steps:
    """Rate `rates[i]` from `starts[i]` until the next start; the last one holds for `last_s`."""

    starts: tuple[float, ...]
    rates: tuple[float, ...]
    last_s: float

    def __post_init__(self) -> None:
        if not self.rates or len(self.starts) != len(self.rates):
            raise ValueError("steps need as many start times as rates, at least one")
        if self.starts[0] != 0 or any(b <= a for a, b in zip(self.starts, self.starts[1:], strict=False)):
            raise ValueError(f"step start times must begin at 0 and increase, got {self.starts}")
        for r in self.rates:
            _check_rate("rate", r)
        _check("last step duration", self.last_s, positive=True)

    def rate(self, t: arrivals.FloatArray) -> arrivals.FloatArray:
        idx = np.searchsorted(np.asarray(self.starts), t, side="right") - 1
        return np.asarray(self.rates, dtype=np.float64)[np.clip(idx, 0, len(self.rates) - 1)]

    @property
    def natural_duration_s(self) -> float | None:
        return self.starts[-1] + self.last_s

    @property
    def description(self) -> str:
        return "steps " + " → ".join(f"{r:g}" for r in self.rates) + " req/s"


@dataclass(frozen=True, kw_only=True)
class Ramp:
    """`start_rps` for `delay_s`, a straight line to `end_rps` over `over_s`, then `end_rps` for `hold_s`."""

    start_rps: float
    end_rps: float
    over_s: float
    delay_s: float = 0.0
    hold_s: float = 60.0

    def __post_init__(self) -> None:
        _check_rate("from", self.start_rps)
        _check_rate("to", self.end_rps)
        _check("over", self.over_s, positive=True)
        _check("delay", self.delay_s)
        _check("hold", self.hold_s)

    def rate(self, t: arrivals.FloatArray) -> arrivals.FloatArray:
        frac = np.clip((np.asarray(t) - self.delay_s) / self.over_s, 0.0, 1.0)
        return self.start_rps + (self.end_rps - self.start_rps) * frac

    @property
    def natural_duration_s(self) -> float | None:
        return self.delay_s + self.over_s + self.hold_s

    @property
    def description(self) -> str:
        return f"ramp {self.start_rps:g} → {self.end_rps:g} req/s over {self.over_s:g} s"


@dataclass(frozen=True, kw_only=True)
class Diurnal:
    """A day-shaped cosine: `mean_rps`·(1 + amplitude·cos(2π(t − peak_s)/period_s))."""

    mean_rps: float
    amplitude: float = 0.8
    period_s: float = 86400.0
    peak_s: float = 0.5 * 86400.0

    def __post_init__(self) -> None:
        if not 0 <= self.amplitude <= 1:
            raise ValueError(f"amplitude must be within [0, 1], got {self.amplitude!r}")
        _check_rate(
            "mean",
            self.mean_rps,
            positive=True,
            peak=("mean x (1 + amplitude)", self.mean_rps * (1 + self.amplitude)),
        )
        _check("period", self.period_s, positive=True)
        _check("peak", self.peak_s)

    def rate(self, t: arrivals.FloatArray) -> arrivals.FloatArray:
        # the peak matters within a period only: a peak of 1e308 s would overflow the phase to nan
        phase = 2 * np.pi * (np.asarray(t) - self.peak_s % self.period_s) / self.period_s
        return self.mean_rps * (1 + self.amplitude * np.cos(phase))

    @property
    def natural_duration_s(self) -> float | None:
        return self.period_s

    @property
    def description(self) -> str:
        return f"diurnal {self.mean_rps:g} req/s ±{self.amplitude:.0%} every {self.period_s:g} s"


@dataclass(frozen=True, kw_only=True)
class BlackFriday:
    """Steady `base_rps`; at `start_s` a surge to `surge`× base within `ramp_s`, a plateau, then decay.

    The decay is exponential back to the base with time constant `decay_s`.
    """

    base_rps: float = 2.0
    surge: float = 10.0
    start_s: float = 120.0
    ramp_s: float = 120.0
    plateau_s: float = 300.0
    decay_s: float = 180.0

    def __post_init__(self) -> None:
        _check_rate("base", self.base_rps, positive=True)
        _check("surge", self.surge, positive=True)
        _check_rate("surge", self.surge, peak=("base x surge", self.base_rps * max(1.0, self.surge)))
        _check("start", self.start_s)
        _check("ramp", self.ramp_s, positive=True)
        _check("plateau", self.plateau_s)
        _check("decay", self.decay_s, positive=True)

    def rate(self, t: arrivals.FloatArray) -> arrivals.FloatArray:
        t = np.asarray(t, dtype=np.float64)
        peak = self.base_rps * self.surge
        rising = self.base_rps + (peak - self.base_rps) * np.clip((t - self.start_s) / self.ramp_s, 0, 1)
        decay_from = self.start_s + self.ramp_s + self.plateau_s
        since = np.maximum(t - decay_from, 0.0)
        decaying = self.base_rps + (peak - self.base_rps) * np.exp(-since / self.decay_s)
        return np.where(t < decay_from, rising, decaying)

    @property
    def natural_duration_s(self) -> float | None:
        # Three time constants bring the surge within 5% of the base again.
        return self.start_s + self.ramp_s + self.plateau_s + 3 * self.decay_s

    @property
    def description(self) -> str:
        return (
            f"black-friday {self.base_rps:g} req/s, ×{self.surge:g} at {self.start_s:g} s "
            f"(ramp {self.ramp_s:g} s, plateau {self.plateau_s:g} s, decay {self.decay_s:g} s)"
        )


@dataclass(frozen=True, kw_only=True)
class Scaled:
    """Another schedule's rate multiplied by `factor`."""

    inner: RateSchedule
    factor: float

    def rate(self, t: arrivals.FloatArray) -> arrivals.FloatArray:
        return self.inner.rate(t) * self.factor

    @property
    def natural_duration_s(self) -> float | None:
        return self.inner.natural_duration_s

    @property
    def description(self) -> str:
        return f"{self.inner.description} ×{self.factor:g}"
