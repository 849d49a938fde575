"""Small aiohttp servers on loopback standing in for replicas in the gateway's tests, and their fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Backends:
    """Start small aiohttp servers on loopback; all cleaned up by the fixture."""

    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []

    async def start(self, handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    b = Backends()
    yield b
    for r in b.runners:
        await r.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
