"""Metrics of simulated replicas, recorded into the controller's windows at each scrape.

Names, labels (`model_name`) and buckets are vLLM's (and DCGM's for the GPU), so the signals a
recipe declares read the simulator exactly as they read a real server. Only the families the
signals need are produced, and for a histogram fraction only the two buckets it reads: a
simulated hour then costs a few hundred thousand samples, not millions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from swell import recipe
from swell.clusters.sim import replicas
from swell.core import signals, windows
from swell.metrics import gateway

GAUGES = {"vllm:num_requests_running": 0, "vllm:num_requests_waiting": 1, "vllm:kv_cache_usage_perc": 2}
COUNTERS = {"vllm:prompt_tokens_total": "prompt_tokens", "vllm:generation_tokens_total": "generation_tokens"}
SUCCESS = "vllm:request_success_total"
OUTSTANDING = "swell_outstanding_requests"  # requests the router has in flight at a replica (queue-proxy)
FB_USED = "DCGM_FI_DEV_FB_USED"
HISTOGRAMS = (
    "time_to_first_token_seconds", "inter_token_latency_seconds", "time_per_output_token_seconds",
    "e2e_request_latency_seconds", "request_queue_time_seconds", "request_prefill_time_seconds",
    "request_decode_time_seconds", "request_inference_time_seconds", "request_prompt_tokens",
    "request_generation_tokens",
)  # fmt: skip
GATEWAY_FAMILIES = (gateway.CONCURRENCY, gateway.IN_FLIGHT, gateway.BUFFERED, gateway.READY, gateway.REQUESTS)
IDLE_CPU_CORES = 0.02  # an idle server process
BUSY_CPU_CORES = 1.0  # the engine loop keeps one core busy while it steps


def le_label(bound: float) -> str:
    """Prometheus' text form of a bucket bound (prometheus_client floatToGoString)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def bucket_needs(sigs: Iterable[recipe.Signal]) -> dict[str, set[float] | None]:
    """Histogram families read by the signals -> the bucket bounds they read (None: all)."""
    out: dict[str, set[float] | None] = {}
    for s in sigs:
        if s.kind == "histogram_fraction" and s.metric and s.le is not None:
            have = out.get(s.metric, set())
            if have is not None:
                out[s.metric] = have | {s.le, math.inf}
        elif s.kind == "histogram_quantile" and s.metric:
            out[s.metric] = None
    return out


class Emitter:
    """Turns replica state into samples of the wanted families; `scrape(now, reps)` records them."""

    def __init__(self, store: windows.Store, sigs: Iterable[recipe.Signal], rec: recipe.Recipe) -> None:
        sigs = tuple(sigs)
        self.store = store
        self.wanted = signals.metric_names(sigs)
        self.model = rec.service.model or rec.service.name
        self.cpu = rec.resources.cpu
        self.memory_bytes = 0.5 * rec.resources.memory_gib * 2**30
        needs = bucket_needs(sigs)
        self.gauges = [(name, i) for name, i in GAUGES.items() if name in self.wanted]
        self.counters = [(name, key) for name, key in COUNTERS.items() if name in self.wanted]
        self.histograms: list[tuple[str, str, str, str, set[float] | None]] = []
        for key in HISTOGRAMS:
            base = "vllm:" + key
            names = (base + "_bucket", base + "_sum", base + "_count")
            if any(n in self.wanted for n in names):
                self.histograms.append((key, *names, needs.get(base)))
        self.samples = 0
        self.gateway_wanted = [n for n in GATEWAY_FAMILIES if n in self.wanted]
        self._clock = 0.0
        self._conc = gateway.Concurrency(now=lambda: self._clock)
        self._gw = frozenset({(signals.REPLICA_LABEL, gateway.GATEWAY_TARGET)})

    def gateway(self, now: float, in_system: int, buffered: int, ready: int, served: int,
                shed: int | None = None) -> None:  # fmt: skip
        """The gateway's own families, as the local gateway serves them: requests answered by code,
        200 for those served and, with a deadline (`shed` not None), 503 for those shed. The
        request-seconds integral is sampled at each scrape (the count since the last scrape times the interval)."""
        if not self.gateway_wanted:
            return
        self._clock = now
        self._conc.set(in_system)
        values = {
            gateway.CONCURRENCY: self._conc.integral(),
            gateway.IN_FLIGHT: float(in_system - buffered),
            gateway.BUFFERED: float(buffered),
            gateway.READY: float(ready),
            gateway.REQUESTS: float(served),
        }
        for name in self.gateway_wanted:
            labels = self._gw | {("code", "200")} if name == gateway.REQUESTS else self._gw
            self.store.record(now, name, labels, values[name])
            if name == gateway.REQUESTS and shed is not None:
                self.store.record(now, name, self._gw | {("code", "503")}, float(shed))
                self.samples += 1
        self.samples += len(self.gateway_wanted)

    def _put(self, rep: replicas.SimReplica, key: object, name: str, now: float, value: float,
             extra: tuple[tuple[str, str], ...] = ()) -> None:  # fmt: skip
        """Record one sample; a replica keeps its series at hand so later scrapes skip the lookups."""
        series = rep.series.get(key)
        if series is not None:
            series.record(now, value)
            return
        labels = frozenset(((signals.REPLICA_LABEL, rep.name), ("model_name", self.model), *extra))
        self.store.record(now, name, labels, value)
        rep.series[key] = next(s for lb, s in self.store.select(name, dict(labels)) if lb == labels)

    def scrape(self, now: float, reps: Iterable[replicas.SimReplica]) -> None:
        put, wanted, n = self._put, self.wanted, 0
        for rep in reps:
            engine = rep.engine
            if engine is None:
                continue
            g = engine.gauges(now)
            for name, i in self.gauges:
                put(rep, name, name, now, float(g[i]))
            n += len(self.gauges)
            busy = g[3]
            if signals.GPU_UTIL in wanted:
                t0, b0 = rep.busy_mark
                util = 100.0 * (busy - b0) / (now - t0) if now > t0 else 0.0
                put(rep, signals.GPU_UTIL, signals.GPU_UTIL, now, min(100.0, max(0.0, util)))
                n += 1
            rep.busy_mark = (now, busy)
            if signals.CPU_SECONDS in wanted:
                alive = now - rep.timeline.get("ready", now)
                put(
                    rep,
                    signals.CPU_SECONDS,
                    signals.CPU_SECONDS,
                    now,
                    IDLE_CPU_CORES * alive + BUSY_CPU_CORES * busy,
                )
                n += 1
            if signals.RESIDENT_BYTES in wanted:
                put(rep, signals.RESIDENT_BYTES, signals.RESIDENT_BYTES, now, self.memory_bytes)
                n += 1
            if FB_USED in wanted:
                put(rep, FB_USED, FB_USED, now, engine.fb_used_mib)
                n += 1
            if OUTSTANDING in wanted:
                put(rep, OUTSTANDING, OUTSTANDING, now, float(len(rep.live)))
                n += 1
            if self.counters:
                values = engine.counters()
                for name, key in self.counters:
                    put(rep, name, name, now, float(values.get(key, 0.0)))
                    n += 1
            if SUCCESS in wanted:
                for reason, count in engine.successes().items():
                    put(rep, (SUCCESS, reason), SUCCESS, now, float(count), (("finished_reason", reason),))
                    n += 1
            if self.histograms:
                n += self._histograms(now, rep, engine)
        self.samples += n

    def _histograms(self, now: float, rep: replicas.SimReplica, engine: replicas.Engine) -> int:
        put, wanted, n = self._put, self.wanted, 0
        hists = engine.histograms()
        for key, bucket, total, count, only in self.histograms:
            h = hists.get(key)
            if h is None:
                continue
            if total in wanted:
                put(rep, total, total, now, h.sum)
                n += 1
            if count in wanted:
                put(rep, count, count, now, float(h.count))
                n += 1
            if bucket in wanted:
                running = 0
                cache = rep.series
                for bound, c in zip((*h.bounds, math.inf), h.counts, strict=True):
                    running += c
                    if only is None or bound in only:
                        series = cache.get((bucket, bound))
                        if series is None:
                            put(rep, (bucket, bound), bucket, now, float(running), (("le", le_label(bound)),))
                        else:
                            series.record(now, float(running))
                        n += 1
        return n

    def forget(self, rep: replicas.SimReplica) -> None:
        self.store.forget(signals.REPLICA_LABEL, rep.name)
