"""The gateway's client connections: a cap on their number, a deadline for request headers, and
one log line (not a traceback) for a malformed request.

aiohttp's server has neither a connection cap nor a header timeout, so each connection's
protocol (aiohttp's request handler) is wrapped: beyond `max_connections` a new connection gets
a 503 and is closed; one whose first request headers are not complete within `header_timeout_s`
(a slow-loris client) gets a 408 and is closed. Later requests on a kept-alive connection are
bounded by aiohttp's keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger("swell.clusters.local.gateway")

REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
)
TOO_SLOW = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
END_OF_HEADERS = b"\r\n\r\n"


def one_line(exc: BaseException | None) -> str:
    """An exception as one short line: its type and its message with whitespace collapsed."""
    if exc is None:
        return "no details"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


class OneLineLogger(logging.Logger):
    """aiohttp's server logger for the gateway: an error handling a request (a malformed request,
    a client gone mid-body) is one warning line; the traceback only at debug level."""

    def __init__(self) -> None:
        super().__init__("swell.clusters.local.gateway.http")
        self.parent = log

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kw: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        text = str(msg) % args if args else str(msg)
        log.warning("%s: %s", text, one_line(exc))
        log.debug("%s", text, exc_info=exc)


class Counter:
    """Connections open now and refused so far (shared by every connection of one gateway)."""

    def __init__(self, *, max_connections: int, header_timeout_s: float) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.open = 0
        self.refused = 0
        self.timed_out = 0


class Guarded(asyncio.Protocol):
    """One client connection: aiohttp's handler behind the cap and the header deadline."""

    def __init__(self, handler: asyncio.Protocol, counter: Counter) -> None:
        self.handler = handler
        self.counter = counter
        self.admitted = False
        self.timer: asyncio.TimerHandle | None = None
        self.tail = b""  # the last bytes seen, for headers split across reads
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        c = self.counter
        if c.open >= c.max_connections:
            c.refused += 1
            log.warning("refused a connection: %d open, the cap (max_connections)", c.open)
            transport.write(REFUSED)
            transport.close()
            return
        self.admitted = True
        c.open += 1
        self.timer = asyncio.get_running_loop().call_later(c.header_timeout_s, self._too_slow)
        self.handler.connection_made(transport)

    def _too_slow(self) -> None:
        self.timer = None
        self.counter.timed_out += 1
        log.warning(
            "closed a connection: request headers not complete within %g s (header_timeout_s)",
            self.counter.header_timeout_s,
        )
        if self.transport is not None:
            self.transport.write(TOO_SLOW)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if not self.admitted:
            return
        if self.timer is not None:
            seen = self.tail + data
            if END_OF_HEADERS in seen:
                self.timer.cancel()
                self.timer = None
            else:
                self.tail = seen[-3:]
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.admitted:
            self.counter.open -= 1
            self.handler.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.admitted:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.handler.resume_writing()


def factory(make_handler: Callable[[], asyncio.Protocol], counter: Counter) -> Callable[[], Guarded]:
    """The protocol factory for `loop.create_server`: each connection guarded."""
    return lambda: Guarded(make_handler(), counter)
