"""After a metrics outage, a window that still reaches back into it is partial: never a scale-down.

Against real HTTP servers on loopback: a replica's /metrics that fails and comes back (embedded),
and a Prometheus HTTP API that is down and comes back (the rate it then answers covers only the
few samples since, far below the real load).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from swell import recipe
from swell.core import signals, snapshot
from swell.core.policies import hpa, steps
from swell.metrics import embedded, prometheus

COUNTER = "swell_gateway_concurrency_seconds_total"
CONCURRENCY = recipe.Signal(
    name="concurrency", kind="rate", metric=COUNTER, window_s=10, target=2, target_type="AverageValue"
)


class Switch:
    """A small server whose answers the test sets: up with a text, or down (HTTP 500)."""

    def __init__(self) -> None:
        self.text = ""
        self.up = True
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def answer(_: web.Request) -> web.Response:
            if not self.up:
                return web.Response(status=500, text="down")
            return web.Response(text=self.text, content_type="text/plain")

        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", answer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"


@pytest.fixture
async def switch() -> AsyncIterator[Switch]:
    s = Switch()
    await s.start()
    yield s
    assert s.runner is not None
    await s.runner.cleanup()


async def test_embedded_windows_reaching_into_a_failed_scrape_are_partial(switch: Switch) -> None:
    src = embedded.EmbeddedSource(recipe.Resources())
    try:
        total = 0.0
        for t in range(0, 12):  # 4 requests in the gateway all along
            total += 4.0
            switch.text = f"{COUNTER} {total}\n"
            switch.up = not 5 <= t <= 7  # an outage from t=5 to t=7
            await src.scrape_all({"gw": switch.url + "/metrics"}, float(t))
        got = src.evaluate([CONCURRENCY], 11.0)["concurrency"]
        assert got.ok and got.partial and "not full again after a metrics outage (gw)" in got.error
        for t in range(12, 18):
            total += 4.0
            switch.text = f"{COUNTER} {total}\n"
            await src.scrape_all({"gw": switch.url + "/metrics"}, float(t))
        full = src.evaluate([CONCURRENCY], 17.0)["concurrency"]  # 17 - 7 >= 10: the window is clear
        assert full.ok and not full.partial and full.value == pytest.approx(4.0)
    finally:
        await src.close()


def _vector(value: float) -> str:
    result = [{"metric": {}, "value": [0, str(value)]}]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


async def test_prometheus_coming_back_gives_partial_readings_until_the_window_is_clear(
    switch: Switch,
) -> None:
    async with aiohttp.ClientSession() as session:
        src = prometheus.PrometheusSource(switch.url, session=session)
        switch.text = _vector(16.0)
        assert not (await src.read([CONCURRENCY], 0.0))["concurrency"].partial
        switch.up = False
        assert not (await src.read([CONCURRENCY], 1.0))["concurrency"].ok
        switch.up, switch.text = True, _vector(5.7)  # the first rate() after the outage: far too low
        back = (await src.read([CONCURRENCY], 3.0))["concurrency"]
        assert back.value == 5.7 and back.partial
        # the policy keeps the replicas: a partial reading never scales down
        snap = snapshot.Snapshot(now=3.0, current=4, replicas=(), signals={"concurrency": back})
        auto = {
            "max_replicas": 8,
            "signals": [CONCURRENCY.model_dump()],
            "behavior": {"scale_down": {"stabilization_window_s": 0}},
        }
        rec = recipe.parse({"service": {"name": "x"}, "autoscaling": auto})
        d, _ = hpa.decide(rec, snap, steps.State())
        assert d.desired == 4 and "no scale-down" in d.proposals[0].note
        whole = snapshot.Snapshot(
            now=3.0, current=4, replicas=(), signals={"concurrency": snapshot.Reading(value=5.7)}
        )
        assert hpa.decide(rec, whole, steps.State())[0].desired == 3  # what the same value did before
        switch.text = _vector(16.0)
        assert not (await src.read([CONCURRENCY], 11.5))["concurrency"].partial


def test_gaps_mark_only_windows_that_reach_them() -> None:
    g = signals.Gaps()
    g.gap("prometheus", 100.0)
    long = CONCURRENCY.model_copy(update={"window_s": 60.0})
    r = {"concurrency": snapshot.Reading(value=3.0), "long": snapshot.Reading(value=3.0)}
    out = g.mark(r, [CONCURRENCY, long.model_copy(update={"name": "long"})], 115.0)
    assert not out["concurrency"].partial and out["long"].partial
