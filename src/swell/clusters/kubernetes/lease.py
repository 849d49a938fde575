"""Leader election on a coordination.k8s.io/v1 Lease, as client-go does it, so two replicas never both act.

The leader renews the Lease every retry period; it stops acting as soon as it has not renewed
within the renew deadline. Another candidate takes over only when the Lease's record has not
changed for a whole lease duration by *its own* clock (so clock skew between machines does not
matter), and every write carries the resourceVersion it read: of two racing candidates, one gets 409.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from swell import errors
from swell.clusters.kubernetes import api

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Settings:
    namespace: str
    name: str = "swell-controller"
    identity: str
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise errors.ClusterError(
                "leader election needs retry period < renew deadline < lease duration "
                f"(got {self.retry_period_s:g} s, {self.renew_deadline_s:g} s, {self.lease_duration_s:g} s)"
            )


def micro_time(t: float) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


class Elector:
    def __init__(
        self,
        client: api.Api,
        settings: Settings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.api = client
        self.s = settings
        self._mono = monotonic
        self._wall = wall
        self._renewed: float | None = None  # monotonic time of our last successful write
        self._observed: tuple[object, ...] | None = None  # the other holder's record, as last seen
        self._observed_at = 0.0
        self.holder: str = ""

    @property
    def is_leader(self) -> bool:
        """True while our last renewal is younger than the renew deadline."""
        return self._renewed is not None and self._mono() - self._renewed < self.s.renew_deadline_s

    def _body(self, old: api.Obj | None, acquire: str | None, transitions: int) -> api.Obj:
        meta: api.Obj = {"name": self.s.name, "namespace": self.s.namespace}
        if old is not None:
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.s.identity,
                "leaseDurationSeconds": max(1, round(self.s.lease_duration_s)),
                "acquireTime": acquire,
                "renewTime": micro_time(self._wall()),
                "leaseTransitions": transitions,
            },
        }

    async def try_acquire_or_renew(self) -> bool:
        """One round: take a free or expired Lease, renew our own, or see that another holds it."""
        now = self._mono()
        try:
            old = await self.api.get_lease(self.s.namespace, self.s.name)
            if old is None:
                await self.api.create_lease(self.s.namespace, self._body(None, micro_time(self._wall()), 0))
                return self._won(now, "created the lease")
            spec = old.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
            if record != self._observed:
                self._observed, self._observed_at = record, now
            self.holder = holder
            duration = float(spec.get("leaseDurationSeconds") or self.s.lease_duration_s)
            if holder and holder != self.s.identity and now - self._observed_at < duration:
                return self._lost(f"held by {holder}")
            ours = holder == self.s.identity
            acquire = spec.get("acquireTime") if ours else micro_time(self._wall())
            transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours or not holder else 1)
            await self.api.replace_lease(self.s.namespace, self.s.name, self._body(old, acquire, transitions))
            return self._won(now, "renewed" if ours else f"took over from {holder or 'nobody'}")
        except errors.KubernetesError as exc:
            if exc.status == 409:
                return self._lost("another candidate wrote the lease first")
            log.warning("leader election: %s", exc)
            return self.is_leader  # keep leading until the renew deadline passes

    def _won(self, now: float, how: str) -> bool:
        if not self.is_leader:
            log.info("leader election: %s is the leader (%s)", self.s.identity, how)
        self._renewed, self.holder = now, self.s.identity
        return True

    def _lost(self, why: str) -> bool:
        if self._renewed is not None:
            log.warning("leader election: %s lost the lease (%s)", self.s.identity, why)
        self._renewed = None
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Try or renew every retry period until `stop` is set."""
        while not stop.is_set():
            await self.try_acquire_or_renew()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.s.retry_period_s)

    async def release(self) -> None:
        """Give the Lease up on a clean stop so a standby takes over at once, not after the duration."""
        if self._renewed is None:
            return
        self._renewed = None
        try:
            old = await self.api.get_lease(self.s.namespace, self.s.name)
            if old is None or (old.get("spec") or {}).get("holderIdentity") != self.s.identity:
                return
            body = self._body(old, (old.get("spec") or {}).get("acquireTime"), 0)
            body["spec"].update(
                holderIdentity="",
                leaseDurationSeconds=1,
                leaseTransitions=int((old.get("spec") or {}).get("leaseTransitions") or 0),
            )
            await self.api.replace_lease(self.s.namespace, self.s.name, body)
            log.info("leader election: %s released the lease", self.s.identity)
        except errors.KubernetesError as exc:
            log.warning("leader election: could not release the lease: %s", exc)
