"""The metric the end-to-end tests scale on: a tiny aiohttp server on 127.0.0.1 whose gauges the
tests set, for a real Prometheus (tests.support.prometheus) to scrape."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from tests.e2e_k8s import env


class Gauges:
    """`/metrics` on 127.0.0.1 with `e2e_queue{test=NS,namespace=NS,service=SVC} VALUE` for every
    value set: the labels a ServiceMonitor would attach to a pod's series in namespace NS."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], float] = {}
        self.named: dict[tuple[str, str, str], tuple[str, float]] = {}
        self.port = env.free_ports(1)[0]
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="gauges", daemon=True)

    def set(self, test: str, value: float, service: str = "llm") -> None:
        self.values[(test, service)] = value

    def series(self, test: str, metric: str, value: float, kind: str = "counter", service: str = "llm") -> None:
        """Any other series for namespace `test` (e.g. vLLM's counters the planner reads)."""
        self.named[(test, metric, service)] = (kind, value)

    async def _metrics(self, request: web.Request) -> web.Response:
        lines = ["# TYPE e2e_queue gauge"] + [
            f'e2e_queue{{test="{ns}",namespace="{ns}",service="{svc}"}} {v}'
            for (ns, svc), v in sorted(self.values.items())
        ]
        typed: set[str] = set()
        for (ns, metric, svc), (kind, v) in sorted(self.named.items(), key=lambda kv: kv[0][1]):
            if metric not in typed:  # one TYPE line per metric, before all its series
                typed.add(metric)
                lines.append(f"# TYPE {metric} {kind}")
            lines.append(f'{metric}{{test="{ns}",namespace="{ns}",service="{svc}"}} {v}')
        return web.Response(text="\n".join(lines) + "\n")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
