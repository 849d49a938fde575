"""The dashboard's time series of one local deployment, sampled from the runtime in process.

Every sample: requests arriving (offered load) and answered per second, requests in the gateway,
TTFT and end-to-end p50/p95 over the last `window_s` (from the gateway's own histograms,
interpolated within buckets as PromQL's histogram_quantile does), replicas by state, each
signal's value and target. No requests in the window: the percentiles are None, never zero.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram

from swell.runtime import local

Buckets = tuple[tuple[float, float], ...]  # (upper bound, cumulative count)
MIN_SPAN_S = 1.0  # a rate over less than this is noise: no value yet


def buckets_of(hist: Histogram) -> Buckets:
    out = []
    for metric in hist.collect():
        for s in metric.samples:
            if s.name.endswith("_bucket"):
                out.append((float(s.labels["le"]), float(s.value)))
    return tuple(sorted(out))


def answered(counter: Counter) -> float:
    """Requests answered so far, whatever the code (the gateway's requests counter, summed)."""
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


def quantile(q: float, now: Buckets, before: Buckets | None) -> float | None:
    """The q-quantile of what was observed between two cumulative bucket snapshots."""
    prev = dict(before or ())
    diff = [(le, c - prev.get(le, 0.0)) for le, c in now]
    if not diff or diff[-1][1] <= 0:
        return None
    rank = q * diff[-1][1]
    lower_le, lower_c = 0.0, 0.0
    for le, c in diff:
        if c >= rank:
            if math.isinf(le):
                return lower_le  # beyond the last finite bound: its bound, as PromQL does
            if c == lower_c:
                return le
            return lower_le + (le - lower_le) * (rank - lower_c) / (c - lower_c)
        lower_le, lower_c = le, c
    return None


@dataclass(frozen=True, kw_only=True)
class _Mark:
    t: float
    arrived: int
    answered: float
    ttft: Buckets
    e2e: Buckets


class Sampler:
    def __init__(self, rt: local.LocalRuntime, window_s: float = 10.0) -> None:
        self.rt = rt
        self.window_s = window_s
        self.marks: deque[_Mark] = deque()

    def _since(self, now: float) -> _Mark | None:
        """The oldest mark inside the window (the reference for rates and percentiles)."""
        while len(self.marks) > 1 and self.marks[1].t <= now - self.window_s:
            self.marks.popleft()
        return self.marks[0] if self.marks else None

    def sample(self, now: float) -> dict[str, Any]:
        gw = self.rt.cluster.gateway
        st = gw.stats()
        mark = _Mark(
            t=now,
            arrived=gw.requests,  # counted as each request arrives
            answered=answered(gw.metrics.requests),
            ttft=buckets_of(gw.metrics.ttft),
            e2e=buckets_of(gw.metrics.duration),
        )
        ref = self._since(now)
        self.marks.append(mark)
        reps = self.rt.cluster.manager.replicas()
        last = self.rt.history.last()
        sigs: Sequence[Any] = self.rt.controller.recipe.autoscaling.signals
        values = {k: r.value for k, r in last.snapshot.signals.items()} if last else {}
        dt = now - ref.t if ref is not None else 0.0
        span = ref is not None and dt >= MIN_SPAN_S
        return {
            "t": now,
            "offered_rps": (mark.arrived - ref.arrived) / dt if ref is not None and span else None,
            "rps": (mark.answered - ref.answered) / dt if ref is not None and span else None,
            "in_gateway": st.in_flight + st.buffered,
            "ttft_p50": quantile(0.5, mark.ttft, ref.ttft if ref else None),
            "ttft_p95": quantile(0.95, mark.ttft, ref.ttft if ref else None),
            "e2e_p50": quantile(0.5, mark.e2e, ref.e2e if ref else None),
            "e2e_p95": quantile(0.95, mark.e2e, ref.e2e if ref else None),
            "target": self.rt.cluster.target,
            "ready": sum(1 for r in reps if r.state == "ready"),
            "starting": sum(1 for r in reps if r.state == "starting"),
            "pending": sum(1 for r in reps if r.state == "pending"),
            "signals": {s.name: values.get(s.name) for s in sigs},
            "targets": {s.name: s.target for s in sigs},
        }
