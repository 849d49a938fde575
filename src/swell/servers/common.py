"""Plumbing shared by swell's built-in model servers: arguments, readiness, graceful stop.

Every server takes `--host/--port`, prints one `swell-server listening on http://H:P` line on
stdout once `/health` answers 200, and on SIGTERM stops accepting, lets in-flight requests
finish (bounded by `--drain-timeout`) and exits 0. `Driver` runs a virtual-time engine model
(swell.engines) on wall time for the simulated servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from aiohttp import web

from swell import errors

log = logging.getLogger("swell.servers")

READY_LINE = "swell-server listening on"
QUIET_PATHS = frozenset({"/health", "/metrics"})  # neither counted as in-flight nor refused while draining


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every server has."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to bind; 0 picks a free one (default 8000)")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds to let in-flight requests finish on SIGTERM",
    )
    p.add_argument("--log-level", default="warning", help="python logging level (default warning)")
    return p


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")


def announce(url: str) -> None:
    """The readiness line process managers wait for (besides polling /health)."""
    print(f"{READY_LINE} {url}", flush=True)


class Lifecycle:
    """Draining flag and in-flight count of one server, with the middleware that keeps them."""

    def __init__(self) -> None:
        self.draining = False
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in QUIET_PATHS:
            return await handler(request)
        if self.draining:
            return web.json_response({"error": "server is shutting down"}, status=503)
        self.inflight += 1
        self._idle.clear()
        try:
            return await handler(request)
        finally:
            self.inflight -= 1
            if self.inflight == 0:
                self._idle.set()

    async def health(self, request: web.Request) -> web.Response:
        if self.draining:
            return web.json_response({"status": "draining"}, status=503)
        return web.json_response({"status": "ok"})

    async def wait_idle(self, timeout: float) -> bool:
        """True when nothing is in flight, False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


def run(main: Coroutine[Any, Any, None]) -> int:
    """Run a server's main coroutine; a bind failure or errors.EngineError is one line on stderr, exit 1."""
    try:
        asyncio.run(main)
    except (OSError, errors.EngineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def stop_signals() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(app: web.Application, life: Lifecycle, *, host: str, port: int, drain_timeout: float) -> None:
    """Run `app` until SIGTERM/SIGINT, then drain and stop. `/health` is added here."""
    app.router.add_get("/health", life.health)
    app.middlewares.append(life.middleware)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    stop = stop_signals()
    bound_host, bound_port = runner.addresses[0][:2]
    announce(f"http://{host if ':' not in host else f'[{host}]'}:{bound_port}")
    log.info("serving on %s:%s", bound_host, bound_port)
    await stop.wait()
    life.draining = True
    await site.stop()  # close the listening socket; open connections get 503 for new requests
    if not await life.wait_idle(drain_timeout):
        log.warning("drain timeout: %d request(s) still in flight", life.inflight)
    await runner.cleanup()


class Engine(Protocol):
    def advance(self, until: float) -> list[Any]: ...
    def next_event_time(self) -> float | None: ...


class Driver:
    """Runs a virtual-time engine on wall time: engine time 0 is when the driver was made.

    After every wake it advances the engine to now, hands the events to `on_events`, calls
    `on_tick` (e.g. to push streamed tokens), then sleeps until the engine's next event, the
    time `pace()` asks for (the next token step while someone streams), or `wake()`.
    """

    def __init__(
        self,
        engine: Engine,
        on_events: Callable[[list[Any]], None],
        on_tick: Callable[[], None] | None = None,
        pace: Callable[[], float | None] | None = None,
    ) -> None:
        self.engine = engine
        self._on_events = on_events
        self._on_tick = on_tick
        self._pace = pace
        self._t0 = time.monotonic()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def now(self) -> float:
        return time.monotonic() - self._t0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="engine-driver")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            events = self.engine.advance(self.now())
            if events:
                self._on_events(events)
            if self._on_tick is not None:
                self._on_tick()
            nxt = self.engine.next_event_time()
            if self._pace is not None and (p := self._pace()) is not None:
                nxt = p if nxt is None else min(nxt, p)
            timeout = None if nxt is None else max(0.0, nxt - self.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
