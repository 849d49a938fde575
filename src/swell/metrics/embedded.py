"""The embedded signal source: scrape every target into in-memory windows, evaluate the signals.

A target (a replica, the gateway) that fails to scrape marks every reading `partial` with the
reason, so the policy may scale up on what it sees but never down, and so is every signal whose
window still reaches back into such a failure once the target answers again (`signals.Gaps`);
no target at all, or no samples, is "no value". Replicas no longer listed are forgotten from the store, so the caller
must list every replica whose queue still counts (the local runtime keeps one failing readiness
listed while it lives; see `ReplicaManager.scrape_urls`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import aiohttp

from swell import errors, recipe
from swell.core import signals, snapshot, windows, world
from swell.metrics import scrape


class EmbeddedSource:
    def __init__(
        self,
        resources: recipe.Resources,
        *,
        retention_s: float = 900.0,
        timeout_s: float = 2.0,
        wanted: set[str] | None = None,
    ) -> None:
        self.store = windows.Store(retention_s=retention_s, wanted=wanted)
        self.resources = resources
        self.timeout_s = timeout_s
        self.failures: dict[str, str] = {}  # target -> last error
        self.gaps = signals.Gaps()  # when each target last failed
        self._known: set[str] = set()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _scrape_one(self, session: aiohttp.ClientSession, name: str, url: str, now: float) -> None:
        try:
            samples = await scrape.scrape(session, url, self.timeout_s)
        except errors.MetricsError as exc:
            self.failures[name] = str(exc)
            self.gaps.gap(name, now)
            return
        self.failures.pop(name, None)
        self.store.record_all(now, samples, {signals.REPLICA_LABEL: name})

    async def scrape_all(self, targets: Mapping[str, str], now: float) -> None:
        """Scrape {replica name: metrics URL} concurrently; forget replicas no longer listed."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        for gone in self._known - set(targets):
            self.store.forget(signals.REPLICA_LABEL, gone)
            self.failures.pop(gone, None)
            self.gaps.forget(gone)
        self._known = set(targets)
        await asyncio.gather(*(self._scrape_one(self._session, n, u, now) for n, u in targets.items()))

    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: world.ClusterState
    ) -> dict[str, snapshot.Reading]:
        """The one loop's SignalSource (core.world): evaluate what the scraper recorded."""
        return self.evaluate(sigs, now)

    def evaluate(self, sigs: Sequence[recipe.Signal], now: float) -> dict[str, snapshot.Reading]:
        out = self.gaps.mark(signals.evaluate_all(sigs, self.store, now, self.resources), sigs, now)
        if self.failures:
            why = "; ".join(f"{k}: {v}" for k, v in sorted(self.failures.items()))
            out = {
                k: snapshot.Reading(
                    value=r.value,
                    error=f"unreachable: {why}" if r.ok else f"{r.error}; unreachable: {why}",
                    per_replica=r.per_replica,
                    partial=True,
                )
                for k, r in out.items()
            }
        return out
