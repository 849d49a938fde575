"""Signals evaluated two ways: from in-memory windows of scraped samples, or rendered as PromQL.

One declaration in the recipe (`recipe.Signal`) gives the same number embedded and on a
Prometheus server. A window with no samples is "no value", never zero; a ratio whose denominator
saw no events (an idle service) is a measured 0 in both evaluators (PromQL: `... or D == 0`).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from swell import errors, recipe
from swell.core import load, snapshot, windows

REPLICA_LABEL = "replica"
CPU_SECONDS = "process_cpu_seconds_total"
RESIDENT_BYTES = "process_resident_memory_bytes"
GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
PANIC_SUFFIX = ":panic"


# ---------------------------------------------------------------------------------------------
# which signals a recipe needs read each tick


def required(auto: recipe.Autoscaling, slo: recipe.SLO | None = None) -> tuple[recipe.Signal, ...]:
    """The recipe's signals plus, for a panic section, its signal over the panic window, and for
    the planner its offered-load reads (the e2e quantile at the `slo`'s percentile)."""
    out = list(auto.signals)
    if auto.panic is not None:
        base = next(s for s in auto.signals if s.name == auto.panic.signal)
        out.append(
            base.model_copy(update={"name": base.name + PANIC_SUFFIX, "window_s": auto.panic.panic_window_s})
        )
    if auto.policy in load.POLICIES:  # the planner's offered-load reads
        out.extend(load.signals(99.0 if slo is None else slo.percentile))
    return tuple(out)


def retention_s(auto: recipe.Autoscaling, sigs: Iterable[recipe.Signal]) -> float:
    """How long windows of samples must be kept: the longest signal window, plus a margin of
    three scrape or polling intervals (at least 30 s) for the baseline sample before it."""
    longest = max([s.window_s for s in sigs] or [60.0])
    return longest + max(30.0, 3 * max(auto.metrics.scrape_interval_s, auto.polling_interval_s))


def metric_names(signals: Iterable[recipe.Signal]) -> set[str]:
    """Metric families the embedded evaluator reads for these signals (what a store must keep)."""
    out: set[str] = set()
    for s in signals:
        out |= KINDS[s.kind].families(s)
    return out


# ---------------------------------------------------------------------------------------------
# embedded evaluation


def _replica(labels: windows.Labels) -> str:
    return dict(labels).get(REPLICA_LABEL, "")


def _aggregate(values: list[float], how: recipe.Aggregate) -> float:
    if how == "sum":
        return sum(values)
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    return sum(values) / len(values)


def _sum_rates(
    store: windows.Store, name: str, match: Mapping[str, str], now: float, window: float
) -> float | None:
    return _summed_rate(store, (s for _, s in store.select(name, match)), now, window)


def _summed_rate(
    store: windows.Store, series: Iterable[windows.Series], now: float, window: float
) -> float | None:
    """The rate of the sum of counters: their increases over the window, over the longest span any
    of them covers or the store has watched (the window, once the store is that old). A series
    younger than that (a replica just ready, a labelled child created at its first event) adds its
    increase, not its own rate: read over its few seconds, a replica that admits a queue at once
    read as thousands of prompt tokens a second (the planner's 5-minute mix went 1,119 -> 1,747
    tokens in one tick on the Azure conversation trace); the gateway's `code="200"` child, created
    at the first answer, was read over its own half second, at the full rate of a load the window
    had seen for seconds. Prometheus' sum(rate()) reads them so too (its extrapolation stops at a
    series' start)."""
    got = [g for s in series if (g := s.increase(now, window)) is not None]
    span = max(max((c for _, c in got), default=0.0), store.watched(now, window))
    return sum(i for i, _ in got) / span if got and span > 0 else None


def _idle_ratio(num: float | None, den: float | None, what: str) -> snapshot.Reading:
    if num is None or den is None:
        return snapshot.Reading.missing(f"fewer than two samples of {what} in the window")
    if den == 0:
        return snapshot.Reading(value=0.0, error="")  # no events in the window: a measured idle
    return snapshot.Reading.of(num / den)


def _bucket_rates(store: windows.Store, sig: recipe.Signal, now: float) -> dict[float, float]:
    by_le: dict[float, list[windows.Series]] = defaultdict(list)
    for labels, series in store.select(f"{sig.metric}_bucket", sig.labels):
        le = dict(labels).get("le")
        if le is not None:
            by_le[float(le)].append(series)
    return {le: r for le, group in by_le.items() if (r := _summed_rate(store, group, now, sig.window_s)) is not None}


def quantile_from_buckets(q: float, by_le: Mapping[float, float]) -> float | None:
    """Prometheus histogram_quantile over cumulative bucket counts (linear within a bucket)."""
    bounds = sorted(by_le)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = by_le[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for b in bounds:
        count = by_le[b]
        if count >= rank:
            if math.isinf(b):
                return prev_bound if len(bounds) > 1 else None
            if count == prev_count:
                return b
            return prev_bound + (b - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = b, count
    return None


def _gauge_series(
    store: windows.Store, name: str, match: Mapping[str, str], now: float, window: float
) -> list[tuple[str, float]]:
    """(replica, window average) of every series of a gauge, as PromQL's avg_over_time sees them."""
    out = []
    for labels, series in store.select(name, match):
        v = series.average(now, window)
        if v is not None:
            out.append((_replica(labels) or str(sorted(labels)), v))
    return out


def _by_replica(values: list[tuple[str, float]], how: recipe.Aggregate) -> dict[str, float]:
    """Per-replica values (for the HPA's Pods rules): a replica's series combined with `how`."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for replica, v in values:
        grouped[replica].append(v)
    return {k: _aggregate(v, how) for k, v in grouped.items()}


def evaluate(
    sig: recipe.Signal, store: windows.Store, now: float, resources: recipe.Resources
) -> snapshot.Reading:
    """The signal's value from the store's windows at `now`, or no value and why."""
    return KINDS[sig.kind].evaluate(sig, store, now, resources)


def _eval_promql(
    sig: recipe.Signal, store: windows.Store, now: float, resources: recipe.Resources
) -> snapshot.Reading:
    raise errors.SignalError(
        f"signal {sig.name!r} is a raw PromQL query: only a Prometheus server can evaluate it"
    )


def _eval_gauge_like(
    sig: recipe.Signal, store: windows.Store, now: float, resources: recipe.Resources
) -> snapshot.Reading:
    """A gauge, or GPU / memory utilization (gauges of their own families, averaged)."""
    w = sig.window_s
    name = sig.metric if sig.kind == "gauge" else (GPU_UTIL if sig.resource == "gpu" else RESIDENT_BYTES)
    assert name is not None
    found = _gauge_series(store, name, sig.labels, now, w)
    if not found:
        return snapshot.Reading.missing(f"no samples of {name} in the last {w:g} s")
    if sig.kind == "utilization" and sig.resource == "memory":
        found = [(k, 100.0 * v / (resources.memory_gib * 2**30)) for k, v in found]
    how: recipe.Aggregate = sig.aggregate if sig.kind == "gauge" else "avg"
    # across series, as PromQL aggregates; per replica, a gauge's series add up (one per
    # model or engine) while a utilization's average (one per GPU)
    per = _by_replica(found, "sum" if sig.kind == "gauge" else "avg")
    return snapshot.Reading(value=_aggregate([v for _, v in found], how), per_replica=per)


def _eval_utilization(
    sig: recipe.Signal, store: windows.Store, now: float, resources: recipe.Resources
) -> snapshot.Reading:
    if sig.resource in ("gpu", "memory"):
        return _eval_gauge_like(sig, store, now, resources)
    w = sig.window_s
    busy: dict[str, float] = defaultdict(float)  # cpu: a replica's processes add up
    for labels, series in store.select(CPU_SECONDS, sig.labels):
        r = series.rate(now, w)
        if r is not None:
            busy[_replica(labels)] += 100.0 * r / resources.cpu
    if not busy:
        return snapshot.Reading.missing(f"fewer than two samples of {CPU_SECONDS} in the last {w:g} s")
    return snapshot.Reading(value=_aggregate(list(busy.values()), "avg"), per_replica=dict(busy))


def _eval_rate(
    sig: recipe.Signal, store: windows.Store, now: float, resources: recipe.Resources
) -> snapshot.Reading:
    assert sig.metric is not None
    total = _sum_rates(store, sig.metric, sig.labels, now, sig.window_s)
    return snapshot.Reading.of(
        total, f"fewer than two samples of {sig.metric} in the last {sig.window_s:g} s"
    )


def _eval_ratio(
    sig: recipe.Signal, store: windows.Store, now: float, resources: recipe.Resources
) -> snapshot.Reading:
    assert sig.numerator is not None and sig.denominator is not None
    num = _sum_rates(store, sig.numerator, sig.labels, now, sig.window_s)
    den = _sum_rates(store, sig.denominator, sig.labels, now, sig.window_s)
    return _idle_ratio(num, den, f"{sig.numerator} / {sig.denominator}")


def _eval_fraction(
    sig: recipe.Signal, store: windows.Store, now: float, resources: recipe.Resources
) -> snapshot.Reading:
    assert sig.le is not None
    by_le = _bucket_rates(store, sig, now)
    below = next((r for le, r in by_le.items() if math.isclose(le, sig.le)), None)
    total = by_le.get(math.inf)
    reading = _idle_ratio(below, total, f"{sig.metric}_bucket")
    return reading if not reading.ok or total == 0 else snapshot.Reading.of(1.0 - (reading.value or 0.0))


def _eval_quantile(
    sig: recipe.Signal, store: windows.Store, now: float, resources: recipe.Resources
) -> snapshot.Reading:
    assert sig.quantile is not None
    by_le = _bucket_rates(store, sig, now)
    if not by_le:
        return snapshot.Reading.missing(
            f"fewer than two samples of {sig.metric}_bucket in the last {sig.window_s:g} s"
        )
    if by_le.get(math.inf, 0.0) == 0:
        return snapshot.Reading(value=0.0)  # idle: no observations in the window
    return snapshot.Reading.of(
        quantile_from_buckets(sig.quantile, by_le), "quantile not defined by the buckets"
    )


def evaluate_all(
    sigs: Iterable[recipe.Signal], store: windows.Store, now: float, resources: recipe.Resources
) -> dict[str, snapshot.Reading]:
    return {s.name: evaluate(s, store, now, resources) for s in sigs}


# ---------------------------------------------------------------------------------------------
# windows that reach back into a metrics outage


class Gaps:
    """When each source of samples (a scrape target, a Prometheus query) last had no data.

    After an outage a window is not full again until it no longer reaches back into the gap: a
    rate over it averages over the outage (or, in Prometheus, over the few samples since), so its
    value may be far too low. Such a reading is partial: good for scaling up, never down."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def gap(self, source: str, now: float) -> None:
        """`source` had no data at `now`."""
        self._last[source] = now

    def forget(self, source: str) -> None:
        self._last.pop(source, None)

    def reaching(self, window_s: float, now: float) -> list[str]:
        """Sources whose last gap lies inside the window (now - window_s, now)."""
        return sorted(k for k, t in self._last.items() if now - t < window_s)

    def mark(
        self, readings: Mapping[str, snapshot.Reading], sigs: Iterable[recipe.Signal], now: float
    ) -> dict[str, snapshot.Reading]:
        """The readings, those whose window reaches into a gap marked partial with why."""
        out = dict(readings)
        for sig in sigs:
            r = out.get(sig.name)
            hit = self.reaching(sig.window_s, now)
            if r is None or not r.ok or r.partial or not hit:
                continue
            why = f"the {sig.window_s:g} s window is not full again after a metrics outage ({', '.join(hit)})"
            out[sig.name] = snapshot.Reading(
                value=r.value, error=why, per_replica=r.per_replica, partial=True
            )
        return out


# ---------------------------------------------------------------------------------------------
# PromQL rendering


def duration(seconds: float) -> str:
    s = round(seconds)
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def _selector(labels: Mapping[str, str], extra: Mapping[str, str] | None = None, **more: str) -> str:
    merged = {**labels, **(extra or {}), **more}
    if not merged:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(merged.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    """A PromQL string literal's content: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _le(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


def render(
    sig: recipe.Signal,
    extra: Mapping[str, str] | None = None,
    *,
    idle_as_zero: bool = False,
    resources: recipe.Resources | None = None,
) -> str:
    """PromQL for a signal. `extra` adds label matchers (namespace, service). With idle_as_zero a
    ratio over a window without events is 0 rather than NaN, as the embedded evaluator reads it."""
    return KINDS[sig.kind].promql(sig, extra, idle_as_zero, resources or recipe.Resources())


def _idle(expr: str, total: str, idle_as_zero: bool) -> str:
    """`expr`, or 0 where the window saw no events (`total == 0`) when idle reads as zero."""
    return f"({expr} > -Inf) or ({total} == 0)" if idle_as_zero else expr


def _bucket_total(sig: recipe.Signal, extra: Mapping[str, str] | None) -> str:
    return (
        f"sum(rate({sig.metric}_bucket{_selector(sig.labels, extra, le='+Inf')}[{duration(sig.window_s)}]))"
    )


def _promql_raw(
    sig: recipe.Signal, extra: Mapping[str, str] | None, idle: bool, res: recipe.Resources
) -> str:
    assert sig.query is not None
    return sig.query


def _promql_gauge(
    sig: recipe.Signal, extra: Mapping[str, str] | None, idle: bool, res: recipe.Resources
) -> str:
    return f"{sig.aggregate}(avg_over_time({sig.metric}{_selector(sig.labels, extra)}[{duration(sig.window_s)}]))"


def _promql_rate(
    sig: recipe.Signal, extra: Mapping[str, str] | None, idle: bool, res: recipe.Resources
) -> str:
    return f"sum(rate({sig.metric}{_selector(sig.labels, extra)}[{duration(sig.window_s)}]))"


def _promql_utilization(
    sig: recipe.Signal, extra: Mapping[str, str] | None, idle: bool, res: recipe.Resources
) -> str:
    sel, w = _selector(sig.labels, extra), duration(sig.window_s)
    if sig.resource == "gpu":
        return f"avg(avg_over_time({GPU_UTIL}{sel}[{w}]))"
    if sig.resource == "cpu":
        return f"100 * avg(rate({CPU_SECONDS}{sel}[{w}])) / {res.cpu:g}"
    return f"100 * avg(avg_over_time({RESIDENT_BYTES}{sel}[{w}])) / {res.memory_gib * 2**30:.0f}"


def _promql_ratio(
    sig: recipe.Signal, extra: Mapping[str, str] | None, idle: bool, res: recipe.Resources
) -> str:
    sel, w = _selector(sig.labels, extra), duration(sig.window_s)
    den = f"sum(rate({sig.denominator}{sel}[{w}]))"
    return _idle(f"sum(rate({sig.numerator}{sel}[{w}])) / {den}", den, idle)


def _promql_fraction(
    sig: recipe.Signal, extra: Mapping[str, str] | None, idle: bool, res: recipe.Resources
) -> str:
    assert sig.le is not None
    w = duration(sig.window_s)
    below = f"sum(rate({sig.metric}_bucket{_selector(sig.labels, extra, le=_le(sig.le))}[{w}]))"
    total = _bucket_total(sig, extra)
    return _idle(f"1 - {below} / {total}", total, idle)


def _promql_quantile(
    sig: recipe.Signal, extra: Mapping[str, str] | None, idle: bool, res: recipe.Resources
) -> str:
    sel, w = _selector(sig.labels, extra), duration(sig.window_s)
    expr = f"histogram_quantile({sig.quantile:g}, sum by (le) (rate({sig.metric}_bucket{sel}[{w}])))"
    return _idle(expr, _bucket_total(sig, extra), idle)


# ---------------------------------------------------------------------------------------------
# the table: one entry per signal kind (recipe.SignalKind); adding a kind is one entry here


@dataclass(frozen=True, kw_only=True)
class Kind:
    """One signal kind: the metric families its embedded evaluation reads, how it is evaluated
    from windows of samples, and the PromQL a Prometheus server evaluates for it."""

    families: Callable[[recipe.Signal], set[str]]
    evaluate: Callable[[recipe.Signal, windows.Store, float, recipe.Resources], snapshot.Reading]
    promql: Callable[[recipe.Signal, Mapping[str, str] | None, bool, recipe.Resources], str]
    # the metric name a series lookup finds the signal's series by (prometheus-adapter's discovery)
    base: Callable[[recipe.Signal], str | None] = lambda s: s.metric


def base_metric(sig: recipe.Signal) -> str | None:
    """The metric name the signal's series are found by; None when there is none to name."""
    return KINDS[sig.kind].base(sig)


def _first_metric_in(query: str | None) -> str | None:
    found = re.search(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[\[{]", query or "")
    return found.group(1) if found else None


def _metric(sig: recipe.Signal) -> set[str]:
    return {sig.metric} if sig.metric else set()


def _buckets(sig: recipe.Signal) -> set[str]:
    return {sig.metric + "_bucket"} if sig.metric else set()


UTILIZATION_FAMILY = {"gpu": GPU_UTIL, "cpu": CPU_SECONDS, "memory": RESIDENT_BYTES}

KINDS: dict[str, Kind] = {
    "gauge": Kind(families=_metric, evaluate=_eval_gauge_like, promql=_promql_gauge),
    "rate": Kind(families=_metric, evaluate=_eval_rate, promql=_promql_rate),
    "ratio": Kind(
        families=lambda s: {s.numerator, s.denominator} if s.numerator and s.denominator else set(),
        evaluate=_eval_ratio,
        promql=_promql_ratio,
        base=lambda s: s.numerator,
    ),
    "histogram_fraction": Kind(families=_buckets, evaluate=_eval_fraction, promql=_promql_fraction),
    "histogram_quantile": Kind(families=_buckets, evaluate=_eval_quantile, promql=_promql_quantile),
    "utilization": Kind(
        families=lambda s: {UTILIZATION_FAMILY[s.resource or "gpu"]},
        evaluate=_eval_utilization,
        promql=_promql_utilization,
        base=lambda s: UTILIZATION_FAMILY[s.resource or "gpu"],
    ),
    "promql": Kind(
        families=lambda s: set(),
        evaluate=_eval_promql,
        promql=_promql_raw,
        base=lambda s: _first_metric_in(s.query),
    ),
}
