"""Suggested schedules: the lead-bound episodes of a run, windows over them, checked by a replay."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from swell import recipe
from swell.clusters.sim import outcomes
from swell.core import leadtime
from swell.runtime import sim, suggest
from swell.workload import arrivals, spec
from tests.clusters.sim.simhelp import SURGE, surge_recipe

START = 1  # the surge's fair start: what its first minute needs


def _compare(rec: recipe.Recipe, policies: list[str], **kw: object) -> sim.Comparison:
    opts = dataclasses.replace(sim.DEFAULT_OPTIONS, initial_replicas=START)
    return sim.compare(rec, spec.parse(SURGE), policies, seed=0, options=opts, with_oracle=False,
                       with_baselines=False, **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture(scope="module")
def suggested() -> sim.Comparison:
    return _compare(surge_recipe(), ["swell", "reactive"], with_suggestions=True)


def _never(*_: object, **__: object) -> outcomes.Run:
    raise AssertionError("no replay was expected")


@pytest.mark.parametrize(
    ("t", "expr"),
    [
        (0.0, "0 0 1 1 *"),
        (47 * 60.0, "47 0 1 1 *"),
        (47 * 60.0 + 59.0, "47 0 1 1 *"),
        (86400.0 + 2 * 3600.0 + 5 * 60.0, "5 2 2 1 *"),
        (-300.0, "0 0 1 1 *"),
    ],
    ids=[
        "the-start",
        "a-minute",
        "within-a-minute-rounds-down",
        "the-next-day",
        "before-the-start-is-the-start",
    ],
)
def test_cron_at_names_the_minute_on_the_simulators_clock(t: float, expr: str) -> None:
    assert suggest.cron_at(t) == expr


def test_a_surge_faster_than_the_lead_is_one_episode_holding_the_misses(suggested: sim.Comparison) -> None:
    run = suggested.runs[0]
    eps = suggest.episodes(run)
    missed = run.summary.missed
    assert missed == int((~run.requests.met(run.slo)).sum()) > 0
    assert not run.meets_slo and len(eps) == 1
    (ep,) = eps
    assert 60.0 <= ep.start_s < ep.end_s <= 6 * 60.0  # the surge starts at 60 s
    assert ep.misses > 0.9 * missed and ep.asked > ep.ready


@pytest.mark.parametrize("policy", ["swell", "reactive"])
def test_the_suggested_windows_meet_the_slo_in_their_replay(suggested: sim.Comparison, policy: str) -> None:
    (x,) = [s for s in suggested.suggestions if s.policy == policy]
    assert x.after is not None and x.after.meets_slo and not x.before.meets_slo
    assert x.windows and all(w.min_replicas is not None for w in x.windows)
    for e, w in zip(x.episodes, x.windows, strict=True):
        assert e.ready < (w.min_replicas or 0) <= max(e.asked, e.ready + 1)
    # bisection: the first replay at what the policy asked for, later ones lower; the kept one met
    floors = [f for f, _, _ in x.tried]
    assert floors[0] == tuple(max(e.asked, e.ready + 1) for e in x.episodes)
    assert any(f < floors[0] for f in floors[1:])
    assert (
        dict((f, a) for f, a, _ in x.tried)[tuple(w.min_replicas for w in x.windows)]
        == x.after.summary.attainment
    )


def test_a_planner_window_opens_with_its_episode_a_reactive_one_a_lead_time_earlier(
    suggested: sim.Comparison,
) -> None:
    by = {s.policy: s for s in suggested.suggestions}
    lead = leadtime.LeadTimes.of(surge_recipe().node_pool).horizon_s
    assert by["swell"].opens_early_s == 0.0 and by["reactive"].opens_early_s == lead
    for s in by.values():
        for e, w in zip(s.episodes, s.windows, strict=True):
            assert w.start == suggest.cron_at(e.start_s - s.opens_early_s) and w.end == suggest.cron_at(
                e.end_s
            )


def test_the_printed_yaml_pasted_into_the_recipe_reproduces_the_replay(suggested: sim.Comparison) -> None:
    x = next(s for s in suggested.suggestions if s.policy == "swell")
    data = surge_recipe().model_dump(by_alias=True) | yaml.safe_load(x.yaml())
    again = _compare(recipe.Recipe.model_validate(data), ["swell"]).runs[0]
    assert x.after is not None
    assert again.summary.attainment == x.after.summary.attainment and again.gpu_hours == x.after.gpu_hours
    assert again.meets_slo and "schedules:" in "\n".join(x.lines())


def test_the_windows_are_checked_on_other_arrivals_of_the_workload(suggested: sim.Comparison) -> None:
    """The arrivals are drawn from the seed: the windows kept also meet the SLO on the next seed's
    (the lowest floors that do), said in the lines and the JSON."""
    for x in suggested.suggestions:
        assert x.checked is not None and x.checked_seed == 1 and x.checked.meets_slo
        assert x.to_json()["checked"]["seed"] == 1 and x.to_json()["checked"]["meets_slo"]
        assert any("on other arrivals of the workload (seed 1)" in line for line in x.lines())


def test_a_trace_brings_the_same_arrivals_on_every_seed_so_nothing_is_checked(tmp_path: Path) -> None:
    drawn = arrivals.collect(spec.parse(SURGE), seed=0, horizon_s=540.0)
    trace = tmp_path / "surge.csv"
    rows = (f"{t:.3f},{i},{o}" for t, i, o in zip(drawn.t, drawn.input_tokens, drawn.output_tokens, strict=True))
    trace.write_text("t,input_tokens,output_tokens\n" + "\n".join(rows) + "\n")
    opts = dataclasses.replace(sim.DEFAULT_OPTIONS, initial_replicas=START)
    comp = sim.compare(surge_recipe(), spec.parse(f"trace:{trace}"), ["swell"], seed=0, duration_s=540.0,
                       options=opts, with_oracle=False, with_baselines=False, with_suggestions=True)  # fmt: skip
    (x,) = comp.suggestions
    assert x.after is not None and x.after.meets_slo and x.checked is None
    assert not any("other arrivals" in line for line in x.lines())


def test_the_comparison_json_carries_the_suggestions(suggested: sim.Comparison) -> None:
    data = suggested.to_json()["suggested_schedules"]
    assert isinstance(data, list) and [d["policy"] for d in data] == ["swell", "reactive"]
    assert all(d["after"]["meets_slo"] and d["schedules"][0]["min_replicas"] >= 1 for d in data)


def test_without_suggestions_a_warning_names_the_lead_bound_misses() -> None:
    comp = _compare(surge_recipe(), ["swell"])
    assert comp.suggestions == ()
    (line,) = [w for w in comp.warnings if "on their way" in w]
    assert line.startswith("swell: ") and "--suggest-schedule" in line and "minutes 1-" in line


def test_a_run_that_meets_the_slo_gets_no_schedule_and_no_replay(suggested: sim.Comparison) -> None:
    run = dataclasses.replace(
        suggested.runs[0], summary=dataclasses.replace(suggested.runs[0].summary, attainment=1.0)
    )
    x = suggest.suggest(_never, surge_recipe(), suggested.arrivals, run, policy="swell", horizon_s=600.0, seed=0,
                        options=sim.DEFAULT_OPTIONS)  # fmt: skip
    assert x.windows == () and x.after is None and "no schedule needed" in x.note
    assert suggest.lead_bound_note("swell", run) == ""


def test_misses_with_capacity_ready_are_no_case_for_a_schedule() -> None:
    """One replica at most: the policy never asks for more than is ready, so no episode is lead-bound."""
    comp = _compare(surge_recipe(max_replicas=1), ["swell"])
    run = comp.runs[0]
    assert not run.meets_slo and suggest.episodes(run) == []
    x = suggest.suggest(_never, surge_recipe(max_replicas=1), comp.arrivals, run, policy="swell",
                        horizon_s=comp.horizon_s, seed=0, options=sim.DEFAULT_OPTIONS)  # fmt: skip
    assert x.windows == () and "target_utilization" in x.note
    assert not [w for w in comp.warnings if "on their way" in w]


def test_replicas_pending_where_no_node_can_come_are_no_lead_bound_episode() -> None:
    """A CPU recipe on this machine asking for more replicas than its slots: the ones over wait
    Pending for good. Its misses are capacity, not lead time: no episode, no note blaming it."""
    rec = recipe.parse({
        "service": {"name": "m", "engine": "simulated-llm", "preset": "tiny-cpu"},
        "resources": {"gpus": 0},
        "autoscaling": {"policy": "reactive", "min_replicas": 1, "max_replicas": 6, "polling_interval_s": 1,
                        "signals": [{"name": "running", "kind": "gauge", "metric": "vllm:num_requests_running",
                                     "aggregate": "sum", "target": 2, "target_type": "AverageValue"}]},
        "slo": {"ttft_s": 1.0, "e2e_s": 5.0, "percentile": 95},
        "local": {"cpu_slots": 2},
    })  # fmt: skip
    opts = dataclasses.replace(sim.DEFAULT_OPTIONS, initial_replicas=2)
    run = sim.compare(rec, spec.parse("poisson:rate=30"), ["recipe"], seed=0, duration_s=120.0, options=opts,
                      with_oracle=False, with_baselines=False).runs[0]  # fmt: skip
    assert not run.meets_slo and max(run.timeline.ready) == 2  # the machine's two slots, no more
    assert max(run.timeline.desired) > 2 and max(run.timeline.pending) > 0  # asked for more: Pending
    assert suggest.episodes(run) == [] and suggest.lead_bound_note("recipe", run) == ""
