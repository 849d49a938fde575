"""The gateway's own Prometheus metrics, measured where every request passes (`swell_gateway_*`).

Engines without latency histograms (llama.cpp) still get latency signals from here. Besides the
usual counters, gauges and histograms, `swell_gateway_concurrency_seconds_total` integrates the
number of requests in the gateway (in flight + buffered) over time, so its rate over any window
is the exact average concurrency there (Knative's activator metric), bursts between scrapes included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, exposition
from prometheus_client import core as prom_core
from prometheus_client import registry as prom_registry

from swell.metrics import gateway as names

PREFIX, REQUESTS, IN_FLIGHT, BUFFERED = names.PREFIX, names.REQUESTS, names.IN_FLIGHT, names.BUFFERED
CONCURRENCY, DURATION, TTFT, READY = names.CONCURRENCY, names.DURATION, names.TTFT, names.READY
Concurrency = names.Concurrency
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 60.0, 120.0,
    float("inf"),
)  # fmt: skip


class _Live(prom_registry.Collector):
    """Values read at scrape time: concurrency, in flight, buffered, ready replicas, per backend."""

    def __init__(
        self,
        conc: Concurrency,
        in_flight: Callable[[], int],
        buffered: Callable[[], int],
        backends: Callable[[], Mapping[str, int]],
        routed: Callable[[], Mapping[str, int]] = dict,
    ) -> None:
        self.conc, self.in_flight, self.buffered, self.backends = conc, in_flight, buffered, backends
        self.routed = routed

    def collect(self) -> Iterator[prom_core.Metric]:
        yield prom_core.CounterMetricFamily(
            CONCURRENCY.removesuffix("_total"),
            "Integral over time of the requests in the gateway (in flight + buffered)",
            value=self.conc.integral(),
        )
        yield prom_core.GaugeMetricFamily(IN_FLIGHT, "Requests being served by a replica", self.in_flight())
        yield prom_core.GaugeMetricFamily(BUFFERED, "Requests waiting for a ready replica", self.buffered())
        per = self.backends()
        yield prom_core.GaugeMetricFamily(READY, "Replicas receiving traffic", len(per))
        g = prom_core.GaugeMetricFamily(
            PREFIX + "backend_requests_in_flight", "Requests in flight per replica", labels=["backend"]
        )
        for name, n in sorted(per.items()):
            g.add_metric([name], n)
        yield g
        c = prom_core.CounterMetricFamily(
            PREFIX + "backend_requests", "Requests sent to each replica so far (a replica gone keeps its count)",
            labels=["backend"],
        )  # fmt: skip
        for name, n in sorted(self.routed().items()):
            c.add_metric([name], n)
        yield c


class GatewayMetrics:
    def __init__(
        self,
        conc: Concurrency,
        in_flight: Callable[[], int],
        buffered: Callable[[], int],
        backends: Callable[[], Mapping[str, int]],
        routed: Callable[[], Mapping[str, int]] = dict,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            REQUESTS.removesuffix("_total"), "Requests answered, by HTTP status code", ["code"],
            registry=self.registry,
        )  # fmt: skip
        self.requests.labels(code="200")  # the series exists from the start: an idle rate is 0, not missing
        self.rejected = Counter(
            PREFIX + "rejected", "Requests answered by the gateway itself with a 503 or 504, by why "
            "(stopping, refused, buffer_full, buffer_timeout, busy, shed, read_timeout)", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self.retries = Counter(
            PREFIX + "retries", "Requests sent again to another replica after a connection failure",
            registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            DURATION, "Time from request to the last response byte", buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.ttft = Histogram(
            TTFT, "Time from request to the first response body chunk (the first token when streaming)",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_Live(conc, in_flight, buffered, backends, routed))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return exposition.generate_latest(self.registry), exposition.CONTENT_TYPE_LATEST
