"""Cumulative counters and histograms kept by the engine models, named like vLLM's metrics.

The engines count in plain Python (no prometheus_client) so the simulator can read them for
free; servers export them with a custom collector. Bucket bounds are vLLM's defaults, so
dashboards and PromQL written for vLLM work on simulated replicas.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# vLLM v1 defaults (vllm/v1/metrics/loggers.py).
TTFT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
TOKEN_LATENCY_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
REQUEST_LATENCY_BUCKETS: tuple[float, ...] = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip


# prometheus_client's default buckets: what a classic model server would expose.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip


def buckets_1_2_5(max_value: int) -> tuple[float, ...]:
    """vLLM's token-count buckets: 1, 2, 5, 10, 20, 50, ... up to max_value."""
    out: list[float] = []
    scale = 1
    while True:
        for m in (1, 2, 5):
            if m * scale > max_value:
                return tuple(out)
            out.append(float(m * scale))
        scale *= 10


class Histogram:
    """A Prometheus-style histogram that can take many equal observations at once.

    `observe(v, n)` is how a decode leap of k steps over b sequences records b*k inter-token
    latencies in O(log buckets) instead of b*k calls.
    """

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(bounds):
            raise ValueError(f"histogram bounds must be sorted, got {bounds!r}")
        self.bounds: tuple[float, ...] = tuple(bounds)
        self.counts: list[int] = [0] * (len(self.bounds) + 1)  # last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, n: int = 1) -> None:
        if n <= 0:
            return
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le semantics).
        self.counts[bisect_left(self.bounds, value)] += n
        self.sum += value * n
        self.count += n

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, cumulative count) pairs ending with (+inf, count), as Prometheus exposes."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, c in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += c
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding quantile q; None when empty (no data is not zero)."""
        if self.count == 0:
            return None
        rank = q * self.count
        for bound, cum in self.cumulative():
            if cum >= rank:
                return bound
        return float("inf")  # pragma: no cover - the last bucket always reaches count


class LlmStats:
    """vLLM's request-level counters and histograms for one replica (cumulative)."""

    def __init__(self, max_model_len: int) -> None:
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.num_preemptions = 0
        self.request_success: dict[str, int] = {"stop": 0, "length": 0, "abort": 0}
        self.time_to_first_token = Histogram(TTFT_BUCKETS)
        self.inter_token_latency = Histogram(TOKEN_LATENCY_BUCKETS)
        self.time_per_output_token = Histogram(TOKEN_LATENCY_BUCKETS)
        self.e2e_request_latency = Histogram(REQUEST_LATENCY_BUCKETS)
        self.request_queue_time = Histogram(REQUEST_LATENCY_BUCKETS)
        self.request_prefill_time = Histogram(REQUEST_LATENCY_BUCKETS)
        self.request_decode_time = Histogram(REQUEST_LATENCY_BUCKETS)
        self.request_inference_time = Histogram(REQUEST_LATENCY_BUCKETS)
        token_buckets = buckets_1_2_5(max_model_len)
        self.request_prompt_tokens = Histogram(token_buckets)
        self.request_generation_tokens = Histogram(token_buckets)

    def record_finished(
        self, reason: str, arrival: float, scheduled: float | None, first_token: float | None, end: float,
        prompt: int, generated: int,
    ) -> None:  # fmt: skip
        """Count a finished request and, unless aborted, observe its request-level histograms."""
        self.request_success[reason] += 1
        if reason == "abort" or scheduled is None or first_token is None:
            return
        self.e2e_request_latency.observe(end - arrival)
        self.request_prefill_time.observe(first_token - scheduled)
        self.request_decode_time.observe(end - first_token)
        self.request_inference_time.observe(end - scheduled)
        self.request_prompt_tokens.observe(prompt)
        self.request_generation_tokens.observe(generated)
        if generated > 1:
            self.time_per_output_token.observe((end - first_token) / (generated - 1))

    def histograms(self) -> dict[str, Histogram]:
        """Histograms by their vLLM metric name (without the `vllm:` prefix)."""
        return {
            "time_to_first_token_seconds": self.time_to_first_token,
            "inter_token_latency_seconds": self.inter_token_latency,
            "time_per_output_token_seconds": self.time_per_output_token,
            "e2e_request_latency_seconds": self.e2e_request_latency,
            "request_queue_time_seconds": self.request_queue_time,
            "request_prefill_time_seconds": self.request_prefill_time,
            "request_decode_time_seconds": self.request_decode_time,
            "request_inference_time_seconds": self.request_inference_time,
            "request_prompt_tokens": self.request_prompt_tokens,
            "request_generation_tokens": self.request_generation_tokens,
        }


class ServiceStats:
    """Counters and a latency histogram for a classic-model (fixed service time) replica."""

    def __init__(self) -> None:
        self.requests = 0
        self.rejected = 0
        self.aborted = 0
        self.latency = Histogram(DEFAULT_BUCKETS)
        self.queue_time = Histogram(DEFAULT_BUCKETS)
