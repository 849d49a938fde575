"""One signal, two evaluators: a real Prometheus and the embedded windows agree on the same server.

A small aiohttp server on loopback exposes vLLM-named metrics whose rates are known (counters grow
linearly in wall time); Prometheus scrapes it every second while the embedded source does too.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp import web

from swell import recipe
from swell.metrics import embedded, prometheus
from tests.support import prometheus as prom_support

pytestmark = pytest.mark.prometheus

SIGNALS = [
    recipe.Signal(
        name="slow",
        kind="histogram_fraction",
        metric="vllm:e2e_request_latency_seconds",
        le=5.0,
        window_s=10,
        target=0.5,
    ),
    recipe.Signal(
        name="avg_latency",
        kind="ratio",
        numerator="vllm:e2e_request_latency_seconds_sum",
        denominator="vllm:e2e_request_latency_seconds_count",
        window_s=10,
        target=0.2,
    ),
    recipe.Signal(
        name="waiting",
        kind="gauge",
        metric="vllm:num_requests_waiting",
        aggregate="sum",
        window_s=5,
        target=3,
    ),
    recipe.Signal(name="rps", kind="rate", metric="vllm:request_success_total", window_s=10, target=3),
    recipe.Signal(
        name="idle_slow",
        kind="histogram_fraction",
        metric="idle_latency_seconds",
        le=5.0,
        window_s=10,
        target=0.5,
    ),
]


def metrics_text(t0: float) -> str:
    n = (time.time() - t0) * 10.0  # 10 requests per second: 8 fast (1 s), 2 slow (8 s)
    fast, slow = 0.8 * n, 0.2 * n
    return (
        "# TYPE vllm:e2e_request_latency_seconds histogram\n"
        f'vllm:e2e_request_latency_seconds_bucket{{le="1.0"}} {fast}\n'
        f'vllm:e2e_request_latency_seconds_bucket{{le="5.0"}} {fast}\n'
        f'vllm:e2e_request_latency_seconds_bucket{{le="+Inf"}} {n}\n'
        f"vllm:e2e_request_latency_seconds_sum {fast * 1.0 + slow * 8.0}\n"
        f"vllm:e2e_request_latency_seconds_count {n}\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        "vllm:num_requests_waiting 7\n"
        "# TYPE vllm:request_success_total counter\n"
        f"vllm:request_success_total {n}\n"
        "# TYPE idle_latency_seconds histogram\n"
        'idle_latency_seconds_bucket{le="5.0"} 3\n'
        'idle_latency_seconds_bucket{le="+Inf"} 4\n'
        "idle_latency_seconds_sum 9\n"
        "idle_latency_seconds_count 4\n"
    )


async def test_prometheus_and_embedded_agree(tmp_path: Path) -> None:
    t0 = time.time()
    app = web.Application()

    async def serve(_: web.Request) -> web.Response:
        return web.Response(text=metrics_text(t0), content_type="text/plain")

    app.router.add_get("/metrics", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    emb = embedded.EmbeddedSource(recipe.Resources())
    try:
        with prom_support.running(tmp_path) as prom:
            prom.set_targets({"r0": f"127.0.0.1:{port}"})
            src = prometheus.PrometheusSource(prom.url)
            started = time.time()
            deadline = started + 40
            got: dict = {}
            while time.time() < deadline:
                await emb.scrape_all({"r0": f"http://127.0.0.1:{port}/metrics"}, time.time())
                got = await src.read(SIGNALS, time.time())
                # rates agree once Prometheus (first sample ~5 s after start) has a whole window of samples
                if all(r.ok for r in got.values()) and time.time() - started > 17:
                    break
                await asyncio.sleep(1.0)
            mine = emb.evaluate(SIGNALS, time.time())
            assert all(r.ok for r in got.values()), {k: r.error for k, r in got.items()}
            for name, want in [
                ("slow", 0.2),
                ("avg_latency", 2.4),
                ("waiting", 7.0),
                ("rps", 10.0),
                ("idle_slow", 0.0),
            ]:
                assert got[name].value == pytest.approx(want, rel=0.15), name
                assert mine[name].value == pytest.approx(want, rel=0.15), name
            absent = recipe.Signal(name="x", kind="gauge", metric="no_such_metric", target=1)
            missing = (await src.read([absent], time.time()))["x"]
            assert missing.value is None and "empty result" in missing.error
        down = await prometheus.PrometheusSource(prom.url, timeout_s=1).read([SIGNALS[2]], time.time())
        assert down["waiting"].value is None and "unreachable" in down["waiting"].error
    finally:
        await emb.close()
        await runner.cleanup()
