"""Helpers for tests that start real replica processes: a tiny-server recipe, bounded waits.

The tiny server (tiny_server.py, standard library only) starts in a fraction of a second, so
tests with several replicas stay quick on a small shared machine. Waits are bounded and say
what they waited for; no test asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from swell import recipe
from swell.clusters.local import procs

TINY_SERVER = Path(__file__).with_name("tiny_server.py")
CONCURRENCY = "swell_gateway_concurrency_seconds_total"


def tiny_command(
    delay: float = 0.0, token_delay: float = 0.0, startup_delay: float = 0.0, extra: tuple[str, ...] = ()
) -> list[str]:
    return [
        sys.executable, str(TINY_SERVER), "--port", "{port}", "--delay", str(delay),
        "--token-delay", str(token_delay), "--startup-delay", str(startup_delay), *extra,
    ]  # fmt: skip


def tiny_recipe(
    *,
    delay: float = 0.0,
    token_delay: float = 0.0,
    startup_delay: float = 0.0,
    autoscaling: dict[str, Any] | None = None,
    local: dict[str, Any] | None = None,
    probes: dict[str, Any] | None = None,
    resources: dict[str, Any] | None = None,
    extra: tuple[str, ...] = (),
    metrics: dict[str, Any] | None = None,
) -> recipe.Recipe:
    """A recipe serving the tiny server, scaled on gateway concurrency, quick loops, port 0."""
    auto: dict[str, Any] = {
        "min_replicas": 1,
        "max_replicas": 3,
        "policy": "swell",
        "polling_interval_s": 0.25,
        "metrics": {"scrape_interval_s": 0.2},
        "signals": [
            {
                "name": "concurrency",
                "kind": "rate",
                "metric": CONCURRENCY,
                "window_s": 2.0,
                "target": 2,
                "target_type": "AverageValue",
            },
        ],
        "behavior": {
            "scale_up": {
                "stabilization_window_s": 0,
                "policies": [{"type": "Pods", "value": 4, "period_s": 1}],
            },
            "scale_down": {
                "stabilization_window_s": 1,
                "policies": [{"type": "Pods", "value": 4, "period_s": 1}],
            },
        },
    }
    auto.update(autoscaling or {})
    if metrics is not None:
        auto["metrics"] = metrics
    svc: dict[str, Any] = {
        "name": "tiny",
        "engine": "command",
        "command": tiny_command(delay, token_delay, startup_delay, extra),
    }
    if probes is not None:
        svc["probes"] = probes
    data = {
        "service": svc,
        "autoscaling": auto,
        "local": {"port": 0, "cpu_slots": 4, "grace_period_s": 2, "drain_timeout_s": 10, **(local or {})},
        "resources": resources or {},
    }
    return recipe.parse(data)


async def wait_until(cond: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll `cond` until true; fail saying what did not happen within the (generous) bound."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.05)


def children(pid: int) -> list[int]:
    """The live (not zombie) child processes of `pid`, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


@pytest.fixture(autouse=True)
def no_replica_left() -> Iterator[None]:
    """Fail a test that leaves a replica process group alive (and kill it)."""
    before = procs.live_groups()
    yield
    left = procs.live_groups() - before
    procs.kill_all()
    assert not left, f"replica process groups still alive after the test: {sorted(left)}"
