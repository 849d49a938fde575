"""Helpers for the API tests: a fast simulated-llm recipe, a running API server, a client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from swell.api import server

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def chat_recipe(name: str = "chat", **auto: Any) -> dict[str, Any]:
    """simulated-llm on the tiny CPU preset, scaled on gateway concurrency every second."""
    autoscaling: dict[str, Any] = {
        "min_replicas": 1,
        "max_replicas": 3,
        "policy": "hpa",
        "polling_interval_s": 0.5,
        "metrics": {"source": "embedded", "scrape_interval_s": 0.5},
        "signals": [
            {
                "name": "concurrency",
                "kind": "rate",
                "metric": "swell_gateway_concurrency_seconds_total",
                "window_s": 3,
                "target": 1,
                "target_type": "AverageValue",
            }
        ],
        "behavior": {
            "scale_up": {
                "stabilization_window_s": 0,
                "policies": [{"type": "Pods", "value": 2, "period_s": 1}],
            },
            "scale_down": {
                "stabilization_window_s": 30,
                "policies": [{"type": "Pods", "value": 1, "period_s": 5}],
            },
        },
    } | auto
    return {
        "service": {"name": name, "engine": "simulated-llm", "preset": "tiny-cpu"},
        "resources": {"cpu": 0.5},
        "autoscaling": autoscaling,
        "node_pool": {"shape": "local", "gpus_per_node": 8},
        "slo": {"ttft_s": 1.0, "e2e_s": 5.0},
        "local": {"cpu_slots": 3, "drain_timeout_s": 2, "grace_period_s": 2},
    }


@contextlib.asynccontextmanager
async def running(data_dir: Path, **kw: Any) -> AsyncIterator[tuple[server.Server, aiohttp.ClientSession]]:
    """An API server on a free loopback port and a client session for it."""
    async with (
        server.Server(data_dir=data_dir, port=0, token=TOKEN, sample_s=0.25, **kw) as srv,
        aiohttp.ClientSession(srv.url) as session,
    ):
        yield srv, session


async def until(check: Callable[[], Awaitable[Any]], timeout_s: float = 20.0) -> Any:
    """What `check` returns once it is truthy (polled every 0.1 s); AssertionError after the timeout."""
    for _ in range(int(timeout_s / 0.1)):
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")
