"""Is swell's load generator the bottleneck? Open loop at 2,000 req/s on one core, next to hey.

A trivial aiohttp backend gets its own core; on another core, in the same run, hey paced to the
rate (-c 50 -q rate/50) and swell's runner (Poisson) at the rate, then both flat out with 50
connections. Prints JSON with swell/hey ratios. Usage: python bench/loadgen_throughput.py [--rate R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from typing import Any

BODY = '{"prompt": "hello", "max_tokens": 1}'
REPLY = b'{"choices": [{"text": "ok"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}'


def serve(port: int) -> None:
    """The backend: answers every POST at once with a small JSON body."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=REPLY, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/completions", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("backend did not start")


def run_hey(
    url: str, cpu: int, duration: float, workers: int, per_worker_qps: float | None
) -> dict[str, Any]:
    """hey on one core (GOMAXPROCS=1, pinned), parsed from its text summary."""
    cmd = [
        "hey",
        "-z",
        f"{duration:g}s",
        "-c",
        str(workers),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-d",
        BODY,
    ]
    if per_worker_qps:
        cmd += ["-q", f"{per_worker_qps:g}"]
    env = {**os.environ, "GOMAXPROCS": "1"}
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, env=env, check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    ).stdout  # fmt: skip
    pct = {int(p): float(v) for p, v in re.findall(r"(\d+)%\s+in\s+([\d.]+)\s+secs", out)}
    total = sum(int(n) for code, n in re.findall(r"\[(\d+)\]\s+(\d+)\s+responses", out) if code == "200")
    return {
        "command": " ".join([*cmd, url]),
        "requests_ok": total,
        "req_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": pct[50] * 1000,
        "p90_ms": pct[90] * 1000,
        "p99_ms": pct[99] * 1000,
    }


def run_swell(url: str, cpu: int, duration: float, **load: Any) -> dict[str, Any]:
    """swell's runner in this process, pinned to one core."""
    from swell.loadgen import options, runner

    os.sched_setaffinity(0, {cpu})
    opts = options.Options(url=url, protocol="http", body=BODY, duration_s=duration, timeout_s=10, **load)
    cpu_start = time.process_time()
    result = asyncio.run(runner.run(opts))
    cpu_s = time.process_time() - cpu_start
    s = result.summary
    ms = 1000.0
    return {
        "load": result.description,
        "requests_ok": s.ok,
        "errors": s.errors,
        "req_per_s": s.request_rate,
        "p50_ms": (s.e2e.p50 or 0) * ms,
        "p90_ms": (s.e2e.p90 or 0) * ms,
        "p99_ms": (s.e2e.p99 or 0) * ms,
        "send_lag_p50_ms": None if s.lag.p50 is None else s.lag.p50 * ms,
        "send_lag_p99_ms": None if s.lag.p99 is None else s.lag.p99 * ms,
        "client_cpu_per_request_us": cpu_s / max(s.sent, 1) * 1e6,
        "client_cpu_utilisation": cpu_s / s.duration_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=50, help="hey -c, and swell's concurrency flat out")
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        os.sched_setaffinity(0, {args.server_cpu})
        serve(args.serve)
        return
    if shutil.which("hey") is None:
        raise SystemExit("hey is not installed (Debian: apt-get install -y hey)")
    port = free_port()
    backend = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--server-cpu", str(args.server_cpu)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_ready(port)
        url = f"http://127.0.0.1:{port}/v1/completions"
        cpu, d, w = args.client_cpu, args.duration, args.workers
        run_swell(url, cpu, 1.0, rate=200.0)  # warm up both sides (imports, connections)
        run_hey(url, cpu, 1.0, w, None)
        hey_open = run_hey(url, cpu, d, w, args.rate / w)
        swell_open = run_swell(url, cpu, d, rate=args.rate)
        hey_max = run_hey(url, cpu, d / 2, w, None)
        swell_max = run_swell(url, cpu, d / 2, concurrency=w)
    finally:
        backend.terminate()
        backend.wait(10)
    report = {
        "host": {
            "cpus": os.cpu_count(),
            "client_cpu": args.client_cpu,
            "server_cpu": args.server_cpu,
            "load_average_1m": os.getloadavg()[0],
        },
        "target_rate": args.rate,
        "open_loop": {"hey": hey_open, "swell": swell_open},
        "flat_out": {"hey": hey_max, "swell": swell_max},
        "ratios": {
            "open_loop_throughput_swell_over_hey": swell_open["req_per_s"] / hey_open["req_per_s"],
            "open_loop_p50_swell_over_hey": swell_open["p50_ms"] / hey_open["p50_ms"],
            "flat_out_throughput_swell_over_hey": swell_max["req_per_s"] / hey_max["req_per_s"],
        },
        "client_overhead_p50_ms": swell_open["p50_ms"] - hey_open["p50_ms"],
        "meets_target": swell_open["req_per_s"] >= 0.98 * args.rate
        and swell_open["p50_ms"] - hey_open["p50_ms"] <= 5.0
        and (swell_open["send_lag_p50_ms"] or 0) <= 5.0,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
