"""The deployment API end to end on 127.0.0.1: token, create/409/422, PATCH, DELETE, restart."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from swell.api import routes, server
from tests.api import apihelp

AUTH = apihelp.AUTH
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_token_required_except_metrics_and_health(tmp_path: Path) -> None:
    async with apihelp.running(tmp_path) as (_, s):
        r = await s.get("/deployments")
        assert r.status == 401
        assert "bearer token" in (await r.json())["error"]
        r = await s.get("/deployments", headers={"Authorization": "Bearer wrong-token-0123456789"})
        assert r.status == 403
        r = await s.post("/deployments", json=apihelp.chat_recipe())
        assert r.status == 401
        assert (await s.get("/metrics")).status == 200
        assert (await s.get("/healthz")).status == 200
        assert (await s.get("/deployments", headers=AUTH)).status == 200
        spec = await (await s.get("/openapi.json", headers=AUTH)).json()
        assert "/deployments/{name}/timeseries" in spec["paths"]


async def test_invalid_recipe_lists_every_problem(tmp_path: Path) -> None:
    async with apihelp.running(tmp_path) as (_, s):
        bad = apihelp.chat_recipe()
        bad["autoscaling"]["max_replicas"] = -1
        bad["service"]["engin"] = "x"
        r = await s.post("/deployments", json=bad, headers=AUTH)
        assert r.status == 422
        paths = {p["path"] for p in (await r.json())["problems"]}
        assert {"autoscaling.max_replicas", "service.engin"} <= paths
        r = await s.post("/deployment", data=b"{not json", headers=AUTH)
        assert r.status == 400
        r = await s.post("/deployments", data=io.BytesIO(b"x" * (2 << 20)), headers=AUTH)
        assert r.status == 413


async def test_a_body_that_never_completes_is_a_408_and_the_connection_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "BODY_TIMEOUT_S", 0.5)
    async with apihelp.running(tmp_path) as (srv, _):
        host, port = srv.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(
                f"POST /deployments HTTP/1.1\r\nHost: {host}\r\nAuthorization: {AUTH['Authorization']}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"service\"".encode()
            )
            await writer.drain()
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)).decode()
            length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
            body = await asyncio.wait_for(reader.readexactly(length), 10.0)
        finally:
            writer.close()
            await writer.wait_closed()
        assert head.startswith("HTTP/1.1 408"), head
        assert "connection: close" in head.lower()  # the rest of the body is not waited for
        assert "not complete within 0.5 s" in json.loads(body)["error"]


async def test_command_engine_off_and_vllm_says_what_to_do(tmp_path: Path) -> None:
    async with apihelp.running(tmp_path) as (_, s):
        cmd = apihelp.chat_recipe()
        cmd["service"] = {"name": "cmd", "engine": "command", "command": ["sleep", "100"]}
        r = await s.post("/deployments", json=cmd, headers=AUTH)
        assert r.status == 422
        assert "switched off" in (await r.json())["problems"][0]["rule"]
        corrino = json.loads((EXAMPLES / "corrino-pod-only.json").read_text())
        r = await s.post("/deployment", json=corrino, headers=AUTH)
        assert r.status == 422
        rule = (await r.json())["problems"][0]["rule"]
        assert "vLLM cannot run on this machine" in rule and "simulated-llm" in rule


async def test_create_conflict_patch_delete(tmp_path: Path) -> None:
    async with apihelp.running(tmp_path) as (_, s):
        r = await s.post("/deployments", json=apihelp.chat_recipe(), headers=AUTH)
        assert r.status == 201, await r.text()
        body = await r.json()
        assert body["name"] == "chat" and body["url"].startswith("http://127.0.0.1:")
        r = await s.post("/deployments", json=apihelp.chat_recipe(), headers=AUTH)
        assert r.status == 409
        detail = await apihelp.until(lambda: _detail_with_decision(s, "chat"))
        assert {c["type"] for c in detail["conditions"]} == {
            "AbleToScale", "ScalingActive", "ScalingLimited", "MetricsAvailable", "Ready",
        }  # fmt: skip
        assert detail["signals"][0]["name"] == "concurrency" and detail["signals"][0]["target"] == 1.0
        assert detail["node"]["slots"] == 3 and detail["node"]["used"] >= 1  # local.cpu_slots
        metrics = await (await s.get("/metrics")).text()
        for name in (
            'swell_desired_replicas{namespace="local",recipe="chat"}',
            'swell_current_replicas{namespace="local",recipe="chat"}',
            'swell_signal_target{namespace="local",recipe="chat",signal="concurrency"}',
            "swell_decisions_total{bound_by=",
            'swell_scrape_errors_total{namespace="local",recipe="chat"}',
        ):
            assert name in metrics
        r = await s.patch(
            "/deployments/chat",
            json={
                "max_replicas": 2,
                "targets": {"concurrency": 4},
                "windows": {"scale_down_stabilization_s": 5},
            },
            headers=AUTH,
        )
        assert r.status == 200, await r.text()
        patched = await r.json()
        assert patched["max_replicas"] == 2 and patched["signals"][0]["target"] == 4.0
        r = await s.patch("/deployments/chat", json={"targets": {"nope": 1}}, headers=AUTH)
        assert r.status == 422 and (await r.json())["problems"][0]["path"] == "targets.nope"
        r = await s.patch("/deployments/chat", json={"max_replicas": 0, "bogus": 1}, headers=AUTH)
        assert r.status == 422
        assert len((await r.json())["problems"]) == 2
        r = await s.delete("/deployments/chat", headers=AUTH)
        assert r.status == 200
        assert (await s.get("/deployments/chat", headers=AUTH)).status == 404
        assert (await (await s.get("/deployments", headers=AUTH)).json())["deployments"] == []


async def _detail_with_decision(s, name: str):  # type: ignore[no-untyped-def]
    d = await (await s.get(f"/deployments/{name}", headers=AUTH)).json()
    return d if d["decisions"] and d["replicas"]["ready"] >= 1 else None


async def test_restart_resumes_deployment_and_history(tmp_path: Path) -> None:
    async with apihelp.running(tmp_path) as (_, s):
        r = await s.post("/deployments", json=apihelp.chat_recipe(), headers=AUTH)
        assert r.status == 201
        await s.patch("/deployments/chat", json={"max_replicas": 2}, headers=AUTH)
        await apihelp.until(lambda: _detail_with_decision(s, "chat"))
        before = (await (await s.get("/deployments/chat/decisions", headers=AUTH)).json())["decisions"]
        samples = (await (await s.get("/deployments/chat/timeseries", headers=AUTH)).json())["samples"]
        assert before and samples
    async with apihelp.running(tmp_path) as (srv, s):
        assert list(srv.manager.deployments) == ["chat"]  # type: ignore[union-attr]
        d = await (await s.get("/deployments/chat", headers=AUTH)).json()
        assert d["max_replicas"] == 2  # the PATCH survived too
        after = (await (await s.get("/deployments/chat/decisions", headers=AUTH)).json())["decisions"]
        assert after[: len(before)] == before
        since = samples[-1]["t"]
        r = await s.get(f"/deployments/chat/timeseries?since={since}", headers=AUTH)
        assert all(x["t"] > since for x in (await r.json())["samples"])
        assert (await s.get("/deployments/chat/timeseries?since=abc", headers=AUTH)).status == 400


async def test_corrino_payload_with_local_engine_runs_here(tmp_path: Path) -> None:
    payload = json.loads((EXAMPLES / "corrino-pod-only.json").read_text())
    payload["service"] = {"engine": "simulated-llm", "preset": "tiny-cpu"}
    async with apihelp.running(tmp_path) as (_, s):
        r = await s.post("/deployment", json=payload, headers=AUTH)
        assert r.status == 201, await r.text()
        body = await r.json()
        assert body["name"] == "autoscale-vllm"
        assert any("simulated-llm uses no GPU" in n for n in body["notes"])
        d = await (await s.get("/deployments/autoscale-vllm", headers=AUTH)).json()
        assert d["engine"] == "simulated-llm" and d["signals"][0]["name"] == "slow_requests"


@pytest.mark.parametrize("bad", [{"service": "x"}, [], "text", {"recipe_replica_count": "many"}])
async def test_4xx_say_what_is_wrong(tmp_path: Path, bad: object) -> None:
    async with apihelp.running(tmp_path) as (_, s):
        r = await s.post("/deployments", json=bad, headers=AUTH)
        assert r.status == 422
        body = await r.json()
        assert body["error"] and body["problems"] and all(p["rule"] for p in body["problems"])


async def test_port_taken_is_a_409_that_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        body = apihelp.chat_recipe()
        body["local"]["port"] = taken.getsockname()[1]
        async with apihelp.running(tmp_path) as (srv, s):
            r = await s.post("/deployments", json=body, headers=AUTH)
            assert r.status == 409
            assert "address already in use" in (await r.json())["error"]
            assert srv.manager is not None and srv.manager.deployments == {}
            assert (await s.post("/deployments", json=apihelp.chat_recipe(), headers=AUTH)).status == 201


async def test_restart_with_the_old_port_taken_moves_the_gateway(tmp_path: Path) -> None:
    import socket

    async with apihelp.running(tmp_path) as (_, s):
        r = await s.post("/deployments", json=apihelp.chat_recipe(), headers=AUTH)
        old_port = int((await r.json())["url"].rsplit(":", 1)[1])
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT of the old one
        taken.bind(("127.0.0.1", old_port))
        taken.listen()
        async with apihelp.running(tmp_path) as (srv, s):
            assert srv.resume_problems == []
            d = await (await s.get("/deployments/chat", headers=AUTH)).json()
            assert not d["url"].endswith(f":{old_port}")


def test_the_url_of_an_ipv6_address_has_brackets(tmp_path: Path) -> None:
    assert server.Server(data_dir=tmp_path, host="::1", port=8080).url == "http://[::1]:8080"
    assert server.Server(data_dir=tmp_path, host="127.0.0.1", port=8080).url == "http://127.0.0.1:8080"


async def test_healthz_counts_a_deployment_that_failed_to_start(tmp_path: Path) -> None:
    """Liveness stays "ok" (restarting the API would not help), and says how many deployments failed."""
    async with apihelp.running(tmp_path, allow_command=True) as (_, s):
        broken = apihelp.chat_recipe(name="broken")
        broken["service"] = {"name": "broken", "engine": "command", "command": ["false"]}
        r = await s.post("/deployments", json=broken, headers=AUTH)
        assert r.status in (201, 502), await r.text()
        health: dict = {}
        for _ in range(200):
            health = await (await s.get("/healthz")).json()
            if health.get("failed"):
                break
            await asyncio.sleep(0.1)
        assert health == {"status": "ok", "deployments": 1, "failed": 1}


async def test_an_api_port_taken_at_start_is_named_and_the_resumed_deployments_stop(tmp_path: Path) -> None:
    import socket

    from swell.clusters.local import procs

    async with apihelp.running(tmp_path) as (_, s):
        assert (await s.post("/deployments", json=apihelp.chat_recipe(), headers=AUTH)).status == 201
        await apihelp.until(lambda: _ready_count(s))
    before = procs.live_groups()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = server.Server(data_dir=tmp_path, port=port, token=apihelp.TOKEN)
        with pytest.raises(server.CannotListen, match=f"cannot listen on http://127.0.0.1:{port}: Address already in use"):
            await srv.start()
    assert procs.live_groups() <= before, "the resumed replica was stopped with the server"


async def _ready_count(s: object) -> bool:
    d = await (await s.get("/deployments/chat", headers=AUTH)).json()  # type: ignore[attr-defined]
    return bool(d["replicas"]["ready"] >= 1)
