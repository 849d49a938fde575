"""Signals evaluated on a Prometheus server through its HTTP API (`/api/v1/query`).

Unreachable, an HTTP error, an empty result or NaN all give "no value" with the reason —
never zero (KEDA's ignoreNullValues trap); once values come back, a signal's window that still
reaches into the outage is partial (Prometheus's rate over it sees only the samples since). Signals render with idle_as_zero so an idle service
reads 0 exactly as the embedded evaluator does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from swell import errors, recipe
from swell.core import signals, snapshot

ENV = "SWELL_PROMETHEUS_"  # the environment's names for Auth's fields: SWELL_PROMETHEUS_BEARER_TOKEN_FILE, ...


@dataclass(frozen=True, kw_only=True)
class Auth:
    """How to reach a Prometheus server that asks who is calling (Grafana Cloud, Mimir, Thanos
    behind a proxy, a TLS endpoint with a private CA): headers (Mimir's `X-Scope-OrgID`), a bearer
    token or a basic-auth password read from files (a mounted Secret; re-read every minute, as
    projected tokens rotate), a CA bundle, or no TLS verification at all. Secrets never sit in a
    recipe or on a command line."""

    headers: Mapping[str, str] = field(default_factory=dict)
    bearer_token_file: str | None = None
    basic_auth_user: str | None = None
    basic_auth_password_file: str | None = None
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    reread_s: float = 60.0

    @staticmethod
    def from_env(env: Mapping[str, str] = os.environ) -> Auth:
        """The SWELL_PROMETHEUS_* variables (`swell controller` takes the same as flags)."""
        pairs = [h for h in env.get(ENV + "HEADERS", "").split(",") if h.strip()]
        headers, problems = headers_of(pairs, ENV + "HEADERS", "NAME=VALUE pairs, comma-separated")
        if problems:
            raise errors.RecipeError(ENV + "HEADERS", problems)
        return Auth(headers=headers, bearer_token_file=env.get(ENV + "BEARER_TOKEN_FILE") or None,
                    basic_auth_user=env.get(ENV + "BASIC_AUTH_USER") or None,
                    basic_auth_password_file=env.get(ENV + "BASIC_AUTH_PASSWORD_FILE") or None,
                    ca_file=env.get(ENV + "CA_FILE") or None,
                    insecure_skip_verify=env.get(ENV + "INSECURE_SKIP_VERIFY", "").lower() in ("1", "true", "yes"))  # fmt: skip

    def problems(self, prefix: str = "--prometheus-") -> list[errors.Problem]:
        """Every field that cannot work, by the option that set it."""
        out = []
        for name, path in (("bearer-token-file", self.bearer_token_file), ("basic-auth-password-file",
                           self.basic_auth_password_file), ("ca-file", self.ca_file)):  # fmt: skip
            if path is not None and not os.access(path, os.R_OK):
                out.append(errors.Problem(path=prefix + name, value=path, rule="must be a file this process can read"))
        if (self.basic_auth_user is None) != (self.basic_auth_password_file is None):
            out.append(errors.Problem(path=prefix + "basic-auth-user", value=self.basic_auth_user,
                                      rule="basic auth needs both a user and a password file"))  # fmt: skip
        if self.bearer_token_file is not None and self.basic_auth_user is not None:
            out.append(errors.Problem(path=prefix + "bearer-token-file", value=self.bearer_token_file,
                                      rule="one of a bearer token and basic auth, not both"))  # fmt: skip
        if self.ca_file is not None and self.insecure_skip_verify:
            out.append(errors.Problem(path=prefix + "insecure-skip-verify", value=True,
                                      rule="a CA file and no verification contradict each other"))  # fmt: skip
        for name in self.headers:
            if name.lower() == "authorization":
                out.append(errors.Problem(path=prefix + "header", value=name,
                                          rule="a credential goes in a file (--prometheus-bearer-token-file), "
                                               "not on a command line"))  # fmt: skip
        return out


def headers_of(pairs: Iterable[str], where: str, rule: str) -> tuple[dict[str, str], list[errors.Problem]]:
    """NAME=VALUE pairs as headers, and a problem (at `where`, saying `rule`) for each that is not one."""
    headers, problems = {}, []
    for text in pairs:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            problems.append(errors.Problem(path=where, value=text, rule=rule))
        else:
            headers[name.strip()] = value.strip()
    return headers, problems


class _Secrets:
    """An Auth's headers and TLS context, the files re-read at most every `reread_s`."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth
        self._read_at = -math.inf
        self._headers: dict[str, str] = dict(auth.headers)
        self.tls: ssl.SSLContext | bool | None = None
        if auth.ca_file:
            self.tls = ssl.create_default_context(cafile=auth.ca_file)
        elif auth.insecure_skip_verify:
            self.tls = False

    def headers(self, now: float) -> dict[str, str]:
        a = self.auth
        if now - self._read_at >= a.reread_s:
            out = dict(a.headers)
            if a.bearer_token_file:
                out["Authorization"] = "Bearer " + Path(a.bearer_token_file).read_text().strip()
            elif a.basic_auth_user and a.basic_auth_password_file:
                pw = Path(a.basic_auth_password_file).read_text().strip()
                out["Authorization"] = "Basic " + base64.b64encode(f"{a.basic_auth_user}:{pw}".encode()).decode()
            self._headers, self._read_at = out, now
        return self._headers


class PrometheusSource:
    def __init__(
        self,
        url: str,
        *,
        extra_labels: Mapping[str, str] | None = None,
        resources: recipe.Resources | None = None,
        timeout_s: float = 5.0,
        session: aiohttp.ClientSession | None = None,
        auth: Auth | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.extra = dict(extra_labels or {})
        self.resources = resources
        self.timeout_s = timeout_s
        self._session = session
        self._secrets = _Secrets(auth or Auth())
        self.gaps = signals.Gaps()  # a signal without a value: its next windows are partial

    async def query(self, promql: str) -> snapshot.Reading:
        try:
            headers = self._secrets.headers(asyncio.get_running_loop().time())
        except OSError as exc:
            return snapshot.Reading.missing(f"prometheus credentials unreadable: {exc}")
        session = self._session or aiohttp.ClientSession()
        try:
            async with session.get(
                f"{self.url}/api/v1/query",
                params={"query": promql},
                headers=headers,
                ssl=self._secrets.tls if self._secrets.tls is not None else True,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as resp:
                text = await resp.text()
                try:
                    body = json.loads(text)
                except ValueError:
                    body = None
                if not isinstance(body, dict):  # a proxy's or an auth layer's page: say what it said
                    said = " ".join(text.split())[:200]
                    return snapshot.Reading.missing(
                        f"prometheus answered HTTP {resp.status} without a JSON object" + (f": {said}" if said else "")
                    )
                if resp.status != 200 or body.get("status") != "success":
                    return snapshot.Reading.missing(
                        f"prometheus HTTP {resp.status}: {body.get('error', '')}".strip()
                    )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return snapshot.Reading.missing(f"prometheus unreachable: {type(exc).__name__}: {exc}")
        finally:
            if self._session is None:
                await session.close()
        data = body.get("data")
        return reading_of(data if isinstance(data, dict) else {})

    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: object = None
    ) -> dict[str, snapshot.Reading]:
        exprs = [signals.render(s, self.extra, idle_as_zero=True, resources=self.resources) for s in sigs]
        results = await asyncio.gather(*(self.query(e) for e in exprs))
        for s, r in zip(sigs, results, strict=True):
            if not r.ok:
                self.gaps.gap(s.name, now)
        return self.gaps.mark({s.name: r for s, r in zip(sigs, results, strict=True)}, sigs, now)


def reading_of(data: Mapping[str, object]) -> snapshot.Reading:
    """A query result -> one value: a scalar, or a vector of exactly one element."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        try:
            return snapshot.Reading.of(float(result[1]))
        except (TypeError, ValueError):
            return snapshot.Reading.missing(f"unexpected scalar {result!r}")
    if kind != "vector" or not isinstance(result, list):
        return snapshot.Reading.missing(f"unexpected result type {kind!r}")
    if not result:
        return snapshot.Reading.missing("empty result (no series matched)")
    if len(result) > 1:
        return snapshot.Reading.missing(f"{len(result)} series returned; a signal must aggregate to one")
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return snapshot.Reading.missing(f"unexpected sample {str(result[0])[:80]}")
    if math.isnan(value):
        return snapshot.Reading.missing("NaN")
    return snapshot.Reading.of(value)
