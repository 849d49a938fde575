"""A stand-in for TorchServe's management API on 127.0.0.1 (GET and PUT /models/{m}), for tests
that need a pod's TorchServe without Java: the Kubernetes unit tests and the end-to-end test.

It answers as TorchServe 0.12 does (a list of one model description with its workers, their
`memoryUsage`, and `jobQueueStatus.pendingRequests`) and records every PUT. It runs its own event
loop in a thread, so a test process and a separate controller process can both reach it.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Self

from aiohttp import web

MEMORY = 231_407_616  # one worker's memoryUsage as measured with the built-in handler


class Management:
    def __init__(
        self, model: str, *, workers: int = 1, pending: int = 0, journal: list[Any] | None = None
    ) -> None:
        self.model, self.workers, self.pending = model, workers, pending
        self.memory = MEMORY
        self.drains_per_get = 0  # each GET lowers `pending` by this much (requests finishing)
        self.puts: list[dict[str, Any]] = []  # each PUT's query, and `pending` when it came
        self.gets = 0
        self.journal = journal if journal is not None else []  # ("PUT", workers) appended in order
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="ts-management", daemon=True)

    def answer(self) -> list[dict[str, Any]]:
        return [
            {
                "modelName": self.model,
                "modelVersion": "1.0",
                "minWorkers": self.workers,
                "maxWorkers": self.workers,
                "workers": [
                    {"id": str(9000 + i), "status": "READY", "memoryUsage": self.memory, "pid": 100 + i}
                    for i in range(self.workers)
                ],
                "jobQueueStatus": {"remainingCapacity": 100, "pendingRequests": self.pending},
            }
        ]

    async def _get(self, request: web.Request) -> web.Response:
        if request.match_info["model"] != self.model:
            return web.json_response({"code": 404, "message": "Model not found"}, status=404)
        self.gets += 1
        out = self.answer()
        self.pending = max(0, self.pending - self.drains_per_get)
        return web.json_response(out)

    async def _put(self, request: web.Request) -> web.Response:
        if request.match_info["model"] != self.model:
            return web.json_response({"code": 404, "message": "Model not found"}, status=404)
        q = dict(request.query)
        self.puts.append(q | {"pending": self.pending})
        self.workers = int(q["min_worker"])
        self.journal.append(("PUT", self.workers))
        if q.get("synchronous") == "true":
            return web.json_response({"status": f"Workers scaled to {self.workers} for model: {self.model}"})
        return web.json_response({"status": "Processing worker updates..."}, status=202)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/models/{model}", self._get)
        app.router.add_put("/models/{model}", self._put)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
