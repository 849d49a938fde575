"""Request shapes: how many tokens go in and come out of each request.

Like genai-perf's `--synthetic-input-tokens-mean/stddev` and llmperf's mean ± stddev: a normal
distribution rounded and clipped to [minimum, maximum]. Traces that carry their own lengths use
those instead; a shape can still override them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from swell.workload import arrivals

# llmperf's defaults: 550 ± 150 tokens in, 150 ± 80 out.
DEFAULT_INPUT_MEAN = 550
DEFAULT_INPUT_STDDEV = 150
DEFAULT_OUTPUT_MEAN = 150
DEFAULT_OUTPUT_STDDEV = 80


@dataclass(frozen=True, kw_only=True)
class Shape:
    """Normal input and output lengths (mean, stddev), rounded, clipped to [minimum, maximum]."""

    input_mean: float = DEFAULT_INPUT_MEAN
    input_stddev: float = DEFAULT_INPUT_STDDEV
    output_mean: float = DEFAULT_OUTPUT_MEAN
    output_stddev: float = DEFAULT_OUTPUT_STDDEV
    minimum: int = 1
    maximum: int = 32768

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {self.minimum}, {self.maximum}")
        for name in ("input_mean", "output_mean"):  # a mean above the maximum would be clipped to it unsaid
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
            if not getattr(self, name) <= self.maximum:
                raise ValueError(f"{name} must be at most {self.maximum} tokens, got {getattr(self, name)!r}")
        for name in ("input_stddev", "output_stddev"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number of tokens, got {getattr(self, name)!r}")

    def sample(self, rng: np.random.Generator, n: int) -> tuple[arrivals.IntArray, arrivals.IntArray]:
        """`n` input lengths and `n` output lengths."""
        return self._draw(rng, n, self.input_mean, self.input_stddev), self._draw(
            rng, n, self.output_mean, self.output_stddev
        )

    def _draw(self, rng: np.random.Generator, n: int, mean: float, stddev: float) -> arrivals.IntArray:
        values = np.full(n, mean) if stddev == 0 else rng.normal(mean, stddev, n)
        return np.clip(np.rint(values), self.minimum, self.maximum).astype(np.int64)

    @property
    def description(self) -> str:
        return (
            f"{self.input_mean:g}±{self.input_stddev:g} tokens in, "
            f"{self.output_mean:g}±{self.output_stddev:g} out"
        )


def attach(t: arrivals.FloatArray, shape: Shape, rng: np.random.Generator) -> arrivals.Arrivals:
    """Arrivals at times `t` with lengths drawn from `shape`."""
    inputs, outputs = shape.sample(rng, len(t))
    return arrivals.Arrivals(t=t, input_tokens=inputs, output_tokens=outputs)
