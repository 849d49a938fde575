"""Worker count inside a replica (TorchServe-style)."""

from __future__ import annotations

import pytest

from swell import recipe
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
    ],
    ids=[
        "idle: down to min",
        "3 queued: 2 workers",
        "8 queued: max 4",
        "a burst moves 2 per tick",
        "no value: hold",
        "steady",
    ],
)
def test_workers_follow_the_queue(queue: float | None, current: int, want: int) -> None:
    assert workers.decide(CFG, queue, current).desired == want
