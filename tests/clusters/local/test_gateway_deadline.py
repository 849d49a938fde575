"""The gateway's deadline (slo.deadline_s) against in-process backends on loopback: a request with no
first token by then is shed (503, Retry-After) and its replica sees it go; one that has started
answering, or does not stream, is never cut by it."""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from swell import errors, recipe
from swell.clusters.local import cluster, gateway
from swell.metrics import scrape
from tests.clusters.local.backends import Backends
from tests.clusters.local.test_gateway import helpers_wait

STREAM = json.dumps({"model": "m", "prompt": "hi", "stream": True}).encode()
WHOLE = json.dumps({"model": "m", "prompt": "hi"}).encode()
DEADLINE_S = 0.5


@pytest.fixture
async def gw() -> AsyncIterator[gateway.Gateway]:
    g = gateway.Gateway(port=0, buffer_timeout_s=30.0, deadline_s=DEADLINE_S)
    await g.start()
    yield g
    await g.stop()


class Slow:
    """A streaming backend: headers at once, the first chunk after `first_s`, then one chunk every
    `gap_s`; it records whether the client (the gateway) went away before it finished."""

    def __init__(self, first_s: float, gap_s: float = 0.0, chunks: int = 3) -> None:
        self.first_s, self.gap_s, self.chunks = first_s, gap_s, chunks
        self.gone = asyncio.Event()
        self.finished = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse()
        await resp.prepare(request)  # headers go at once, as vLLM's streamed answers do
        try:
            await asyncio.sleep(self.first_s)
            for i in range(self.chunks):
                await resp.write(f"data: {i}\n\n".encode())
                await asyncio.sleep(self.gap_s)
            await resp.write_eof()
            self.finished = True
        except (ConnectionResetError, asyncio.CancelledError):
            self.gone.set()
            raise
        return resp


@pytest.mark.parametrize(
    ("first_s", "gap_s", "body", "shed"),
    [
        pytest.param(5.0, 0.0, STREAM, True, id="streamed, no first token by the deadline: shed"),
        pytest.param(0.0, 0.4, STREAM, False,
                     id="streamed, first token at once, answer longer than the deadline: relayed whole"),
        pytest.param(0.8, 0.0, WHOLE, False,
                     id="not streamed, answer after the deadline: relayed (its first byte is its whole answer)"),
    ],
)  # fmt: skip
async def test_the_deadline_sheds_only_a_request_with_no_first_token(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession,
    first_s: float, gap_s: float, body: bytes, shed: bool,
) -> None:  # fmt: skip
    slow = Slow(first_s, gap_s)
    gw.add_backend("a", await backends.start(slow.handle))
    async with session.post(f"{gw.url}/v1/completions", data=body) as r:
        text = await r.text()
    if shed:
        assert r.status == 503 and r.headers.get("Retry-After") == "1"
        assert "shed: no first token within the deadline of 0.5 s" in json.loads(text)["error"]["message"]
        await asyncio.wait_for(slow.gone.wait(), 5)  # the replica saw the request go: its work is dropped
        assert gw.shed == 1
        assert b'swell_gateway_rejected_total{reason="shed"} 1.0' in gw.metrics.render()[0]
    else:
        assert r.status == 200 and text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
        assert slow.finished and gw.shed == 0


async def test_a_buffered_request_is_shed_at_the_deadline_not_the_buffer_timeout(
    gw: gateway.Gateway, session: aiohttp.ClientSession
) -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with session.post(f"{gw.url}/v1/completions", data=WHOLE) as r:
        answer = await r.json()
    waited = loop.time() - t0
    assert r.status == 503 and "shed" in answer["error"]["message"]
    assert waited < gw.buffer_timeout_s / 2  # 30 s of buffer timeout; the deadline is 0.5 s
    assert gw.stats().buffered == 0


async def test_shed_requests_are_counted_as_answered_503s(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession
) -> None:
    """The planner reads demand from the gateway's answers by every code: a shed request counts."""
    slow = Slow(5.0)
    gw.add_backend("a", await backends.start(slow.handle))
    results = await asyncio.gather(*(session.post(f"{gw.url}/v1/completions", data=STREAM) for _ in range(3)))
    for r in results:
        r.release()
    assert [r.status for r in results] == [503, 503, 503]
    await helpers_wait(lambda: gw.stats().in_flight == 0)
    async with session.get(f"{gw.url}/metrics") as m:
        text = await m.text()
    samples = {(s.name, dict(s.labels).get("code")): s.value for s in scrape.parse(text)}
    assert samples[("swell_gateway_requests_total", "503")] == 3.0


def test_the_recipe_sets_the_deadline_and_it_may_not_come_before_the_ttft_slo(tmp_path: pathlib.Path) -> None:
    rec = recipe.parse({"service": {"name": "x"}, "slo": {"ttft_s": 2, "deadline_s": 4}})
    assert cluster.LocalCluster(rec, run_dir=tmp_path).gateway.deadline_s == 4.0
    assert (
        cluster.LocalCluster(recipe.parse({"service": {"name": "x"}}), run_dir=tmp_path).gateway.deadline_s
        is None
    )
    with pytest.raises(errors.RecipeError) as exc:
        recipe.parse({"service": {"name": "x"}, "slo": {"ttft_s": 2, "deadline_s": 1}})
    assert "slo.deadline_s" in str(exc.value) and "at least ttft_s (2)" in str(exc.value)


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        pytest.param(STREAM, True, id="stream true"),
        pytest.param(WHOLE, False, id="no stream key"),
        pytest.param(b'{"stream": false}', False, id="stream false"),
        pytest.param(b'{"stream": "yes"}', False, id="stream not a boolean"),
        pytest.param(b'"stream"', False, id="not an object"),
        pytest.param(b'{"stream": tru', False, id="not JSON"),
    ],
)
def test_which_requests_stream(body: bytes, expect: bool) -> None:
    assert gateway.streams(body) is expect
