"""Arrivals: what every workload produces, and the small protocol they share.

A workload is pure and seeded: given a numpy Generator and a horizon it yields batches of
arrivals (`t` seconds from the start, input and output token counts), in time order. The load
generator sends them; the simulator turns them into events. Columnar batches keep both fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, kw_only=True)
class Arrival:
    """One request: when it arrives (seconds from the start) and its size in tokens."""

    t: float
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, kw_only=True, eq=False)
class Arrivals:
    """A time-ordered batch of arrivals as three equal-length arrays."""

    t: FloatArray
    input_tokens: IntArray
    output_tokens: IntArray

    def __post_init__(self) -> None:
        if not len(self.t) == len(self.input_tokens) == len(self.output_tokens):
            raise ValueError("t, input_tokens and output_tokens must have the same length")

    def __len__(self) -> int:
        return len(self.t)

    def __iter__(self) -> Iterator[Arrival]:
        for t, i, o in zip(
            self.t.tolist(), self.input_tokens.tolist(), self.output_tokens.tolist(), strict=True
        ):
            yield Arrival(t=t, input_tokens=i, output_tokens=o)

    def __getitem__(self, index: slice | npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Arrivals:
        return Arrivals(
            t=self.t[index], input_tokens=self.input_tokens[index], output_tokens=self.output_tokens[index]
        )

    @property
    def span_s(self) -> float:
        """Time from the first to the last arrival (0 for fewer than two)."""
        return float(self.t[-1] - self.t[0]) if len(self.t) > 1 else 0.0


def empty() -> Arrivals:
    return Arrivals(t=np.zeros(0), input_tokens=np.zeros(0, np.int64), output_tokens=np.zeros(0, np.int64))


def concat(parts: list[Arrivals]) -> Arrivals:
    if not parts:
        return empty()
    return Arrivals(
        t=np.concatenate([p.t for p in parts]),
        input_tokens=np.concatenate([p.input_tokens for p in parts]),
        output_tokens=np.concatenate([p.output_tokens for p in parts]),
    )


class Workload(Protocol):
    """An open-loop workload: arrivals at times fixed in advance, whatever the server does."""

    @property
    def description(self) -> str:
        """One line a person can read, e.g. 'Poisson 5 req/s'."""
        ...

    @property
    def natural_duration_s(self) -> float | None:
        """How long the workload lasts by itself (a trace's span), or None if it never ends."""
        ...

    def batches(self, rng: np.random.Generator, horizon_s: float) -> Iterator[Arrivals]:
        """Arrivals with 0 <= t < horizon_s, in order, in batches (never all at once in memory)."""
        ...


def generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from a seed (or the Generator itself), so callers may pass either."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def collect(workload: Workload, *, seed: int | np.random.Generator | None = 0, horizon_s: float) -> Arrivals:
    """All arrivals of `workload` before `horizon_s` in one batch."""
    return concat(list(workload.batches(generator(seed), horizon_s)))


def iterate(
    workload: Workload, *, seed: int | np.random.Generator | None = 0, horizon_s: float
) -> Iterator[Arrival]:
    """The arrivals one by one (lazily, batch after batch)."""
    for batch in workload.batches(generator(seed), horizon_s):
        yield from batch
