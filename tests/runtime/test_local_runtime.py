"""The local runtime end to end: real replica processes, the gateway, scraping and the control loop.

Scale 1 → N under load and back to 1 with no failed request; from zero, the first request is
buffered and answered; an unreadable replica holds the replica count; the same loop on a real
Prometheus; the real llama.cpp engine streaming to the official `openai` client, and dropping
the work of the requests the gateway sheds at the SLO's deadline; a busy replica failing
readiness stays in the signals.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from swell import recipe
from swell.cli import up
from swell.core import snapshot
from swell.runtime import local
from swell.servers import llama_cpp
from tests.clusters.local import helpers
from tests.clusters.local.helpers import no_replica_left  # noqa: F401
from tests.support import prometheus

MAX_TOKENS = 400

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s


def ready(rt: local.LocalRuntime) -> int:
    return sum(1 for r in rt.cluster.manager.replicas() if r.state == "ready")


def active(rt: local.LocalRuntime) -> int:
    return len(rt.cluster.manager.replicas())


@contextlib.asynccontextmanager
async def load(session: aiohttp.ClientSession, url: str, users: int) -> AsyncIterator[list[int]]:
    """`users` closed-loop users sending completions until the block ends; yields the status codes."""
    codes: list[int] = []
    stop = asyncio.Event()

    async def user() -> None:
        while not stop.is_set():
            async with session.post(url + "/v1/completions", json={"prompt": "hi", "max_tokens": 2}) as r:
                await r.read()
                codes.append(r.status)

    tasks = [asyncio.ensure_future(user()) for _ in range(users)]
    try:
        yield codes
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_scales_up_under_load_and_back_down_with_zero_failed_requests(
    session: aiohttp.ClientSession,
) -> None:
    rec = helpers.tiny_recipe(delay=0.2, autoscaling={"max_replicas": 3})
    async with local.LocalRuntime(rec) as rt:
        await helpers.wait_until(lambda: ready(rt) == 1, "one ready replica")
        async with load(session, rt.endpoint, users=8) as codes:
            await helpers.wait_until(lambda: ready(rt) == 3, "scale-up to 3 ready replicas")
            served = len(codes)
            await helpers.wait_until(lambda: len(codes) > served + 10, "traffic on 3 replicas")
        async with load(session, rt.endpoint, users=1) as quiet:  # light traffic during the scale-down
            await helpers.wait_until(lambda: rt.cluster.target == 1 and active(rt) == 1, "scale-down to 1")
        codes += quiet
        assert codes and set(codes) == {200}, f"failed requests: {[c for c in codes if c != 200]}"
        ups = [e.decision for e in rt.history if e.decision.desired > e.decision.current]
        downs = [e.decision for e in rt.history if e.decision.desired < e.decision.current]
        assert ups and downs and max(d.desired for d in ups) == 3
        assert all(d.reason for d in ups + downs)


async def test_scale_from_zero_buffers_the_first_request_and_answers_it(
    session: aiohttp.ClientSession,
) -> None:
    rec = helpers.tiny_recipe(autoscaling={"min_replicas": 0, "max_replicas": 2, "cooldown_s": 1.0})
    async with local.LocalRuntime(rec) as rt:
        assert rt.cluster.target == 0 and active(rt) == 0
        async with session.post(rt.endpoint + "/v1/completions", json={"prompt": "first"}) as r:
            assert r.status == 200 and (await r.json())["choices"][0]["text"]
        assert any(e.decision.bound_by == "activation" for e in rt.history)
        await helpers.wait_until(lambda: rt.cluster.target == 0 and active(rt) == 0, "back to zero when idle")


async def test_unreadable_replica_metrics_hold_the_replica_count(session: aiohttp.ClientSession) -> None:
    # both replicas start with /metrics answering 500: readings are partial, so no scale-down
    rec = helpers.tiny_recipe(extra=("--metrics-broken",), autoscaling={"max_replicas": 2})
    async with local.LocalRuntime(rec, initial=2) as rt:
        await helpers.wait_until(lambda: ready(rt) == 2, "two ready replicas")
        start = len(rt.history)
        await helpers.wait_until(lambda: len(rt.history) >= start + 8, "eight decisions")
        assert rt.cluster.target == 2
        last = rt.history.last()
        assert last is not None and "partial data" in last.decision.proposals[0].note
        urls = [r.url for r in rt.cluster.manager.replicas() if r.url]
        async with session.post(f"{urls[0]}/control/fix-metrics") as r:  # one readable, one not: still hold
            assert r.status == 200
        start = len(rt.history)
        await helpers.wait_until(lambda: len(rt.history) >= start + 8, "eight more decisions")
        assert rt.cluster.target == 2
        async with session.post(f"{urls[1]}/control/fix-metrics") as r:
            assert r.status == 200
        await helpers.wait_until(lambda: rt.cluster.target == 1, "the scale-down once every replica reads")


async def test_signals_from_a_real_prometheus(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    with prometheus.running(tmp_path, scrape_interval_s=0.5) as prom:
        rec = helpers.tiny_recipe(
            delay=0.2,
            metrics={"source": "prometheus", "prometheus_url": prom.url, "scrape_interval_s": 0.5},
            autoscaling={"max_replicas": 2},
        )
        rec = rec.model_copy(
            update={
                "autoscaling": rec.autoscaling.model_copy(
                    update={"signals": (rec.autoscaling.signals[0].model_copy(update={"window_s": 4.0}),)}
                )
            }
        )
        async with local.LocalRuntime(rec, file_sd=prom.sd_file) as rt:
            await helpers.wait_until(lambda: ready(rt) == 1, "one ready replica")
            async with load(session, rt.endpoint, users=6) as codes:
                await helpers.wait_until(lambda: ready(rt) == 2, "scale-up on Prometheus readings", 60)
            assert set(codes) == {200}
            ups = [e for e in rt.history if e.decision.desired > e.decision.current]
            assert ups and ups[0].snapshot.signals["concurrency"].ok


async def test_openai_client_streams_from_real_llama_cpp_through_the_gateway() -> None:
    base = up.load_recipe(None)
    rec = base.model_copy(update={"autoscaling": base.autoscaling.model_copy(update={"max_replicas": 1})})
    rec = recipe.Recipe.model_validate(rec.model_dump(by_alias=True))
    async with local.LocalRuntime(rec, port=0) as rt:
        await helpers.wait_until(lambda: ready(rt) == 1, "llama.cpp ready", 60)
        client = openai.AsyncOpenAI(base_url=rt.endpoint + "/v1", api_key="none", max_retries=0)
        try:
            stream = await client.chat.completions.create(
                model="SmolLM2-135M-Instruct",
                messages=[{"role": "user", "content": "Say hello."}],
                max_tokens=12,
                stream=True,
            )
            pieces = [
                c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content
            ]
            assert len(pieces) >= 2 and "".join(pieces).strip()
            done = await client.completions.create(
                model="SmolLM2-135M-Instruct", prompt="Once upon", max_tokens=6
            )
            assert done.choices[0].text
        finally:
            await client.close()
        assert rt.cluster.gateway.stats().requests >= 2


async def test_real_llama_cpp_drops_the_work_of_the_requests_the_gateway_shed(
    session: aiohttp.ClientSession,
) -> None:
    """Six long streamed completions at one llama.cpp replica with two slots and a 1 s deadline:
    the four that wait for a slot are shed, and llama.cpp, seeing their connections close, never
    generates them (its predicted tokens count only the answers served)."""
    base = up.load_recipe(None)
    data = base.model_dump(by_alias=True)
    data["autoscaling"] |= {"min_replicas": 1, "max_replicas": 1}
    data["slo"] = {"ttft_s": 1.0, "e2e_s": 60.0, "deadline_s": 1.0}
    rec = recipe.Recipe.model_validate(data)
    body = {"model": "SmolLM2-135M-Instruct", "prompt": "Count: one, two,", "max_tokens": MAX_TOKENS,
            "ignore_eos": True, "temperature": 0, "stream": True}  # fmt: skip
    async with local.LocalRuntime(rec, port=0) as rt:
        await helpers.wait_until(lambda: ready(rt) == 1, "llama.cpp ready", 60)

        async def one() -> tuple[int, str]:
            async with session.post(rt.endpoint + "/v1/completions", json=body) as r:
                return r.status, await r.text()

        answers = await asyncio.gather(*(one() for _ in range(6)))
        served = [t for code, t in answers if code == 200]
        shed = [t for code, t in answers if code == 503]
        assert len(served) + len(shed) == 6 and served and shed, [c for c, _ in answers]
        assert all("shed: no first token within the deadline of 1 s" in t for t in shed)
        assert rt.cluster.gateway.stats().shed == len(shed)
        url = rt.cluster.manager.replicas()[0].url
        assert url is not None

        async def metrics() -> str:
            async with session.get(url + "/metrics") as r:
                return await r.text()

        for _ in range(200):  # bounded: until llama.cpp has nothing processing or deferred
            if llama_cpp.busy_requests(await metrics()) == 0:
                break
            await asyncio.sleep(0.1)
        predicted = next(
            s.value for f in text_string_to_metric_families(await metrics()) for s in f.samples
            if s.name == "llamacpp:tokens_predicted_total"
        )  # fmt: skip
        # the answers served, each up to MAX_TOKENS, and less than one more: had llama.cpp generated
        # what was shed it would be about 6 x MAX_TOKENS
        assert predicted < MAX_TOKENS * (len(served) + 1), (predicted, len(served))


async def test_a_busy_replica_failing_readiness_keeps_its_queue_in_the_signals(
    session: aiohttp.ClientSession,
) -> None:
    queue = {
        "name": "queue",
        "kind": "gauge",
        "metric": "tiny_requests_in_flight",
        "aggregate": "sum",
        "window_s": 0.5,
        "target": 4,
        "target_type": "AverageValue",
    }
    rec = helpers.tiny_recipe(
        autoscaling={"max_replicas": 1, "signals": [queue]},
        probes={
            "readiness": {"path": "/health", "period_s": 0.1, "timeout_s": 1, "failure_threshold": 1},
            "liveness": {"path": "/env", "period_s": 1, "timeout_s": 2, "failure_threshold": 3},
        },
    )
    async with local.LocalRuntime(rec) as rt:
        await helpers.wait_until(lambda: ready(rt) == 1, "one ready replica")
        r = rt.cluster.manager.replicas()[0]
        held = [
            asyncio.ensure_future(
                session.post(rt.endpoint + "/v1/completions", json={"prompt": "hi", "hold": True})
            )
            for _ in range(2)
        ]
        try:
            await helpers.wait_until(lambda: rt.cluster.gateway.in_flight(r.name) == 2, "2 requests held")
            async with session.post(f"{r.url}/control/unhealthy") as resp:
                assert resp.status == 200
            await helpers.wait_until(lambda: ready(rt) == 0, "the busy replica failing readiness")
            scraped = len(rt.timeline)
            await helpers.wait_until(lambda: len(rt.timeline) >= scraped + 3, "three scrapes since")
            assert r.name in rt.targets()  # still scraped: its queue is real demand

            def reading() -> snapshot.Reading:
                assert rt.embedded is not None
                return rt.embedded.evaluate(rt.controller.signals, rt.clock.now())["queue"]

            await helpers.wait_until(
                lambda: (reading().per_replica or {}).get(r.name) == 2 and ready(rt) == 0,
                "the unready replica's 2 requests in the queue signal",
                10,
            )
            assert reading().value == 2 and not reading().partial
        finally:
            async with session.post(f"{r.url}/control/release") as resp:
                assert resp.status == 200
            for f in held:
                (await f).release()
