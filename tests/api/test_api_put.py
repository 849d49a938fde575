"""PUT /deployments/{name}: a whole new recipe onto a running deployment (Ray Serve's `serve
deploy`): scaling applied at once, a changed service rolled onto the replicas and stored once they
all run it, what a running service is made of refused with the path, a restart resuming the new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api import apihelp
from tests.api.apihelp import AUTH

pytestmark = pytest.mark.slow


async def test_put_applies_scaling_at_once_and_rolls_a_changed_service(tmp_path: Path) -> None:
    async with apihelp.running(tmp_path) as (srv, s):
        first = apihelp.chat_recipe()
        assert (await s.post("/deployments", json=first, headers=AUTH)).status == 201
        await apihelp.until(lambda: _ready(s, 1))
        await s.patch("/deployments/chat", json={"targets": {"concurrency": 9}}, headers=AUTH)

        scaled = apihelp.chat_recipe(max_replicas=2)
        r = await s.put("/deployments/chat", json=scaled, headers=AUTH)
        assert r.status == 200, await r.text()
        d = await r.json()
        # what changes on the running service: the PATCHed target goes back to the recipe's
        assert d["rollout"] == {"state": "applied", "old_replicas": 0, "error": None,
                                "changed": ["autoscaling.max_replicas: 3 -> 2", "autoscaling.signals[0].target: 9.0 -> 1.0"]}  # fmt: skip
        assert d["max_replicas"] == 2 and d["signals"][0]["target"] == 1.0  # the PATCH is cleared

        served = apihelp.chat_recipe(max_replicas=2)
        served["service"]["args"] = ["--default-max-tokens", "8"]
        replica = (await _ready(s, 1))["replica_list"][0]["name"]
        r = await s.put("/deployments/chat", json=served, headers=AUTH)
        assert r.status == 200, await r.text()
        assert (await r.json())["rollout"]["state"] == "rolling"
        done = await apihelp.until(lambda: _rollout(s, "rolled"))
        assert done["rollout"]["old_replicas"] == 0
        names = [x["name"] for x in done["replica_list"] if x["state"] != "terminating"]
        assert replica not in names  # replaced
        assert srv.manager is not None
        assert srv.manager.store.running()[0].payload == served  # stored once rolled
    async with apihelp.running(tmp_path) as (_, s):  # a restart resumes the new recipe
        d = await (await s.get("/deployments/chat", headers=AUTH)).json()
        assert d["max_replicas"] == 2 and d["rollout"] is None


async def test_a_roll_that_fails_goes_back_to_the_recipe_before_it_its_patch_included(tmp_path: Path) -> None:
    async with apihelp.running(tmp_path) as (srv, s):
        assert (await s.post("/deployments", json=apihelp.chat_recipe(), headers=AUTH)).status == 201
        await apihelp.until(lambda: _ready(s, 1))
        r = await s.patch("/deployments/chat", json={"targets": {"concurrency": 2.5}}, headers=AUTH)
        assert r.status == 200, await r.text()
        broken = apihelp.chat_recipe()
        broken["service"]["args"] = ["--no-such-flag"]  # the new replica cannot start
        r = await s.put("/deployments/chat", json=broken, headers=AUTH)
        assert r.status == 200 and (await r.json())["rollout"]["state"] == "rolling", await r.text()
        d = await apihelp.until(lambda: _rollout(s, "rolled back"), timeout_s=90)
        assert d["signals"][0]["target"] == 2.5, d["signals"]  # the PATCH runs again, as before the PUT
        assert srv.manager is not None
        (row,) = srv.manager.store.running()
        assert row.patch["targets"] == {"concurrency": 2.5} and row.payload == apihelp.chat_recipe()


@pytest.mark.parametrize(
    ("change", "path"),
    [
        pytest.param({"local": {"cpu_slots": 5}}, "local.cpu_slots", id="the-machines-slots"),
        pytest.param({"service": {"name": "other", "engine": "simulated-llm", "preset": "tiny-cpu"}}, "service.name",
                     id="the-deployments-name"),
        pytest.param({"autoscaling": {"max_replicas": 0}}, "autoscaling.max_replicas", id="an-invalid-recipe"),
    ],
)  # fmt: skip
async def test_put_refuses_what_cannot_change_with_the_path(tmp_path: Path, change: dict[str, Any], path: str) -> None:
    async with apihelp.running(tmp_path) as (_, s):
        assert (await s.post("/deployments", json=apihelp.chat_recipe(), headers=AUTH)).status == 201
        body = apihelp.chat_recipe()
        for key, value in change.items():
            body[key] = body[key] | value
        r = await s.put("/deployments/chat", json=body, headers=AUTH)
        assert r.status == 422, await r.text()
        assert path in [p["path"] for p in (await r.json())["problems"]]
        d = await (await s.get("/deployments/chat", headers=AUTH)).json()
        assert d["rollout"] is None and d["max_replicas"] == 3  # nothing of it was taken
        assert (await s.put("/deployments/nope", json=body, headers=AUTH)).status == 404


async def _ready(s: Any, n: int) -> Any:
    d = await (await s.get("/deployments/chat", headers=AUTH)).json()
    return d if d["replicas"]["ready"] >= n else None


async def _rollout(s: Any, state: str) -> Any:
    d = await (await s.get("/deployments/chat", headers=AUTH)).json()
    return d if (d.get("rollout") or {}).get("state") == state and d["replicas"]["ready"] >= 1 else None


async def test_a_simulated_gpu_deployment_keeps_its_pretend_gpus_and_says_how_far_they_go(tmp_path: Path) -> None:
    """simulated-llm with a GPU a replica and no local.gpu_ids: the API pretends 3 GPU ids for
    max_replicas 3. A PUT lowering max_replicas keeps them (they were not the user's to change); a
    PUT or PATCH past them is a 422 on autoscaling.max_replicas that says how far they go."""
    async with apihelp.running(tmp_path) as (_, s):
        first = apihelp.chat_recipe() | {"resources": {"gpus": 1}}
        r = await s.post("/deployments", json=first, headers=AUTH)
        assert r.status == 201, await r.text()
        assert any("local.gpu_ids set to 0..2" in n for n in (await r.json())["notes"])
        r = await s.put("/deployments/chat", json=apihelp.chat_recipe(max_replicas=2) | {"resources": {"gpus": 1}},
                        headers=AUTH)  # fmt: skip
        assert r.status == 200, await r.text()
        assert (await r.json())["rollout"]["changed"] == ["autoscaling.max_replicas: 3 -> 2"]
        for ask in (s.put("/deployments/chat", json=apihelp.chat_recipe(max_replicas=4) | {"resources": {"gpus": 1}},
                          headers=AUTH),
                    s.patch("/deployments/chat", json={"max_replicas": 5}, headers=AUTH)):  # fmt: skip
            r = await ask
            assert r.status == 422, await r.text()
            (problem,) = (await r.json())["problems"]
            assert problem["path"] == "autoscaling.max_replicas" and "at most 3" in problem["rule"]
        d = await (await s.get("/deployments/chat", headers=AUTH)).json()
        assert d["max_replicas"] == 2
