"""`swell demo` sized to the machine: replicas and slots from the CPUs, the load from one replica,
and the summary's verdict (scale-ups and -downs, whether the machine was the limit)."""

from __future__ import annotations

import os

import pytest

from swell.cli import demo, demo_report
from swell.cli import up as up_cmd
from swell.control import history
from swell.core import decision, snapshot
from swell.loadgen import runner, summary
from swell.runtime import local


@pytest.mark.parametrize(
    ("cpus", "replicas"),
    [
        pytest.param(1, 2, id="one core: still two replicas, so a surge can need more than one"),
        pytest.param(2, 2, id="two cores: two replicas, two slots"),
        pytest.param(3, 3, id="three cores: three"),
        pytest.param(64, 4, id="many cores: the recipe's max_replicas"),
    ],
)
def test_replicas_and_slots_follow_the_cpus(cpus: int, replicas: int) -> None:
    rec = demo.sized(up_cmd.load_recipe(None), cpus)
    assert (rec.autoscaling.max_replicas, rec.local.cpu_slots) == (replicas, replicas)


def test_usable_cpus_is_the_affinity_mask_and_free_ones_at_least_one() -> None:
    assert demo.usable_cpus() == len(os.sched_getaffinity(0))
    assert 1.0 <= demo.free_cpus(demo.usable_cpus()) <= demo.usable_cpus()


def test_the_surge_needs_more_than_one_replica_and_fits_the_machine() -> None:
    plan = demo.plan_load(2.0, 2, base_rps=None, surge=None, free=2.0)
    assert plan.base_rps < 2.0 * 0.5  # the quiet load: one replica, far from full
    # two free cores, half of one kept for the demo itself: 70 % of 1.5 replicas flat out
    assert plan.peak_rps == pytest.approx(0.7 * 1.5 * 2.0)
    assert plan.peak_rps > 2.0 * 1.5 / 2  # more than one replica's concurrency target (1.5 of its 2 slots)
    busy = demo.plan_load(2.0, 2, base_rps=None, surge=None, free=1.0)  # one core free: the floor
    assert busy.peak_rps == pytest.approx(0.7 * 2.0) and busy.peak_rps < plan.peak_rps
    assert demo.plan_load(2.0, 2, base_rps=0.5, surge=3.0).peak_rps == 1.5  # the user's numbers win


def test_the_hpa_to_compare_with_is_seed_000s_rule() -> None:
    rec = demo.hpa_latency(up_cmd.load_recipe(None))
    a = rec.autoscaling
    assert (a.policy, a.polling_interval_s, a.signals[0].kind, a.signals[0].target) == (
        "hpa",
        15.0,
        "ratio",
        2.0,
    )


def _entry(t: float, current: int, desired: int, bound: str) -> history.Entry:
    d = decision.Decision(t=t, policy="swell", current=current, desired=desired, bound_by=bound, reason="r")
    return history.Entry(decision=d, snapshot=snapshot.Snapshot(now=t, current=current))


def _outcome(entries: list[history.Entry], pending: bool = False) -> demo_report.Outcome:
    s = summary.summarize([], 10.0, summary.Slo(e2e_s=4.0))
    result = runner.Result(
        options=None, description="", url="", started_at=0.0, records=(), summary=s, interrupted=False
    )  # type: ignore[arg-type]
    rec = demo.sized(up_cmd.load_recipe(None), 2)
    line = (local.Point(t=0.0, target=1, ready=1, starting=0, pending=0),)
    return demo_report.Outcome(
        label="swell",
        recipe=rec,
        result=result,
        timeline=line,
        decisions=tuple(entries),
        pending_for_slots=pending,
    )


def test_the_verdict_counts_scale_ups_and_downs_and_says_when_the_machine_was_the_limit() -> None:
    fine = demo_report.verdict(_outcome([_entry(1, 1, 2, "panic"), _entry(9, 2, 1, "metrics")]))
    assert (fine.scale_ups, fine.scale_downs, fine.machine_limited) == (1, 1, False)
    assert "at most 2 of the 2" in fine.limit_text, "panic's 2 counts though no signal proposed it"
    capped = demo_report.verdict(_outcome([_entry(1, 1, 2, "panic"), _entry(2, 2, 2, "max")]))
    assert capped.machine_limited and "more than the 2 replicas" in capped.limit_text
    assert demo_report.verdict(_outcome([], pending=True)).machine_limited


def test_a_demo_that_never_scaled_up_says_why_and_what_to_change() -> None:
    plan = demo.LoadPlan(base_rps=0.5, peak_rps=1.2, capacity_rps=2.0)
    quiet = demo.idle_note(_outcome([_entry(1, 1, 1, "metrics")]), plan)
    assert "swell never scaled up" in quiet and "peak 1.20 req/s" in quiet and "--surge" in quiet
    assert demo.idle_note(_outcome([_entry(1, 1, 2, "metrics")]), plan) == ""
