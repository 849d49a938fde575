"""The yardsticks: best fixed fleet, max fleet, the replayed oracle, fair starts, the scorecard."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from swell.clusters.sim import oracle as oracle_mod
from swell.runtime import baselines, scorecard, sim
from swell.workload import arrivals, spec
from tests.clusters.sim.simhelp import SURGE, sim_recipe, surge_recipe


@pytest.fixture(scope="module")
def surge() -> sim.Comparison:
    return sim.compare(surge_recipe(), spec.parse(SURGE), ["swell", "seed-hpa-latency"], seed=3)


def test_the_best_fixed_fleet_is_the_smallest_that_meets_the_slo(surge: sim.Comparison) -> None:
    rec, w = surge_recipe(), spec.parse(SURGE)
    h = sim.horizon_of(w, None)
    arr = arrivals.collect(w, seed=3, horizon_s=h)
    best = next(r for r in surge.baselines if r.policy.startswith("best fixed"))
    n = int(best.timeline.desired[0])
    assert best.meets_slo and (best.timeline.desired == n).all() and best.scale_events == 0
    assert n > 1  # one replica does not hold the surge
    one_less = sim.simulate(rec, arr, horizon_s=h, seed=3, schedule=lambda _t: n - 1,
                            options=sim.cluster_mod.Options(initial_replicas=n - 1))  # fmt: skip
    assert not one_less.meets_slo
    top = next(r for r in surge.baselines if r.policy.startswith("max fleet"))
    assert int(top.timeline.desired[0]) == rec.autoscaling.max_replicas
    assert top.gpu_hours >= best.gpu_hours


def test_the_replayed_oracle_meets_the_slo_and_costs_no_more_than_any_run_that_does(
    surge: sim.Comparison,
) -> None:
    o = surge.oracle
    assert o is not None and o.reachable and o.replayed is not None
    assert o.replayed.meets_slo
    assert o.gpu_hours == pytest.approx(o.replayed.gpu_hours)  # billed by the replay, whole nodes
    for run in (*surge.runs, *surge.baselines):
        if run.meets_slo:
            assert o.gpu_hours <= run.gpu_hours + 1e-9, run.policy
            assert run.oracle_ratio(o.gpu_hours) >= 1.0 - 1e-9  # type: ignore[operator]
        else:
            assert run.oracle_ratio(o.gpu_hours) is None, run.policy
    assert o.tried and all(0 <= a <= 1 for _, a, _ in o.tried)


def test_every_run_starts_from_the_same_fleet_what_the_oracle_had_before_a_node_could_arrive(
    surge: sim.Comparison,
) -> None:
    start = surge.initial_replicas
    o = surge.oracle
    assert o is not None and start is not None and start >= 1
    lead = surge_recipe().node_pool.provisioning.cold_replica_s
    assert start == max(o.replicas_at(t) for t in np.arange(0.0, lead, o.bucket_s))
    for run in surge.runs:
        assert run.timeline.ready[0] == start, run.policy
    assert surge.to_json()["initial_replicas"] == start


def test_a_cold_fleet_against_a_hot_start_is_warned_about() -> None:
    hot = "constant:rate=30,input=200,output=200"
    comp = sim.compare(surge_recipe(), spec.parse(hot), ["swell"], seed=1, duration_s=60.0,
                       options=sim.cluster_mod.Options(initial_replicas=1), with_oracle=False,
                       with_baselines=False)  # fmt: skip
    assert comp.initial_replicas == 1
    assert any("starts hot" in w for w in comp.warnings), comp.warnings
    auto = sim.compare(surge_recipe(), spec.parse(hot), ["swell"], seed=1, duration_s=60.0,
                       with_oracle=False, with_baselines=False)  # fmt: skip
    assert auto.initial_replicas is not None and auto.initial_replicas > 1
    assert not any("starts hot" in w for w in auto.warnings)


@pytest.mark.parametrize(("rate", "warned"), [(5.0, False), (60.0, True)],
                         ids=["two replicas of a node held whole serve a light start", "a start two cannot serve"])  # fmt: skip
def test_a_start_below_a_whole_node_is_hot_only_if_the_load_needs_more(rate: float, warned: bool) -> None:
    """On 8-GPU nodes the fair start is a whole node's 8 replicas, but a fleet of 2 that serves the
    opening load is not starting hot: the warning compares with the replicas the load needs."""
    from swell import recipe

    rec = recipe.parse({
        "service": {"name": "chat", "engine": "simulated-llm", "preset": "llama3-8b-h100"},
        "resources": {"gpus": 1},
        "autoscaling": {"min_replicas": 1, "max_replicas": 16, "signals": [
            {"name": "waiting", "kind": "gauge", "metric": "vllm:num_requests_waiting", "target": 2}]},
        "node_pool": {"shape": "BM.GPU.H100.8", "max_nodes": 2},
        "slo": {"ttft_s": 2.0, "e2e_s": 30.0, "percentile": 95},
    })  # fmt: skip
    comp = sim.compare(rec, spec.parse(f"poisson:rate={rate:g},input=200,output=200"), ["swell"], seed=1,
                       duration_s=60.0, options=sim.cluster_mod.Options(initial_replicas=2), with_oracle=False,
                       with_baselines=False)  # fmt: skip
    assert comp.initial_replicas == 2
    hot = [w for w in comp.warnings if "starts hot" in w]
    assert bool(hot) is warned, comp.warnings
    if warned:
        need = int(re.search(r"need (\d+) replicas", hot[0]).group(1))  # type: ignore[union-attr]
        assert 2 < need <= 16


def test_an_slo_no_fleet_within_the_bounds_meets_is_out_of_reach() -> None:
    comp = sim.compare(surge_recipe(max_replicas=1), spec.parse(SURGE), ["swell"], seed=3)
    assert [r.policy for r in comp.baselines] == ["max fleet (1)"]
    o = comp.oracle
    assert o is not None and not o.reachable and math.isnan(o.gpu_hours)
    assert o.note.startswith("out of reach:") and "% at the max fleet" in o.note
    assert all(r.oracle_ratio(comp.oracle_gpu_hours) is None for r in comp.runs)


def test_the_oracle_world_provisions_instantly() -> None:
    fast = baselines.instant(surge_recipe())
    p = fast.node_pool.provisioning
    assert p.cold_replica_s == 0 and fast.node_pool.unneeded_time_s == 0
    assert fast.autoscaling == surge_recipe().autoscaling


def test_fixed_fleets_are_whole_nodes_within_the_bounds() -> None:
    two = sim_recipe(node_pool={"shape": "x", "gpus_per_node": 2, "max_nodes": 4},
                     autoscaling={"min_replicas": 1, "max_replicas": 7})  # fmt: skip
    assert baselines.whole_node_fleets(two) == [2, 4, 6, 7]


def test_the_same_seed_gives_the_same_scorecard_and_missing_traces_skip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SWELL_TRACES", str(tmp_path / "nowhere"))
    suite = (
        scorecard.Entry(name="surge", workload=SURGE, about="a short surge"),
        scorecard.Entry(name="needs-a-trace", workload="azure-conv", about="x", traces=True),
    )
    monkeypatch.setattr(scorecard, "policies", lambda: ["swell"])

    def card() -> scorecard.Scorecard:
        return scorecard.run(suite=suite, base=surge_recipe(), seed=2)

    def numbers(c: scorecard.Scorecard) -> str:  # everything but how long the runs took
        return re.sub(r'"wall_s": [0-9.e-]+', "", json.dumps(c.to_json(), default=str))

    a, b = card(), card()
    assert numbers(a) == numbers(b)
    skipped = a.results[1]
    assert skipped.comparison is None and "SWELL_TRACES" in skipped.skipped
    names = {s.policy: s for s in a.standings()}
    assert set(names) == {"swell", "best fixed", "max fleet"}
    assert names["best fixed"].met == 1 and names["best fixed"].median_ratio is not None
    with pytest.raises(sim.errors.RecipeError, match="not a scorecard workload"):
        scorecard.run(suite=suite, only=["nope"])


def test_a_peak_before_any_new_node_could_serve_is_said_plainly() -> None:
    quick = sim.compare(surge_recipe(), spec.parse(SURGE), ["swell"], seed=1, with_oracle=False,
                        with_baselines=False)  # fmt: skip
    assert not any("busiest minute" in w for w in quick.warnings)  # nodes in about a minute
    slow = sim.compare(sim_recipe(), spec.parse(SURGE), ["swell"], seed=1, with_oracle=False,
                       with_baselines=False)  # fmt: skip  (seed 000's provisioning: ~16 min a node)
    assert any("busiest minute starts at minute" in w and "16 min" in w for w in slow.warnings), slow.warnings


def _schedule(needs: list[int]) -> oracle_mod.Oracle:
    return oracle_mod.Oracle(capacity_rps=1.0, bucket_s=60.0, t=np.arange(len(needs)) * 60.0,
                             replicas=np.array(needs, dtype=np.int64), gpu_hours=0.0)  # fmt: skip


@pytest.mark.parametrize(
    ("t", "lead_s", "start", "hold_s", "fleet"),
    [
        (0.0, 120.0, 2, 0.0, 2),  # the start, what the need asks at once
        (0.0, 120.0, 4, 0.0, 2),  # more than the need: given back at once
        (130.0, 120.0, 2, 0.0, 2),  # the step to 6 came at 120: asked then, it arrives at 240
        (130.0, 120.0, 4, 0.0, 2),  # the start's 4 went back at 0; the 6 is not here yet
        (130.0, 200.0, 4, 0.0, 4),  # the lead not yet passed since the start: what the run began with
        (250.0, 120.0, 2, 0.0, 6),  # asked at 130, here
        (300.0, 120.0, 2, 0.0, 2),  # the need fell at 300: given back at once
        (300.0, 120.0, 2, 120.0, 6),  # ... unless each ask is held: the peak of the last 2 minutes
        (420.0, 120.0, 2, 120.0, 2),  # the hold ends, the ask goes back to the need
    ],
    ids=lambda v: str(v),
)
def test_perfect_reaction_gets_what_it_asks_one_lead_time_later_and_gives_back_at_once(
    t: float, lead_s: float, start: int, hold_s: float, fleet: int
) -> None:
    plan = baselines.behind(_schedule([2, 2, 6, 6, 6, 2, 2, 2]), lead_s, start, hold_s)
    assert plan(t) == fleet


def test_perfect_reaction_reaches_a_surge_with_no_lead_and_not_one_that_is_over_before_its_lead(
    surge: sim.Comparison,
) -> None:
    rec = surge_recipe()
    o, start = surge.oracle, surge.initial_replicas
    assert o is not None and o.reachable and start is not None

    def react(lead_s: float) -> oracle_mod.Oracle:
        return baselines.search_reaction(
            sim.simulate, rec, surge.arrivals, surge.horizon_s, surge.capacity_rps, start=1, lead_s=lead_s,
            first=o.factor, seed=3, options=sim.cluster_mod.Options(initial_replicas=1),
        )  # fmt: skip

    quick = react(0.0)
    assert quick.reachable and quick.replayed is not None and quick.replayed.meets_slo
    assert quick.gpu_hours >= o.gpu_hours - 1e-9  # at least what the oracle spends: it also sees ahead
    late = react(10 * surge.horizon_s)  # nothing asked arrives before the run ends: one replica throughout
    assert not late.reachable and late.note.startswith("out of reach")
    assert late.replayed is not None and late.replayed.timeline.ready.max() <= 1


def test_scorecard_workloads_are_picked_by_name_and_a_missing_trace_directory_is_said(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert [e.name for e in scorecard.entries("diurnal, azure-conv")] == ["azure-conv", "diurnal"]  # suite order
    assert scorecard.entries(()) == list(scorecard.SUITE)
    with pytest.raises(sim.errors.RecipeError, match="not a scorecard workload; known: azure-conv"):
        scorecard.entries("azure-conv,nope")
    monkeypatch.setenv("SWELL_TRACES", str(tmp_path / "nowhere"))
    conv, diurnal = scorecard.entries("azure-conv,diurnal")
    assert "nowhere is not a directory" in scorecard.missing(conv)
    assert scorecard.missing(diurnal) == ""  # synthetic: needs no files


def test_the_scorecard_with_reaction_ranks_perfect_reaction_beside_the_policies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scorecard, "policies", lambda: ["swell"])
    suite = (scorecard.Entry(name="surge", workload=SURGE, about="a short surge"),)
    card = scorecard.run(suite=suite, base=surge_recipe(), seed=2, with_reaction=True)
    comp = card.results[0].comparison
    assert comp is not None
    react = [r for r in comp.baselines if r.policy.startswith("perfect reaction (")]
    assert len(react) == 1 and react[0].extra["about"].startswith("each minute's load known when it comes")
    names = {s.policy: s for s in card.standings()}
    assert names["perfect reaction"].ran == 1
    plain = scorecard.run(suite=suite, base=surge_recipe(), seed=2)
    assert plain.results[0].comparison is not None
    assert not any(r.policy.startswith("perfect reaction") for r in plain.results[0].comparison.baselines)
