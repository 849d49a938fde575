"""Summaries from records: percentiles, throughput, errors, goodput; SLO parsing; error kinds."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from swell import errors
from swell.loadgen import records, summary


def rec(i: int, *, start: float = 0.0, e2e: float = 1.0, ttft: float | None = 0.1, out: int = 11,
        error: str | None = None, scheduled: float | None = None) -> records.RequestRecord:  # fmt: skip
    return records.RequestRecord(
        index=i, scheduled_s=scheduled, start_s=start, end_s=start + e2e, ttft_s=ttft,
        itl_s=(0.09,) * (out - 1) if ttft is not None else (), input_tokens=100, output_tokens=out,
        status=None if error else 200, error=error,
    )  # fmt: skip


def test_percentiles_throughput_and_tpot() -> None:
    rows = [rec(i, e2e=float(i + 1)) for i in range(100)]
    s = summary.summarize(rows, duration_s=50.0)
    assert (s.sent, s.ok, s.failed, s.cancelled) == (100, 100, 0, 0)
    assert s.request_rate == 2.0 and s.output_token_rate == 22.0 and s.input_token_rate == 200.0
    assert s.e2e.p50 == pytest.approx(50.5) and s.e2e.p99 == pytest.approx(99.01) and s.e2e.max == 100.0
    assert s.ttft.mean == pytest.approx(0.1) and s.itl.count == 1000
    assert rows[0].tpot_s == pytest.approx((1.0 - 0.1) / 10)
    assert s.lag.count == 0 and s.lag.p50 is None


def test_failures_and_cancellations_are_apart_from_latencies() -> None:
    rows = [rec(0), rec(1, error="http_503"), rec(2, error="timeout"), rec(3, error="http_503"),
            rec(4, error=records.CANCELLED)]  # fmt: skip
    s = summary.summarize(rows, duration_s=1.0)
    assert (s.ok, s.failed, s.cancelled) == (1, 3, 1)
    assert s.errors == {"http_503": 2, "timeout": 1, "cancelled": 1}
    assert s.e2e.count == 1 and s.request_rate == 1.0


def test_goodput_needs_every_threshold_and_the_values_they_name() -> None:
    rows = [
        rec(0, ttft=0.1, e2e=1.0),
        rec(1, ttft=0.5, e2e=1.0),
        rec(2, ttft=None, e2e=0.5),
        rec(3, error="timeout"),
    ]
    s = summary.summarize(rows, duration_s=2.0, slo=summary.Slo(ttft_s=0.2))
    assert s.goodput_rps == 0.5 and s.slo_attainment == 0.25  # a request without TTFT cannot meet a TTFT SLO
    s = summary.summarize(rows, duration_s=2.0, slo=summary.Slo(e2e_s=0.8))
    assert s.goodput_rps == 0.5
    assert summary.summarize(rows, duration_s=2.0).goodput_rps is None


@pytest.mark.parametrize(
    ("record", "met"),
    [
        (rec(0, out=1, ttft=0.1, e2e=0.1), True),
        (rec(0, out=0, ttft=None, e2e=0.1), True),
        (rec(0, out=1, ttft=None, e2e=0.1), True),
        (rec(0, out=2, ttft=0.1, e2e=0.14), True),
        (rec(0, out=2, ttft=0.1, e2e=0.2), False),
        (rec(0, out=5, ttft=None, e2e=0.1), False),
        (rec(0, out=1, ttft=0.1, e2e=0.1, error="timeout"), False),
    ],
    ids=[
        "one token: TPOT 0, met (as vLLM)",
        "no token",
        "one token, not streamed",
        "two tokens, 40 ms apart",
        "two tokens, 100 ms apart",
        "five tokens, not streamed: no TPOT to meet it",
        "failed",
    ],
)
def test_a_tpot_slo_and_requests_of_at_most_one_token(record: records.RequestRecord, met: bool) -> None:
    assert summary.Slo(tpot_s=0.05).met(record) is met
    s = summary.summarize([record], duration_s=1.0, slo=summary.Slo(tpot_s=0.05, ttft_s=1.0, e2e_s=1.0))
    assert s.tpot.count == (record.tpot_s is not None)  # the TPOT statistic has no made-up zeros
    if record.ttft_s is not None:
        assert s.slo_attainment == float(met)


def test_send_lag_is_measured_against_the_schedule() -> None:
    rows = [rec(0, start=1.002, scheduled=1.0), rec(1, start=2.004, scheduled=2.0)]
    s = summary.summarize(rows, duration_s=3.0)
    assert s.lag.p50 == pytest.approx(0.003)


def test_parse_slo_in_vllm_form() -> None:
    assert summary.parse_slo("ttft:200 tpot:50 e2el:2000") == summary.Slo(ttft_s=0.2, tpot_s=0.05, e2e_s=2.0)
    assert summary.parse_slo("ttft:100,e2e:500") == summary.Slo(ttft_s=0.1, e2e_s=0.5)


@pytest.mark.parametrize("text", ["", "ttft", "ttft:abc", "ttft:-1", "latency:100"])
def test_parse_slo_refuses_nonsense(text: str) -> None:
    with pytest.raises(errors.RecipeError, match="problem"):
        summary.parse_slo(text)


def test_empty_run_has_no_numbers_rather_than_zeros() -> None:
    s = summary.summarize([], duration_s=0.0)
    assert s.sent == 0 and s.e2e.p50 is None and s.ttft.mean is None and s.request_rate == 0.0


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError(), "timeout"),
        (aiohttp.ServerDisconnectedError(), "disconnected"),
        (aiohttp.ClientPayloadError("x"), "payload"),
        (records.StreamError("oom"), "stream_error"),
        (json.JSONDecodeError("x", "doc", 0), "invalid_response"),
        (aiohttp.ClientOSError(), "client_error"),
        (asyncio.CancelledError(), "cancelled"),
        (RuntimeError("?"), "RuntimeError"),
    ],
)
def test_error_kinds(exc: BaseException, kind: str) -> None:
    assert records.classify(exc) == kind
