"""Resident memory of what runs beside a replica's workers, read from /proc (Linux).

TorchServe measures its workers (`memoryUsage` in `GET /models/NAME`) but not itself: the guard,
the Python launcher and the Java frontend (~240 MB here, Java ~210 MB of it). The workers'
memory cap subtracts this base from `resources.memory_gib`. Workers are the listed worker pids
and every other child of their parent (Java), so a worker still starting, not yet listed, is not
counted as base.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def parents() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc/PID/stat (read once a tick for all replicas)."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    out[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return out


def _resident(pid: int) -> int:
    """Resident bytes of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _below(roots: Iterable[int], parent_of: dict[int, int]) -> set[int]:
    """The roots and every process below them."""
    children: dict[int, list[int]] = {}
    for c, pp in parent_of.items():
        children.setdefault(pp, []).append(c)
    found = set(roots)
    frontier = list(found)
    while frontier:
        kids = [c for c in children.get(frontier.pop(), ()) if c not in found]
        found.update(kids)
        frontier += kids
    return found


def beside_workers(root: int, worker_pids: Iterable[int], parent_of: dict[int, int] | None = None) -> float | None:
    """Resident bytes of `root` (the replica's guard) and the processes below it that are not
    workers (below the listed workers' parent); None when no worker is listed (their parent is
    unknown, so a starting worker could count as base) or `root` is gone. `parent_of`: `parents()`,
    read once for every replica of a tick (read here when not given)."""
    parent_of = parents() if parent_of is None else parent_of
    listed = [p for p in worker_pids if p in parent_of]
    if root not in parent_of or not listed:
        return None
    workers = _below([c for c, pp in parent_of.items() if pp in {parent_of[p] for p in listed}], parent_of)
    total = sum(_resident(p) for p in _below([root], parent_of) - workers)
    return float(total) or None
