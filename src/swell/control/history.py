"""The decision log: a bounded history of decisions with the snapshot that produced them.

The API, the dashboard, reports and `swell decide` read it. Bounded so a controller that runs
for weeks keeps constant memory; listeners see each entry as it is added (live status, metrics).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from swell.core import decision, snapshot


@dataclass(frozen=True, kw_only=True)
class Entry:
    decision: decision.Decision
    snapshot: snapshot.Snapshot

    def to_json(self) -> dict[str, Any]:
        snap = self.snapshot
        return self.decision.to_json() | {
            "replicas": {"ready": snap.ready, "starting": snap.starting, "pending": snap.pending},
            "signals": {k: r.value for k, r in snap.signals.items()},
            "errors": {k: r.error for k, r in snap.signals.items() if r.error},
        }


Listener = Callable[[Entry], None]


class History:
    def __init__(self, maxlen: int = 1000) -> None:
        self._entries: deque[Entry] = deque(maxlen=maxlen)
        self._listeners: list[Listener] = []
        self.total = 0
        self.by_bound: dict[str, int] = {}

    def add(self, d: decision.Decision, snap: snapshot.Snapshot) -> Entry:
        e = Entry(decision=d, snapshot=snap)
        self._entries.append(e)
        self.total += 1
        self.by_bound[d.bound_by] = self.by_bound.get(d.bound_by, 0) + 1
        for fn in list(self._listeners):
            fn(e)
        return e

    def listen(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def last(self) -> Entry | None:
        return self._entries[-1] if self._entries else None

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
