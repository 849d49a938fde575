"""Prometheus that asks who is calling: basic auth and TLS on a real Prometheus (its web config),
bearer tokens and tenant headers on a loopback server that records what it was sent, and every
option that cannot work refused by name."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from aiohttp import web

from swell import errors
from swell.metrics import prometheus
from tests.support import prometheus as support_prometheus

# bcrypt of "swell-test" (Python's crypt module, METHOD_BLOWFISH): Prometheus's web config takes hashes only
HASH = "$2b$12$xAypxaOfknrVx4V.ZSVV2uiedrP3ew4nWsEYIoyU5psr9.EQJZeO6"
BASIC = "Basic " + base64.b64encode(b"swell:swell-test").decode()


def value(url: str, auth: prometheus.Auth | None) -> tuple[float | None, str]:
    r = asyncio.run(prometheus.PrometheusSource(url, auth=auth).query("scalar(vector(7))"))
    return r.value, r.error or ""


def password(tmp_path: Path, text: str) -> str:
    f = tmp_path / f"pw-{text}"
    f.write_text(text + "\n")  # a mounted Secret often ends in a newline
    return str(f)


@pytest.mark.prometheus
def test_basic_auth_on_a_real_prometheus(tmp_path: Path) -> None:
    web_cfg = {"basic_auth_users": {"swell": HASH}}
    with support_prometheus.running(tmp_path, web=web_cfg, ready_auth=BASIC) as prom:
        right = prometheus.Auth(basic_auth_user="swell", basic_auth_password_file=password(tmp_path, "swell-test"))
        wrong = prometheus.Auth(basic_auth_user="swell", basic_auth_password_file=password(tmp_path, "nope"))
        assert value(prom.url, right) == (7.0, "")
        for auth in (None, wrong):
            got, why = value(prom.url, auth)
            assert got is None and "HTTP 401" in why and "Unauthorized" in why, why


@pytest.mark.prometheus
def test_tls_with_a_private_ca_on_a_real_prometheus(tmp_path: Path) -> None:
    pytest.importorskip("cryptography", reason="a self-signed certificate needs the cryptography package")
    from swell.clusters.kubernetes import metrics_auth

    cert, key = metrics_auth.self_signed("localhost")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    tls = {"cert_file": str(tmp_path / "tls.crt"), "key_file": str(tmp_path / "tls.key")}
    with support_prometheus.running(tmp_path, web={"tls_server_config": tls}) as prom:
        assert prom.url.startswith("https://localhost:")
        assert value(prom.url, prometheus.Auth(ca_file=str(tmp_path / "tls.crt"))) == (7.0, "")
        assert value(prom.url, prometheus.Auth(insecure_skip_verify=True)) == (7.0, "")
        got, why = value(prom.url, None)  # the system's CAs do not know a self-signed certificate
        assert got is None and "certificate verify failed" in why, why


async def test_a_bearer_token_is_reread_as_it_rotates_and_headers_are_sent(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    async def api(request: web.Request) -> web.Response:
        seen.append({k: v for k, v in request.headers.items() if k in ("Authorization", "X-Scope-OrgID")})
        return web.json_response({"status": "success", "data": {"resultType": "scalar", "result": [0, "3"]}})

    app = web.Application()
    app.router.add_get("/api/v1/query", api)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    token = tmp_path / "token"
    token.write_text("first\n")
    auth = prometheus.Auth(headers={"X-Scope-OrgID": "team-a"}, bearer_token_file=str(token), reread_s=0.0)
    src = prometheus.PrometheusSource(f"http://127.0.0.1:{port}", auth=auth)
    try:
        assert (await src.query("up")).value == 3.0
        token.write_text("second\n")  # the kubelet rotates a projected token
        assert (await src.query("up")).value == 3.0
        token.unlink()
        gone = await src.query("up")
        assert gone.value is None and "credentials unreadable" in (gone.error or "")
    finally:
        await runner.cleanup()
    assert seen == [{"Authorization": "Bearer first", "X-Scope-OrgID": "team-a"},
                    {"Authorization": "Bearer second", "X-Scope-OrgID": "team-a"}]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "option", "rule"),
    [
        ({"bearer_token_file": "/no/such/token"}, "--prometheus-bearer-token-file", "must be a file"),
        ({"basic_auth_user": "u"}, "--prometheus-basic-auth-user", "both a user and a password file"),
        ({"ca_file": __file__, "insecure_skip_verify": True}, "--prometheus-insecure-skip-verify", "contradict"),
        ({"headers": {"Authorization": "Bearer x"}}, "--prometheus-header", "in a file"),
        ({"bearer_token_file": __file__, "basic_auth_user": "u", "basic_auth_password_file": __file__},
         "--prometheus-bearer-token-file", "not both"),
    ],
    ids=["an unreadable token file", "a user without a password", "a CA and no verification",
         "a credential on the command line", "a token and a password"],
)  # fmt: skip
def test_what_cannot_work_is_named(fields: dict, option: str, rule: str) -> None:
    (problem,) = prometheus.Auth(**fields).problems()
    assert problem.path == option and rule in problem.rule


def test_the_environment_gives_the_same_fields() -> None:
    env = {"SWELL_PROMETHEUS_HEADERS": "X-Scope-OrgID=team-a, X-Other = b",
           "SWELL_PROMETHEUS_BEARER_TOKEN_FILE": "/var/run/secrets/token", "SWELL_PROMETHEUS_INSECURE_SKIP_VERIFY": "true"}  # fmt: skip
    auth = prometheus.Auth.from_env(env)
    assert auth.headers == {"X-Scope-OrgID": "team-a", "X-Other": "b"}
    assert auth.bearer_token_file == "/var/run/secrets/token" and auth.insecure_skip_verify
    with pytest.raises(errors.RecipeError, match="NAME=VALUE"):
        prometheus.Auth.from_env({"SWELL_PROMETHEUS_HEADERS": "no-equals-sign"})

