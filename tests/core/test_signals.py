"""Signals: PromQL strings pinned, and the embedded evaluator agreeing with what they mean."""

from __future__ import annotations

import math
import typing

import pytest

from swell import errors, recipe
from swell.core import signals, windows

RES = recipe.Resources(cpu=2, memory_gib=1)


def sig(**kw: object) -> recipe.Signal:
    return recipe.Signal.model_validate({"name": "s", "target": 1, **kw})


CORRINO = sig(
    kind="histogram_fraction", metric="vllm:e2e_request_latency_seconds", le=5.0, window_s=300, target=0.5
)


@pytest.mark.parametrize(
    ("signal", "promql"),
    [
        (
            CORRINO,
            '1 - sum(rate(vllm:e2e_request_latency_seconds_bucket{le="5.0"}[5m])) / '
            'sum(rate(vllm:e2e_request_latency_seconds_bucket{le="+Inf"}[5m]))',
        ),
        (
            sig(
                kind="ratio",
                numerator="vllm:e2e_request_latency_seconds_sum",
                denominator="vllm:e2e_request_latency_seconds_count",
                window_s=60,
            ),
            "sum(rate(vllm:e2e_request_latency_seconds_sum[1m])) / sum(rate(vllm:e2e_request_latency_seconds_count[1m]))",
        ),
        (
            sig(
                kind="gauge",
                metric="vllm:num_requests_waiting",
                aggregate="sum",
                window_s=30,
                labels={"model_name": "m"},
            ),
            'sum(avg_over_time(vllm:num_requests_waiting{model_name="m"}[30s]))',
        ),
        (
            sig(kind="rate", metric="vllm:request_success_total", window_s=90),
            "sum(rate(vllm:request_success_total[90s]))",
        ),
        (
            sig(
                kind="histogram_quantile",
                metric="vllm:time_to_first_token_seconds",
                quantile=0.95,
                window_s=120,
            ),
            "histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[2m])))",
        ),
        (
            sig(kind="utilization", resource="gpu", window_s=60, target=20, target_type="Utilization"),
            "avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL[1m]))",
        ),
        (
            sig(kind="utilization", resource="cpu", window_s=60, target=70),
            "100 * avg(rate(process_cpu_seconds_total[1m])) / 1",
        ),
    ],
    ids=[
        "corrino default",
        "average latency",
        "gauge sum",
        "counter rate",
        "ttft p95",
        "gpu util",
        "cpu util",
    ],
)
def test_promql_rendering_is_pinned(signal: recipe.Signal, promql: str) -> None:
    assert signals.render(signal) == promql


def test_idle_as_zero_rendering_and_extra_matchers() -> None:
    got = signals.render(CORRINO, {"namespace": "ml"}, idle_as_zero=True)
    total = 'sum(rate(vllm:e2e_request_latency_seconds_bucket{le="+Inf",namespace="ml"}[5m]))'
    assert got == (
        f'(1 - sum(rate(vllm:e2e_request_latency_seconds_bucket{{le="5.0",namespace="ml"}}[5m])) / {total} '
        f"> -Inf) or ({total} == 0)"
    )


BUCKETS = [0.3, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf]


def feed_histogram(store: windows.Store, replica: str, t: float, observations: list[float]) -> None:
    for le in BUCKETS:
        count = sum(1 for o in observations if o <= le)
        store.record(
            t,
            "vllm:e2e_request_latency_seconds_bucket",
            windows.labels_of({"replica": replica, "le": "+Inf" if math.isinf(le) else repr(le)}),
            count,
        )


def test_histogram_fraction_from_two_replicas_matches_the_share_of_slow_requests() -> None:
    st = windows.Store()
    feed_histogram(st, "a", 0.0, [])
    feed_histogram(st, "b", 0.0, [])
    feed_histogram(st, "a", 60.0, [1.0] * 6 + [7.0] * 2)  # 2 of 8 slower than 5 s
    feed_histogram(st, "b", 60.0, [0.2] * 2 + [9.0] * 6)  # 6 of 8
    got = signals.evaluate(CORRINO, st, 60.0, RES)
    assert got.value == pytest.approx(8 / 16)


def test_no_samples_is_no_value_and_an_idle_window_is_a_measured_zero() -> None:
    st = windows.Store()
    missing = signals.evaluate(CORRINO, st, 0.0, RES)
    assert missing.value is None and "fewer than two samples" in missing.error
    feed_histogram(st, "a", 0.0, [1.0])
    feed_histogram(st, "a", 60.0, [1.0])  # no new requests
    assert signals.evaluate(CORRINO, st, 60.0, RES).value == 0.0


def test_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    by_le = {0.5: 50.0, 1.0: 90.0, math.inf: 100.0}
    assert signals.quantile_from_buckets(0.5, by_le) == pytest.approx(0.5)
    assert signals.quantile_from_buckets(0.7, by_le) == pytest.approx(0.75)
    assert signals.quantile_from_buckets(0.95, by_le) == pytest.approx(1.0)  # in +Inf: highest finite bound


def test_gauge_aggregates_per_replica_window_averages() -> None:
    st = windows.Store()
    for t, a, b in [(0.0, 2.0, 10.0), (5.0, 4.0, 20.0)]:
        st.record(t, "w", windows.labels_of({"replica": "a"}), a)
        st.record(t, "w", windows.labels_of({"replica": "b"}), b)
    got = signals.evaluate(sig(kind="gauge", metric="w", aggregate="sum", window_s=10), st, 5.0, RES)
    assert got.value == pytest.approx(3.0 + 15.0)
    assert got.per_replica == {"a": 3.0, "b": 15.0}
    assert (
        signals.evaluate(sig(kind="gauge", metric="w", aggregate="max", window_s=10), st, 5.0, RES).value
        == 15.0
    )


def test_cpu_utilization_is_percent_of_the_request() -> None:
    st = windows.Store()
    st.record(0.0, signals.CPU_SECONDS, windows.labels_of({"replica": "a"}), 0.0)
    st.record(10.0, signals.CPU_SECONDS, windows.labels_of({"replica": "a"}), 15.0)  # 1.5 cores busy
    got = signals.evaluate(sig(kind="utilization", resource="cpu", window_s=60, target=50), st, 10.0, RES)
    assert got.value == pytest.approx(75.0)  # of 2 cores


def test_raw_promql_cannot_be_evaluated_embedded() -> None:
    with pytest.raises(errors.SignalError, match="only a Prometheus server"):
        signals.evaluate(sig(kind="promql", query="up"), windows.Store(), 0.0, RES)


def test_required_adds_the_panic_window_copy() -> None:
    auto = recipe.Autoscaling(
        max_replicas=3,
        policy="panic",
        signals=(sig(kind="gauge", metric="c", name="conc"),),
        panic=recipe.Panic(signal="conc", panic_window_s=6),
    )
    names = [(s.name, s.window_s) for s in signals.required(auto)]
    assert names == [("conc", 60.0), ("conc:panic", 6.0)]
    assert signals.metric_names([CORRINO]) == {"vllm:e2e_request_latency_seconds_bucket"}


def test_gpu_utilization_of_a_two_gpu_replica_averages_its_gpus_like_promql() -> None:
    st = windows.Store()
    for gpu, util in (("0", 80.0), ("1", 40.0)):
        st.record(0.0, signals.GPU_UTIL, windows.labels_of({"replica": "a", "gpu": gpu}), util)
    st.record(0.0, signals.GPU_UTIL, windows.labels_of({"replica": "b", "gpu": "0"}), 30.0)
    got = signals.evaluate(sig(kind="utilization", resource="gpu", window_s=10, target=50), st, 1.0, RES)
    assert got.value == pytest.approx((80 + 40 + 30) / 3)  # avg over series, as avg(...) in PromQL
    assert got.per_replica == {"a": 60.0, "b": 30.0}


def test_label_values_are_escaped_in_promql() -> None:
    got = signals.render(sig(kind="gauge", metric="m", labels={"model_name": 'we"ird\\name'}))
    assert got == 'avg(avg_over_time(m{model_name="we\\"ird\\\\name"}[1m]))'


def test_every_signal_kind_has_one_entry_in_the_table() -> None:
    assert set(signals.KINDS) == set(typing.get_args(recipe.SignalKind))


@pytest.mark.parametrize(
    ("young_increase", "expect"),
    [
        pytest.param(0.0, 1.0, id="a-young-series-with-nothing-yet-adds-nothing"),
        pytest.param(50.0, 1.0 + 50.0 / 300.0, id="a-young-series-adds-its-increase-over-the-window"),
    ],
)  # fmt: skip
def test_a_sum_of_rates_reads_a_young_series_increase_over_the_window(young_increase: float, expect: float) -> None:
    """A replica ready 5 s ago that admitted a queue at once: its own rate over its 5 s is 10/s, but
    it adds 50 requests to the last 300 s, not 10/s to their rate (the mix read 1,747 tokens for 1,119
    that way, planning 9 replicas for 6)."""
    store = windows.Store(retention_s=600)
    labels = windows.labels_of({"replica": "old"})
    for t in range(0, 601, 5):
        store.record(float(t), "m_total", labels, float(t))  # 1/s for ten minutes
    young = windows.labels_of({"replica": "new"})
    store.record(595.0, "m_total", young, 0.0)
    store.record(600.0, "m_total", young, young_increase)
    got = signals.evaluate(sig(kind="rate", metric="m_total", window_s=300), store, 600.0, RES)
    assert got.value == pytest.approx(expect)


def test_at_the_stores_start_every_series_is_read_over_what_it_has() -> None:
    store = windows.Store(retention_s=600)
    for name in ("a", "b"):
        for t in range(0, 31, 5):
            store.record(float(t), "m_total", windows.labels_of({"replica": name}), 2.0 * t)
    got = signals.evaluate(sig(kind="rate", metric="m_total", window_s=300), store, 30.0, RES)
    assert got.value == pytest.approx(4.0)  # 2/s each over their 30 s, not diluted over the 300 s window


def test_a_counter_child_created_at_its_first_event_is_read_over_the_time_the_store_watched() -> None:
    """The gateway's requests_total{code="200"} is created at the first answer: scraped for 20 s
    before, a new child that counted 2 more answers in its first 0.5 s is 2 answers in 20 s, not
    4/s (read over its own half second, the local planner's first ticks read a load just begun at
    its full rate, over a capacity still sized on the prior mix, and scaled up before its step)."""
    store = windows.Store(retention_s=600)
    other = windows.labels_of({"replica": "gateway", "name": "buffered"})
    for t in range(0, 21):
        store.record(float(t), "g", other, 0.0)  # the target answered every second, without the child
    child = windows.labels_of({"replica": "gateway", "code": "200"})
    store.record(19.5, "m_total", child, 1.0)
    store.record(20.0, "m_total", child, 3.0)
    got = signals.evaluate(sig(kind="rate", metric="m_total", window_s=30), store, 20.0, RES)
    assert got.value == pytest.approx(2.0 / 20.0)
    assert store.watched(20.0, 10.0) == 10.0 and windows.Store().watched(5.0, 30.0) == 0.0
