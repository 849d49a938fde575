"""Workers inside a replica (TorchServe-style): how many model workers each replica should run.

Pure: from the queue length per replica and the recipe's `workers` section, the desired worker
count per replica = ceil(queue / target_queue_per_worker), within [min_workers, max_workers].
Without a value the count holds (no data is never zero); a drop waits out a stabilization window
(the largest ask of the last `scale_down_stabilization_s`), and the count moves by at most
`max_step` per tick, so neither a burst nor a queue that empties between ticks thrashes worker
processes.
"""

from __future__ import annotations

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


def queue_per_replica(observed: Sequence[Observed]) -> float | None:
    """The average queue over the replicas that report one; None when none does."""
    known = [o.queue for o in observed if o.queue is not None]
    return sum(known) / len(known) if known else None


def current(observed: Sequence[Observed], last: int) -> int:
    """The most workers any ready replica runs (a new replica starting at the floor does not pull
    the count down); `last` when no replica reports."""
    return max((o.workers for o in observed), default=last)


Recent = tuple[tuple[float, int], ...]  # (time, count the queue asked for), newest last


def decide(
    cfg: recipe.Workers,
    queue_per_replica: float | None,
    current: int,
    *,
    now: float = 0.0,
    recent: Recent = (),
    max_step: int = 2,
) -> tuple[WorkerDecision, Recent]:
    """The worker count per replica, and the asks to remember for the next tick.

    The queue's ask is held down by the largest ask of the last `scale_down_stabilization_s`
    (the HPA's scale-down stabilization, per replica's workers): a queue that empties between two
    ticks of a steady load does not take workers away only to start them again."""
    if queue_per_replica is None:
        held = WorkerDecision(
            current=current, desired=current, reason="queue length has no value: keep the workers"
        )
        return held, recent
    want = steps.clamp(
        steps.ceil(queue_per_replica / cfg.target_queue_per_worker), cfg.min_workers, cfg.max_workers
    )
    kept = (*(r for r in recent if r[0] > now - cfg.scale_down_stabilization_s), (now, want))
    stable = max(w for _, w in kept)
    # the rate first, then the bounds: a replica above max_workers comes down to it at once
    step = steps.clamp(
        steps.clamp(stable, current - max_step, current + max_step), cfg.min_workers, cfg.max_workers
    )
    why = (
        f"queue {queue_per_replica:.3g} per replica at {cfg.target_queue_per_worker:g} per worker asks {want}"
    )
    if stable != want:
        why += f"; {stable} asked within the last {cfg.scale_down_stabilization_s:g} s"
    if step != stable:
        why += f"; moving at most {max_step} per tick"
    return WorkerDecision(current=current, desired=step, reason=why), kept
