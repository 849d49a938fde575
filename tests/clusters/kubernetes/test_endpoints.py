"""The gateway's endpoints on Kubernetes: which pods of a Service take requests, at which URL, kept
current from the pod watch; and a real gateway on loopback fed by it, from zero."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from swell import errors
from swell.clusters.kubernetes import endpoints, fake
from swell.runtime import kubernetes_gateway
from tests.clusters.kubernetes.builders import pod

Obj = dict[str, Any]


def service(ports: list[Obj], selector: dict[str, str] | None = None) -> Obj:
    return {
        "kind": "Service",
        "metadata": {"name": "llm", "namespace": "ml"},
        "spec": {"selector": {"app": "web"} if selector is None else selector, "ports": ports},
    }


@pytest.mark.parametrize(
    ("ports", "chosen", "port"),
    [
        pytest.param([{"port": 80, "targetPort": 8000}], None, 8000, id="the-only-port-its-target-number"),
        pytest.param([{"port": 80, "targetPort": "http"}], None, "http", id="a-named-target-port-stays-a-name"),
        pytest.param([{"port": 80}], None, 80, id="no-target-port-means-the-port-itself"),
        pytest.param([{"name": "metrics", "port": 9090, "targetPort": 9090}, {"name": "http", "port": 80, "targetPort": 8000}],
                     None, 8000, id="of-several-the-one-named-http"),
        pytest.param([{"name": "a", "port": 81, "targetPort": 1}, {"name": "b", "port": 82, "targetPort": 2}], "b", 2,
                     id="chosen-by-name"),
        pytest.param([{"name": "a", "port": 81, "targetPort": 1}, {"name": "b", "port": 82, "targetPort": 2}], "81", 1,
                     id="chosen-by-number"),
    ],
)
def test_the_service_port_gives_the_pods_port(ports: list[Obj], chosen: str | None, port: int | str) -> None:
    t = endpoints.target_of(service(ports), chosen)
    assert (t.namespace, t.service, dict(t.selector), t.port) == ("ml", "llm", {"app": "web"}, port)


@pytest.mark.parametrize(
    ("svc", "chosen", "says"),
    [
        pytest.param(service([{"port": 80}], selector={}), None, "has no selector", id="no-selector"),
        pytest.param(service([]), None, "has no ports", id="no-ports"),
        pytest.param(service([{"name": "a", "port": 1}, {"name": "b", "port": 2}]), None, "name the one to use",
                     id="several-ports-none-http"),
        pytest.param(service([{"name": "a", "port": 1}]), "grpc", "has no port 'grpc' (it has a)", id="no-such-port"),
    ],
)
def test_a_service_swell_cannot_follow_is_named(svc: Obj, chosen: str | None, says: str) -> None:
    with pytest.raises(errors.ClusterError, match=r"service ml/llm") as exc:
        endpoints.target_of(svc, chosen)
    assert says in str(exc.value)


TARGET = endpoints.Target(namespace="default", service="llm", selector={"app": "web"}, port="http")


@pytest.mark.parametrize(
    ("p", "url"),
    [
        pytest.param(pod("a", ready=True, ip="10.0.0.5", ports={"http": 8000}), "http://10.0.0.5:8000", id="ready"),
        pytest.param(pod("a", ready=True, ip="fd00::5", ports={"http": 8000}), "http://[fd00::5]:8000", id="ipv6-in-brackets"),
        pytest.param(pod("a", ready=False, ip="10.0.0.5", ports={"http": 8000}), None, id="not-ready"),
        pytest.param(pod("a", ready=True, ports={"http": 8000}), None, id="no-ip-yet"),
        pytest.param(pod("a", ready=True, ip="10.0.0.5", ports={"http": 8000}, deleting=True), None,
                     id="being-deleted-takes-no-new-request"),
        pytest.param(pod("a", ready=True, ip="10.0.0.5", ports={"metrics": 9090}), None, id="no-port-of-that-name"),
    ],
)
def test_which_pods_serve(p: Obj, url: str | None) -> None:
    assert endpoints.urls([p], TARGET) == ({"a": url} if url else {})


class Recorder:
    def __init__(self) -> None:
        self.backends: dict[str, str] = {}
        self.log: list[str] = []

    def add_backend(self, name: str, url: str) -> None:
        self.backends[name] = url
        self.log.append(f"+{name}")

    def remove_backend(self, name: str) -> None:
        self.backends.pop(name, None)
        self.log.append(f"-{name}")


async def changed(ep: endpoints.Endpoints, event: Obj, client: fake.FakeApi) -> None:
    waiting = ep.changed
    client.feeds["pods"].put_nowait(event)
    await asyncio.wait_for(waiting.wait(), 2)


async def test_backends_follow_the_pods_through_their_life() -> None:
    client = fake.FakeApi()
    client.add(pod("web-0", ready=True, ip="10.0.0.1", ports={"http": 8000}))
    client.add(pod("db-0", labels={"app": "db"}, ready=True, ip="10.0.0.9", ports={"http": 8000}))
    rec = Recorder()
    ep = endpoints.Endpoints(client, TARGET, rec)
    stop = asyncio.Event()
    task = asyncio.create_task(ep.run(stop))
    try:
        await asyncio.wait_for(ep.informer.synced.wait(), 2)
        assert rec.backends == {"web-0": "http://10.0.0.1:8000"}  # the listing; another app's pod is not one

        starting = pod("web-1", ip="10.0.0.2", ports={"http": 8000})
        client.feeds["pods"].put_nowait({"type": "ADDED", "object": starting})
        await changed(ep, {"type": "MODIFIED", "object": pod("web-1", ready=True, ip="10.0.0.2", ports={"http": 8000})}, client)
        assert rec.backends == {"web-0": "http://10.0.0.1:8000", "web-1": "http://10.0.0.2:8000"}

        going = pod("web-0", ready=True, ip="10.0.0.1", ports={"http": 8000}, deleting=True)
        await changed(ep, {"type": "MODIFIED", "object": going}, client)
        assert rec.backends == {"web-1": "http://10.0.0.2:8000"}
        await changed(ep, {"type": "DELETED", "object": starting}, client)
        assert rec.backends == {} and rec.log == ["+web-0", "+web-1", "-web-0", "-web-1"]
    finally:
        stop.set()
        client.feeds["pods"].put_nowait(None)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_ready_pod_without_the_named_port_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    client = fake.FakeApi()
    client.add(pod("web-0", ready=True, ip="10.0.0.1", ports={"metrics": 9090}))
    ep = endpoints.Endpoints(client, TARGET, Recorder())
    await ep.informer.relist()
    ep.sync()
    assert ep.current == {}
    warned = [r.getMessage() for r in caplog.records if "no container port named 'http'" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("pod web-0 is ready")


@pytest.fixture
async def gate() -> asyncio.Event:
    """Set: the replica answers (tests that hold a request in flight clear it first)."""
    g = asyncio.Event()
    g.set()
    return g


@pytest.fixture
async def replica(gate: asyncio.Event) -> AsyncIterator[int]:
    """A model server on loopback (its port): answers which pod it is, once `gate` is set."""

    async def handle(request: web.Request) -> web.Response:
        await gate.wait()
        return web.json_response({"served_by": "replica", "path": request.path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield int(runner.addresses[0][1])
    await runner.cleanup()


async def test_a_request_at_zero_waits_in_the_gateway_until_a_pod_is_ready(replica: int) -> None:
    """The scale-from-zero path without a cluster: the Service's pods come from the (fake) API's
    watch, the gateway and the replica are real servers on loopback."""
    client = fake_with_service()
    opts = kubernetes_gateway.Options(service="llm", namespace="default", host="127.0.0.1", port=0, drain_timeout_s=2)
    front = kubernetes_gateway.Front(client, opts)
    await front.start()
    gw = front.gateway
    try:
        async with aiohttp.ClientSession() as session:
            pending = asyncio.ensure_future(session.post(f"{gw.url}/v1/completions", json={"prompt": "hi"}))
            await _until(lambda: gw.stats().buffered == 1)
            ready = pod("llm-0", ready=True, ip="127.0.0.1", ports={"http": replica})
            client.feeds["pods"].put_nowait({"type": "ADDED", "object": ready})
            resp = await asyncio.wait_for(pending, 5)
            assert (resp.status, await resp.json()) == (200, {"served_by": "replica", "path": "/v1/completions"})
            assert gw.stats().buffered == 0 and gw.routed == {"llm-0": 1}
            client.feeds["pods"].put_nowait({"type": "DELETED", "object": ready})
            await _until(lambda: gw.stats().ready == 0)
    finally:
        assert await front.stop() == 0


def fake_with_service() -> fake.FakeApi:
    client = fake.FakeApi()
    client.services[("default", "llm")] = service([{"name": "http", "port": 80, "targetPort": "http"}]) | {
        "metadata": {"name": "llm", "namespace": "default"}
    }
    return client


async def test_stopping_turns_new_requests_away_and_lets_those_in_flight_finish(
    replica: int, gate: asyncio.Event
) -> None:
    client = fake_with_service()
    client.add(pod("llm-0", ready=True, ip="127.0.0.1", ports={"http": replica}))
    front = kubernetes_gateway.Front(
        client, kubernetes_gateway.Options(service="llm", namespace="default", host="127.0.0.1", port=0, drain_timeout_s=10)
    )
    await front.start()
    gw = front.gateway
    gate.clear()
    async with aiohttp.ClientSession() as session:
        await _until(lambda: gw.stats().ready == 1)
        in_flight = asyncio.ensure_future(session.post(f"{gw.url}/v1/completions", json={}))
        await _until(lambda: gw.stats().in_flight == 1)
        stopping = asyncio.ensure_future(front.stop())
        await _until(lambda: gw._closing)
        async with session.post(f"{gw.url}/v1/completions", json={}) as late:
            assert late.status == 503 and late.headers["Retry-After"] == "1"
        assert not stopping.done()  # it waits for the request in flight
        gate.set()
        resp = await asyncio.wait_for(in_flight, 5)
        assert resp.status == 200 and (await resp.json())["served_by"] == "replica"
        assert await asyncio.wait_for(stopping, 5) == 0
    client.feeds["pods"].put_nowait(None)


async def test_no_such_service_is_named_before_anything_listens() -> None:
    opts = kubernetes_gateway.Options(service="llm", namespace="ml", host="127.0.0.1", port=0)
    front = kubernetes_gateway.Front(fake.FakeApi(), opts)
    with pytest.raises(errors.ClusterError, match=r"service ml/llm not found"):
        await front.start()
    assert front.gateway.port == 0  # it never listened


async def _until(ok: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if ok():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")
