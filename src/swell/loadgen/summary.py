"""From request records to the numbers people compare: throughput, percentiles, errors, goodput.

Percentiles are p50/p90/p95/p99 of TTFT, inter-token latency, TPOT and end-to-end latency over
successful requests. Goodput counts requests meeting every SLO threshold, like `vllm bench serve
--goodput ttft:MS tpot:MS e2el:MS` (and as there, a request of at most one output token has a
TPOT of 0 for the SLO). A statistic with no samples is None, never 0.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from swell import errors
from swell.loadgen import records


@dataclass(frozen=True, kw_only=True)
class Stats:
    """Distribution of one latency in seconds (None when there were no samples)."""

    count: int = 0
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    std: float | None = None  # population standard deviation (numpy's, as vLLM's bench reports it)


def stats(values: Iterable[float]) -> Stats:
    data = np.fromiter(values, dtype=np.float64)
    if len(data) == 0:
        return Stats()
    p50, p90, p95, p99 = (float(v) for v in np.percentile(data, [50, 90, 95, 99]))
    return Stats(
        count=len(data), mean=float(data.mean()), p50=p50, p90=p90, p95=p95, p99=p99, max=float(data.max()),
        std=float(data.std()),
    )


@dataclass(frozen=True, kw_only=True)
class Slo:
    """Latency thresholds in seconds a request must all meet to count toward goodput."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def met(self, record: records.RequestRecord) -> bool:
        if not record.ok:
            return False
        tpot = record.tpot_s
        if tpot is None and record.output_tokens <= 1:
            tpot = 0.0  # no token after the first: nothing to be slow at (vLLM's goodput counts 0)
        checks = ((self.ttft_s, record.ttft_s), (self.tpot_s, tpot), (self.e2e_s, record.e2e_s))
        # A threshold on a value the request lacks (TTFT without streaming) is not met.
        return all(limit is None or (value is not None and value <= limit) for limit, value in checks)


_SLO_KEYS = {"ttft": "ttft_s", "tpot": "tpot_s", "e2el": "e2e_s", "e2e": "e2e_s"}


def parse_slo(text: str) -> Slo:
    """'ttft:200 tpot:50 e2el:2000' (milliseconds, vLLM's --goodput form; commas also separate)."""
    problems, values, seen = [], {}, set()
    for item in (part for part in re.split(r"[\s,]+", text.strip()) if part):
        key, _, ms = item.partition(":")
        name = _SLO_KEYS.get(key.lower())
        if name is not None and name in seen:
            problems.append(errors.Problem(path=key, value=item, rule="given twice: give each SLO once"))
            continue
        seen.add(name)
        try:
            number = float(ms)
            valid = number > 0
        except ValueError:
            valid = False
        if name is None:
            problems.append(errors.Problem(path=key, value=item, rule="unknown SLO; use ttft, tpot or e2el"))
        elif not valid:
            problems.append(
                errors.Problem(path=key, value=ms, rule="must be milliseconds > 0, e.g. ttft:200")
            )
        else:
            values[name] = number / 1000.0
    if not values and not problems:
        problems.append(
            errors.Problem(path="goodput", value=text, rule="give at least one of ttft:MS tpot:MS e2el:MS")
        )
    if problems:
        raise errors.RecipeError(f"goodput {text!r}", problems)
    return Slo(**values)


@dataclass(frozen=True, kw_only=True)
class Summary:
    """The whole run in numbers. Rates are per second of `duration_s`."""

    duration_s: float
    sent: int
    ok: int
    failed: int
    cancelled: int
    request_rate: float
    output_token_rate: float
    input_token_rate: float
    ttft: Stats
    itl: Stats
    tpot: Stats
    e2e: Stats
    lag: Stats  # send time minus scheduled time (open loop): the generator's own delay
    errors: dict[str, int] = field(default_factory=dict)
    error_examples: dict[str, str] = field(default_factory=dict)  # kind → the first request's text
    slo: Slo | None = None
    goodput_rps: float | None = None
    slo_attainment: float | None = None


def _examples(rows: Sequence[records.RequestRecord]) -> dict[str, str]:
    """The first failed request's error text of each kind (the records keep every one)."""
    examples: dict[str, str] = {}
    for r in rows:
        if r.error is not None and r.error_detail and r.error not in examples:
            examples[r.error] = r.error_detail
    return examples


def summarize(rows: Sequence[records.RequestRecord], duration_s: float, slo: Slo | None = None) -> Summary:
    """Summary of `rows` over a run of `duration_s` seconds."""
    done = [r for r in rows if r.error != records.CANCELLED]
    good = [r for r in done if r.ok]
    per_s = 1.0 / duration_s if duration_s > 0 else 0.0
    met = sum(1 for r in good if slo.met(r)) if slo is not None else None
    return Summary(
        duration_s=duration_s,
        sent=len(rows),
        ok=len(good),
        failed=len(done) - len(good),
        cancelled=len(rows) - len(done),
        request_rate=len(good) * per_s,
        output_token_rate=sum(r.output_tokens for r in good) * per_s,
        input_token_rate=sum(r.input_tokens for r in good) * per_s,
        ttft=stats(r.ttft_s for r in good if r.ttft_s is not None),
        itl=stats(gap for r in good for gap in r.itl_s),
        tpot=stats(tp for r in good if (tp := r.tpot_s) is not None),
        e2e=stats(r.e2e_s for r in good),
        lag=stats(lag for r in rows if (lag := r.lag_s) is not None),
        errors=dict(Counter(r.error for r in rows if r.error is not None).most_common()),
        error_examples=_examples(rows),
        slo=slo,
        goodput_rps=None if met is None else met * per_s,
        slo_attainment=None if met is None or not done else met / len(done),
    )


def ms(value: float | None) -> float | None:
    """Seconds as milliseconds (None stays None: no sample, never 0)."""
    return None if value is None else value * 1000.0


def vllm_compatible(rows: Sequence[records.RequestRecord], s: Summary) -> dict[str, float | int | None]:
    """The summary under the flat names and units of `vllm bench serve --save-result` (its
    benchmark_serving.py): rates per second of the run, latencies in milliseconds, over successful
    requests; TPOT is per request, (e2e − TTFT) / (output tokens − 1), ITL pools every gap. Where
    vLLM writes 0 for a statistic with no samples (no TTFT without streaming), this is None."""
    good = [r for r in rows if r.ok]
    total_in = sum(r.input_tokens for r in good)
    total_out = sum(r.output_tokens for r in good)
    per_s = 1.0 / s.duration_s if s.duration_s > 0 else 0.0
    out: dict[str, float | int | None] = {
        "duration": s.duration_s,
        "completed": len(good),
        "failed": s.failed,
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": len(good) * per_s,
        "output_throughput": total_out * per_s,
        "total_token_throughput": (total_in + total_out) * per_s,
    }
    if s.slo is not None:  # vLLM writes it only with --goodput
        out["request_goodput"] = s.goodput_rps
    for name, st in (("ttft", s.ttft), ("tpot", s.tpot), ("itl", s.itl), ("e2el", s.e2e)):
        out[f"mean_{name}_ms"] = ms(st.mean)
        out[f"median_{name}_ms"] = ms(st.p50)
        out[f"std_{name}_ms"] = ms(st.std)
        out[f"p99_{name}_ms"] = ms(st.p99)
    return out
