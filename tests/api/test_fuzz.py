"""Bad input: schemathesis from the API's own OpenAPI spec, hypothesis on posted recipes.

No 5xx, answers that match the spec, and every 4xx says what is wrong. Valid recipes are checked
but not started (a dry-run manager answers 409), so the fuzzers start no processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swell import errors, recipe
from swell.api import app as app_mod
from swell.api import deployments, routes
from swell.api import store as store_mod
from tests.api import apihelp

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (dev extra)")
from schemathesis import checks as st_checks  # noqa: E402


class DryRun(deployments.Manager):
    async def create(self, payload: Any) -> deployments.Deployment:
        self.build(payload)  # every check a real create makes
        raise deployments.Conflict("dry run: a valid recipe, not started by the fuzz tests")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data: Path = tmp_path_factory.mktemp("fuzz")
    loop = asyncio.new_event_loop()
    store = store_mod.Store(data / store_mod.FILE_NAME)
    manager = DryRun(store, run_root=data / "runs")
    app = app_mod.make_app(manager, apihelp.TOKEN)
    runner, port = loop.run_until_complete(app_mod.serve(app, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        store.close()


schema = schemathesis.openapi.from_dict(routes.build_spec())
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_api_from_its_own_spec(case: Any, base_url: str) -> None:
    response = case.call_and_validate(base_url=base_url, headers=apihelp.AUTH, checks=CHECKS)
    if 400 <= response.status_code < 500 and "json" in response.headers.get("Content-Type", ""):
        assert response.json()["error"]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
PATHS = [
    ("service", "name"), ("service", "engine"), ("service", "preset"), ("autoscaling", "min_replicas"),
    ("autoscaling", "max_replicas"), ("autoscaling", "signals"), ("autoscaling", "policy"),
    ("autoscaling", "metrics"), ("resources", "cpu"), ("local", "cpu_slots"), ("slo", "ttft_s"),
    ("node_pool", "shape"), ("recipe_replica_count",), ("recipe_pod_autoscaling_params",),
]  # fmt: skip


@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), JSON), min_size=1, max_size=4))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_mutated_recipes_get_a_4xx_that_says_why(
    changes: list[tuple[tuple[str, ...], Any]], base_url: str
) -> None:
    body: dict[str, Any] = apihelp.chat_recipe()
    for path, value in changes:
        node = body
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = value
    r = requests.post(f"{base_url}/deployments", json=body, headers=apihelp.AUTH, timeout=10)
    assert r.status_code in (409, 422), r.text
    answer = r.json()
    assert answer["error"]
    if r.status_code == 422:
        assert answer["problems"] and all(
            p["rule"] and isinstance(p["path"], str) for p in answer["problems"]
        )


NESTED = b"[" * 100_000 + b"]" * 100_000  # 200 KB, within the size limit: json's recursion gives out


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "says"),
    [
        pytest.param("POST", "/deployments", apihelp.AUTH, NESTED, 400, "nested too deeply",
                     id="a body nested past what json reads is a 400, not a 500"),
        pytest.param("GET", "/deployments", {"Authorization": b"Bearer \xc3\xa9\xff"}, None, 403, "wrong bearer token",
                     id="a token that is not UTF-8 is a wrong token, not a 500"),
        pytest.param("GET", "/static/" + "a" * 5000, {}, None, 404, "no such path: /static/aaa",
                     id="a static name the file system refuses is a 404 with the path cut short"),
        pytest.param("GET", "/static/", {}, None, 404, "no such path: /static/", id="the static folder itself is a 404"),
        pytest.param("POST", "/deployments", {**apihelp.AUTH, "Content-Encoding": "gzip"}, b"{}", 400,
                     "Content-Encoding: gzip", id="a body marked gzip that is not is a 400 naming the encoding, not a 500"),
        pytest.param("POST", "/deployments", apihelp.AUTH, b'{"service": {}, "service": {}}', 400,
                     "key 'service' appears twice", id="a key given twice is a 400, not the last one winning"),
        pytest.param("GET", "/deployments/" + "a" * 5000, apihelp.AUTH, None, 404, "no deployment named 'aaa",
                     id="an unknown long name is a 404 with the name cut short"),
    ],
)  # fmt: skip
def test_edge_requests_get_a_json_4xx(method: str, path: str, headers: dict[str, Any], body: bytes | None,
                                      status: int, says: str, base_url: str) -> None:  # fmt: skip
    r = requests.request(method, base_url + path, headers=headers, data=body, timeout=30)
    assert r.status_code == status, r.text[:300]
    assert says in r.json()["error"] and len(r.text) < 1000


def test_an_unknown_engine_preset_is_a_422_at_once_not_a_failed_start(base_url: str) -> None:
    body = apihelp.chat_recipe()
    body["service"]["preset"] = "bogus"
    r = requests.post(f"{base_url}/deployments", json=body, headers=apihelp.AUTH, timeout=10)
    assert r.status_code == 422, r.text
    (problem,) = r.json()["problems"]
    assert (problem["path"], problem["value"]) == ("service.preset", "bogus") and "tiny-cpu" in problem["rule"]


def test_a_value_echoed_in_an_error_is_cut_short(base_url: str) -> None:
    body = apihelp.chat_recipe() | {"surprise": "x" * 100_000}
    r = requests.post(f"{base_url}/deployments", json=body, headers=apihelp.AUTH, timeout=10)
    assert r.status_code == 422
    (problem,) = r.json()["problems"]
    assert problem["path"] == "surprise" and problem["value"] == "x" * 197 + "..."


def test_a_value_json_cannot_carry_is_echoed_as_text(base_url: str) -> None:
    body = apihelp.chat_recipe()
    body["autoscaling"]["max_replicas"] = float("nan")  # json.dumps writes NaN, which json.loads reads
    r = requests.post(f"{base_url}/deployments", data=json.dumps(body), headers=apihelp.AUTH, timeout=10)
    assert r.status_code == 422, r.text
    assert [(p["path"], p["value"]) for p in r.json()["problems"]] == [("autoscaling.max_replicas", "nan")]


def test_a_client_hanging_up_mid_body_is_no_error(base_url: str, caplog: pytest.LogCaptureFixture) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    head = (f"POST /deployments HTTP/1.1\r\nHost: {host}\r\nAuthorization: {apihelp.AUTH['Authorization']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="swell.api.app"):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(head.encode() + b'{"service": {')
            time.sleep(0.2)
        deadline = time.monotonic() + 5
        while not any("hung up" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.05)
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "swell.api.app"]
    assert ("INFO", "POST /deployments: the client hung up") in said and not any(lv == "ERROR" for lv, _ in said), said


@pytest.mark.parametrize("path", ["/healthz", "/deployments", "/metrics"])
def test_head_is_answered_where_get_is(path: str, base_url: str) -> None:
    r = requests.head(base_url + path, headers=apihelp.AUTH, timeout=10)
    assert r.status_code == 200 and r.text == ""


@pytest.mark.parametrize(
    ("patch", "path", "rule"),
    [
        pytest.param({"max_replicas": True}, "max_replicas", "not true/false", id="true-is-no-replica-count"),
        pytest.param({"targets": {"concurrency": True}}, "targets.concurrency", "not true/false", id="true-is-no-target"),
        pytest.param({"windows": {"scale_up_stabilization_s": False}}, "windows.scale_up_stabilization_s",
                     "not true/false", id="false-is-no-window"),
        pytest.param({"targets": {"concurrency": float("nan")}}, "targets.concurrency", "finite",
                     id="nan-is-named-at-the-patch-key-not-the-recipe-path"),
    ],
)  # fmt: skip
def test_a_patch_refuses_what_a_recipe_refuses_at_its_own_key(patch: dict[str, Any], path: str, rule: str) -> None:
    rec = recipe.parse(apihelp.chat_recipe())
    with pytest.raises(pydantic.ValidationError) as got:
        deployments.apply_patch(rec, patch)
    (problem,) = recipe.problems(got.value)
    assert problem.path == path and rule in problem.rule, problem
    assert deployments.apply_patch(rec, {"max_replicas": 2.0}).autoscaling.max_replicas == 2


def test_a_target_for_a_deployment_without_signals_says_it_has_none() -> None:
    rec = recipe.parse({"service": {"name": "chat", "engine": "simulated-llm", "preset": "tiny-cpu"}})
    assert rec.autoscaling.signals == ()
    with pytest.raises(errors.RecipeError) as got:
        deployments.apply_patch(rec, {"targets": {"x": 1}})
    (problem,) = got.value.problems
    assert problem.path == "targets.x" and problem.rule == "no such signal: this deployment scales on none"
