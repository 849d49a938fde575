"""The simulated request router: least outstanding requests, or round-robin like a Service.

Only ready replicas receive requests. Least outstanding requests (the gateway's default, like
Envoy's LEAST_REQUEST without sampling) picks the replica holding the fewest unfinished requests,
ties taken in turn; round-robin cycles through ready replicas as kube-proxy's load balancing
roughly does. With a cap (`max_ongoing_requests`) a replica holding that many takes no more: the
request waits in the gateway's buffer, as the local gateway does (Knative's containerConcurrency).
"""

from __future__ import annotations

from typing import Literal

from swell.clusters.sim import replicas

Kind = Literal["least-outstanding", "round-robin"]
KINDS: tuple[Kind, ...] = ("least-outstanding", "round-robin")


class Router:
    def __init__(self, kind: Kind = "least-outstanding", cap: int = 0) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown router {kind!r}; known: {', '.join(KINDS)}")
        self.kind = kind
        self.cap = cap  # requests in flight a replica may hold (0: no limit)
        self.ready: list[replicas.SimReplica] = []
        self._next = 0

    def with_room(self) -> list[replicas.SimReplica]:
        """The ready replicas that can take a request now (below the cap, when there is one)."""
        return [r for r in self.ready if len(r.live) < self.cap] if self.cap else self.ready

    def has_room(self) -> bool:
        """Some ready replica can take a request now."""
        return bool(self.with_room())

    def add(self, rep: replicas.SimReplica) -> None:
        self.ready.append(rep)

    def remove(self, rep: replicas.SimReplica) -> None:
        if rep in self.ready:
            self.ready.remove(rep)

    def choose(self) -> replicas.SimReplica | None:
        ready = self.with_room()
        if not ready:
            return None
        if self.kind == "round-robin":
            self._next = (self._next + 1) % len(ready)
            return ready[self._next]
        n = len(ready)
        start = self._next = (self._next + 1) % n  # ties are taken in turn, not always by the first
        best = ready[start]
        least = len(best.live)
        i = start
        while least:
            i = i + 1 if i + 1 < n else 0
            if i == start:
                break
            k = len(ready[i].live)
            if k < least:
                best, least = ready[i], k
        return best

    def __len__(self) -> int:
        return len(self.ready)
