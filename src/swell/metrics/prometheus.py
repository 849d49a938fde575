"""Signals evaluated on a Prometheus server through its HTTP API (`/api/v1/query`).

Unreachable, an HTTP error, an empty result or NaN all give "no value" with the reason —
never zero (KEDA's ignoreNullValues trap); once values come back, a signal's window that still
reaches into the outage is partial (Prometheus's rate over it sees only the samples since). Signals render with idle_as_zero so an idle service
reads 0 exactly as the embedded evaluator does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence

import aiohttp

from swell import recipe
from swell.core import signals, snapshot


class PrometheusSource:
    def __init__(
        self,
        url: str,
        *,
        extra_labels: Mapping[str, str] | None = None,
        resources: recipe.Resources | None = None,
        timeout_s: float = 5.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.extra = dict(extra_labels or {})
        self.resources = resources
        self.timeout_s = timeout_s
        self._session = session
        self.gaps = signals.Gaps()  # a signal without a value: its next windows are partial

    async def query(self, promql: str) -> snapshot.Reading:
        session = self._session or aiohttp.ClientSession()
        try:
            async with session.get(
                f"{self.url}/api/v1/query",
                params={"query": promql},
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as resp:
                body = await resp.json(content_type=None)
                if not isinstance(body, dict):
                    return snapshot.Reading.missing(
                        f"prometheus answered HTTP {resp.status} without a JSON object"
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
