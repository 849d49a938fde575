"""Workers inside a replica (TorchServe-style): how many model workers each replica should run.

Pure: from the queue length per replica and the recipe's `workers` section, the desired worker
count per replica = ceil(queue / target_queue_per_worker), within [min_workers, max_workers].
Without a value the count holds (no data is never zero); it moves by at most one step of
`max_step` per tick so a burst does not thrash worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from swell import recipe
from swell.core.policies import steps


@dataclass(frozen=True, kw_only=True)
class WorkerDecision:
    desired: int
    reason: str


def decide(
    cfg: recipe.Workers, queue_per_replica: float | None, current: int, max_step: int = 2
) -> WorkerDecision:
    if queue_per_replica is None:
        return WorkerDecision(desired=current, reason="queue length has no value: keep the workers")
    want = steps.clamp(
        steps.ceil(queue_per_replica / cfg.target_queue_per_worker), cfg.min_workers, cfg.max_workers
    )
    step = steps.clamp(want, current - max_step, current + max_step)
    why = (
        f"queue {queue_per_replica:.3g} per replica at {cfg.target_queue_per_worker:g} per worker asks {want}"
    )
    if step != want:
        why += f"; moving at most {max_step} per tick"
    return WorkerDecision(desired=step, reason=why)
