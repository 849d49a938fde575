"""TorchServe's Prometheus metrics as swell signals: the names it exposes, evaluated from scraped
text the way a Prometheus server evaluates the PromQL swell renders for them."""

from __future__ import annotations

import pytest

from swell import recipe
from swell.core import signals, windows
from swell.metrics import scrape

# what TorchServe 0.12 serves with metrics_mode=prometheus (trailing commas in the labels, counters
# without the _total suffix), at two scrapes 10 s apart: 40 requests, 2 s of queueing in all
TEXT = """# HELP ts_inference_requests_total Torchserve prometheus counter metric with unit: Count
# TYPE ts_inference_requests_total counter
ts_inference_requests_total{{model_name="digest",model_version="default",hostname="vm",}} {requests}
# HELP ts_queue_latency_microseconds Torchserve prometheus counter metric with unit: Microseconds
# TYPE ts_queue_latency_microseconds counter
ts_queue_latency_microseconds{{model_name="digest",model_version="default",hostname="vm",}} {queue}
# HELP ts_inference_latency_microseconds Torchserve prometheus counter metric with unit: Microseconds
# TYPE ts_inference_latency_microseconds counter
ts_inference_latency_microseconds{{model_name="digest",model_version="default",hostname="vm",}} {latency}
# HELP Requests2XX Torchserve prometheus counter metric with unit: Count
# TYPE Requests2XX counter
Requests2XX{{Level="Host",Hostname="vm",}} {requests}
# HELP QueueTime Torchserve prometheus gauge metric with unit: Milliseconds
# TYPE QueueTime gauge
QueueTime{{Level="Host",Hostname="vm",}} 3.0
"""
FIRST = TEXT.format(requests=10.0, queue=500_000.0, latency=1_000_000.0)
SECOND = TEXT.format(requests=50.0, queue=2_500_000.0, latency=5_000_000.0)


def test_counters_keep_the_names_torchserve_exposes() -> None:
    names = {s.name for s in scrape.parse(FIRST)}
    assert names == {
        "ts_inference_requests_total",
        "ts_queue_latency_microseconds",
        "ts_inference_latency_microseconds",
        "Requests2XX",
        "QueueTime",
    }


def test_a_counter_exposed_with_its_total_suffix_keeps_it() -> None:
    text = "# TYPE x counter\nx_total 3\n# TYPE y_total counter\ny_total 4\n"
    assert sorted(s.name for s in scrape.parse(text)) == ["x_total", "y_total"]


def store() -> windows.Store:
    s = windows.Store()
    s.record_all(0.0, scrape.parse(FIRST), {"replica": "digest-1"})
    s.record_all(10.0, scrape.parse(SECOND), {"replica": "digest-1"})
    return s


DIGEST = {"model_name": "digest"}
SIGNALS = {
    "requests per second": (
        recipe.Signal(
            name="rps",
            kind="rate",
            metric="ts_inference_requests_total",
            window_s=30,
            target=10,
            labels=DIGEST,
        ),
        4.0,
        'sum(rate(ts_inference_requests_total{model_name="digest"}[30s]))',
    ),
    "queue time per request (µs)": (
        recipe.Signal(
            name="queue_time",
            kind="ratio",
            numerator="ts_queue_latency_microseconds",
            denominator="ts_inference_requests_total",
            window_s=30,
            target=100_000,
            labels=DIGEST,
        ),
        50_000.0,
        'sum(rate(ts_queue_latency_microseconds{model_name="digest"}[30s]))'
        ' / sum(rate(ts_inference_requests_total{model_name="digest"}[30s]))',
    ),
    "inference latency per request (µs)": (
        recipe.Signal(
            name="latency",
            kind="ratio",
            numerator="ts_inference_latency_microseconds",
            denominator="ts_inference_requests_total",
            window_s=30,
            target=100_000,
            labels=DIGEST,
        ),
        100_000.0,
        'sum(rate(ts_inference_latency_microseconds{model_name="digest"}[30s]))'
        ' / sum(rate(ts_inference_requests_total{model_name="digest"}[30s]))',
    ),
    "2XX answers per second": (
        recipe.Signal(name="ok", kind="rate", metric="Requests2XX", window_s=30, target=10),
        4.0,
        "sum(rate(Requests2XX[30s]))",
    ),
}


@pytest.mark.parametrize("what", list(SIGNALS))
def test_torchserve_signals_evaluate_and_render(what: str) -> None:
    sig, value, promql = SIGNALS[what]
    got = signals.evaluate(sig, store(), 10.0, recipe.Resources())
    assert got.ok and got.value == pytest.approx(value)
    assert signals.render(sig) == promql
