"""Worker count inside a replica (TorchServe-style)."""

from __future__ import annotations

import pytest

from swell import errors, recipe
from swell.core.policies import workers

CFG = recipe.Workers(min_workers=1, max_workers=4, target_queue_per_worker=2)


@pytest.mark.parametrize(
    ("queue", "current", "want"),
    [
        (0.0, 2, 1),
        (3.0, 1, 2),
        (7.9, 2, 4),
        (100.0, 1, 3),
        (None, 3, 3),
        (5.0, 3, 3),
        (100.0, 6, 4),
    ],
    ids=[
        "idle: down to min",
        "3 queued: 2 workers",
        "8 queued: max 4",
        "a burst moves 2 per tick",
        "no value: hold",
        "steady",
        "above max_workers: down to it at once",
    ],
)
def test_workers_follow_the_queue(queue: float | None, current: int, want: int) -> None:
    assert workers.decide(CFG, queue, current).desired == want


def test_a_held_decision_says_so_and_keeps_the_current_count() -> None:
    d = workers.decide(CFG, None, 3)
    assert (d.current, d.desired) == (3, 3) and "no value" in d.reason


def test_the_queue_is_averaged_over_the_replicas_that_report_one() -> None:
    def obs(*queues: float | None) -> list[workers.Observed]:
        return [workers.Observed(replica=f"r{i}", workers=i + 1, queue=q) for i, q in enumerate(queues)]

    assert workers.queue_per_replica(obs(6.0, None, 2.0)) == 4.0
    assert workers.queue_per_replica(obs(None, None)) is None
    assert workers.queue_per_replica([]) is None
    assert workers.current(obs(1.0, 1.0, 1.0), last=1) == 3
    assert workers.current([], last=2) == 2


def test_the_worker_start_time_must_not_be_negative() -> None:
    data = {"service": {"name": "s"}, "workers": {"max_workers": 2, "worker_start_s": -1}}
    with pytest.raises(errors.RecipeError) as info:
        recipe.parse(data)
    assert "workers.worker_start_s" in str(info.value)
    assert recipe.parse({**data, "workers": {"max_workers": 2}}).workers == recipe.Workers(
        max_workers=2, worker_start_s=5.0
    )
