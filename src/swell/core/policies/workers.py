"""Workers inside a replica (TorchServe-style): how many model workers each replica should run.

Pure: from the queue length per replica and the recipe's `workers` section, the desired worker
count per replica = ceil(queue / target_queue_per_worker), within [min_workers, max_workers].
Without a value the count holds (no data is never zero); a drop waits out a stabilization window
(the largest ask of the last `scale_down_stabilization_s`), and the count moves by at most
`max_step` per tick, so neither a burst nor a queue that empties between ticks thrashes worker
processes. Memory caps the count: the workers that fit in the replica's `resources.memory_gib`
(less what runs beside them) at the measured memory of one worker (`memory_cap`); past that, the
replicas grow instead (the queue time the replica policy scales on stays high).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from swell import recipe
from swell.core import decision
from swell.core.policies import steps

WorkerDecision = decision.WorkerDecision


@dataclass(frozen=True, kw_only=True)
class Observed:
    """One ready replica's workers as its server reports them."""

    replica: str
    workers: int  # the count set on it (some may still be starting)
    queue: float | None  # requests at the replica, waiting or being served; None: unknown
    # resident memory of one worker, measured (TorchServe: `memoryUsage` averaged over the READY
    # workers); None: not measured yet
    worker_memory_bytes: float | None = None
    # resident memory of the replica's processes beside its workers (TorchServe: the launcher and
    # the Java frontend), measured; None: unknown
    base_memory_bytes: float | None = None


def queue_per_replica(observed: Sequence[Observed]) -> float | None:
    """The average queue over the replicas that report one; None when none does."""
    known = [o.queue for o in observed if o.queue is not None]
    return sum(known) / len(known) if known else None


def current(observed: Sequence[Observed], last: int) -> int:
    """The most workers any ready replica runs (a new replica starting at the floor does not pull
    the count down); `last` when no replica reports."""
    return max((o.workers for o in observed), default=last)


GIB = 2**30
MIB = 2**20


def fitting(limit_bytes: float, base_bytes: float, per_worker_bytes: float) -> int:
    """Whole workers of `per_worker_bytes` each that fit in `limit_bytes` less `base_bytes` (0: none)."""
    return max(0, math.floor((limit_bytes - base_bytes) / per_worker_bytes))


@dataclass(frozen=True, kw_only=True)
class MemoryCap:
    """The most workers a replica's memory holds, and the words that say why."""

    workers: int  # may be below min_workers (decide keeps min_workers and says so)
    why: str


def memory_cap(cfg: recipe.Workers, memory_gib: float, observed: Sequence[Observed]) -> MemoryCap | None:
    """The workers that fit in `memory_gib` less the base, at the memory of one worker: the largest
    measured on any replica (replicas run the same model; the larger is the safe side), else the
    recipe's `memory_per_worker_mib`; the base is the largest measured, else 0. None: no per-worker
    memory is known, so memory bounds nothing."""
    measured = [o.worker_memory_bytes for o in observed if o.worker_memory_bytes]
    per = max(measured) if measured else (cfg.memory_per_worker_mib or 0) * MIB
    if per <= 0:
        return None
    base = max((o.base_memory_bytes for o in observed if o.base_memory_bytes), default=0.0)
    fit = fitting(memory_gib * GIB, base, per)
    source = "" if measured else " (memory_per_worker_mib)"
    beside = f" less {base / 1e6:.0f} MB beside them" if base else ""
    noun = "worker" if fit == 1 else "workers"
    why = f"memory {memory_gib:g} GiB{beside} allows {fit} {noun} at {per / 1e6:.0f} MB each{source}"
    return MemoryCap(workers=fit, why=why)


Recent = tuple[tuple[float, int], ...]  # (time, count the queue asked for), newest last


def decide(
    cfg: recipe.Workers,
    queue_per_replica: float | None,
    current: int,
    *,
    now: float = 0.0,
    recent: Recent = (),
    max_step: int = 2,
    cap: MemoryCap | None = None,
) -> tuple[WorkerDecision, Recent]:
    """The worker count per replica, and the asks to remember for the next tick.

    The queue's ask is held down by the largest ask of the last `scale_down_stabilization_s`
    (the HPA's scale-down stabilization, per replica's workers): a queue that empties between two
    ticks of a steady load does not take workers away only to start them again. `cap` (from
    `memory_cap`) lowers max_workers, never below min_workers; a count above it comes down at once,
    with no queue value too (memory is not a guess)."""
    top = cfg.max_workers if cap is None else steps.clamp(cap.workers, cfg.min_workers, cfg.max_workers)
    if queue_per_replica is None:
        keep = min(current, top)
        why = "queue length has no value: keep the workers" + _memory_words(cap, cfg, current, top)
        return WorkerDecision(current=current, desired=keep, reason=why), recent
    want = steps.clamp(
        steps.ceil(queue_per_replica / cfg.target_queue_per_worker), cfg.min_workers, cfg.max_workers
    )
    kept = (*(r for r in recent if r[0] > now - cfg.scale_down_stabilization_s), (now, want))
    stable = max(w for _, w in kept)
    # the rate first, then the bounds: a replica above max_workers (or memory's) comes down at once
    ranged = steps.clamp(stable, current - max_step, current + max_step)
    moved = steps.clamp(ranged, cfg.min_workers, cfg.max_workers)
    step = min(moved, top)
    why = (
        f"queue {queue_per_replica:.3g} per replica at {cfg.target_queue_per_worker:g} per worker asks {want}"
    )
    if stable != want:
        why += f"; {stable} asked within the last {cfg.scale_down_stabilization_s:g} s"
    if moved != stable and step == moved:  # the rate, not memory, held it
        why += f"; moving at most {max_step} per tick"
    why += _memory_words(cap, cfg, moved, top)
    return WorkerDecision(current=current, desired=step, reason=why), kept


def _memory_words(cap: MemoryCap | None, cfg: recipe.Workers, asked: int, top: int) -> str:
    """What the reason adds when memory binds the count (`asked` is above `top`), or when even
    min_workers do not fit (said whatever was asked)."""
    if cap is None:
        return ""
    if cap.workers < cfg.min_workers:
        return f"; {cap.why}: fewer than min_workers, keeping {cfg.min_workers}"
    if asked > top and top < cfg.max_workers:
        return f"; {cap.why}"
    return ""
