"""A classic-model replica speaking KServe's v1 protocol: an iris classifier trained at start.

The model is a scikit-learn logistic regression fitted on the bundled iris data (no download).
With `--service-time-ms` each request also waits its turn for one of `--workers` workers and
takes a sampled service time (engines.fixed on wall time), so a CPU-cheap model can stand in
for a heavy one under load. Metrics: KServe's request_predict_seconds plus swell_* series.
Run: python -m swell.servers.sklearn_iris --port 8002 [--name iris] [--workers 2 --service-time-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from swell.engines import fixed
from swell.servers import common

FEATURES = ("sepal length", "sepal width", "petal length", "petal width")


def train() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    return LogisticRegression(max_iter=500).fit(data.data, data.target)


class BadInput(ValueError):
    pass


def parse_instances(body: Any) -> list[list[float]]:
    """`{"instances": [[4 numbers], ...]}` → rows; BadInput names what is wrong and where."""
    if not isinstance(body, dict) or "instances" not in body:
        raise BadInput('body: expected a JSON object with an "instances" list')
    rows = body["instances"]
    if not isinstance(rows, list) or not rows:
        raise BadInput("instances: expected a non-empty list of rows")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(FEATURES):
            raise BadInput(
                f"instances[{i}]: expected {len(FEATURES)} numbers ({', '.join(FEATURES)}), got {row!r}"
            )
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise BadInput(f"instances[{i}][{j}] ({FEATURES[j]}): expected a finite number, got {v!r}")
        out.append([float(v) for v in row])
    return out


class IrisServer:
    def __init__(self, name: str, workers: int, service_time_ms: float, cv: float, seed: int) -> None:
        self.name = name
        self.model = train()
        self.life = common.Lifecycle()
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model_name"]
        self.predict_seconds = Histogram(
            "request_predict_seconds", "predict latency", labels, registry=self.registry
        ).labels(name)
        self.duration = Histogram(
            "swell_request_duration_seconds", "time from request to response", labels, registry=self.registry
        ).labels(name)
        self.requests = Counter(
            "swell_requests", "requests by status code", [*labels, "code"], registry=self.registry
        )
        self.in_flight = Gauge(
            "swell_requests_in_flight", "requests being served", labels, registry=self.registry
        )
        self.in_flight.labels(name).set_function(lambda: self.life.inflight)
        self.engine: fixed.Service | None = None
        self.driver: common.Driver | None = None
        self.waiters: dict[str, asyncio.Future[None]] = {}
        if service_time_ms > 0:
            preset = fixed.ServicePreset(name=name, mean_s=service_time_ms / 1000, cv=cv, workers=workers)
            self.engine = fixed.Service(preset, random.Random(seed))
            self.driver = common.Driver(self.engine, self._on_events)
            workers_gauge = Gauge("swell_workers", "workers in this replica", labels, registry=self.registry)
            workers_gauge.labels(name).set(workers)
            queued = Gauge(
                "swell_queue_length", "requests waiting for a worker", labels, registry=self.registry
            )
            queued.labels(name).set_function(lambda: self.engine.state().queued if self.engine else 0)

    def _on_events(self, events: list[fixed.Finished]) -> None:
        for e in events:
            fut = self.waiters.get(e.request_id)
            if fut is not None and not fut.done():
                fut.set_result(None)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/models", self.list_models)
        app.router.add_get("/v1/models/{name}", self.model_status)
        app.router.add_post("/v1/models/{name}:predict", self.predict)
        app.router.add_get("/metrics", self.metrics)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app: web.Application) -> None:
        if self.driver:
            self.driver.start()

    async def _stop(self, app: web.Application) -> None:
        if self.driver:
            await self.driver.stop()

    def _unknown(self, name: str) -> web.Response:
        return web.json_response({"error": f"Model with name {name} does not exist."}, status=404)

    async def list_models(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [self.name]})

    async def model_status(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name != self.name:
            return self._unknown(name)
        return web.json_response({"name": self.name, "ready": not self.life.draining})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain", charset="utf-8")

    async def predict(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        resp = await self._predict(request)
        self.requests.labels(self.name, str(resp.status)).inc()
        self.duration.observe(time.perf_counter() - t0)
        return resp

    async def _predict(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name != self.name:
            return self._unknown(name)
        try:
            rows = parse_instances(await request.json())
        except json.JSONDecodeError as e:
            return web.json_response({"error": f"body: not valid JSON ({e})"}, status=400)
        except BadInput as e:
            return web.json_response({"error": str(e)}, status=400)
        if self.engine is not None and self.driver is not None:
            rid = uuid.uuid4().hex
            fut = self.waiters[rid] = asyncio.get_running_loop().create_future()
            try:
                if not self.engine.submit(self.driver.now(), rid):
                    return web.json_response({"error": "queue full"}, status=503)
                self.driver.wake()
                await fut
            finally:
                del self.waiters[rid]
        t = time.perf_counter()
        predictions = [int(c) for c in self.model.predict(rows)]
        self.predict_seconds.observe(time.perf_counter() - t)
        return web.json_response({"predictions": predictions})


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser("scikit-learn iris classifier behind KServe's v1 protocol.")
    p.add_argument("--name", default="iris", help="model name in the URL paths (default iris)")
    p.add_argument("--workers", type=int, default=1, help="workers when --service-time-ms is set (default 1)")
    p.add_argument(
        "--service-time-ms", type=float, default=0.0, help="simulated mean service time (default 0: off)"
    )
    p.add_argument(
        "--service-cv", type=float, default=0.3, help="coefficient of variation of the service time"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the service-time sampler")
    args = p.parse_args(argv)
    common.setup_logging(args.log_level)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: own process
    return common.run(_run(args))


async def _run(args: argparse.Namespace) -> None:
    server = IrisServer(args.name, args.workers, args.service_time_ms, args.service_cv, args.seed)
    await common.serve(
        server.app(), server.life, host=args.host, port=args.port, drain_timeout=args.drain_timeout
    )


if __name__ == "__main__":
    sys.exit(main())
