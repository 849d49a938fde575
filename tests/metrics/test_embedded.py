"""The embedded source scraping real HTTP /metrics endpoints on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from swell import recipe
from swell.metrics import embedded, scrape

TEXT = """# HELP vllm:num_requests_waiting Waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} %s
"""


@pytest.fixture
async def servers() -> AsyncIterator[dict[str, list[str]]]:
    values = {"a": ["3"], "b": ["5"]}
    runners = []
    urls = {}
    for name in values:
        app = web.Application()

        async def metrics(_: web.Request, name: str = name) -> web.Response:
            if values[name][0] == "down":
                return web.Response(status=500, text="boom")
            return web.Response(text=TEXT % values[name][0], content_type="text/plain")

        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        urls[name] = f"http://127.0.0.1:{port}/metrics"
        runners.append(runner)
    values["_urls"] = list(urls.values())
    yield values
    for r in runners:
        await r.cleanup()


WAITING = recipe.Signal(
    name="waiting", kind="gauge", metric="vllm:num_requests_waiting", aggregate="sum", window_s=5, target=4
)


async def test_scrapes_all_replicas_and_sums_their_gauges(servers: dict[str, list[str]]) -> None:
    src = embedded.EmbeddedSource(recipe.Resources())
    a, b = servers["_urls"]
    try:
        await src.scrape_all({"a": a, "b": b}, 10.0)
        got = src.evaluate([WAITING], 10.0)["waiting"]
        assert (got.value, got.partial, dict(got.per_replica or {})) == (8.0, False, {"a": 3.0, "b": 5.0})
        servers["b"][0] = "down"
        await src.scrape_all({"a": a, "b": b}, 11.0)
        got = src.evaluate([WAITING], 11.0)["waiting"]
        assert got.partial and "HTTP 500" in got.error  # an unreachable replica: never a scale-down
        await src.scrape_all({"a": a}, 12.0)  # b removed: forgotten
        assert src.evaluate([WAITING], 12.0)["waiting"].value == 3.0
    finally:
        await src.close()


def test_parse_rejects_garbage_with_a_metrics_error() -> None:
    from swell import errors

    with pytest.raises(errors.MetricsError):
        scrape.parse("this is { not prometheus")
    assert [s.name for s in scrape.parse(TEXT % "1")] == ["vllm:num_requests_waiting"]


def test_odd_prometheus_answers_are_no_value_not_a_crash() -> None:
    from swell.metrics import prometheus

    for data in (
        {"resultType": "vector", "result": [{"metric": {}}]},
        {"resultType": "vector", "result": [{"value": [1, "abc"]}]},
        {"resultType": "scalar", "result": [1]},
        {"resultType": "matrix", "result": []},
    ):
        got = prometheus.reading_of(data)
        assert got.value is None and got.error
    assert prometheus.reading_of({"resultType": "vector", "result": [{"value": [1, "NaN"]}]}).error == "NaN"
    assert prometheus.reading_of({"resultType": "scalar", "result": [1, "2.5"]}).value == 2.5
