"""One tick of observations for the policy test tables: a time, the current count, each signal's
reading (a plain value, None for no value, or a whole Reading), ready and starting replicas."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from swell.core import snapshot
from tests.conftest import snap

Read = float | snapshot.Reading | None  # a plain value, None for no value, or a whole reading


@dataclass(frozen=True)
class Tick:
    t: float
    current: int
    read: Mapping[str, Read]
    ready: int | None = None
    starting: int = 0


def observe(tick: Tick) -> snapshot.Snapshot:
    """The snapshot a policy sees at this tick."""
    s = snap(tick.t, tick.current, ready=tick.ready, starting=tick.starting)
    read = {k: v if isinstance(v, snapshot.Reading) else snapshot.Reading.of(v) for k, v in tick.read.items()}
    return replace(s, signals=read)
