"""The load generator against a real local server with known delays: timings, protocols, errors, bounds."""

from __future__ import annotations

import asyncio
import json
import pathlib
import socket

import numpy as np
import pytest

from swell import errors
from swell.loadgen import options, records, runner, summary
from swell.workload import arrivals, patterns, rates, shapes

from . import fake_llm

# Sleeps never end early; they may end late on a busy machine: generous upper slack.
SLACK_S = 0.15
SMALL = shapes.Shape(input_mean=20, input_stddev=0, output_mean=5, output_stddev=0)


def _opts(server: fake_llm.Server, **kw: object) -> options.Options:
    base: dict[str, object] = {"url": server.url, "shape": SMALL, "timeout_s": 10.0}
    return options.Options(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", ["openai-chat", "openai-completions"])
async def test_streaming_measures_ttft_and_inter_token_latency(
    server: fake_llm.Server, protocol: str
) -> None:
    result = await runner.run(_opts(server, protocol=protocol, concurrency=3, requests=9))
    s = result.summary
    assert (s.sent, s.ok, s.failed) == (9, 9, 0)
    assert all(r.output_tokens == 5 and r.status == 200 for r in result.records)
    assert fake_llm.TTFT_S <= s.ttft.p50 < fake_llm.TTFT_S + SLACK_S  # type: ignore[operator]
    assert s.itl.count == 9 * 4
    assert fake_llm.ITL_S * 0.9 <= s.itl.p50 < fake_llm.ITL_S + SLACK_S  # type: ignore[operator]
    assert fake_llm.ITL_S * 0.9 <= s.tpot.p50 < fake_llm.ITL_S + SLACK_S  # type: ignore[operator]
    assert fake_llm.TTFT_S + 4 * fake_llm.ITL_S <= s.e2e.p50 < fake_llm.TTFT_S + 4 * fake_llm.ITL_S + SLACK_S  # type: ignore[operator]
    assert server.seen.paths[0].endswith(
        "chat/completions" if protocol == "openai-chat" else "/v1/completions"
    )
    body = server.seen.bodies[0]
    assert body["model"] == "fake-llm"  # asked /v1/models
    assert body["max_tokens"] == 5 and body["stream"] is True


async def test_delays_from_headers_and_non_streaming(server: fake_llm.Server) -> None:
    headers = (("X-TTFT", "0.05"), ("X-ITL", "0.02"))
    result = await runner.run(
        _opts(server, stream=False, concurrency=2, requests=4, headers=headers, model="m")
    )
    s = result.summary
    assert s.ok == 4 and s.ttft.count == 0 and s.itl.count == 0
    assert 0.05 + 4 * 0.02 <= s.e2e.p50 < 0.13 + SLACK_S  # type: ignore[operator]
    assert s.output_token_rate > 0 and server.seen.bodies[0]["model"] == "m"


async def test_kserve_v1_predict(server: fake_llm.Server) -> None:
    result = await runner.run(_opts(server, protocol="kserve", model="iris", concurrency=2, requests=6))
    assert result.summary.ok == 6
    assert result.url.endswith("/v1/models/iris:predict")
    assert isinstance(server.seen.bodies[0]["instances"], list)
    assert fake_llm.TTFT_S <= result.summary.e2e.p50 < fake_llm.TTFT_S + SLACK_S  # type: ignore[operator]
    body = '{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
    result = await runner.run(_opts(server, protocol="kserve", model="iris", requests=2, body=body))
    assert result.summary.ok == 2 and server.seen.bodies[-1] == {"instances": [[6.8, 2.8, 4.8, 1.4]]}


async def test_http_template_fills_placeholders(server: fake_llm.Server) -> None:
    template = '{"text": "{{prompt}}", "n": {{output_tokens}}, "i": {{index}}, "m": "{{model}}"}'
    result = await runner.run(
        _opts(server, url=server.url + "/echo", protocol="http", body=template, requests=3, model="x")
    )
    assert result.summary.ok == 3
    assert sorted(b["i"] for b in server.seen.bodies) == [0, 1, 2]
    first = server.seen.bodies[0]
    assert first["n"] == 5 and first["m"] == "x" and len(str(first["text"]).split()) == 20


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("path", "protocol", "kind"),
    [
        ("/status/503", "http", "http_503"),
        ("/status/429", "http", "http_429"),
        ("/slow", "http", "timeout"),
        ("/broken/v1/chat/completions", "openai-chat", "stream_error"),
        ("/drop", "http", "disconnected"),
        (None, "http", "connection"),
    ],
    ids=["503", "429", "timeout", "error inside a stream", "connection dropped", "connection refused"],
)
async def test_errors_are_counted_by_kind(
    server: fake_llm.Server, path: str | None, protocol: str, kind: str
) -> None:
    url = server.url + path if path else f"http://127.0.0.1:{_closed_port()}/x"
    result = await runner.run(_opts(server, url=url, protocol=protocol, requests=2, timeout_s=0.3, model="m"))
    s = result.summary
    assert s.ok == 0 and s.failed == 2
    assert s.errors == {kind: 2}
    assert s.e2e.count == 0 and s.e2e.p50 is None  # no data is never zero


async def test_open_loop_sends_on_the_workload_schedule(server: fake_llm.Server) -> None:
    workload = patterns.OpenLoop(schedule=rates.Constant(rps=40), shape=SMALL)
    result = await runner.run(_opts(server, workload=workload, duration_s=1.5, seed=5))
    expected = arrivals.collect(workload, seed=5, horizon_s=1.5)
    scheduled = np.array([r.scheduled_s for r in result.records])
    np.testing.assert_allclose(scheduled, expected.t)
    lag = np.array([r.lag_s for r in result.records])
    assert lag.min() >= 0 and np.median(lag) < 0.05
    asked = [r.input_tokens - fake_llm.CHAT_TEMPLATE_TOKENS for r in result.records]  # the server's count
    assert asked == expected.input_tokens.tolist()


async def test_trace_replay_reproduces_its_arrival_times(
    server: fake_llm.Server, tmp_path: pathlib.Path
) -> None:
    times = [0.0, 0.1, 0.15, 0.6, 0.61, 1.2]
    trace = tmp_path / "t.csv"
    trace.write_text(
        "t,input_tokens,output_tokens\n" + "".join(f"{t},{10 + i},2\n" for i, t in enumerate(times))
    )
    result = await runner.run(_opts(server, trace=str(trace), speedup=2.0, shape=None))
    starts = np.array([r.start_s for r in result.records])
    np.testing.assert_allclose([r.scheduled_s for r in result.records], np.array(times) / 2)
    np.testing.assert_allclose(starts - starts[0], np.array(times) / 2, atol=0.03)
    asked = [r.input_tokens - fake_llm.CHAT_TEMPLATE_TOKENS for r in result.records]  # the server's count
    assert asked == [10, 11, 12, 13, 14, 15]


async def test_duration_bounds_a_closed_loop(server: fake_llm.Server) -> None:
    result = await runner.run(_opts(server, concurrency=2, duration_s=0.6))
    assert max(r.start_s for r in result.records) < 0.6  # nothing starts after the duration
    assert result.summary.ok == result.summary.sent >= 4  # and what started was waited for, not cut
    # two users, each request at least TTFT + a few ITL long: the loop cannot have sent more
    each = fake_llm.TTFT_S + fake_llm.ITL_S
    assert result.summary.sent <= 2 * (int(0.6 / each) + 1)


async def test_stop_ends_early_with_a_partial_result(server: fake_llm.Server) -> None:
    stop = asyncio.Event()
    seen: list[runner.Progress] = []

    def report(p: runner.Progress) -> None:  # stopped at the third report, not after 0.5 s of a clock
        seen.append(p)  # that a busy machine may give fewer reports in (a plain-clone run got one)
        if len(seen) == 3:
            stop.set()

    result = await runner.run(_opts(server, rate=20, duration_s=30), stop=stop, progress=report, progress_interval_s=0.1)
    assert result.interrupted
    assert result.summary.sent < 20 * 30 / 4  # stopped early: far from the 600 a full run sends
    assert result.summary.ok + result.summary.cancelled == result.summary.sent > 0
    assert len(seen) >= 3 and seen[-1].sent >= seen[0].sent
    assert all(0 <= (p.fraction or 0) <= 1 for p in seen)


async def test_max_in_flight_caps_concurrency(server: fake_llm.Server) -> None:
    fast = (("X-TTFT", "0.02"), ("X-ITL", "0.005"))
    result = await runner.run(_opts(server, rate=200, requests=30, max_in_flight=3, headers=fast))
    assert result.summary.ok == 30
    events = sorted([(r.start_s, 1) for r in result.records] + [(r.end_s, -1) for r in result.records])
    assert max(np.cumsum([e[1] for e in events])) <= 3


async def test_goodput_counts_requests_meeting_every_slo(server: fake_llm.Server) -> None:
    tight = await runner.run(_opts(server, concurrency=3, requests=3, slo=summary.parse_slo("ttft:50")))
    assert tight.summary.goodput_rps == 0 and tight.summary.slo_attainment == 0
    slo = summary.parse_slo("ttft:2000 tpot:500 e2el:5000")
    loose = await runner.run(_opts(server, concurrency=3, requests=3, slo=slo))
    assert loose.summary.slo_attainment == 1 and loose.summary.goodput_rps == pytest.approx(
        loose.summary.request_rate
    )


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({"concurrency": 2, "rate": 3.0}, "load"),
        ({"rate": -1.0}, "rate"),
        ({"concurrency": 0}, "concurrency"),
        ({"duration_s": 0.0}, "duration"),
        ({"requests": 0}, "requests"),
        ({"rate": 1.0, "speedup": 2.0}, "speedup"),
        ({"concurrency": 1, "burstiness": 0.5}, "burstiness"),
        ({"rate": float("inf")}, "rate"),
        ({"rate": float("inf"), "requests": 5, "burstiness": 0.5}, "burstiness"),
        ({"concurrency": 2, "max_in_flight": 3}, "max-in-flight"),
        ({"pattern": "closed:users=2", "max_in_flight": 3}, "max-in-flight"),
        ({"max_in_flight": 3}, "max-in-flight"),
        ({"warmup": -1}, "warmup"),
    ],
    ids=[
        "two loads",
        "negative rate",
        "no users",
        "zero duration",
        "zero requests",
        "speedup without trace",
        "burstiness without rate",
        "rate inf without a request count",
        "burstiness with rate inf",
        "max in flight with a closed loop",
        "max in flight with a closed-loop pattern",
        "max in flight with the default one user",
        "negative warmup",
    ],
)
def test_bad_options_are_refused_before_any_request(kw: dict[str, object], path: str) -> None:
    with pytest.raises(errors.RecipeError) as info:
        options.plan(options.Options(url="http://127.0.0.1:9", **kw))  # type: ignore[arg-type]
    assert path in [p.path for p in info.value.problems]


def test_plan_defaults() -> None:
    plan = options.plan(options.Options(url="http://x"))
    assert isinstance(plan.load, patterns.ClosedLoop) and plan.load.users == 1 and plan.horizon_s == 60
    counted = options.plan(options.Options(url="http://x", rate=5, requests=10))
    assert counted.horizon_s == float("inf") and counted.max_requests == 10
    shaped = options.plan(options.Options(url="http://x", pattern="steps:rates=1/2,every=10"))
    assert shaped.horizon_s == 20  # the pattern's own length


def test_run_sync_works_without_a_loop(threaded_server: fake_llm.Server) -> None:
    result = runner.run_sync(_opts(threaded_server, requests=2, headers=(("X-TTFT", "0"), ("X-ITL", "0"))))
    assert result.summary.ok == 2
    assert json.loads(json.dumps(result.summary.errors)) == {}


@pytest.mark.parametrize(
    ("trace", "speedup", "text"),
    [
        ("azure-conv", 10.0, "azure-conv:speedup=10"),
        ("servegen:m-small", 2.0, "servegen:m-small,speedup=2"),
        ("azure-code", 1.0, "azure-code"),
        ("reqs.csv", 4.0, "trace:reqs.csv,speedup=4"),
    ],
    ids=["a bare named trace takes its speedup after a colon", "a named trace with options after a comma",
         "no speedup adds nothing", "a file becomes a trace spec"],
)  # fmt: skip
def test_trace_and_speedup_make_one_workload_spec(
    trace: str, speedup: float, text: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert options._trace_spec(trace, speedup) == text
    monkeypatch.setenv(
        "SWELL_TRACES", str(tmp_path)
    )  # no trace files: parsing stops at the file, past the kind
    with pytest.raises(errors.RecipeError) as info:
        options.plan(options.Options(url="http://x", trace=trace, speedup=speedup))
    assert [p.path for p in info.value.problems] in (["file"], ["directory"]), info.value


@pytest.mark.parametrize(
    ("protocol", "stream", "usage", "counted", "source"),
    [
        ("openai-chat", True, "full", 20 + fake_llm.CHAT_TEMPLATE_TOKENS, records.FROM_SERVER),
        ("openai-chat", False, "full", 20 + fake_llm.CHAT_TEMPLATE_TOKENS, records.FROM_SERVER),
        ("openai-completions", True, "full", 20, records.FROM_SERVER),
        ("openai-completions", False, "full", 20, records.FROM_SERVER),
        ("openai-chat", True, "none", 20, records.FROM_REQUEST),
        ("openai-chat", False, "no-prompt", 20, records.FROM_REQUEST),
        ("openai-completions", True, "no-prompt", 20, records.FROM_REQUEST),
    ],
    ids=[
        "chat streamed: the template's tokens counted",
        "chat whole",
        "completions streamed",
        "completions whole",
        "no usage: the asked length",
        "usage without prompt_tokens",
        "streamed usage without prompt_tokens",
    ],
)
async def test_input_tokens_are_the_servers_count_where_it_gives_one(
    server: fake_llm.Server, protocol: str, stream: bool, usage: str, counted: int, source: str
) -> None:
    fast = (("X-TTFT", "0.01"), ("X-ITL", "0.002"), ("X-Usage", usage))
    result = await runner.run(_opts(server, protocol=protocol, stream=stream, requests=3, headers=fast))
    assert result.summary.ok == 3
    assert [(r.input_tokens, r.input_tokens_from) for r in result.records] == [(counted, source)] * 3
    assert result.summary.input_token_rate == pytest.approx(3 * counted / result.summary.duration_s)
    # output tokens: the server's completion_tokens, else the token chunks counted (5 either way)
    assert [r.output_tokens for r in result.records] == [5] * 3


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning", None], ids=str)
async def test_reasoning_deltas_are_output_tokens(server: fake_llm.Server, key: str | None) -> None:
    """3 of 5 tokens are thinking: TTFT is the first of them, not the first answer token."""
    itl = 0.1
    headers = (("X-ITL", str(itl)), ("X-Reasoning", "3" if key else "0"), ("X-Reasoning-Key", key or ""))
    result = await runner.run(_opts(server, requests=2, headers=headers))
    s = result.summary
    assert s.ok == 2 and [r.output_tokens for r in result.records] == [5, 5]
    assert fake_llm.TTFT_S <= s.ttft.max < fake_llm.TTFT_S + SLACK_S  # type: ignore[operator]
    assert s.itl.count == 2 * 4  # every gap after the first token, thinking included
    assert itl * 0.9 <= s.tpot.p50 < itl + SLACK_S / 4  # type: ignore[operator]


@pytest.mark.parametrize(
    ("path", "headers", "stream", "outcomes"),
    [
        ("", (("X-Close", "1"),), True, [(None, 1), (None, 2)] * 3),
        ("", (("X-Close", "1"),), False, [(None, 1), (None, 2)] * 3),
        ("/once", (), False, [(None, 1), ("disconnected", 2)] + [("disconnected", 1)] * 4),
        ("/drop", (), False, [("disconnected", 1)] * 6),
        ("", (), True, [(None, 1)] * 6),
    ],
    ids=[
        "closed after a stream (llama.cpp): sent again on a fresh connection",
        "closed after a whole answer",
        "sent again once only, and a drop on a new connection is the server's answer",
        "dropped on a new connection: not sent again",
        "keep-alive kept: one try each",
    ],
)
async def test_a_request_on_a_keep_alive_connection_the_server_closed_is_sent_again(
    server: fake_llm.Server,
    path: str,
    headers: tuple[tuple[str, str], ...],
    stream: bool,
    outcomes: list[tuple[str | None, int]],
) -> None:
    fast = (("X-TTFT", "0.01"), ("X-ITL", "0.002"), *headers)
    protocol = "http" if path else "openai-chat"
    url = server.url + (path or "/v1/chat/completions")
    result = await runner.run(
        _opts(server, url=url, protocol=protocol, stream=stream, requests=6, headers=fast, model="m")
    )
    assert [(r.error, r.attempts) for r in result.records] == outcomes
    for r in result.records:
        assert (r.error_detail is None) == r.ok
        if not r.ok:
            assert r.error_detail == "ServerDisconnectedError: Server disconnected" and r.status is None
    # The server handled each request once: a request is sent again only when the server never read it.
    assert len(server.seen.bodies) == 6


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/status/503", '503 Service Unavailable: {"error": "as asked"}'),
        ("/slow", "TimeoutError"),
        ("/broken/v1/chat/completions", "StreamError: {'message': 'out of memory'}"),
        (None, "ClientConnectorError: Cannot connect to host 127.0.0.1:"),
    ],
    ids=["an HTTP error's body", "a timeout", "an error inside a stream", "connection refused"],
)
async def test_every_failed_request_keeps_its_error_text(
    server: fake_llm.Server, path: str | None, detail: str
) -> None:
    url = server.url + path if path else f"http://127.0.0.1:{_closed_port()}/x"
    protocol = "openai-chat" if path and "chat" in path else "http"
    result = await runner.run(_opts(server, url=url, protocol=protocol, requests=2, timeout_s=0.3, model="m"))
    assert all(r.error_detail is not None and r.error_detail.startswith(detail) for r in result.records)
    assert all(r.attempts == 1 for r in result.records)  # none of these is sent again
    (kind,) = result.summary.errors
    assert result.summary.error_examples == {kind: result.records[0].error_detail}


FAST = (("X-TTFT", "0.05"), ("X-ITL", "0.002"))


@pytest.mark.parametrize(
    ("load", "at_once"),
    [
        ({"concurrency": 2}, 2),
        ({"rate": 50.0}, 3),
        ({"rate": 50.0, "max_in_flight": 1}, 1),
        ({"rate": float("inf")}, 3),
    ],
    ids=["closed loop: as many at once as users", "open loop: all at once", "open loop, capped",
         "rate inf"],
)  # fmt: skip
async def test_warmup_requests_go_first_and_count_in_no_statistic(
    server: fake_llm.Server, load: dict[str, object], at_once: int
) -> None:
    seen: list[runner.Progress] = []
    varied = shapes.Shape(input_mean=20, input_stddev=8, output_mean=3, output_stddev=1)
    kw = {"requests": 4, "headers": FAST, "seed": 3, "shape": varied, **load}
    result = await runner.run(_opts(server, warmup=3, **kw), progress=seen.append, progress_interval_s=0.01)
    assert len(result.warmup) == 3 and all(r.ok for r in result.warmup)
    assert len(server.seen.bodies) == 3 + 4 and result.summary.sent == len(result.records) == 4
    ends = sorted(r.end_s for r in result.warmup)
    starts = sorted(r.start_s for r in result.warmup)
    assert sum(s < ends[0] for s in starts) == at_once  # sent at once before the first one ended
    # The run's clock starts after the warmup: its first request is sent on time, not 50 ms late.
    assert min(r.start_s - (r.scheduled_s or 0.0) for r in result.records) < 0.04
    warm = [p for p in seen if p.phase == "warmup"]
    assert warm and max(p.done for p in warm) <= 3 and seen[-1].phase == "run"
    assert seen.index(warm[-1]) < min(i for i, p in enumerate(seen) if p.phase == "run")
    # The run draws the same requests with or without warmup.
    alone = await runner.run(_opts(server, **kw))
    same = [(r.scheduled_s, r.input_tokens) for r in alone.records]
    assert [(r.scheduled_s, r.input_tokens) for r in result.records] == same


async def test_rate_inf_sends_every_request_at_once(server: fake_llm.Server) -> None:
    result = await runner.run(_opts(server, rate=float("inf"), requests=8, headers=FAST))
    assert result.summary.ok == 8 and "all at once" in result.description
    assert all(r.scheduled_s == 0 for r in result.records)
    assert max(r.start_s for r in result.records) < min(r.end_s for r in result.records)  # all in flight


@pytest.mark.parametrize(
    ("kw", "model"),
    [
        ({}, "fake-llm"),
        ({"model": "m"}, "m"),
        ({"protocol": "kserve", "model": "iris"}, "iris"),
        ({"protocol": "http", "url_path": "/echo"}, None),
    ],
    ids=["asked of the server", "given", "kserve", "http without a model"],
)
async def test_the_result_names_the_model_the_requests_used(
    server: fake_llm.Server, kw: dict[str, str], model: str | None
) -> None:
    url = server.url + kw.pop("url_path", "")
    result = await runner.run(_opts(server, url=url, requests=1, headers=FAST, **kw))
    assert result.summary.ok == 1 and result.options.model == model
