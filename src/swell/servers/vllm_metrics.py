"""Prometheus export of an engines.llm replica with vLLM's metric names plus DCGM GPU gauges.

A custom collector reads the engine's own counters at scrape time, so nothing is counted
twice and the bucket bounds are exactly vLLM's. GPU utilisation is the busy fraction of the
last second, sampled like the DCGM exporter does (DCGM_FI_DEV_GPU_UTIL, 0-100).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector as _Collector

from swell.engines import llm

LABELS = ["model_name", "engine"]


class GpuSampler:
    """Keeps (time, busy seconds) samples to turn the engine's busy time into a utilisation."""

    def __init__(self, replica: llm.Replica, now: Callable[[], float], *, period: float = 0.2,
                 window: float = 1.0) -> None:  # fmt: skip
        self._replica, self._now, self._period, self._window = replica, now, period, window
        self._samples: deque[tuple[float, float]] = deque([(0.0, 0.0)])
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        t = self._now()
        self._samples.append((t, self._replica.busy_seconds(t)))
        while len(self._samples) > 2 and self._samples[1][0] <= t - self._window:
            self._samples.popleft()

    def utilization(self) -> float:
        """Percent of the last `window` seconds the replica spent in steps."""
        t = self._now()
        busy = self._replica.busy_seconds(t)
        t0, b0 = self._samples[0]
        if t - t0 <= 1e-6:
            return 0.0
        return max(0.0, min(100.0, 100.0 * (busy - b0) / (t - t0)))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gpu-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            self.sample()


class Collector(_Collector):
    """Yields vLLM and DCGM metric families for one replica at scrape time."""

    def __init__(self, replica: llm.Replica, model_name: str, gpu: GpuSampler, now: Callable[[], float],
                 hostname: str = "localhost") -> None:  # fmt: skip
        self._r, self._model, self._gpu, self._now, self._host = replica, model_name, gpu, now, hostname
        # stable fake UUIDs per GPU so series keep their identity across scrapes
        self._uuids = [
            f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{model_name}/{i}')}" for i in range(replica.preset.gpus)
        ]

    def collect(self) -> Iterator[Metric]:
        r, labels = self._r, [self._model, "0"]
        st = r.stats

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=LABELS)
            g.add_metric(labels, value)
            return g

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc, labels=LABELS)
            c.add_metric(labels, value)
            return c

        yield gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches.", r.num_running
        )
        yield gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", r.num_waiting)
        yield gauge(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", r.kv_cache_usage
        )
        yield counter(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine.", st.num_preemptions
        )
        yield counter("vllm:prompt_tokens", "Number of prefill tokens processed.", st.prompt_tokens)
        yield counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", st.generation_tokens
        )
        success = CounterMetricFamily(
            "vllm:request_success",
            "Count of successfully processed requests.",
            labels=[*LABELS, "finished_reason"],
        )
        for reason, n in st.request_success.items():
            success.add_metric([*labels, reason], n)
        yield success
        for name, h in st.histograms().items():
            fam = HistogramMetricFamily(
                f"vllm:{name}", f"Histogram of {name.replace('_', ' ')}.", labels=LABELS
            )
            fam.add_metric(labels, [(_le(b), c) for b, c in h.cumulative()], sum_value=h.sum)
            yield fam
        dcgm_labels = ["gpu", "UUID", "device", "modelName", "Hostname"]
        util = GaugeMetricFamily("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", labels=dcgm_labels)
        used = GaugeMetricFamily(
            "DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", labels=dcgm_labels
        )
        free = GaugeMetricFamily(
            "DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", labels=dcgm_labels
        )
        u = self._gpu.utilization()
        p = r.preset
        for i, gid in enumerate(self._uuids):
            lv = [str(i), gid, f"nvidia{i}", p.gpu, self._host]
            util.add_metric(lv, round(u))
            used.add_metric(lv, round(p.fb_used_mib))
            free.add_metric(lv, round(p.gpu_memory_mib - p.fb_used_mib))
        yield util
        yield used
        yield free


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
