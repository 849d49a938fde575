"""Rolling a changed service onto running replicas (real processes, the tiny server, the real
gateway on loopback): one at a time, with a free slot a new one first, without one an old one
first; requests keep being answered throughout; a new version that cannot start is rolled back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from swell import errors, recipe
from swell.clusters.local import cluster
from swell.runtime import local
from tests.clusters.local import helpers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s


def version(rec: recipe.Recipe, model: str, *extra: str) -> recipe.Recipe:
    """The recipe with its server started as `--model MODEL` (a new version of the service)."""
    data = rec.model_dump(by_alias=True)
    data["service"]["command"] = [*helpers.tiny_command(), "--model", model, *extra]
    return recipe.Recipe.model_validate(data)


async def ask(s: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with s.post(url + "/v1/completions", json={"prompt": "hi", "max_tokens": 2, "delay": 0.05}) as r:
        body = await r.json()
        return r.status, str(body.get("model", body))


async def traffic(s: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> list[tuple[int, str]]:
    """Two clients asking without a pause until `stop`: every answer, in order."""
    out: list[tuple[int, str]] = []

    async def one() -> None:
        while not stop.is_set():
            out.append(await ask(s, url))

    await asyncio.gather(one(), one())
    return out


def replica_names(c: cluster.LocalCluster) -> set[str]:
    return {r.name for r in c.manager.replicas() if r.state != "terminating"}


@pytest.mark.parametrize("slots", [4, 2], ids=["a-free-slot-new-one-first", "no-free-slot-old-one-first"])
async def test_a_new_version_is_rolled_on_one_replica_at_a_time_and_nothing_is_dropped(
    session: aiohttp.ClientSession, slots: int
) -> None:
    rec = version(helpers.tiny_recipe(local={"cpu_slots": slots, "buffer_timeout_s": 30}), "v1")
    async with cluster.LocalCluster(rec, initial=2) as c:
        await helpers.wait_until(lambda: [r.state for r in c.manager.replicas()] == ["ready", "ready"], "2 ready")
        before = replica_names(c)
        stop = asyncio.Event()
        load = asyncio.ensure_future(traffic(session, c.endpoint, stop))
        await asyncio.sleep(0.3)
        c.manager.roll(version(rec, "v2"))
        most = 0
        while c.manager.old():
            most = max(most, len([r for r in c.manager.replicas() if r.state in ("starting", "ready")]))
            await asyncio.sleep(0.02)
        assert c.manager.rolling is not None
        await asyncio.wait_for(c.manager.rolling, 30)
        await asyncio.sleep(0.3)
        stop.set()
        answers = await load
        assert c.manager.roll_error is None
        assert len(replica_names(c)) == 2 and not replica_names(c) & before  # both replaced
        assert {status for status, _ in answers} == {200}  # none refused or dropped meanwhile
        models = [m for _, m in answers]
        assert models[0] == "v1" and models[-1] == "v2" and "v1" not in models[models.index("v2") + 10 :]
        assert most == (3 if slots == 4 else 2), most  # one surge, or none without a free slot
        kinds = [e.kind for e in c.manager.events]
        assert kinds.count("rolled") == 2


async def test_a_version_that_cannot_start_is_rolled_back_and_the_old_one_keeps_serving(
    session: aiohttp.ClientSession,
) -> None:
    rec = version(helpers.tiny_recipe(local={"cpu_slots": 2, "buffer_timeout_s": 30}), "v1")
    async with cluster.LocalCluster(rec, initial=2) as c:
        await helpers.wait_until(lambda: [r.state for r in c.manager.replicas()] == ["ready", "ready"], "2 ready")
        c.manager.roll(version(rec, "v2", "--no-such-flag"))  # argparse refuses it: exit 2 at start
        assert c.manager.rolling is not None
        await asyncio.wait_for(c.manager.rolling, 60)
        assert c.manager.roll_error is not None and "did not start" in c.manager.roll_error
        assert c.manager.recipe is rec
        await helpers.wait_until(
            lambda: sorted(r.state for r in c.manager.replicas() if r.state != "terminating") == ["ready", "ready"],
            "2 ready again on the old version", timeout_s=60,
        )  # fmt: skip
        assert {await ask(session, c.endpoint) for _ in range(4)} == {(200, "v1")}
        assert any(e.kind == "roll-stopped" and "rolled back" in e.text for e in c.manager.events)


async def test_a_running_service_takes_scaling_changes_at_once_and_refuses_what_it_is_made_of() -> None:
    rec = helpers.tiny_recipe()
    rt = local.LocalRuntime(rec, initial=1)
    await rt.start()
    try:
        data = rec.model_dump(by_alias=True)
        data["autoscaling"]["max_replicas"] = 5
        data["autoscaling"]["policy"] = "threshold"
        data["local"]["buffer_requests"] = 7
        applied = rt.apply_recipe(recipe.Recipe.model_validate(data))
        assert not applied.rolled and applied.changed == (
            "autoscaling.max_replicas: 3 -> 5", "autoscaling.policy: 'swell' -> 'threshold'",
            "local.buffer_requests: 256 -> 7",
        )
        assert rt.controller.recipe.autoscaling.max_replicas == 5 and rt.cluster.gateway.buffer_requests == 7
        assert rt.controller.policy_name == "threshold"  # the next decision is the new policy's
        await helpers.wait_until(lambda: (e := rt.history.last()) is not None and e.decision.policy == "threshold",
                                 "a decision by the new policy")  # fmt: skip
        data["local"]["port"] = 8999
        data["resources"]["cpu"] = 2
        with pytest.raises(errors.RecipeError) as exc:
            rt.apply_recipe(recipe.Recipe.model_validate(data))
        paths = [p.path for p in exc.value.problems]
        assert paths == ["local.port", "resources.cpu"]
        assert "cannot change on a running service" in exc.value.problems[0].rule
        assert rt.controller.recipe.local.port == 0  # nothing of the refused recipe was taken
    finally:
        await rt.stop()
