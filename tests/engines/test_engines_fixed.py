"""Unit tests of the classic-model (N workers, sampled service time) replica model."""

from __future__ import annotations

import random
import statistics

import pytest

from swell.engines import fixed


def drain(s: fixed.Service) -> list[fixed.Finished]:
    out: list[fixed.Finished] = []
    while (t := s.next_event_time()) is not None:
        out += s.advance(t)
    return out


DET = fixed.ServicePreset(name="det", mean_s=1.0, cv=0.0, workers=1)


def test_one_worker_serves_in_fifo_order() -> None:
    s = fixed.Service(DET, random.Random(0))
    for i in range(3):
        s.submit(0.0, str(i))
    assert s.state().busy == 1 and s.state().queued == 2
    done = drain(s)
    assert [(d.request_id, d.time, d.queue_time) for d in done] == [
        ("0", 1.0, 0.0),
        ("1", 2.0, 1.0),
        ("2", 3.0, 2.0),
    ]
    assert s.busy_seconds(3.0) == pytest.approx(3.0)
    assert s.stats.requests == 3 and s.stats.latency.count == 3


def test_workers_serve_in_parallel_and_can_be_resized() -> None:
    preset = fixed.ServicePreset(name="p", mean_s=1.0, cv=0.0, workers=2)
    s = fixed.Service(preset, random.Random(0))
    for i in range(4):
        s.submit(0.0, str(i))
    assert s.state().busy == 2
    s.set_workers(0.5, 4)
    assert s.state().busy == 4 and s.workers == 4
    done = drain(s)
    assert sorted(d.time for d in done) == [1.0, 1.0, 1.5, 1.5]
    s.set_workers(2.0, 1)
    for i in range(2):
        s.submit(2.0, f"late{i}")
    assert max(d.time for d in drain(s)) == pytest.approx(4.0)


def test_full_queue_rejects() -> None:
    preset = fixed.ServicePreset(name="q", mean_s=1.0, cv=0.0, workers=1, queue_limit=1)
    s = fixed.Service(preset, random.Random(0))
    assert s.submit(0.0, "a") and s.submit(0.0, "b")
    assert not s.submit(0.0, "c")
    assert s.stats.rejected == 1


def test_service_times_follow_mean_and_cv_and_the_seed() -> None:
    preset = fixed.ServicePreset(name="ln", mean_s=0.2, cv=0.5)
    rng = random.Random(42)
    xs = [preset.sample(rng) for _ in range(20000)]
    assert statistics.fmean(xs) == pytest.approx(0.2, rel=0.03)
    assert statistics.pstdev(xs) / statistics.fmean(xs) == pytest.approx(0.5, rel=0.08)

    def run(seed: int) -> list[float]:
        s = fixed.Service(preset, random.Random(seed))
        for i in range(50):
            s.submit(i * 0.1, str(i))
        return [d.time for d in drain(s)]

    assert run(1) == run(1) and run(1) != run(2)


def test_abort_and_bad_input() -> None:
    s = fixed.Service(DET, random.Random(0))
    s.submit(0.0, "a")
    s.submit(0.0, "b")
    assert s.abort(0.5, "a") and s.abort(0.5, "b") and not s.abort(0.5, "a")
    done = s.advance(0.5)
    assert {d.reason for d in done} == {"abort"} and s.next_event_time() is None
    assert s.stats.aborted == 2
    with pytest.raises(ValueError, match="backwards"):
        s.advance(0.1)
    with pytest.raises(ValueError, match="mean_s"):
        fixed.ServicePreset(name="bad", mean_s=0.0)


def test_latency_grows_with_load() -> None:
    preset = fixed.PRESETS["bert-base-cpu"]

    def mean_latency(rate: float) -> float:
        rng = random.Random(5)
        s = fixed.Service(preset, random.Random(6))
        t, out = 0.0, []
        for i in range(400):
            t += rng.expovariate(rate)
            out += s.advance(t)
            s.submit(t, str(i))
        out += drain(s)
        return statistics.fmean(d.latency for d in out)

    lat = [mean_latency(r) for r in (5.0, 20.0, 35.0)]
    assert lat == sorted(lat) and lat[-1] > 1.5 * lat[0]
