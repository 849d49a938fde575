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


# ---- memory: the workers a replica's memory holds ------------------------------------------

MB = 1e6


def seen(per: float | None, base: float | None = None, name: str = "r0") -> workers.Observed:
    return workers.Observed(
        replica=name, workers=1, queue=0.0, worker_memory_bytes=per, base_memory_bytes=base
    )


@pytest.mark.parametrize(
    ("memory_gib", "observed", "prior_mib", "want"),
    [
        (4.0, [seen(None)], None, None),
        (4.0, [seen(210 * MB)], None, 20),
        (4.0, [seen(231 * MB, base=240 * MB)], None, 17),
        (1.0, [seen(None)], 300.0, 3),
        (1.0, [seen(500 * MB)], 100.0, 2),
        (1.0, [seen(200 * MB, name="a"), seen(400 * MB, name="b")], None, 2),
        (1.0, [seen(0.0)], None, None),
        (1.0, [seen(0.0)], 512.0, 2),
        (1.0, [seen(200 * MB, base=2000 * MB)], None, 0),
        (2.0, [seen(231 * MB, base=240 * MB), seen(231 * MB, base=None, name="b")], None, 8),
    ],
    ids=[
        "no measurement and no prior: memory bounds nothing",
        "4 GiB at 210 MB a worker: 20",
        "the memory beside the workers is taken off first: 17",
        "memory_per_worker_mib stands in before a measurement: 3",
        "a measurement overrides the prior: 2",
        "the largest worker measured on any replica counts: 2",
        "a zero reading is no measurement",
        "a zero reading falls back to the prior",
        "more beside the workers than the replica has: none fit",
        "a replica without a base reading takes the other's",
    ],
)
def test_the_memory_cap(
    memory_gib: float, observed: list[workers.Observed], prior_mib: float | None, want: int | None
) -> None:
    cfg = recipe.Workers(max_workers=64, memory_per_worker_mib=prior_mib)
    cap = workers.memory_cap(cfg, memory_gib, observed)
    assert (None if cap is None else cap.workers) == want


def test_the_cap_says_what_it_was_computed_from() -> None:
    cfg = recipe.Workers(max_workers=4)
    cap = workers.memory_cap(cfg, 1.0, [seen(400 * MB, base=200 * MB)])
    assert (
        cap is not None and cap.why == "memory 1 GiB less 200 MB beside them allows 2 workers at 400 MB each"
    )
    prior = workers.memory_cap(recipe.Workers(max_workers=4, memory_per_worker_mib=300), 1.0, [seen(None)])
    assert prior is not None and prior.why.endswith("allows 3 workers at 315 MB each (memory_per_worker_mib)")


CAPPED = workers.MemoryCap(workers=2, why="memory 1 GiB allows 2 workers at 400 MB each")
NONE_FIT = workers.MemoryCap(workers=1, why="memory 0.5 GiB allows 1 worker at 400 MB each")
ROOMY = workers.MemoryCap(workers=40, why="memory 16 GiB allows 40 workers at 400 MB each")
TWO_UP = recipe.Workers(min_workers=2, max_workers=4)


@pytest.mark.parametrize(
    ("cfg", "queue", "current", "cap", "want", "says"),
    [
        (CFG, 8.0, 2, CAPPED, 2, "asks 4; memory 1 GiB allows 2 workers at 400 MB each"),
        (CFG, 100.0, 1, CAPPED, 2, "memory 1 GiB allows 2"),
        (CFG, 2.0, 1, CAPPED, 1, None),
        (CFG, 8.0, 4, CAPPED, 2, "memory 1 GiB allows 2"),
        (CFG, None, 4, CAPPED, 2, "no value: keep the workers; memory 1 GiB allows 2"),
        (CFG, None, 2, CAPPED, 2, None),
        (CFG, 8.0, 2, ROOMY, 4, None),
        (TWO_UP, 8.0, 2, NONE_FIT, 2, "fewer than min_workers, keeping 2"),
        (TWO_UP, 0.0, 2, NONE_FIT, 2, "fewer than min_workers, keeping 2"),
    ],
    ids=[
        "the queue asks 4, memory allows 2: 2, and the reason says memory bound it",
        "a burst: memory bounds the step too",
        "an ask within the memory: memory is not mentioned",
        "above what memory allows: down to it at once",
        "no queue value above what memory allows: down to it at once",
        "no queue value within the memory: hold, memory not mentioned",
        "memory allowing more than max_workers binds nothing",
        "even min_workers do not fit: min_workers, and the reason says so",
        "even min_workers do not fit, at the floor anyway: still said",
    ],
)
def test_memory_bounds_the_worker_decision(
    cfg: recipe.Workers,
    queue: float | None,
    current: int,
    cap: workers.MemoryCap,
    want: int,
    says: str | None,
) -> None:
    d, _ = workers.decide(cfg, queue, current, cap=cap)
    assert d.desired == want
    if says is None:
        assert "memory" not in d.reason
    else:
        assert says in d.reason


@pytest.mark.parametrize(
    ("section", "resources", "rule"),
    [
        ({"memory_per_worker_mib": 0}, {}, "greater than 0"),
        ({"memory_per_worker_mib": -5}, {}, "greater than 0"),
        ({"min_workers": 3, "max_workers": 4, "memory_per_worker_mib": 1000}, {"memory_gib": 2},
         "min_workers (3) at this much must fit in resources.memory_gib (2 GiB = 2048 MiB)"),
    ],
    ids=["zero MiB a worker", "negative MiB a worker", "min_workers do not fit the replica's memory"],
)  # fmt: skip
def test_a_bad_memory_per_worker_names_the_field_value_and_rule(
    section: dict[str, float], resources: dict[str, float], rule: str
) -> None:
    data = {"service": {"name": "s"}, "resources": resources, "workers": {"max_workers": 2, **section}}
    with pytest.raises(errors.RecipeError) as info:
        recipe.parse(data)
    text = str(info.value)
    assert "workers.memory_per_worker_mib" in text and str(section["memory_per_worker_mib"]) in text
    assert rule in text
    fits = {**data, "workers": {"min_workers": 2, "max_workers": 4, "memory_per_worker_mib": 1024}}
    assert recipe.parse({**fits, "resources": {"memory_gib": 2}}).workers.memory_per_worker_mib == 1024  # type: ignore[union-attr]


def test_a_burst_bound_by_memory_names_memory_not_the_step_limit() -> None:
    d, _ = workers.decide(CFG, 100.0, 1, cap=CAPPED)
    assert d.desired == 2 and "moving at most" not in d.reason and "memory 1 GiB allows 2" in d.reason
    d, _ = workers.decide(CFG, 100.0, 1, cap=ROOMY)
    assert d.desired == 3 and "moving at most 2 per tick" in d.reason


@pytest.mark.parametrize(
    ("limit", "base", "per", "expect"),
    [
        pytest.param(1000.0, 200.0, 100.0, 8, id="what is left after the base, in whole workers"),
        pytest.param(1000.0, 250.0, 100.0, 7, id="a part of a worker does not count"),
        pytest.param(100.0, 200.0, 100.0, 0, id="a base over the limit: none, never negative"),
    ],
)
def test_workers_fitting_in_memory(limit: float, base: float, per: float, expect: int) -> None:
    assert workers.fitting(limit, base, per) == expect
