"""Offered load as the planner reads it: the signals it needs, declared like any recipe signal.

`signals.required` adds these for the planner (as it adds panic-window copies), so the embedded
store, Prometheus and the simulator's emitter all serve them without new plumbing: vLLM's served
requests and tokens per second, its queue, and the gateway's answered requests (every status
code: those shed at the SLO's deadline are demand too, and engines without vLLM's counters have
only these) and its buffer. `read(snap)` turns their readings into one `Load`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from swell import recipe
from swell.core import snapshot

PREFIX = "planner:"
REQUESTS = PREFIX + "requests"
ABORTED = PREFIX + "aborted"
MIX_REQUESTS = PREFIX + "mix_requests"
MIX_ABORTED = PREFIX + "mix_aborted"
PROMPT = PREFIX + "prompt_tokens"
GENERATION = PREFIX + "generation_tokens"
WAITING = PREFIX + "waiting"
GATEWAY_REQUESTS = PREFIX + "gateway_requests"
BUFFERED = PREFIX + "buffered"
E2E = PREFIX + "e2e_at_slo"  # the e2e latency at the SLO's percentile (99 when the recipe has none)
RATE_WINDOW_S = 30.0
E2E_WINDOW_S = 300.0  # a high percentile of end-to-end latency needs a few hundred requests
MIX_WINDOW_S = 300.0  # the request mix (tokens per request) over a longer window: it is noisy
POLICIES = ("swell", "planner")  # the policies that read offered load (the planner, by either name)


def signals(percentile: float = 99.0) -> tuple[recipe.Signal, ...]:
    """The planner's reads; `percentile` is the SLO's (the e2e quantile judged against it)."""

    def rate(name: str, metric: str, window_s: float = RATE_WINDOW_S, **labels: str) -> recipe.Signal:
        return recipe.Signal(name=name, kind="rate", metric=metric, window_s=window_s, target=1.0, labels=labels)

    def gauge(name: str, metric: str) -> recipe.Signal:
        return recipe.Signal(
            name=name, kind="gauge", metric=metric, aggregate="sum", window_s=10.0, target=1.0
        )

    return (
        rate(REQUESTS, "vllm:request_success_total"),
        rate(ABORTED, "vllm:request_success_total", finished_reason="abort"),
        # the mix: tokens over finished requests, less those aborted (shed at the deadline, most
        # with no token: counted, they read the mix short for minutes after a surge, and a mix
        # coming back to its level moves the load in replica units like a ramp: black-friday +2
        # GPU-hours); per request admitted (the TTFT histogram's count) it is exact, but lost 1.4
        # points on servegen-busy: against completions it reads long while load rises (docs/policies.md)
        rate(MIX_REQUESTS, "vllm:request_success_total", MIX_WINDOW_S),
        rate(MIX_ABORTED, "vllm:request_success_total", MIX_WINDOW_S, finished_reason="abort"),
        rate(PROMPT, "vllm:prompt_tokens_total", MIX_WINDOW_S),
        rate(GENERATION, "vllm:generation_tokens_total", MIX_WINDOW_S),
        gauge(WAITING, "vllm:num_requests_waiting"),
        rate(GATEWAY_REQUESTS, "swell_gateway_requests_total"),
        gauge(BUFFERED, "swell_gateway_requests_buffered"),
        recipe.Signal(name=E2E, kind="histogram_quantile", metric="vllm:e2e_request_latency_seconds",
                      quantile=percentile / 100.0, window_s=E2E_WINDOW_S, target=1.0),
    )


NAMES = tuple(s.name for s in signals())  # the reads' names, the same at any SLO percentile


@dataclass(frozen=True, kw_only=True)
class Load:
    served_rps: float | None  # requests/s the replicas completed over the last RATE_WINDOW_S (None: unknown)
    answered_rps: float | None  # requests/s answered in all: served, and refused or shed at the gateway
    mix_rps: float | None  # requests/s over MIX_WINDOW_S, the denominator of the mix
    prompt_tps: float | None  # over MIX_WINDOW_S
    generation_tps: float | None
    queued: float  # requests waiting in the engines and buffered at the gateway now
    source: str  # which counters gave answered_rps
    e2e_at_slo_s: float | None = None  # vLLM's end-to-end latency at the SLO's percentile over E2E_WINDOW_S
    served_by_engine: bool = False  # served_rps is the engine's count without its aborts (else the
    # gateway's answers, which count what it refused or shed too)

    def offered(self, drain_s: float) -> float | None:
        """Requests/s offered: answered (a request shed at the SLO's deadline was demand too),
        plus the queue drained within `drain_s`."""
        if self.answered_rps is None:
            return None
        return self.answered_rps + self.queued / drain_s


READ_MAX = 1e9  # every read here is a count or a rate of requests, tokens or seconds: none is negative, and
# none past this is a measurement (an exporter's 1e308 squared overflows the forecast's fit)


def _value(snap: snapshot.Snapshot, name: str) -> float | None:
    r = snap.reading(name)
    return min(READ_MAX, max(0.0, r.value)) if r.ok and r.value is not None else None


def _less(total: float | None, part: float | None) -> float | None:
    return None if total is None else max(0.0, total - (part or 0.0))


def read(snap: snapshot.Snapshot) -> Load:
    """vLLM's finished requests are the demand it saw; those it finished with reason `abort`
    (cancelled: shed at the deadline, the client gone) were not served (half the count on
    black-friday's surge). The gateway's answers (every status code) are the demand when they are
    more (requests refused there), or the only count there is."""
    finished, source = _value(snap, REQUESTS), "vllm:request_success_total"
    served = _less(finished, _value(snap, ABORTED))
    gw = _value(snap, GATEWAY_REQUESTS)
    answered = finished
    if gw is not None and (finished is None or gw > finished):
        answered, source = gw, "swell_gateway_requests_total"
    queued = (_value(snap, WAITING) or 0.0) + (_value(snap, BUFFERED) or 0.0)
    return Load(
        served_rps=served if served is not None else gw,
        answered_rps=answered,
        mix_rps=_less(_value(snap, MIX_REQUESTS), _value(snap, MIX_ABORTED)),
        prompt_tps=_value(snap, PROMPT),
        generation_tps=_value(snap, GENERATION),
        queued=queued,
        source=source,
        e2e_at_slo_s=_value(snap, E2E),
        served_by_engine=served is not None,
    )


def missing(readings: Mapping[str, snapshot.Reading]) -> tuple[dict[str, str], int]:
    """(what has no value and why, how many reads were judged), for a status: the recipe's own
    signals each, and the planner's reads as one, its load, which either vLLM's request counter or
    the gateway's gives (on Kubernetes there is no swell gateway unless rendered with `--gateway`,
    and a counter of aborts may never have been written: neither is a metric missing)."""
    own = {k: r for k, r in readings.items() if not k.startswith(PREFIX)}
    out = {k: r.error or "no value" for k, r in own.items() if not r.ok}
    planner = [readings[k] for k in (REQUESTS, GATEWAY_REQUESTS) if k in readings]
    if planner and not any(r.ok for r in planner):
        out["planner load"] = "no value for vllm:request_success_total nor swell_gateway_requests_total: " + "; ".join(
            r.error or "no value" for r in planner
        )
    return out, len(own) + (1 if planner else 0)
