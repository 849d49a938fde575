"""The gateway's metric names, and the request-seconds integral behind its concurrency signal.

Shared by the local gateway (which serves them on /metrics) and the simulator (which emits the
same families), so a recipe that scales on gateway concurrency reads both places alike. The
rate of `swell_gateway_concurrency_seconds_total` is the average number of requests in the
gateway (in flight at a replica + buffered) over the window.
"""

from __future__ import annotations

import time
from collections.abc import Callable

PREFIX = "swell_gateway_"
REQUESTS = PREFIX + "requests_total"
IN_FLIGHT = PREFIX + "requests_in_flight"
BUFFERED = PREFIX + "requests_buffered"
CONCURRENCY = PREFIX + "concurrency_seconds_total"
DURATION = PREFIX + "request_duration_seconds"
TTFT = PREFIX + "time_to_first_token_seconds"
READY = PREFIX + "ready_replicas"
GATEWAY_TARGET = "gateway"  # the scrape target name (the `replica` label) of the gateway itself


class Concurrency:
    """Requests in the gateway now, and the integral of that count over time (request-seconds)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._last = now()
        self.level = 0
        self._integral = 0.0

    def _advance(self) -> None:
        t = self._now()
        self._integral += self.level * (t - self._last)
        self._last = t

    def change(self, delta: int) -> None:
        self._advance()
        self.level += delta

    def set(self, level: int) -> None:
        self._advance()
        self.level = level

    def integral(self) -> float:
        self._advance()
        return self._integral
