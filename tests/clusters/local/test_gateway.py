"""The gateway against in-process backends on loopback: routing, streaming, retries, buffer, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import pathlib
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from swell import errors, recipe
from swell.clusters.local import cluster, engines, gateway, gateway_metrics
from swell.metrics import scrape
from tests.clusters.local.backends import Backends, Handler


@pytest.fixture
async def gw() -> AsyncIterator[gateway.Gateway]:
    g = gateway.Gateway(port=0, buffer_requests=2, buffer_timeout_s=10.0)
    await g.start()
    yield g
    await g.stop()


def rejected(g: gateway.Gateway) -> dict[str, float]:
    """swell_gateway_rejected_total by reason, from the gateway's own exposition."""
    text = g.metrics.render()[0].decode()
    out = {}
    for line in text.splitlines():
        if line.startswith('swell_gateway_rejected_total{reason="'):
            reason = line.split('"')[1]
            out[reason] = float(line.rsplit(" ", 1)[1])
    return out


def named(name: str, gate: asyncio.Event | None = None) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        if gate is not None:
            await gate.wait()
        body = await request.read()
        return web.json_response(
            {
                "backend": name,
                "path": request.path_qs,
                "body": body.decode(),
                "x": request.headers.get("X-Test"),
            }
        )

    return handle


async def test_passes_path_query_body_and_headers(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession
) -> None:
    gw.add_backend("a", await backends.start(named("a")))
    async with session.post(f"{gw.url}/v1/x?y=1", data=b"hello", headers={"X-Test": "t"}) as r:
        assert (r.status, await r.json()) == (
            200,
            {"backend": "a", "path": "/v1/x?y=1", "body": "hello", "x": "t"},
        )


async def test_least_outstanding_requests_picks_the_idle_replica(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession
) -> None:
    gate = asyncio.Event()
    gw.add_backend("slow", await backends.start(named("slow", gate)))
    gw.add_backend("fast", await backends.start(named("fast")))
    # two requests: one lands on each; while "slow" holds one, the next ones all go to "fast"
    first = asyncio.ensure_future(session.get(f"{gw.url}/a"))
    second = asyncio.ensure_future(session.get(f"{gw.url}/b"))
    await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
    assert gw.in_flight("slow") == 1
    seen = []
    for _ in range(4):
        async with session.get(f"{gw.url}/c") as r:
            seen.append((await r.json())["backend"])
    assert seen == ["fast"] * 4
    gate.set()
    for f in (first, second):
        (await f).release()


async def test_streams_chunk_by_chunk(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession
) -> None:
    next_chunk = asyncio.Event()

    async def sse(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: one\n\n")
        await next_chunk.wait()  # the second chunk is sent only after the client saw the first
        await resp.write(b"data: two\n\n")
        await resp.write_eof()
        return resp

    gw.add_backend("a", await backends.start(sse))
    async with session.post(f"{gw.url}/v1/completions") as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        first = await r.content.readuntil(b"\n\n")
        assert first == b"data: one\n\n"
        next_chunk.set()
        assert await r.content.read() == b"data: two\n\n"


async def test_connection_refused_is_retried_on_another_replica(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession
) -> None:
    gw.add_backend("dead", f"http://127.0.0.1:{engines.free_port()}")  # nothing listens there
    gw.add_backend("alive", await backends.start(named("alive")))
    for _ in range(3):
        async with session.get(f"{gw.url}/x") as r:
            assert (r.status, (await r.json())["backend"]) == (200, "alive")
    samples = scrape.parse(await (await session.get(f"{gw.url}/metrics")).text())
    retries = [s.value for s in samples if s.name == "swell_gateway_retries_total"]
    assert retries and retries[0] >= 1


async def test_no_ready_replica_buffers_until_one_is_added(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession
) -> None:
    url = await backends.start(named("late"))
    pending = asyncio.ensure_future(session.post(f"{gw.url}/v1/completions", data=b"{}"))
    await asyncio.sleep(0)
    for _ in range(200):
        if gw.stats().buffered == 1:
            break
        await asyncio.sleep(0.01)
    assert gw.stats().buffered == 1 and not pending.done()
    gw.add_backend("late", url)
    resp = await pending
    assert (resp.status, (await resp.json())["backend"]) == (200, "late")
    resp.release()


async def test_full_buffer_answers_503_with_retry_after(
    gw: gateway.Gateway, session: aiohttp.ClientSession
) -> None:
    waiting = [asyncio.ensure_future(session.get(f"{gw.url}/w")) for _ in range(2)]  # the buffer holds 2
    for _ in range(200):
        if gw.stats().buffered == 2:
            break
        await asyncio.sleep(0.01)
    async with session.get(f"{gw.url}/x") as r:
        assert r.status == 503 and r.headers["Retry-After"] == "1"
        assert "buffer" in (await r.json())["error"]["message"]
    assert rejected(gw) == {"buffer_full": 1.0}
    for w in waiting:
        w.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_buffer_timeout_answers_503() -> None:
    g = gateway.Gateway(port=0, buffer_timeout_s=0.2)
    await g.start()
    try:
        async with aiohttp.ClientSession() as s, s.get(f"{g.url}/x") as r:
            assert r.status == 503 and "within 0.2 s" in (await r.json())["error"]["message"]
        assert rejected(g) == {"buffer_timeout": 1.0}
    finally:
        await g.stop()


async def test_own_metrics(gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession) -> None:
    gw.add_backend("a", await backends.start(named("a")))
    for _ in range(3):
        async with session.get(f"{gw.url}/x") as r:
            await r.read()
    async with session.get(f"{gw.url}/metrics") as r:
        samples = scrape.parse(await r.text())
    by_name = {(s.name, tuple(sorted(s.labels))): s.value for s in samples}
    assert by_name[("swell_gateway_requests_total", (("code", "200"),))] == 3
    assert by_name[("swell_gateway_request_duration_seconds_count", ())] == 3
    assert by_name[("swell_gateway_time_to_first_token_seconds_count", ())] == 3
    assert by_name[("swell_gateway_ready_replicas", ())] == 1
    assert by_name[("swell_gateway_requests_buffered", ())] == 0
    assert by_name[("swell_gateway_concurrency_seconds_total", ())] > 0
    assert by_name[("swell_gateway_backend_requests_total", (("backend", "a"),))] == 3


def test_concurrency_integrates_requests_over_time() -> None:
    t = [0.0]
    conc = gateway_metrics.Concurrency(now=lambda: t[0])
    conc.change(+1)
    t[0] = 2.0
    conc.change(+1)
    t[0] = 3.0
    conc.change(-2)
    t[0] = 10.0
    assert conc.integral() == pytest.approx(1 * 2 + 2 * 1)


async def test_a_client_hanging_up_mid_stream_stops_the_replica_stream(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession
) -> None:
    stopped = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for _ in range(500):
                await resp.write(b"data: tok\n\n")
                await asyncio.sleep(0.01)
        except ConnectionResetError:
            stopped.set()
        return resp

    gw.add_backend("a", await backends.start(endless))
    r = await session.post(f"{gw.url}/v1/completions")
    assert await r.content.readuntil(b"\n\n") == b"data: tok\n\n"
    r.close()
    await asyncio.wait_for(stopped.wait(), 10)  # the gateway closed its side too


async def test_a_replica_dying_mid_response_is_an_error_not_a_short_answer(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession
) -> None:
    async def dies(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: one\n\n")
        assert request.transport is not None
        request.transport.close()
        return resp

    gw.add_backend("a", await backends.start(dies))
    async with session.post(f"{gw.url}/v1/completions") as r:
        assert r.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()


async def test_a_request_every_ready_replica_refused_gets_a_503_at_once(
    session: aiohttp.ClientSession,
) -> None:
    # a long buffer: before the fix the request sat there for all of it
    g = gateway.Gateway(port=0, buffer_timeout_s=60.0)
    await g.start()
    try:
        for name in ("dead-1", "dead-2"):
            g.add_backend(name, f"http://127.0.0.1:{engines.free_port()}")  # nothing listens there
        r = await asyncio.wait_for(session.post(f"{g.url}/v1/completions", data=b"{}"), 10)
        async with r:
            assert (r.status, r.headers.get("Retry-After")) == (503, "1")
            assert "2 replica(s) refused the connection" in (await r.json())["error"]["message"]
        assert g.stats().buffered == 0
    finally:
        await g.stop()


async def test_metadata_is_answered_at_once_without_a_ready_replica_and_is_not_demand(
    session: aiohttp.ClientSession,
) -> None:
    g = gateway.Gateway(port=0, buffer_timeout_s=30.0, protocol="kserve-v1")
    await g.start()
    try:
        async with session.get(f"{g.url}/health") as r:
            assert r.status == 503 and "no replica is ready" in (await r.json())["reason"]
        async with session.get(f"{g.url}/v1/models") as r:
            assert (r.status, await r.json()) == (200, {"models": []})
        async with session.get(f"{g.url}/v1/models/iris") as r:
            assert (r.status, await r.json()) == (200, {"name": "iris", "ready": False})
        assert g.stats().buffered == 0 and g.stats().requests == 0
        assert g.conc.integral() == 0.0  # no demand: a service at zero stays at zero
        predict = asyncio.ensure_future(session.post(f"{g.url}/v1/models/iris:predict", data=b"{}"))
        for _ in range(200):
            if g.stats().buffered == 1:
                break
            await asyncio.sleep(0.01)
        assert g.stats().buffered == 1  # inference waits for a replica and counts
        predict.cancel()
        await asyncio.gather(predict, return_exceptions=True)
    finally:
        await g.stop()


async def test_the_model_list_comes_from_a_replica_and_is_kept_for_when_none_is_ready(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{gw.url}/v1/models") as r:
        assert await r.json() == {"object": "list", "data": []}
    gw.add_backend("a", await backends.start(named("a")))
    async with session.get(f"{gw.url}/v1/models") as r:
        first = await r.json()
        assert first["backend"] == "a" and first["path"] == "/v1/models"
    gw.remove_backend("a")
    async with session.get(f"{gw.url}/v1/models") as r:
        assert r.status == 200 and await r.json() == first
    assert gw.stats().requests == 0 and gw.conc.integral() == 0.0


@pytest.mark.parametrize(
    ("method", "path", "metadata"),
    [
        ("GET", "/health", True),
        ("GET", "/v1/models", True),
        ("GET", "/v1/models/iris", True),
        ("POST", "/v1/models/iris:predict", False),
        ("GET", "/v1/models/iris:predict", False),
        ("POST", "/v1/chat/completions", False),
        ("POST", "/health", False),
        ("GET", "/v1/models/a/b", False),
    ],
)
def test_what_counts_as_metadata(method: str, path: str, metadata: bool) -> None:
    assert gateway.is_metadata(method, path) is metadata


async def test_a_malformed_request_is_one_log_line_not_a_traceback(
    gw: gateway.Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(100), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.0 400")
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]
    (line,) = [r.getMessage() for r in caplog.records if "Content-Length" in r.getMessage()]
    assert "BadHttpMessage" in line and "\n" not in line


async def test_a_request_body_over_the_cap_gets_413(
    gw: gateway.Gateway, backends: Backends, session: aiohttp.ClientSession
) -> None:
    gw.add_backend("a", await backends.start(named("a")))
    async with session.post(f"{gw.url}/v1/completions", data=io.BytesIO(b"x" * (5 * 2**20))) as r:
        assert r.status == 413  # the default cap is 4 MiB
    async with session.post(f"{gw.url}/v1/completions", data=io.BytesIO(b"x" * 2**20)) as r:
        assert r.status == 200


async def test_slow_request_headers_are_cut_off() -> None:
    g = gateway.Gateway(port=0, header_timeout_s=0.3)
    await g.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", g.port)
        writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")  # and then nothing more (slow loris)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)  # closed by the gateway, not by the test's bound
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408") and g.connections.timed_out == 1
    finally:
        await g.stop()


async def test_connections_beyond_the_cap_are_refused_with_503() -> None:
    g = gateway.Gateway(port=0, max_connections=2)
    await g.start()
    opened = [await asyncio.open_connection("127.0.0.1", g.port) for _ in range(2)]
    try:
        await helpers_wait(lambda: g.connections.open == 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", g.port)
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503") and g.connections.refused == 1
    finally:
        for _, w in opened:
            w.close()
        await g.stop()


async def test_a_replica_that_never_answers_gets_a_504_after_the_read_timeout(
    backends: Backends, session: aiohttp.ClientSession
) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    g = gateway.Gateway(port=0, read_timeout_s=0.3)
    await g.start()
    try:
        g.add_backend("hung", await backends.start(hang))
        r = await asyncio.wait_for(session.post(f"{g.url}/v1/completions", data=b"{}"), 10)
        async with r:
            assert r.status == 504 and "no response within 0.3 s" in (await r.json())["error"]["message"]
    finally:
        release.set()
        await g.stop()


async def helpers_wait(cond: Callable[[], bool]) -> None:
    for _ in range(500):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


def test_the_recipe_sets_the_gateway_limits(tmp_path: pathlib.Path) -> None:
    rec = recipe.parse(
        {
            "service": {"name": "x"},
            "local": {"max_request_mb": 1, "max_connections": 7, "header_timeout_s": 2, "read_timeout_s": 9},
        }
    )
    g = cluster.LocalCluster(rec, run_dir=tmp_path).gateway
    assert (g.max_request_bytes, g.connections.max_connections) == (2**20, 7)
    assert (g.connections.header_timeout_s, g.read_timeout_s) == (2.0, 9.0)


async def test_stopping_turns_new_and_buffered_requests_away_at_once(
    gw: gateway.Gateway, session: aiohttp.ClientSession
) -> None:
    waiting = asyncio.ensure_future(session.post(f"{gw.url}/v1/completions", data=b"{}"))
    await helpers_wait(lambda: gw.stats().buffered == 1)
    gw.close_to_new_requests()
    r = await asyncio.wait_for(waiting, 10)
    async with r:
        assert r.status == 503 and "stopping" in (await r.json())["error"]["message"]
    async with session.post(f"{gw.url}/v1/completions", data=b"{}") as r:
        assert r.status == 503 and r.headers["Retry-After"] == "1"


async def test_an_idle_gateway_already_counts_zero_requests(
    gw: gateway.Gateway, session: aiohttp.ClientSession
) -> None:
    """A request-rate signal on a service nobody has called yet reads 0, not 'no value'."""
    async with session.get(f"{gw.url}/metrics") as r:
        samples = scrape.parse(await r.text())
    assert [s.value for s in samples if s.name == "swell_gateway_requests_total"] == [0.0]


@contextlib.asynccontextmanager
async def started(**kw: object) -> AsyncIterator[gateway.Gateway]:
    """A gateway on a free loopback port, stopped afterwards."""
    g = gateway.Gateway(port=0, **kw)  # type: ignore[arg-type]
    await g.start()
    try:
        yield g
    finally:
        await g.stop()


async def until(ok: Callable[[], bool], what: str) -> None:
    for _ in range(300):
        if ok():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_max_ongoing_holds_requests_in_the_buffer_until_a_slot_frees(
    backends: Backends, session: aiohttp.ClientSession
) -> None:
    """Knative's containerConcurrency 1: a replica holding a request takes no second one; the second
    waits in the buffer (counted as buffered, the scaling signal) and goes as soon as the first ends."""
    async with started(buffer_requests=4, buffer_timeout_s=10.0, max_ongoing=1) as g:
        gate = asyncio.Event()
        g.add_backend("only", await backends.start(named("only", gate)))
        first = asyncio.ensure_future(session.get(f"{g.url}/a"))
        second = asyncio.ensure_future(session.get(f"{g.url}/b"))
        await until(lambda: g.stats().buffered == 1, "a request buffered")
        assert (g.in_flight("only"), g.stats().buffered) == (1, 1)
        gate.set()
        for f in (first, second):
            r = await f
            assert r.status == 200 and (await r.json())["backend"] == "only"
            r.release()
        assert g.stats().buffered == 0 and g.routed["only"] == 2


async def test_max_ongoing_full_for_the_buffer_timeout_answers_503_and_says_why(
    backends: Backends, session: aiohttp.ClientSession
) -> None:
    async with started(buffer_requests=4, buffer_timeout_s=0.3, max_ongoing=1) as g:
        gate = asyncio.Event()
        g.add_backend("only", await backends.start(named("only", gate)))
        first = asyncio.ensure_future(session.get(f"{g.url}/a"))
        await asyncio.sleep(0.05)
        async with session.get(f"{g.url}/b") as r:
            assert r.status == 503 and r.headers.get("Retry-After") == "1"
            assert "every replica held 1 requests for 0.3 s" in await r.text()
        assert rejected(g) == {"busy": 1.0}
        gate.set()
        (await first).release()


async def test_the_gateway_answers_its_own_health_and_readiness(
    backends: Backends, session: aiohttp.ClientSession
) -> None:
    """/-/healthz and /-/ready are the gateway's, never a replica's: at zero the service is ready
    (a request waits in the buffer and starts one); with the buffer full and nothing ready it is not."""
    async with started(buffer_requests=1, buffer_timeout_s=10.0) as g:
        async def get(path: str) -> tuple[int, dict]:
            async with session.get(g.url + path) as r:
                return r.status, await r.json()

        assert await get("/-/healthz") == (200, {"status": "ok"})
        status, body = await get("/-/ready")
        assert status == 200 and body["ready_replicas"] == 0 and "no replica ready yet" in body["status"]
        waiting = asyncio.ensure_future(session.get(g.url + "/v1/x"))  # fills the buffer of 1
        await until(lambda: g.stats().buffered == 1, "a request buffered")
        assert (await get("/-/ready"))[0] == 503
        g.add_backend("a", await backends.start(named("a")))
        (await waiting).release()
        assert await get("/-/ready") == (200, {"ready_replicas": 1, "buffered": 0, "status": "ready"})
        g.close_to_new_requests()
        assert (await get("/-/healthz"))[0] == 503 and (await get("/-/ready"))[0] == 503


async def test_metadata_goes_to_a_replica_at_its_cap(backends: Backends, session: aiohttp.ClientSession) -> None:
    """A replica holding max_ongoing requests still answers /health: metadata is no request."""
    async with started(buffer_requests=4, buffer_timeout_s=10.0, max_ongoing=1) as g:
        gate = asyncio.Event()
        g.add_backend("only", await backends.start(named("only", gate)))
        busy = asyncio.ensure_future(session.get(f"{g.url}/a"))
        await until(lambda: g.in_flight("only") == 1, "the replica busy")
        health = asyncio.ensure_future(session.get(f"{g.url}/health"))
        await asyncio.sleep(0.05)
        gate.set()
        async with await health as r:
            assert r.status == 200 and (await r.json())["backend"] == "only"
        (await busy).release()


@pytest.mark.parametrize(
    ("host", "says"),
    [
        pytest.param("192.0.2.1", "set local.host to an address of this machine", id="an address not of this machine"),
        pytest.param("no-such-host.invalid", "set local.host to an address of this machine", id="a name that resolves to none"),
    ],
)  # fmt: skip
async def test_a_host_it_cannot_listen_on_names_the_host_not_the_port(host: str, says: str) -> None:
    gw = gateway.Gateway(host=host, port=0)
    with pytest.raises(errors.ClusterError, match=says):
        await gw.start()
