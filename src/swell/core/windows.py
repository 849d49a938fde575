"""Windows of scraped samples, told the time: record(now, value), then average / rate over a window.

Pure and deterministic (Knative's buckets, but keeping raw samples because windows here are short
and few). Counter resets are handled: a drop is a restart from zero. Partial windows are defined:
a rate needs two samples and covers the span between the baseline (the last sample at or before
the window start, else the first inside it) and the newest sample; an average uses the samples
inside the window. With too few samples the answer is None: "no value", never zero.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

Labels = frozenset[tuple[str, str]]


def labels_of(mapping: Mapping[str, str]) -> Labels:
    return frozenset(mapping.items())


class Series:
    """Samples of one time series, oldest first, pruned to `retention_s`."""

    __slots__ = ("_samples", "retention_s")

    def __init__(self, retention_s: float) -> None:
        self._samples: deque[tuple[float, float]] = deque()
        self.retention_s = retention_s

    def record(self, now: float, value: float) -> None:
        s = self._samples
        if s and now < s[-1][0]:
            raise ValueError(f"sample at t={now} is older than the newest one (t={s[-1][0]})")
        if s and now == s[-1][0]:
            s[-1] = (now, value)
        else:
            s.append((now, value))
        cutoff = now - self.retention_s
        # keep one sample before the cutoff as the baseline of the oldest window
        while len(s) > 2 and s[1][0] <= cutoff:
            s.popleft()

    def __len__(self) -> int:
        return len(self._samples)

    def newest(self) -> tuple[float, float] | None:
        return self._samples[-1] if self._samples else None

    def latest(self, now: float, max_age_s: float) -> float | None:
        last = self.newest()
        if last is None or now - last[0] > max_age_s:
            return None
        return last[1]

    def _in_window(self, now: float, window_s: float) -> list[tuple[float, float]]:
        start = now - window_s
        return [(t, v) for t, v in self._samples if start < t <= now]

    def average(self, now: float, window_s: float) -> float | None:
        """Mean of the samples inside (now - window, now]; None if there are none."""
        inside = [v for _, v in self._in_window(now, window_s) if not math.isnan(v)]
        return sum(inside) / len(inside) if inside else None

    def increase(self, now: float, window_s: float) -> tuple[float, float] | None:
        """(increase, covered seconds) of a counter over the window, resets handled; None if < 2 samples."""
        start = now - window_s
        base_idx = None
        pts = [(t, v) for t, v in self._samples if t <= now]
        for i, (t, _) in enumerate(pts):
            if t <= start:
                base_idx = i
            else:
                break
        if base_idx is None:
            base_idx = next((i for i, (t, _) in enumerate(pts) if t > start), None)
        if base_idx is None:
            return None
        used = pts[base_idx:]
        if len(used) < 2:
            return None
        inc = 0.0
        for (_, a), (_, b) in itertools.pairwise(used):
            inc += b - a if b >= a else b  # a drop means the counter restarted from zero
        return inc, used[-1][0] - used[0][0]

    def rate(self, now: float, window_s: float) -> float | None:
        got = self.increase(now, window_s)
        if got is None or got[1] <= 0:
            return None
        return got[0] / got[1]


@dataclass(frozen=True, kw_only=True)
class Sample:
    name: str
    labels: Labels
    value: float


class Store:
    """Series by metric name and label set. `wanted` limits what is kept (the simulator's speed)."""

    def __init__(self, retention_s: float = 900.0, wanted: Iterable[str] | None = None) -> None:
        self.retention_s = retention_s
        self.wanted = frozenset(wanted) if wanted is not None else None
        self._series: dict[str, dict[Labels, Series]] = {}

    def record(self, now: float, name: str, labels: Labels, value: float) -> None:
        if self.wanted is not None and name not in self.wanted:
            return
        by_labels = self._series.setdefault(name, {})
        series = by_labels.get(labels)
        if series is None:
            series = by_labels[labels] = Series(self.retention_s)
        series.record(now, value)

    def record_all(
        self, now: float, samples: Iterable[Sample], extra: Mapping[str, str] | None = None
    ) -> None:
        add = frozenset(extra.items()) if extra else frozenset()
        for s in samples:
            self.record(now, s.name, s.labels | add, s.value)

    def select(self, name: str, match: Mapping[str, str] | None = None) -> Iterator[tuple[Labels, Series]]:
        """Series of `name` whose labels include every `match` pair."""
        want = set((match or {}).items())
        for labels, series in self._series.get(name, {}).items():
            if want <= labels:
                yield labels, series

    def forget(self, label: str, value: str) -> None:
        """Drop every series carrying label=value (a replica that is gone)."""
        pair = (label, value)
        for by_labels in self._series.values():
            for labels in [lb for lb in by_labels if pair in lb]:
                del by_labels[labels]

    def names(self) -> list[str]:
        return sorted(self._series)
