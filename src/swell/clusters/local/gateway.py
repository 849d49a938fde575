"""The gateway: one HTTP endpoint in front of the ready replicas (aiohttp reverse proxy).

Least outstanding requests picks the replica; responses stream through chunk by chunk; a
connection failure before any response byte is retried on another replica; once every ready
replica has refused it, 503 with Retry-After at once. With no ready replica a request waits in a
bounded buffer until one is ready (Knative's activator), else 503 with Retry-After. `/metrics` is
the gateway's own (`gateway_metrics`); every other path is proxied. Metadata (`/health`,
`/v1/models`, KServe's `/v1/models/NAME`) is proxied while a replica is ready and answered by the
gateway itself while none is; it never waits in the buffer and never counts as demand: only
inference requests move the concurrency signal or wake a service scaled to zero. With a deadline
(the recipe's `slo.deadline_s`) a request with no first token that long after it arrived is shed:
503 with Retry-After, its connection to the replica closed so the engine drops its work. The first
token is the first response chunk of a streamed request; a request that does not stream is shed
only while it waits for a replica (its first byte is its whole answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

from swell import errors
from swell.clusters.local import connections, gateway_metrics

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
     "transfer-encoding", "upgrade", "host", "content-length", "expect")
)  # fmt: skip
RETRYABLE = (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
HEALTH_PATHS = frozenset(("/health", "/healthz", "/ready", "/readyz", "/livez", "/v1/health", "/version"))
MODELS_PATH = "/v1/models"
METADATA_TIMEOUT_S = 10.0  # a replica slower than this on metadata: the gateway answers instead


def _payload(body: bytes) -> bytes | io.BytesIO:
    """A request body to send on: large ones as a stream (aiohttp warns about big raw bytes)."""
    return io.BytesIO(body) if len(body) > 2**16 else body


def is_metadata(method: str, path: str) -> bool:
    """A GET/HEAD of health, readiness or model metadata (`/v1/models`, KServe's
    `/v1/models/NAME`, but not `/v1/models/NAME:predict`): not an inference request."""
    if method not in ("GET", "HEAD"):
        return False
    if path in HEALTH_PATHS or path == MODELS_PATH:
        return True
    name = path.removeprefix(MODELS_PATH + "/")
    return name != path and bool(name) and "/" not in name and ":" not in name


@dataclass(frozen=True, kw_only=True)
class Stats:
    ready: int
    in_flight: int
    buffered: int
    requests: int
    errors: int  # 5xx answered or aborted
    shed: int = 0  # of those errors, shed at the deadline (503)


class Refusal(NamedTuple):
    """Why a request gets no replica: `reason` labels swell_gateway_rejected_total, `text` is said."""

    reason: str  # stopping, refused, buffer_full, buffer_timeout, busy
    text: str


def _refused(tried: set[str]) -> str:
    return f"{len(tried)} replica(s) refused the connection"


def streams(body: bytes) -> bool:
    """Whether a request body asks for a streamed answer (OpenAI's `"stream": true`)."""
    if b'"stream"' not in body:
        return False
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and data.get("stream") is True


class Shed(Exception):
    """The deadline passed before the request's first token."""


class Gateway:
    """Routes requests to backends the replica manager adds and removes (it is its `Routing`)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        buffer_requests: int = 256,
        buffer_timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        max_attempts: int = 4,
        protocol: str = "openai",
        max_request_bytes: int = 4 * 2**20,
        max_connections: int = 1000,
        header_timeout_s: float = 10.0,
        read_timeout_s: float = 300.0,
        deadline_s: float | None = None,
        max_ongoing: int = 0,
        port_hint: str = "(set local.port in the recipe or --port)",  # what to change when the port is taken
    ) -> None:
        self.host, self.port = host, port
        self.max_ongoing = max_ongoing  # requests in flight a replica may hold; the rest wait buffered (0: no limit)
        self.port_hint = port_hint
        self.deadline_s = deadline_s  # no first token by then: shed (None: never)
        self.protocol = protocol  # "openai", "kserve-v1" or "http": what metadata answers look like
        self.max_request_bytes = max_request_bytes  # larger bodies get a 413 (engines cap theirs too)
        self.read_timeout_s = read_timeout_s  # a replica silent this long (no header, no chunk): 504 / abort
        self.connections = connections.Counter(
            max_connections=max_connections, header_timeout_s=header_timeout_s
        )
        self._server: asyncio.Server | None = None
        self.buffer_requests = buffer_requests
        self.buffer_timeout_s = buffer_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_attempts = max_attempts
        self._backends: dict[str, str] = {}  # name -> base URL, only those receiving traffic
        self._counts: dict[str, int] = {}  # name -> requests in flight (kept while draining)
        self.routed: dict[str, int] = {}  # name -> requests sent to it so far
        self._changed = asyncio.Event()
        self._rr = 0
        self._buffered = 0
        self._in_flight = 0
        self.requests = 0
        self.errors = 0
        self.shed = 0
        self.conc = gateway_metrics.Concurrency()
        self.metrics = gateway_metrics.GatewayMetrics(
            self.conc, lambda: self._in_flight, lambda: self._buffered, self._backend_counts, lambda: self.routed
        )
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing = False  # stopping: new requests get a 503, those in flight finish
        self._models: bytes | None = None  # the last model list a replica gave (answered while none is ready)

    # ------------------------------------------------------------------ Routing (replica manager)

    def add_backend(self, name: str, url: str) -> None:
        self._backends[name] = url.rstrip("/")
        self._counts.setdefault(name, 0)
        self._notify()

    def remove_backend(self, name: str) -> None:
        if self._backends.pop(name, None) is not None:
            self._notify()

    def in_flight(self, name: str) -> int:
        return self._counts.get(name, 0)

    def close_to_new_requests(self) -> None:
        """Stopping: answer new (and buffered) inference requests with a 503 at once; requests in
        flight go on until the replica manager has drained them."""
        self._closing = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _backend_counts(self) -> dict[str, int]:
        return {n: self._counts.get(n, 0) for n in self._backends}

    def stats(self) -> Stats:
        return Stats(
            ready=len(self._backends),
            in_flight=self._in_flight,
            buffered=self._buffered,
            requests=self.requests,
            errors=self.errors,
            shed=self.shed,
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=self.max_request_bytes)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/-/healthz", self._healthz)
        app.router.add_get("/-/ready", self._ready)
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout_s, sock_read=self.read_timeout_s
            ),
        )
        self._runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=1.0,
            keepalive_timeout=75.0,
            logger=connections.OneLineLogger(),
        )
        await self._runner.setup()
        assert self._runner.server is not None
        try:
            self._server = await asyncio.get_running_loop().create_server(
                connections.factory(self._runner.server, self.connections),
                self.host,
                self.port,
                reuse_address=True,
            )
        except OSError as exc:
            await self.stop()
            # an address this machine does not have (or cannot resolve) is the host's fault, not the port's
            hint = ("(set local.host to an address of this machine, e.g. 127.0.0.1)"
                    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror) else self.port_hint)  # fmt: skip
            raise errors.ClusterError(
                f"the gateway cannot listen on {self.host}:{self.port}: {exc.strerror or exc} {hint}"
            ) from None
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()  # no new connections; those open are shut down with the runner
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # ------------------------------------------------------------------ handlers

    async def _healthz(self, request: web.Request) -> web.Response:
        """The gateway's own liveness (Ray Serve's proxy `/-/healthz`): never passed to a replica."""
        if self._closing:
            return web.json_response({"status": "stopping"}, status=503)
        return web.json_response({"status": "ok"})

    async def _ready(self, request: web.Request) -> web.Response:
        """Whether the service takes requests, for a load balancer: yes with a ready replica, and
        yes at zero while the buffer has room (a request there starts one: Knative's activator),
        unlike a replica's own `/health`, which no replica answers at zero."""
        ready, buffered = len(self._backends), self._buffered
        body: dict[str, object] = {"ready_replicas": ready, "buffered": buffered}
        if self._closing:
            return web.json_response(body | {"status": "stopping"}, status=503)
        if not ready and buffered >= self.buffer_requests:
            return web.json_response(body | {"status": "no replica ready and the buffer is full"}, status=503)
        return web.json_response(body | {"status": "ready" if ready else "no replica ready yet: requests wait in the buffer"})

    async def _metrics(self, request: web.Request) -> web.Response:
        body, ctype = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": ctype})

    def _untried(self, tried: set[str]) -> list[tuple[str, str]]:
        return [(n, u) for n, u in self._backends.items() if u not in tried]

    def _pick(self, tried: set[str], capped: bool = True) -> tuple[str, str] | None:
        """The untried backend with the fewest requests in flight (ties in turn), below the
        `max_ongoing` cap when there is one (`capped`: metadata is no request, and goes anyway)."""
        options = self._untried(tried)
        if self.max_ongoing and capped:
            options = [o for o in options if self._counts.get(o[0], 0) < self.max_ongoing]
        if not options:
            return None
        least = min(self._counts.get(n, 0) for n, _ in options)
        best = [o for o in options if self._counts.get(o[0], 0) == least]
        self._rr += 1
        return best[self._rr % len(best)]

    async def _wait_for_backend(self, tried: set[str], until: float | None = None) -> tuple[str, str] | Refusal:
        """Wait in the buffer while no replica is ready, until one it has not tried is; the reason
        instead when every ready replica already refused this request, the buffer is full, or the
        wait timed out.

        The buffer is for a service with no ready replica (scaled to zero, all starting, the only
        one restarting), or whose replicas all hold `max_ongoing` requests. A request that failed to connect on every ready replica is answered at
        once (503, Retry-After): holding it for the whole buffer timeout would only hide the
        failure, and the replicas it tried may never come back. `until` (monotonic): the request's
        deadline, when it comes before the buffer timeout (raises Shed).
        """
        if self._closing:
            return Refusal("stopping", "swell is stopping")
        if self._backends and not self._untried(tried):  # ready replicas, every one tried
            return Refusal("refused", _refused(tried))
        if self._buffered >= self.buffer_requests:
            return Refusal("buffer_full", f"the buffer of {self.buffer_requests} requests is full")
        timeout_at = time.monotonic() + self.buffer_timeout_s
        deadline = timeout_at if until is None else min(timeout_at, until)
        sheds = deadline < timeout_at  # the request's deadline comes first: shed, not timed out
        self._buffered += 1
        try:
            while (choice := self._pick(tried)) is None:
                if self._closing:
                    return Refusal("stopping", "swell is stopping")
                if self._backends and not self._untried(tried):  # only replicas it already tried came back
                    return Refusal("refused", _refused(tried))
                remaining = deadline - time.monotonic()
                try:
                    await asyncio.wait_for(self._changed.wait(), max(0.0, remaining))
                except TimeoutError:
                    if sheds:
                        raise Shed from None
                    if self._backends:  # ready, but every one at max_ongoing the whole time
                        return Refusal("busy", f"every replica held {self.max_ongoing} requests for {self.buffer_timeout_s:g} s")
                    return Refusal("buffer_timeout", f"no replica became ready within {self.buffer_timeout_s:g} s")
            return choice
        finally:
            self._buffered -= 1

    def _answer(self, code: int, text: str, retry_after: bool = False, reason: str = "") -> web.Response:
        self.metrics.requests.labels(code=str(code)).inc()
        if reason:
            self.metrics.rejected.labels(reason=reason).inc()
        self.errors += 1
        headers = {"Retry-After": "1"} if retry_after else None
        return web.json_response({"error": {"message": text, "code": code}}, status=code, headers=headers)

    def _metadata_answer(self, path: str) -> web.Response:
        """What the gateway says itself about health and models while no replica is ready."""
        if path == MODELS_PATH:
            if self._models is not None:
                return web.Response(body=self._models, content_type="application/json")
            empty = {"models": []} if self.protocol == "kserve-v1" else {"object": "list", "data": []}
            return web.json_response(empty)
        if path.startswith(MODELS_PATH + "/"):  # KServe v1 model readiness
            return web.json_response({"name": path.removeprefix(MODELS_PATH + "/"), "ready": False})
        return web.json_response(
            {"status": "unavailable", "reason": "no replica is ready"},
            status=503,
            headers={"Retry-After": "1"},
        )

    async def _metadata(self, request: web.Request) -> web.StreamResponse:
        """Health and model metadata: from a ready replica (the model list kept for later), else
        from the gateway; never buffered, never counted as demand."""
        choice = self._pick(set(), capped=False)
        if choice is None:
            return self._metadata_answer(request.path)
        name, url = choice
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        assert self._session is not None
        self._counts[name] = self._counts.get(name, 0) + 1
        try:
            async with self._session.request(
                request.method,
                url + request.rel_url.raw_path_qs,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=METADATA_TIMEOUT_S),
            ) as upstream:
                body = await upstream.read()
                if request.path == MODELS_PATH and upstream.status == 200 and len(body) < 2**20:
                    self._models = body
                out = web.Response(body=body, status=upstream.status)
                for k, v in upstream.headers.items():
                    if k.lower() not in HOP_BY_HOP:
                        out.headers.add(k, v)
                return out
        except (aiohttp.ClientError, TimeoutError):
            return self._metadata_answer(request.path)
        finally:
            self._counts[name] -= 1
            if self._counts[name] == 0 and name not in self._backends:
                del self._counts[name]

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        if is_metadata(request.method, request.path):
            return await self._metadata(request)
        if self._closing:
            return self._answer(503, "swell is stopping: no new requests", retry_after=True, reason="stopping")
        self.requests += 1
        started = time.perf_counter()
        try:
            body = await request.read()
        except (ConnectionResetError, aiohttp.ClientPayloadError) as exc:
            log.info("a client went away while sending its request: %s", connections.one_line(exc))
            return web.Response(status=400)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        tried: set[str] = set()
        until = None if self.deadline_s is None else time.monotonic() + self.deadline_s
        first_by = until if until is not None and streams(body) else None  # the first chunk's deadline
        self.conc.change(+1)
        try:
            return await self._route(request, body, headers, tried, started, until, first_by)
        except Shed:
            return self._shed()
        finally:
            self.conc.change(-1)

    def _shed(self) -> web.Response:
        self.shed += 1
        return self._answer(
            503, f"shed: no first token within the deadline of {self.deadline_s:g} s (the service is "
            "over capacity; retry later)", retry_after=True, reason="shed",
        )  # fmt: skip

    async def _route(
        self, request: web.Request, body: bytes, headers: dict[str, str], tried: set[str], started: float,
        until: float | None, first_by: float | None,
    ) -> web.StreamResponse:  # fmt: skip
        """Send the request to a replica (retrying another on a refused connection) and relay its answer."""
        for _attempt in range(self.max_attempts):
            choice = self._pick(tried) or await self._wait_for_backend(tried, until)
            if isinstance(choice, Refusal):
                return self._answer(503, f"no ready replica to take it: {choice.text}", retry_after=True,
                                    reason=choice.reason)  # fmt: skip
            name, url = choice
            self._counts[name] = self._counts.get(name, 0) + 1
            self.routed[name] = self.routed.get(name, 0) + 1
            self._in_flight += 1
            try:
                assert self._session is not None
                sent = self._session.request(
                    request.method, url + request.rel_url.raw_path_qs, headers=headers, data=_payload(body),
                    allow_redirects=False,
                )  # fmt: skip
                upstream = await (sent if first_by is None else _by(sent, first_by))
            except aiohttp.ServerTimeoutError:
                log.warning("%s sent no response within %g s (read timeout)", name, self.read_timeout_s)
                return self._answer(504, f"the replica sent no response within {self.read_timeout_s:g} s",
                                    reason="read_timeout")  # fmt: skip
            except RETRYABLE as exc:
                tried.add(url)
                self.metrics.retries.inc()
                log.info("%s: %s before any response byte; trying another replica", name, exc)
                continue
            else:
                try:
                    return await self._relay(request, upstream, started, first_by)
                finally:
                    upstream.release()
            finally:
                self._counts[name] -= 1
                self._in_flight -= 1
                if self._counts[name] == 0 and name not in self._backends:
                    del self._counts[name]
                if self.max_ongoing:  # a slot freed: the buffer's turn
                    self._notify()
        return self._answer(503, f"no ready replica to take it: {_refused(tried)}", retry_after=True, reason="refused")

    async def _relay(
        self, request: web.Request, upstream: aiohttp.ClientResponse, started: float, first_by: float | None
    ) -> web.StreamResponse:
        chunks = upstream.content.iter_any()
        early: bytes | Exception | None = None  # the first chunk, read before the client hears anything
        if first_by is not None:  # a streamed request with a deadline may still be shed
            try:
                early = await _by(chunks.__anext__(), first_by)
            except StopAsyncIteration:
                early = b""
            except Shed:
                upstream.close()  # the replica sees the client go and drops the request's work
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                early = exc  # the replica failed before its first chunk: answered as below
        resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for k, v in upstream.headers.items():
            if k.lower() not in HOP_BY_HOP:
                resp.headers.add(k, v)
        if upstream.headers.get("Content-Length") is not None:
            resp.content_length = int(upstream.headers["Content-Length"])
        first = True
        try:
            await resp.prepare(request)
            while True:
                try:
                    if isinstance(early, Exception):
                        raise early
                    if early is not None:
                        chunk, early = early, None
                        if not chunk:
                            break
                    else:
                        chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except (aiohttp.ClientError, TimeoutError) as exc:  # the replica died mid-response
                    log.info("replica failed mid-response: %s", exc)
                    self.metrics.requests.labels(code="aborted").inc()
                    self.errors += 1
                    upstream.close()
                    if request.transport is not None:
                        request.transport.close()  # the client must see a broken response, not a short one
                    return resp
                if first:
                    self.metrics.ttft.observe(time.perf_counter() - started)
                    first = False
                await resp.write(chunk)
        except ConnectionResetError:  # the client went away: stop the replica's work too
            upstream.close()
            self.metrics.requests.labels(code="client_closed").inc()
            return resp
        if first:
            self.metrics.ttft.observe(time.perf_counter() - started)
        # a client may hang up as soon as it has what it wants (an SSE [DONE]): not an error
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        self.metrics.duration.observe(time.perf_counter() - started)
        self.metrics.requests.labels(code=str(upstream.status)).inc()
        if upstream.status >= 500:
            self.errors += 1
        return resp


async def _by(awaitable: Any, until: float) -> Any:
    """Await it until the monotonic time `until`: Shed when that passes first (a timeout of its own,
    such as the replica's read timeout, goes on as it is)."""
    limit = asyncio.timeout(max(0.0, until - time.monotonic()))
    try:
        async with limit:
            return await awaitable
    except TimeoutError:
        if limit.expired():
            raise Shed from None
        raise
