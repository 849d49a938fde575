"""Open- and closed-loop load patterns.

OpenLoop draws arrivals from a rate schedule as a renewal process in operational time Λ(t): gamma
gaps of mean 1 and shape `burstiness`, mapped back through Λ⁻¹ (for a constant rate, exactly
`vllm bench serve --request-rate R --burstiness B`). ClosedLoop is N users waiting on each answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from swell import errors
from swell.workload import arrivals, rates, shapes

CHUNK_S = 60.0  # arrivals are produced a minute at a time
GRID_S = 0.05  # resolution of the cumulative-rate grid within a chunk
# Below this gamma shape the draws underflow to zero gaps: the rate comes out wrong (1e-4: +60 %)
# and at 1e-9 drawing never ends. 0.001 is a coefficient of variation of about 32.
MIN_BURSTINESS = 0.001
MAX_USERS = 100_000  # a closed loop's users, each a task sending its own requests


@dataclass(frozen=True, kw_only=True)
class OpenLoop:
    """Arrivals from `schedule` with gamma(burstiness) gaps, sized by `shape`."""

    schedule: rates.RateSchedule
    burstiness: float = 1.0
    shape: shapes.Shape = field(default_factory=shapes.Shape)

    def __post_init__(self) -> None:
        if not self.burstiness >= MIN_BURSTINESS:
            raise ValueError(
                f"burstiness must be >= {MIN_BURSTINESS:g} (1 = Poisson, smaller is burstier) or inf, got {self.burstiness!r}"
            )

    @property
    def description(self) -> str:
        kind = (
            "Poisson"
            if self.burstiness == 1
            else (
                "evenly spaced" if math.isinf(self.burstiness) else f"gamma(burstiness={self.burstiness:g})"
            )
        )
        return f"{kind}, {self.schedule.description}; {self.shape.description}"

    @property
    def natural_duration_s(self) -> float | None:
        return self.schedule.natural_duration_s

    def _gaps(self, rng: np.random.Generator, n: int) -> arrivals.FloatArray:
        if math.isinf(self.burstiness):
            return np.ones(n)
        return rng.gamma(self.burstiness, 1.0 / self.burstiness, n)

    def times(self, rng: np.random.Generator, horizon_s: float) -> Iterator[arrivals.FloatArray]:
        """Arrival times only, a chunk at a time."""
        start, cum_start = 0.0, 0.0
        pending: arrivals.FloatArray = np.zeros(0)  # operational times drawn but not yet placed
        last_u = 0.0
        while start < horizon_s:
            end = min(start + CHUNK_S, horizon_s)
            steps = max(1, math.ceil((end - start) / GRID_S))
            grid = np.linspace(start, end, steps + 1)
            mids = 0.5 * (grid[1:] + grid[:-1])
            cum = cum_start + np.concatenate(([0.0], np.cumsum(self.schedule.rate(mids) * np.diff(grid))))
            cum_end = float(cum[-1])
            _check_chunk(cum_end - cum_start, start, end)
            # Draw gaps until the operational clock passes the end of this chunk.
            while len(pending) == 0 or pending[-1] < cum_end:
                need = int((cum_end - (pending[-1] if len(pending) else last_u)) * 1.2) + 16
                base = pending[-1] if len(pending) else last_u
                pending = np.concatenate((pending, base + np.cumsum(self._gaps(rng, need))))
            cut = int(np.searchsorted(pending, cum_end, side="left"))
            here, pending = pending[:cut], pending[cut:]
            if len(here):
                last_u = float(here[-1])
                yield _invert(here, grid, cum)
            start, cum_start = end, cum_end

    def batches(self, rng: np.random.Generator, horizon_s: float) -> Iterator[arrivals.Arrivals]:
        for t in self.times(rng, horizon_s):
            yield shapes.attach(t, self.shape, rng)


def _check_chunk(expected: float, start: float, end: float) -> None:
    """Refuse, before drawing them, a chunk's arrivals when the schedule asks for more than
    rates.MAX_RPS on average (a rate multiplied by --scale or compressed by --speedup)."""
    rate = expected / max(end - start, 1e-9)
    if not rate <= rates.MAX_RPS:
        raise errors.RecipeError(
            "workload",
            [errors.Problem(path="rate", value=f"{rate:.3g} req/s from t = {start:g} s",
                            rule=f"at most {rates.MAX_RPS:g} req/s: lower the rate, --scale or --speedup")],
        )  # fmt: skip


def _invert(
    u: arrivals.FloatArray, grid: arrivals.FloatArray, cum: arrivals.FloatArray
) -> arrivals.FloatArray:
    """Times t with Λ(t) = u, Λ piecewise linear on `grid` (flat where the rate is zero)."""
    idx = np.clip(np.searchsorted(cum, u, side="left"), 1, len(cum) - 1)
    lo, hi = cum[idx - 1], cum[idx]
    width = np.where(hi > lo, hi - lo, 1.0)
    frac = np.clip((u - lo) / width, 0.0, 1.0)
    return np.asarray(grid[idx - 1] + frac * (grid[idx] - grid[idx - 1]), dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class ClosedLoop:
    """`users` concurrent users; each sends, waits for the answer, thinks `think_s`, sends again."""

    users: int
    think_s: float = 0.0
    shape: shapes.Shape = field(default_factory=shapes.Shape)

    def __post_init__(self) -> None:
        if not 1 <= self.users <= MAX_USERS:
            raise ValueError(f"users must be within [1, {MAX_USERS}], got {self.users!r}")
        if not self.think_s >= 0:
            raise ValueError(f"think time must be >= 0, got {self.think_s!r}")

    @property
    def description(self) -> str:
        think = f", think {self.think_s:g} s" if self.think_s else ""
        return f"closed loop, {self.users} users{think}; {self.shape.description}"

    @property
    def natural_duration_s(self) -> float | None:
        return None

    def sizes(self, rng: np.random.Generator, n: int) -> arrivals.Arrivals:
        """`n` request sizes (t is 0: a closed loop decides when by itself)."""
        return shapes.attach(np.zeros(n), self.shape, rng)
