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
    assert workers.decide(CFG, queue, current)[0].desired == want


def test_a_held_decision_says_so_and_keeps_the_current_count() -> None:
    d, recent = workers.decide(CFG, None, 3, now=5.0, recent=((1.0, 2),))
    assert (d.current, d.desired) == (3, 3) and "no value" in d.reason
    assert recent == ((1.0, 2),)  # nothing asked: nothing remembered


def test_fewer_workers_wait_out_the_stabilization_window() -> None:
    cfg = recipe.Workers(
        min_workers=1, max_workers=4, target_queue_per_worker=2, scale_down_stabilization_s=30
    )
    d, recent = workers.decide(cfg, 8.0, 4, now=0.0)  # asks 4
    assert d.desired == 4
    d, recent = workers.decide(cfg, 0.0, 4, now=10.0, recent=recent)  # the queue emptied: asks 1
    assert d.desired == 4 and "4 asked within the last 30 s" in d.reason
    d, recent = workers.decide(cfg, 0.0, 4, now=31.0, recent=recent)  # the ask of 4 is 31 s old
    assert d.desired == 2  # down, at most 2 per tick
    assert recent == ((10.0, 1), (31.0, 1))
    up, _ = workers.decide(cfg, 8.0, 1, now=32.0, recent=recent)
    assert up.desired == 3  # more workers are never held back (only the step limit)


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
