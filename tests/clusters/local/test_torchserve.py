"""The `torchserve` engine with the real TorchServe (Java frontend, Python workers) on loopback.

Skipped, saying how to install it, where TorchServe, its model archiver, PyYAML or Java is
missing. Each test starts real TorchServe replicas (a few seconds each on a small machine) and
checks afterwards that no process started for them survives: Java's and the workers' command
lines name files in the replica's work directory under the test's run directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from swell import recipe
from swell.clusters.local import cluster, engines
from swell.core.policies import workers as workers_mod
from swell.runtime import local
from tests.clusters.local import helpers
from tests.support import torchserve_install

MISSING = torchserve_install.missing("psutil")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"real TorchServe needs {', '.join(MISSING)}: {torchserve_install.INSTALL}",
    ),
]
MODEL = "digest"


def ts_recipe(rounds: int = 4000, memory_gib: float = 2.0, **workers: Any) -> recipe.Recipe:
    """One TorchServe replica of the built-in model; workers sized on the queue, quick loops."""
    return recipe.parse(
        {
            "service": {"name": MODEL, "engine": "torchserve", "env": {"SWELL_TS_ROUNDS": str(rounds)}},
            "resources": {"cpu": 1, "memory_gib": memory_gib},
            "autoscaling": {
                "min_replicas": 1,
                "max_replicas": 1,
                "polling_interval_s": 0.5,
                "metrics": {"scrape_interval_s": 0.5},
                "signals": [
                    {
                        "name": "queue_time",
                        "kind": "ratio",
                        "numerator": "ts_queue_latency_microseconds",
                        "denominator": "ts_inference_requests_total",
                        "window_s": 5,
                        "target": 10_000_000,
                    }
                ],
            },
            "workers": {"min_workers": 1, "max_workers": 3, **workers},
            "local": {"port": 0, "cpu_slots": 2, "grace_period_s": 5, "drain_timeout_s": 10},
        }
    )


def processes_naming(text: str) -> list[int]:
    """Live (not zombie) processes whose command line contains `text`, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd and helpers.alive(int(entry)):
            out.append(int(entry))
    return out


def java_of(work: Path) -> list[int]:
    return [p for p in processes_naming(str(work)) if _comm(p) == "java"]


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def ready_names(c: cluster.LocalCluster) -> list[str]:
    return [r.name for r in c.manager.replicas() if r.state == "ready"]


async def model_status(s: aiohttp.ClientSession, c: cluster.LocalCluster, replica: str) -> dict[str, Any]:
    spec = c.manager.ready_specs()[replica]
    async with s.get(f"{spec.management_url}/models/{MODEL}") as r:
        assert r.status == 200, await r.text()
        body: list[dict[str, Any]] = await r.json(content_type=None)
        return body[0]


async def until_model(
    s: aiohttp.ClientSession,
    c: cluster.LocalCluster,
    replica: str,
    cond: Callable[[dict[str, Any]], bool],
    what: str,
    timeout_s: float = 40.0,
) -> dict[str, Any]:
    """Poll `GET /models/{m}` until `cond` holds; fail saying what did not happen."""
    deadline = time.monotonic() + timeout_s
    while not cond(model := await model_status(s, c, replica)):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s:g} s waiting for {what}: {model['workers']}")
        await asyncio.sleep(0.2)
    return model


def ready_count(model: dict[str, Any]) -> int:
    return sum(1 for w in model["workers"] if w["status"] == "READY")


async def predict(s: aiohttp.ClientSession, endpoint: str, text: str) -> tuple[int, Any]:
    async with s.post(f"{endpoint}/predictions/{MODEL}", data=text.encode()) as r:
        body = await r.read()
        return r.status, body


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s


async def test_a_replica_serves_sets_workers_and_leaves_no_java_behind(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    rec = ts_recipe(rounds=60_000)  # ~20 ms a request: workers are busy when stopped
    async with cluster.LocalCluster(rec, run_dir=tmp_path, initial=1) as c:
        await helpers.wait_until(lambda: len(ready_names(c)) == 1, "a ready TorchServe replica", 90)
        (name,) = ready_names(c)
        work = tmp_path / name
        assert len(java_of(work)) == 1, "one Java frontend, started for this replica's work directory"

        status, body = await predict(session, c.endpoint, "hello")
        assert status == 200, body
        answer = json.loads(body)
        assert answer["label"] in ("even", "odd") and len(answer["digest"]) == 16

        assert (await c.observe_workers()) is not None
        await c.set_workers(name, 3)  # more workers: TorchServe starts them in the background
        model = await until_model(session, c, name, lambda m: ready_count(m) == 3, "3 READY workers")
        assert model["minWorkers"] == 3
        (seen,) = await c.observe_workers() or ()
        assert (seen.replica, seen.workers) == (name, 3)

        # fewer, while 3 clients keep every worker busy: TorchServe would answer the requests of
        # the workers it stops with 500; swell drains the replica first, so none fails
        async with load(session, c.endpoint, users=3, limit=2_000) as codes:
            await helpers.wait_until(lambda: len(codes) >= 30, "requests at 3 workers", 30)
            await c.set_workers(name, 1)
            done = len(codes)
            await helpers.wait_until(lambda: len(codes) >= done + 10, "requests at 1 worker", 30)
        assert set(codes) == {200}, f"failed while scaling down: {[x for x in codes if x != 200][:10]}"
        model = await model_status(session, c, name)
        assert model["minWorkers"] == 1 and len(model["workers"]) == 1
        assert c.gateway.stats().ready == 1, "routed to again after the drain"
        (seen,) = await c.observe_workers() or ()
        assert seen.workers == 1

        # a crash of the launcher (the replica's server process): the guard takes Java and the
        # workers with it, and the replica is restarted
        (java,) = java_of(work)
        guard = next(r.pid for r in c.manager.replicas() if r.name == name)
        assert guard is not None
        (launcher,) = helpers.children(guard)
        workers_before = [p for p in processes_naming(str(work)) if p not in (java, launcher)]
        assert workers_before, "the model's worker processes run below Java"
        os.kill(launcher, signal.SIGKILL)
        await helpers.wait_until(lambda: not helpers.alive(java), "the crashed replica's Java gone", 30)
        await helpers.wait_until(
            lambda: not any(helpers.alive(p) for p in workers_before), "its workers gone", 30
        )
        # ready again means restarted: a new guard (the old one may still be reaping its group)
        await helpers.wait_until(
            lambda: [(r.state, r.pid != guard) for r in c.manager.replicas()] == [("ready", True)],
            "the replica restarted and ready again",
            90,
        )
        assert (await predict(session, c.endpoint, "again"))[0] == 200
    left = processes_naming(str(tmp_path))
    assert not left, f"processes of the stopped replica still alive: {left}"


def loopback(ip: str) -> bool:
    """127.0.0.0/8, also as Java writes it on an IPv6 socket (::ffff:127.0.0.1); not 0.0.0.0."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


async def test_two_replicas_on_one_machine_both_serve_and_listen_on_loopback_only(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Each TorchServe also starts gRPC listeners (0.0.0.0:7070/7071 by default: a second
    replica failed to bind) and keeps sockets in its temp directory: both must be private."""
    import psutil  # a dependency of torchserve

    async with cluster.LocalCluster(ts_recipe(), run_dir=tmp_path, initial=2) as c:
        await helpers.wait_until(lambda: len(ready_names(c)) == 2, "two ready TorchServe replicas", 90)
        for _ in range(8):
            assert (await predict(session, c.endpoint, "x"))[0] == 200
        assert all(c.gateway.routed.get(n, 0) > 0 for n in ready_names(c)), c.gateway.routed
        for name in ready_names(c):
            (java,) = java_of(tmp_path / name)
            listening = [
                x.laddr for x in psutil.Process(java).net_connections("inet") if x.status == "LISTEN"
            ]
            assert len(listening) >= 5, listening  # inference, management, metrics, 2 x gRPC
            assert all(loopback(a.ip) for a in listening), listening
    assert not processes_naming(str(tmp_path))


@contextlib.asynccontextmanager
async def load(s: aiohttp.ClientSession, url: str, users: int, limit: int) -> AsyncIterator[list[int]]:
    """`users` closed-loop clients posting predictions until the block ends or `limit` requests
    in all were sent; yields the status codes (an exception counts as 0)."""
    codes: list[int] = []
    stop = asyncio.Event()

    async def user(u: int) -> None:
        n = 0
        while not stop.is_set() and len(codes) < limit:
            n += 1
            try:
                codes.append((await predict(s, url, f"user {u} request {n}"))[0])
            except (aiohttp.ClientError, TimeoutError):
                codes.append(0)

    tasks = [asyncio.ensure_future(user(u)) for u in range(users)]
    try:
        yield codes
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_the_loop_grows_workers_under_a_load_step_and_shrinks_them_after(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    rec = ts_recipe(target_queue_per_worker=1, scale_down_stabilization_s=2)
    async with local.LocalRuntime(rec, run_dir=tmp_path) as rt:
        c = rt.cluster
        await helpers.wait_until(lambda: len(ready_names(c)) == 1, "a ready TorchServe replica", 90)
        (name,) = ready_names(c)
        assert (await model_status(session, c, name))["minWorkers"] == 1
        async with load(session, rt.endpoint, users=4, limit=5_000) as codes:
            await helpers.wait_until(
                lambda: (rt.controller.state.workers or 0) >= 3, "the loop asking for 3 workers", 40
            )
            grown = await until_model(session, c, name, lambda m: ready_count(m) == 3, "3 READY workers")
            assert grown["minWorkers"] == 3
            await helpers.wait_until(lambda: len(codes) >= 20, "requests answered under load", 30)
        await helpers.wait_until(
            lambda: rt.controller.state.workers == 1, "the loop back at 1 worker after the load", 40
        )
        await until_model(session, c, name, lambda m: len(m["workers"]) == 1, "TorchServe back at 1 worker")
        assert codes and set(codes) == {200}, f"failed requests: {[x for x in codes if x != 200][:10]}"
        asked = [w.desired for e in rt.history if (w := e.decision.workers) is not None]
        assert 3 in asked and asked[-1] == 1, asked
    assert not processes_naming(str(tmp_path)), "processes of the stopped runtime still alive"


def resident(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_the_loop_runs_only_the_workers_the_replica_memory_holds(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """0.75 GiB: the ~250 MB beside the workers (guard, launcher, Java) leave room for 2 workers
    of ~230 MB; 4 clients ask for 4 (target 1 a worker), the loop keeps 2."""
    rec = ts_recipe(memory_gib=0.75, max_workers=4, target_queue_per_worker=1, scale_down_stabilization_s=2)
    async with local.LocalRuntime(rec, run_dir=tmp_path) as rt:
        c = rt.cluster
        await helpers.wait_until(lambda: len(ready_names(c)) == 1, "a ready TorchServe replica", 90)
        (name,) = ready_names(c)
        deadline = time.monotonic() + 40  # TorchServe measures its workers every 10 s
        while not ((seen := await c.observe_workers()) and seen[0].worker_memory_bytes):
            assert time.monotonic() < deadline, f"no worker memory measured: {seen}"
            await asyncio.sleep(0.5)
        (obs,) = seen
        assert obs.worker_memory_bytes is not None and obs.base_memory_bytes is not None
        (worker,) = (await model_status(session, c, name))["workers"]
        assert abs(obs.worker_memory_bytes - resident(worker["pid"])) < 0.2 * resident(worker["pid"]), (
            "memoryUsage is the worker's resident memory"
        )
        java = java_of(tmp_path / name)
        assert sum(map(resident, java)) < obs.base_memory_bytes < 1e9, "Java and the launcher beside it"
        cap = workers_mod.memory_cap(rec.workers, 0.75, seen)  # type: ignore[arg-type]
        assert cap is not None and cap.workers == 2, f"this machine's measurements do not leave 2: {cap}"

        async with load(session, rt.endpoint, users=4, limit=3_000) as codes:
            await helpers.wait_until(
                lambda: any("allows 2 workers" in r for r in worker_reasons(rt)),
                "memory bounding the workers",
                40,
            )
            await until_model(session, c, name, lambda m: ready_count(m) == 2, "2 READY workers")
            done = len(codes)
            await helpers.wait_until(lambda: len(codes) >= done + 40, "requests at 2 workers", 60)
            assert (await model_status(session, c, name))["minWorkers"] == 2
        asked = [w.desired for e in rt.history if (w := e.decision.workers) is not None]
        assert max(asked) == 2, f"the loop asked for more than memory holds: {asked}"
        assert any("queue" in r and "asks 4" in r for r in worker_reasons(rt)), "the queue asked for 4"
        assert codes and set(codes) == {200}, f"failed requests: {[x for x in codes if x != 200][:10]}"
    assert not processes_naming(str(tmp_path)), "processes of the stopped runtime still alive"


def worker_reasons(rt: local.LocalRuntime) -> list[str]:
    return [w.reason for e in rt.history if (w := e.decision.workers) is not None]


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "torchserve-workers.yaml"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["Ctrl-C", "SIGKILL of swell"])
async def test_swell_up_serves_the_example_and_leaves_no_java_behind(
    session: aiohttp.ClientSession, tmp_path: Path, sig: int
) -> None:
    port = engines.free_port()
    run = tmp_path / "run"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swell.cli.main", "up", str(EXAMPLE), "--port", str(port), "--run-dir", str(run),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                status, body = await predict(session, f"http://127.0.0.1:{port}", "hello")
                if status == 200:
                    break
            assert proc.returncode is None and time.monotonic() < deadline, (
                "no prediction through the gateway"
            )
            await asyncio.sleep(0.25)
        assert json.loads(body)["label"] in ("even", "odd")
        assert any(_comm(p) == "java" for p in processes_naming(str(run))), "TorchServe's Java serves it"
        proc.send_signal(sig)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        if sig == signal.SIGINT:
            assert proc.returncode == 0 and b"no replica left running" in out, out[-2000:]
            assert "| workers 1→1: ".encode() in out, out[-2000:]  # the status line shows the workers
        await helpers.wait_until(lambda: not processes_naming(str(run)), "every TorchServe process gone", 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
