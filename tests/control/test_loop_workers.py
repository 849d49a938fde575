"""The loop's worker step on a fake cluster with resizable workers: hold, bounds, step, no protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from swell import clock, recipe
from swell.control import fakes, loop
from swell.core import snapshot, world
from swell.core.policies import steps, workers
from tests.conftest import make_recipe

CFG = recipe.Workers(min_workers=1, max_workers=4, target_queue_per_worker=2)


def worker_recipe(cfg: recipe.Workers | None = CFG) -> recipe.Recipe:
    return make_recipe().model_copy(update={"workers": cfg})


class WorkerCluster(fakes.FakeCluster):
    """Replicas whose workers resize at once; each tick's queue per replica is scripted."""

    def __init__(self, queues: Sequence[Sequence[float | None]], start: Sequence[int]) -> None:
        super().__init__(current=len(start))
        self.queues = list(queues)
        self.counts = {f"r{i}": n for i, n in enumerate(start)}
        self.observed = 0
        self.set_calls: list[tuple[str, int]] = []

    async def observe_workers(self) -> list[workers.Observed]:
        qs = self.queues[min(self.observed, len(self.queues) - 1)]
        self.observed += 1
        return [workers.Observed(replica=name, workers=n, queue=q) for (name, n), q in zip(self.counts.items(), qs, strict=True)]  # fmt: skip

    async def set_workers(self, replica: str, count: int) -> None:
        self.set_calls.append((replica, count))
        self.counts[replica] = count


async def run_ticks(rec: recipe.Recipe, cluster: fakes.FakeCluster, n: int) -> list[int | None]:
    ctl = loop.Controller(rec)
    source = fakes.FakeSource([{"latency": 100}])
    clk = clock.ManualClock(0.0)
    out = []
    for _ in range(n):
        d = (await ctl.tick(cluster, source, clk)).decision
        out.append(None if d.workers is None else d.workers.desired)
        clk.advance(15)
    return out


def test_the_fake_implements_the_protocol_and_the_plain_fake_does_not() -> None:
    assert isinstance(WorkerCluster([[0.0]], [1]), world.WorkerControl)
    assert not isinstance(fakes.FakeCluster(current=1), world.WorkerControl)


@pytest.mark.parametrize(
    ("queues", "start", "want"),
    [
        ([[None, None]], [2, 2], [2, 2, 2]),
        ([[100.0, 100.0]], [1, 1], [3, 4, 4]),
        ([[0.0, 0.0]], [4, 4], [2, 1, 1]),
        ([[6.0, None], [None, None], [4.0, 2.0]], [1, 1], [3, 3, 2]),
        ([[8.0, 0.0]], [2, 2], [2, 2, 2]),
    ],
    ids=[
        "no queue value on any replica: hold",
        "a large queue: up 2 per tick, then held at max_workers",
        "idle: down 2 per tick, then held at min_workers",
        "one replica without a value: the average of the others; none: hold",
        "the queue is averaged over the ready replicas",
    ],
)
async def test_the_worker_step_follows_the_queue_per_replica(
    queues: list[list[float | None]], start: list[int], want: list[int]
) -> None:
    cluster = WorkerCluster(queues, start)
    assert await run_ticks(worker_recipe(), cluster, len(want)) == want
    assert cluster.counts == dict.fromkeys(cluster.counts, want[-1])


async def test_only_replicas_off_the_decision_are_resized() -> None:
    # a new replica starts at the floor: it does not pull the count down, it is brought up to it
    cluster = WorkerCluster([[6.0, 6.0]], [3, 1])
    assert await run_ticks(worker_recipe(), cluster, 1) == [3]
    assert cluster.set_calls == [("r1", 3)]


async def test_the_decision_and_its_history_entry_carry_the_workers() -> None:
    ctl = loop.Controller(worker_recipe())
    cluster = WorkerCluster([[5.0]], [1])
    t = await ctl.tick(cluster, fakes.FakeSource([{"latency": 100}]), clock.ManualClock())
    d = t.decision
    assert t.workers_set == tuple((o.replica, 3) for o in (t.state.workers or ()) if o.workers != 3)
    assert d.workers is not None and (d.workers.current, d.workers.desired) == (1, 3)
    entry = ctl.history.last()
    assert entry is not None
    got = entry.to_json()["workers"]
    assert (got["current"], got["desired"]) == (1, 3) and "queue 5 per replica" in got["reason"]


async def test_a_cluster_without_worker_control_is_unaffected() -> None:
    cluster = fakes.FakeCluster(current=2)
    assert await run_ticks(worker_recipe(), cluster, 2) == [None, None]
    ctl = loop.Controller(worker_recipe())
    await ctl.tick(cluster, fakes.FakeSource([{"latency": 100}]), clock.ManualClock())
    entry = ctl.history.last()
    assert entry is not None and "workers" not in entry.to_json()


async def test_a_recipe_without_workers_does_not_touch_them() -> None:
    cluster = WorkerCluster([[100.0]], [1])
    assert await run_ticks(worker_recipe(None), cluster, 2) == [None, None]
    assert cluster.observed == 0 and cluster.set_calls == []


def test_step_decides_workers_from_the_cluster_state_without_io() -> None:
    ctl = loop.Controller(worker_recipe())
    obs = (workers.Observed(replica="a", workers=2, queue=7.0),)
    reps = (snapshot.Replica(name="a", state="ready"),)
    d = ctl.step(0.0, world.ClusterState(current=1, replicas=reps, workers=obs), {})
    assert d.workers is not None and d.workers.desired == 4
    assert world.worker_changes(world.ClusterState(current=1, workers=obs), d) == [("a", 4)]
    plain = ctl.step(15.0, world.ClusterState(current=1, replicas=reps), {})
    assert plain.workers is None


def test_the_worker_memory_is_part_of_the_persisted_policy_state() -> None:
    ctl = loop.Controller(worker_recipe())
    reps = (snapshot.Replica(name="a", state="ready"),)
    obs = (workers.Observed(replica="a", workers=1, queue=12.0),)
    d = ctl.step(0.0, world.ClusterState(current=1, replicas=reps, workers=obs), {})
    assert d.workers is not None and ctl.state.workers == d.workers.desired and ctl.state.worker_asks
    back = steps.State.from_json(ctl.state.to_json())  # what Kubernetes keeps in the CR status
    assert back == ctl.state
    again = loop.Controller(worker_recipe(), state=back)  # a restarted controller remembers
    assert again.state.workers == d.workers.desired and again.state.worker_asks == ctl.state.worker_asks


def memory_recipe(memory_gib: float, cfg: recipe.Workers = CFG) -> recipe.Recipe:
    rec = worker_recipe(cfg)
    return rec.model_copy(update={"resources": rec.resources.model_copy(update={"memory_gib": memory_gib})})


@pytest.mark.parametrize(
    ("memory_gib", "latency", "want_workers", "want_replicas", "memory_said"),
    [
        (1.0, 300.0, 2, 3, True),
        (8.0, 300.0, 4, 3, False),
        (1.0, 50.0, 2, 1, True),
    ],
    ids=[
        "1 GiB holds 2 workers of 400 MB: the queue's 4 are capped at 2 and the replicas grow",
        "8 GiB holds the 4 the queue asks for",
        "the cap binds whatever the replica signal says",
    ],
)
def test_step_caps_the_workers_at_what_the_replica_memory_holds(
    memory_gib: float, latency: float, want_workers: int, want_replicas: int, memory_said: bool
) -> None:
    ctl = loop.Controller(memory_recipe(memory_gib))
    reps = (snapshot.Replica(name="a", state="ready"),)
    obs = (
        workers.Observed(
            replica="a", workers=2, queue=8.0, worker_memory_bytes=400e6, base_memory_bytes=None
        ),
    )
    state = world.ClusterState(current=1, replicas=reps, workers=obs)
    d = ctl.step(0.0, state, {"latency": snapshot.Reading(value=latency)})
    assert d.workers is not None and d.workers.desired == want_workers
    assert d.desired == want_replicas
    assert ("memory 1 GiB allows 2 workers at 400 MB each" in d.workers.reason) is memory_said
    assert world.worker_changes(state, d) == ([] if want_workers == 2 else [("a", want_workers)])


async def test_the_loop_brings_workers_above_the_memory_cap_down_to_it() -> None:
    # 4 workers running when the first measurement arrives: memory holds 2 of them
    class Measured(WorkerCluster):
        async def observe_workers(self) -> list[workers.Observed]:
            got = await super().observe_workers()
            return [replace(o, worker_memory_bytes=400e6) for o in got]

    cluster = Measured([[8.0]], [4])
    assert await run_ticks(memory_recipe(1.0), cluster, 2) == [2, 2]
    assert cluster.set_calls == [("r0", 2)]
