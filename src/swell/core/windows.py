"""Windows of scraped samples, told the time: record(now, value), then average / rate over a window.

Pure and deterministic (Knative's buckets, but keeping raw samples because windows here are short
and few). Counter resets are handled: a drop is a restart from zero. Partial windows are defined:
a rate needs two samples and covers the span between the baseline (the last sample at or before
the window start, else the first inside it) and the newest sample; an average uses the samples
inside the window. With too few samples the answer is None: "no value", never zero. A sum of
rates over several series is `core.signals`' (a series younger than the window counts its increase
over the window there, not its own rate).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

Labels = frozenset[tuple[str, str]]


def labels_of(mapping: Mapping[str, str]) -> Labels:
    return frozenset(mapping.items())


class Series:
    """Samples of one time series, oldest first, pruned to `retention_s`.

    Alongside the samples it keeps running sums (of values, of counter increases with resets
    handled), so an average or a rate over any window costs two binary searches, not a copy."""

    __slots__ = ("_acc", "_cnt", "_head", "_sum", "_t", "_v", "retention_s")

    def __init__(self, retention_s: float) -> None:
        self.retention_s = retention_s
        self._t: list[float] = []
        self._v: list[float] = []
        self._acc: list[float] = []  # counter increase up to each sample (a drop is a restart from 0)
        self._sum: list[float] = []  # sum of non-NaN values up to and including each sample
        self._cnt: list[int] = []  # number of non-NaN values up to and including each sample
        self._head = 0  # first live sample; older ones wait for compaction

    def record(self, now: float, value: float) -> None:
        t, v, head = self._t, self._v, self._head
        if len(t) > head:
            last = t[-1]
            if now < last:
                raise ValueError(f"sample at t={now} is older than the newest one (t={last})")
            if now == last:
                self._drop_last()
        nan = value != value  # NaN is the only value unequal to itself (cheaper than math.isnan here)
        acc, sums, cnt = self._acc, self._sum, self._cnt
        if len(t) > head:
            prev = v[-1]
            inc = 0.0 if nan or prev != prev else (value - prev if value >= prev else value)
            acc.append(acc[-1] + inc)
            sums.append(sums[-1] if nan else sums[-1] + value)
            cnt.append(cnt[-1] if nan else cnt[-1] + 1)
        else:
            acc.append(0.0)
            sums.append(0.0 if nan else value)
            cnt.append(0 if nan else 1)
        t.append(now)
        v.append(value)
        cutoff = now - self.retention_s
        # keep one sample before the cutoff as the baseline of the oldest window
        if len(t) - head > 2 and t[head + 1] <= cutoff:
            head += 1
            while len(t) - head > 2 and t[head + 1] <= cutoff:
                head += 1
            self._head = head
            if head > 256 and head * 2 > len(t):
                self._compact()

    def _drop_last(self) -> None:
        for arr in (self._t, self._v, self._acc, self._sum, self._cnt):
            arr.pop()

    def _compact(self) -> None:
        h = self._head
        base_acc, base_sum, base_cnt = self._acc[h], self._sum[h - 1], self._cnt[h - 1]
        self._t, self._v = self._t[h:], self._v[h:]
        self._acc = [a - base_acc for a in self._acc[h:]]
        self._sum = [x - base_sum for x in self._sum[h:]]
        self._cnt = [c - base_cnt for c in self._cnt[h:]]
        self._head = 0

    def __len__(self) -> int:
        return len(self._t) - self._head

    def newest(self) -> tuple[float, float] | None:
        return (self._t[-1], self._v[-1]) if len(self._t) > self._head else None

    def latest(self, now: float, max_age_s: float) -> float | None:
        last = self.newest()
        if last is None or now - last[0] > max_age_s:
            return None
        return last[1]

    def _end(self, now: float) -> int:
        """Index one past the newest sample at or before `now`."""
        return bisect.bisect_right(self._t, now, self._head)

    def average(self, now: float, window_s: float) -> float | None:
        """Mean of the samples inside (now - window, now]; None if there are none."""
        end = self._end(now)
        first = bisect.bisect_right(self._t, now - window_s, self._head, end)
        if first >= end:
            return None
        total, count = self._sum[end - 1], self._cnt[end - 1]
        if first > 0:
            total, count = total - self._sum[first - 1], count - self._cnt[first - 1]
        return total / count if count else None

    def increase(self, now: float, window_s: float) -> tuple[float, float] | None:
        """(increase, covered seconds) of a counter over the window, resets handled; None if < 2 samples."""
        end = self._end(now)
        if end - self._head < 2:
            return None
        # baseline: the last sample at or before the window start, else the first inside it
        base = max(self._head, bisect.bisect_right(self._t, now - window_s, self._head, end) - 1)
        if end - base < 2:
            return None
        return self._acc[end - 1] - self._acc[base], self._t[end - 1] - self._t[base]

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
        self.since: float | None = None  # when the first sample came (how long the store has watched)

    def watched(self, now: float, window_s: float) -> float:
        """Seconds of the window the store has been recording for: a counter first seen later was
        not there before (a labelled child is created at its first event, e.g. the first 200)."""
        return 0.0 if self.since is None else max(0.0, min(window_s, now - self.since))

    def record(self, now: float, name: str, labels: Labels, value: float) -> None:
        if self.since is None:
            self.since = now
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
