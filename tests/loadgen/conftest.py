"""Fixtures: the fake LLM server (fake_llm.py) on 127.0.0.1, in the test's loop or in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from . import fake_llm


@pytest.fixture
async def server() -> AsyncIterator[fake_llm.Server]:
    """The fake server in the test's own event loop."""
    seen = fake_llm.Seen()
    runner = web.AppRunner(fake_llm.make_app(seen), handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake_llm.Server(url=f"http://127.0.0.1:{port}", seen=seen)
    finally:
        await runner.cleanup()


@pytest.fixture
def threaded_server() -> Iterator[fake_llm.Server]:
    """The fake server in a thread of its own, for code that runs its own event loop (the CLI)."""
    seen = fake_llm.Seen()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(fake_llm.make_app(seen), handle_signals=False, shutdown_timeout=0.2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        holder["runner"], holder["port"] = runner, runner.addresses[0][1]
        ready.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True
    )
    thread.start()
    assert ready.wait(10)
    try:
        yield fake_llm.Server(url=f"http://127.0.0.1:{holder['port']}", seen=seen)
    finally:
        runner = holder["runner"]
        assert isinstance(runner, web.AppRunner)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
