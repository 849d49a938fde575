"""Gateway overhead: latency added by swell's gateway (and by nginx) in front of a trivial backend.

Starts a trivial aiohttp backend, swell's gateway and, if installed, Debian's nginx as a reverse
proxy (keep-alive upstream), each in its own process on loopback. For each path — direct,
gateway, nginx — it sends a fixed open-loop rate (default 500 req/s) and records p50 / p99
latency, then a closed loop of N connections for the maximum throughput. Prints JSON.

    python bench/gateway_overhead.py [--rate 500] [--seconds 10] [--concurrency 32]
                                     [--client-cpu 0] [--server-cpu 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web

from swell.clusters.local import engines, gateway

BODY = b'{"id":"x","choices":[{"text":"ok"}]}'


# ------------------------------------------------------------------ the processes under test


def serve_backend(port: int) -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_gateway(port: int, backend: str) -> None:
    async def main() -> None:
        g = gateway.Gateway(port=port)
        await g.start()
        g.add_backend("backend", backend)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


def wait_ready(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1).read()
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def spawn(args: list[str], cpu: int | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=lambda: pin(cpu)
    )


# ------------------------------------------------------------------ load


async def fixed_rate(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: requests at evenly spaced times; latency of each, errors counted."""
    lat: list[float] = []
    errors = 0
    n = int(rate * seconds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:

        async def one() -> None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                async with s.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                        return
            except aiohttp.ClientError:
                errors += 1
                return
            lat.append(time.perf_counter() - t0)

        for _ in range(50):  # warm the connection pool
            await one()
        lat.clear()
        start = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)
        achieved = n / (time.perf_counter() - start)
    a = np.asarray(lat) * 1000
    return {
        "rate": rate,
        "achieved_rps": round(achieved, 1),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p90_ms": round(float(np.percentile(a, 90)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "errors": errors,
    }


async def max_throughput(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """Closed loop: `concurrency` connections sending back to back."""
    done = errors = 0
    stop = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:

        async def user() -> None:
            nonlocal done, errors
            while time.perf_counter() < stop:
                try:
                    async with s.get(url) as r:
                        await r.read()
                        done += r.status == 200
                        errors += r.status != 200
                except aiohttp.ClientError:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        took = time.perf_counter() - t0
    return {"concurrency": concurrency, "rps": round(done / took, 1), "errors": errors}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--client-cpu", type=int, default=0, help="pin the load client here (-1: no pinning)")
    p.add_argument("--server-cpu", type=int, default=1, help="pin backend, gateway, nginx here (-1: none)")
    p.add_argument("--serve-backend", type=int, help=argparse.SUPPRESS)
    p.add_argument("--serve-gateway", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve_backend:
        serve_backend(a.serve_backend)
        return
    if a.serve_gateway:
        serve_gateway(int(a.serve_gateway[0]), a.serve_gateway[1])
        return

    client_cpu = None if a.client_cpu < 0 else a.client_cpu
    server_cpu = None if a.server_cpu < 0 else a.server_cpu
    pin(client_cpu)
    me = [sys.executable, os.path.abspath(__file__)]
    b_port, g_port, n_port = engines.free_port(), engines.free_port(), engines.free_port()
    backend = f"http://127.0.0.1:{b_port}"
    procs = [spawn([*me, "--serve-backend", str(b_port)], server_cpu)]
    tmp = Path(tempfile.mkdtemp(prefix="swell-bench-nginx-"))
    paths = {"direct": backend + "/v1/x", "swell gateway": f"http://127.0.0.1:{g_port}/v1/x"}
    try:
        wait_ready(backend + "/")
        procs.append(spawn([*me, "--serve-gateway", str(g_port), backend], server_cpu))
        wait_ready(paths["swell gateway"])
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if nginx:
            conf = tmp / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=tmp, backend=b_port, port=n_port))
            procs.append(
                spawn([nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")], server_cpu)
            )
            paths["nginx"] = f"http://127.0.0.1:{n_port}/v1/x"
            wait_ready(paths["nginx"])
        results: dict[str, Any] = {}
        for name, url in paths.items():
            fixed = asyncio.run(fixed_rate(url, a.rate, a.seconds))
            peak = asyncio.run(max_throughput(url, a.concurrency, a.seconds / 2))
            results[name] = {"fixed_rate": fixed, "max_throughput": peak}
        direct = results["direct"]["fixed_rate"]
        for name in paths:
            if name != "direct":
                f = results[name]["fixed_rate"]
                results[name]["added_p50_ms"] = round(f["p50_ms"] - direct["p50_ms"], 3)
                results[name]["added_p99_ms"] = round(f["p99_ms"] - direct["p99_ms"], 3)
        out = {
            "benchmark": "gateway_overhead",
            "command": "python bench/gateway_overhead.py " + " ".join(sys.argv[1:]),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "client_cpu": client_cpu,
                "server_cpu": server_cpu,
            },
            "nginx": bool(nginx),
            "results": results,
        }
        print(json.dumps(out, indent=2))
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
