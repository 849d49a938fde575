"""The replica manager with real processes (the tiny server) behind the real gateway on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from swell import recipe
from swell.clusters.local import cluster, replicas
from tests.clusters.local import helpers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s


def states(c: cluster.LocalCluster) -> list[str]:
    return sorted(r.state for r in c.manager.replicas())


async def complete(s: aiohttp.ClientSession, url: str, **body: object) -> int:
    async with s.post(url + "/v1/completions", json={"prompt": "hi", "max_tokens": 2, **body}) as r:
        await r.read()
        return r.status


async def test_replicas_beyond_the_slots_wait_pending_and_are_removed_first(
    session: aiohttp.ClientSession,
) -> None:
    rec = helpers.tiny_recipe(local={"cpu_slots": 2})
    async with cluster.LocalCluster(rec, initial=0) as c:
        await c.scale(3)
        await helpers.wait_until(lambda: states(c) == ["pending", "ready", "ready"], "2 ready, 1 pending")
        pending = next(r for r in c.manager.replicas() if r.state == "pending")
        assert "local.cpu_slots" in pending.reason
        assert [await complete(session, c.endpoint) for _ in range(4)] == [200] * 4
        await c.scale(2)  # the pending one goes, not a ready one
        assert states(c) == ["ready", "ready"]
        assert sorted(r.slot for r in c.manager.replicas()) == ["cpu slot 0", "cpu slot 1"]


async def test_each_replica_sees_only_the_gpus_of_its_slot(session: aiohttp.ClientSession) -> None:
    rec = helpers.tiny_recipe(local={"gpu_ids": [3, 5, 6]}, resources={"gpus": 1})
    rec = recipe.Recipe.model_validate(
        rec.model_dump(by_alias=True) | {"node_pool": {"shape": "local", "gpus_per_node": 8}}
    )
    async with cluster.LocalCluster(rec, initial=4) as c:
        await helpers.wait_until(
            lambda: states(c) == ["pending", "ready", "ready", "ready"], "3 ready, 1 pending"
        )
        seen = set()
        for r in c.manager.replicas():
            if r.url:
                async with session.get(r.url + "/env") as resp:
                    seen.add((await resp.json())["CUDA_VISIBLE_DEVICES"])
        assert seen == {"3", "5", "6"}
        pending = next(r for r in c.manager.replicas() if r.state == "pending")
        assert "local.gpu_ids" in pending.reason


async def test_scale_down_removes_a_starting_replica_before_a_ready_one() -> None:
    rec = helpers.tiny_recipe(startup_delay=1.0)
    async with cluster.LocalCluster(rec, initial=1) as c:
        await helpers.wait_until(lambda: states(c) == ["ready"], "the first replica ready")
        first = c.manager.replicas()[0].name
        await c.scale(2)
        assert states(c) == ["ready", "starting"]
        await c.scale(1)
        assert [(r.name, r.state) for r in c.manager.replicas() if r.state != "terminating"] == [
            (first, "ready")
        ]


async def test_scale_down_drains_in_flight_requests(session: aiohttp.ClientSession) -> None:
    rec = helpers.tiny_recipe()
    async with cluster.LocalCluster(rec, initial=1) as c:
        await helpers.wait_until(lambda: states(c) == ["ready"], "a ready replica")
        pid = c.manager.replicas()[0].pid
        assert pid is not None
        slow = asyncio.ensure_future(complete(session, c.endpoint, delay=1.0))
        await helpers.wait_until(lambda: c.gateway.stats().in_flight == 1, "the request in flight")
        await c.scale(0)
        assert states(c) == ["terminating"] and "draining" in c.manager.replicas()[0].reason
        assert await slow == 200  # answered by the draining replica
        await helpers.wait_until(lambda: not c.manager.replicas(), "the drained replica gone")
        assert not helpers.alive(pid)


async def test_the_drain_lasts_as_long_as_the_e2e_slo_lets_a_request_run(session: aiohttp.ClientSession) -> None:
    """local.drain_timeout_s 0.5 s, e2e SLO 10 s: a request of 2 s in flight at the scale-down is
    answered, as a reasoning model's answer of minutes is under an SLO of minutes."""
    rec = helpers.tiny_recipe(local={"drain_timeout_s": 0.5})
    rec = rec.model_copy(update={"slo": recipe.SLO(e2e_s=10.0)})
    assert rec.drain_s == 10.0
    async with cluster.LocalCluster(rec, initial=1) as c:
        await helpers.wait_until(lambda: states(c) == ["ready"], "a ready replica")
        slow = asyncio.ensure_future(complete(session, c.endpoint, delay=2.0))
        await helpers.wait_until(lambda: c.gateway.stats().in_flight == 1, "the request in flight")
        await c.scale(0)
        assert await slow == 200  # not cut after 0.5 s
        await helpers.wait_until(lambda: not c.manager.replicas(), "the drained replica gone")


async def test_a_killed_replica_is_restarted_and_its_traffic_rerouted(session: aiohttp.ClientSession) -> None:
    rec = helpers.tiny_recipe(delay=0.2)
    async with cluster.LocalCluster(rec, initial=2) as c:
        await helpers.wait_until(lambda: states(c) == ["ready", "ready"], "2 ready replicas")
        victim = c.manager.replicas()[0]
        assert victim.pid is not None
        stop = asyncio.Event()
        codes: list[int] = []

        async def user() -> None:
            while not stop.is_set():
                codes.append(await complete(session, c.endpoint))

        users = [asyncio.ensure_future(user()) for _ in range(4)]
        await helpers.wait_until(lambda: len(codes) >= 8, "traffic flowing")
        os.kill(victim.pid, signal.SIGKILL)

        def restarted() -> bool:
            r = next(r for r in c.manager.replicas() if r.name == victim.name)
            return r.restarts == 1 and r.state == "ready" and r.pid not in (None, victim.pid)

        await helpers.wait_until(restarted, "the killed replica restarted and ready again")
        served = len(codes)
        await helpers.wait_until(lambda: len(codes) >= served + 8, "traffic after the restart")
        stop.set()
        await asyncio.gather(*users)
        assert set(codes) == {200}, f"failed requests: {[c for c in codes if c != 200]}"
        assert any(e.kind == "exited" and e.replica == victim.name for e in c.manager.events)


async def test_failing_liveness_restarts_and_readiness_stops_traffic(session: aiohttp.ClientSession) -> None:
    probe = {"path": "/health", "period_s": 0.2, "timeout_s": 1, "failure_threshold": 2}
    rec = helpers.tiny_recipe(probes={"readiness": probe, "liveness": probe})
    async with cluster.LocalCluster(rec, initial=1) as c:
        await helpers.wait_until(lambda: states(c) == ["ready"], "a ready replica")
        first_pid = c.manager.replicas()[0].pid
        async with session.post(c.endpoint + "/control/unhealthy") as r:
            assert r.status == 200

        def restarted() -> bool:
            r = c.manager.replicas()[0]
            return r.restarts >= 1 and r.state == "ready" and r.pid != first_pid

        await helpers.wait_until(restarted, "a restart after the liveness probe failed")
        reasons = " ".join(e.text for e in c.manager.events)
        assert "liveness probe /health failed 2 times" in reasons
        assert await complete(session, c.endpoint) == 200


async def test_a_hung_replica_leaves_the_gateway_on_readiness_while_liveness_still_waits(
    session: aiohttp.ClientSession,
) -> None:
    """Probes run concurrently, each with its own timeout: readiness (2 failures of 0.3 s) takes the
    hung replica out of the gateway while the first liveness probe (timeout 4 s) is still waiting,
    and only then does liveness restart it. Probed one after the other, liveness came first."""
    probes = {
        "readiness": {"path": "/health", "period_s": 0.2, "timeout_s": 0.3, "failure_threshold": 2},
        "liveness": {"path": "/health", "period_s": 0.2, "timeout_s": 4, "failure_threshold": 1},
    }
    rec = helpers.tiny_recipe(probes=probes)
    async with cluster.LocalCluster(rec, initial=1) as c:
        await helpers.wait_until(lambda: states(c) == ["ready"], "a ready replica")
        url = c.manager.replicas()[0].url
        assert url is not None
        async with session.post(url + "/control/hang") as r:
            assert r.status == 200
        await helpers.wait_until(
            lambda: any(e.kind == "exited" for e in c.manager.events), "the liveness restart", 30
        )
        kinds = [e.kind for e in c.manager.events if e.kind in ("unready", "exited")]
        assert kinds[:2] == ["unready", "exited"], kinds
        exit_text = next(e.text for e in c.manager.events if e.kind == "exited")
        assert "liveness probe /health failed 1 times" in exit_text


async def test_what_a_crashed_or_stopped_server_left_outside_its_group_is_killed(tmp_path: Path) -> None:
    pids = tmp_path / "escapees"
    rec = helpers.tiny_recipe(extra=("--escapee", str(pids)))
    async with cluster.LocalCluster(rec, initial=1) as c:
        await helpers.wait_until(lambda: states(c) == ["ready"], "a ready replica")
        await helpers.wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 1, "an escapee")
        first = int(pids.read_text().split()[0])
        guard = c.manager.replicas()[0].pid
        assert guard is not None
        # the escapee's parent exited at once, so it was reparented to the guard (a subreaper)
        (server,) = set(helpers.children(guard)) - {first}
        os.kill(server, signal.SIGKILL)  # a crash: the escapee is in another group and session
        await helpers.wait_until(lambda: not helpers.alive(first), "the crashed server's escapee gone")
        await helpers.wait_until(
            lambda: states(c) == ["ready"] and len(pids.read_text().split()) == 2,
            "restarted, with a new escapee",
        )
        second = int(pids.read_text().split()[1])
        assert helpers.alive(second)
    # a clean stop (scale to nothing at exit) takes the second one with it
    await helpers.wait_until(lambda: not helpers.alive(second), "the second escapee gone after the stop")


async def test_a_server_that_exits_at_start_is_restarted_with_backoff() -> None:
    rec = recipe.parse(
        {
            "service": {
                "name": "broken",
                "engine": "command",
                "command": [sys.executable, "-c", "raise SystemExit(3)"],
            },
            "local": {"port": 0},
        }
    )
    async with cluster.LocalCluster(rec, initial=1) as c:
        await helpers.wait_until(lambda: c.manager.replicas()[0].restarts >= 2, "two restarts")
        r = c.manager.replicas()[0]
        assert r.state == "starting" and "exited with code 3 before ready" in r.reason
        assert "restarting in" in r.reason


SKLEARN_MISSING = (
    "import sys; print('loading the model', flush=True); "
    "sys.exit(\"error: the sklearn-iris server needs scikit-learn (pip install 'swell[sklearn]')\")"
)


async def test_a_server_failing_at_start_shows_its_last_log_lines_and_gives_up_after_three() -> None:
    rec = recipe.parse(
        {
            "service": {
                "name": "iris",
                "engine": "command",
                "command": [sys.executable, "-c", SKLEARN_MISSING],
            },
            "local": {"port": 0},
        }
    )
    async with cluster.LocalCluster(rec, initial=1) as c:
        await helpers.wait_until(lambda: c.manager.replicas()[0].restarts >= 1, "a failed start")
        r = c.manager.replicas()[0]
        assert "needs scikit-learn" in r.reason and "needs scikit-learn" in r.last_error
        assert "loading the model" in r.last_error and "exited with code 1 before ready" in r.last_error
        assert c.manager.start_failure(3) is None  # once is not yet a verdict
        await helpers.wait_until(lambda: c.manager.start_failure(3) is not None, "three failed starts")
        why = c.manager.start_failure(3)
        assert why is not None and why.startswith("replica iris-1 failed to start 3 times in a row")
        assert "pip install 'swell[sklearn]'" in why


async def test_failed_starts_after_a_replica_was_ready_are_no_reason_to_give_up() -> None:
    rec = helpers.tiny_recipe()
    async with cluster.LocalCluster(rec, initial=1) as c:
        await helpers.wait_until(lambda: states(c) == ["ready"], "a ready replica")
        assert c.manager.ever_ready and c.manager.start_failure(1) is None


async def test_a_replica_never_ready_is_restarted_after_its_startup_timeout() -> None:
    rec = helpers.tiny_recipe(startup_delay=60, probes={"startup_timeout_s": 1})  # listens only after 60 s
    async with cluster.LocalCluster(rec, initial=1) as c:
        first = c.manager.replicas()[0]
        await helpers.wait_until(lambda: c.manager.replicas()[0].restarts >= 1, "a restart after 1 s")
        r = c.manager.replicas()[0]
        assert r.state == "starting" and r.name == first.name
        assert "not ready within 1 s (service.probes.startup_timeout_s)" in r.reason
        assert any(e.kind == "exited" and "not ready within 1 s" in e.text for e in c.manager.events)


# a readiness probe that notices quickly, and a liveness probe on another path that keeps passing,
# so a replica made unhealthy only stops getting traffic (no restart)
QUICK_READINESS = {"path": "/health", "period_s": 0.1, "timeout_s": 1, "failure_threshold": 1}
STEADY_LIVENESS = {"path": "/env", "period_s": 1, "timeout_s": 2, "failure_threshold": 3}


def unready_recipe() -> recipe.Recipe:
    # a short buffer: a request dropped by a killed replica is answered 503 quickly, not after 60 s
    return helpers.tiny_recipe(
        probes={"readiness": QUICK_READINESS, "liveness": STEADY_LIVENESS}, local={"buffer_timeout_s": 2}
    )


async def control(s: aiohttp.ClientSession, replica_url: str | None, what: str) -> None:
    assert replica_url is not None
    async with s.post(f"{replica_url}/control/{what}") as r:
        assert r.status == 200


def info(c: cluster.LocalCluster, name: str) -> replicas.ReplicaInfo:
    return next(r for r in c.manager.replicas() if r.name == name)


async def make_unready(s: aiohttp.ClientSession, c: cluster.LocalCluster, name: str) -> None:
    await control(s, info(c, name).url, "unhealthy")
    await helpers.wait_until(
        lambda: info(c, name).state == "starting" and "readiness" in info(c, name).reason,
        f"{name} taken out of the gateway by its failing readiness probe",
    )


async def test_an_unready_replica_with_requests_in_flight_is_drained_on_scale_down(
    session: aiohttp.ClientSession,
) -> None:
    async with cluster.LocalCluster(unready_recipe(), initial=1) as c:
        await helpers.wait_until(lambda: states(c) == ["ready"], "a ready replica")
        r = c.manager.replicas()[0]
        assert r.pid is not None
        held = asyncio.ensure_future(complete(session, c.endpoint, hold=True))
        await helpers.wait_until(lambda: c.gateway.in_flight(r.name) == 1, "the held request in flight")
        await make_unready(session, c, r.name)  # busy and failing readiness: no new traffic
        await c.scale(0)
        assert states(c) == ["terminating"] and "draining" in info(c, r.name).reason
        await asyncio.sleep(0.3)  # a few drain polls: the process must still be serving the request
        assert helpers.alive(r.pid) and not held.done()
        await control(session, r.url, "release")
        assert await held == 200  # answered by the draining replica, not lost
        await helpers.wait_until(lambda: not c.manager.replicas(), "the drained replica gone")
        assert not helpers.alive(r.pid)


async def test_scale_down_removes_the_unready_replica_with_fewer_requests_in_flight(
    session: aiohttp.ClientSession,
) -> None:
    async with cluster.LocalCluster(unready_recipe(), initial=2) as c:
        await helpers.wait_until(lambda: states(c) == ["ready", "ready"], "2 ready replicas")
        older, newer = (r.name for r in c.manager.replicas())
        await make_unready(session, c, older)  # idle and unready
        held = asyncio.ensure_future(complete(session, c.endpoint, hold=True))  # only `newer` is ready
        await helpers.wait_until(lambda: c.gateway.in_flight(newer) == 1, "a request held by the newer one")
        await make_unready(session, c, newer)  # busy and unready
        await c.scale(1)
        assert (info(c, older).state, info(c, newer).state) == ("terminating", "starting")
        await control(session, info(c, newer).url, "release")
        assert await held == 200


@pytest.mark.parametrize("when", ["first readiness", "readiness again"])
async def test_a_replica_scaled_down_as_its_probe_passes_never_gets_traffic_again(
    session: aiohttp.ClientSession, when: str
) -> None:
    """The scale-down lands between the probe's answer and the lifecycle acting on it."""
    async with cluster.LocalCluster(unready_recipe(), initial=0) as c:
        real_probe = c.manager._probe
        armed = when == "first readiness"

        async def probe(url: str, timeout_s: float) -> bool:
            nonlocal armed
            ok = await real_probe(url, timeout_s)
            if ok and armed and url.endswith("/health"):
                armed = False
                await c.scale(0)
            return ok

        c.manager._probe = probe  # type: ignore[method-assign]
        await c.scale(1)
        name = c.manager.replicas()[0].name
        if when == "readiness again":
            await helpers.wait_until(lambda: states(c) == ["ready"], "a ready replica")
            await make_unready(session, c, name)
            armed = True
            await control(session, info(c, name).url, "healthy")
        await helpers.wait_until(lambda: not c.manager.replicas(), "the replica stopped")
        assert not armed, "the scale-down never happened"
        assert c.gateway.stats().ready == 0 and name not in c.gateway._backends
        if when == "first readiness":
            assert not any(e.kind == "ready" for e in c.manager.events)
        assert await complete(session, c.endpoint) == 503  # buffered, no replica: not routed to a dead one


async def test_a_local_service_starts_at_initial_replicas() -> None:
    """Knative's initial-scale: a recipe with min 1 and initial 2 starts with two real replicas."""
    rec = helpers.tiny_recipe()
    auto = rec.autoscaling.model_dump() | {"min_replicas": 1, "max_replicas": 3, "initial_replicas": 2}
    rec = rec.model_copy(update={"autoscaling": recipe.Autoscaling.model_validate(auto)})
    async with cluster.LocalCluster(rec) as c:
        await helpers.wait_until(lambda: states(c) == ["ready", "ready"], "2 ready")
