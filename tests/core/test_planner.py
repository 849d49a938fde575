"""The planner: capacity model, credits, node-aware scale-down, lead-time learning, trajectories.

A classic profile of 0.1 s per request (10 req/s per replica) keeps the arithmetic visible; the
node pool's provisioning makes H = 100 s (node) + 20 s (replica) = 120 s.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from swell import recipe
from swell.core import capacity, forecast, leadtime, load, nodes, signals, snapshot
from swell.core.policies import plan_state, planner, steps

PROFILE = capacity.Profile(kind="classic", source="test", service_s=0.1)
WAITING = {"name": "waiting", "kind": "gauge", "metric": "w", "aggregate": "sum", "target": 8,
           "target_type": "AverageValue"}  # fmt: skip
TTFT = {"name": "ttft_p90", "kind": "histogram_quantile", "metric": "vllm:time_to_first_token_seconds",
        "quantile": 0.9, "target": 1.0, "target_type": "Value"}  # fmt: skip


def rec(gpus_per_node: int = 2, max_replicas: int = 20, **extra: Any) -> recipe.Recipe:
    prov = {"node_boot_s": 100, "kubelet_s": 0, "gpu_driver_s": 0, "image_size_gb": 0, "model_load_s": 20}
    return recipe.parse(
        {
            "service": {"name": "svc"},
            "resources": {"gpus": 1},
            "autoscaling": {
                "policy": "planner",
                "min_replicas": 1,
                "max_replicas": max_replicas,
                "signals": [WAITING, TTFT],
            },
            "node_pool": {
                "shape": "custom",
                "gpus_per_node": gpus_per_node,
                "max_nodes": 20,
                "provisioning": prov,
            },
            "slo": {"ttft_s": 2.0},
        }
        | extra
    )


def reps(*layout: str) -> tuple[snapshot.Replica, ...]:
    """'ready@n1' / 'starting@n2' / 'pending' -> replicas named r0, r1, ... in that order."""
    out = []
    for i, spec in enumerate(layout):
        state, _, node = spec.partition("@")
        at = float(i) if node else None
        out.append(snapshot.Replica(name=f"r{i}", state=state, node=node, scheduled_at=at))  # type: ignore[arg-type]
    return tuple(out)


def snap(t: float, replicas: tuple[snapshot.Replica, ...], rps: float | None, queued: float = 0.0,
         current: int | None = None, profile: capacity.Profile | None = PROFILE, **more: float) -> snapshot.Snapshot:  # fmt: skip
    sig: dict[str, snapshot.Reading] = {
        load.REQUESTS: snapshot.Reading.of(rps),
        load.WAITING: snapshot.Reading.of(queued),
    }
    sig |= {k: snapshot.Reading.of(v) for k, v in more.items()}
    alive = [r for r in replicas if r.state != "terminating"]
    return snapshot.Snapshot(now=t, current=len(alive) if current is None else current, replicas=replicas,
                             signals=sig, capacity=profile)  # fmt: skip


# ---- the capacity model -----------------------------------------------------------------------

LLM = capacity.Profile(kind="llm", decode_per_seq_s=0.01, max_num_seqs=1000, kv_cache_tokens=0)


@pytest.mark.parametrize(
    ("profile", "mix", "e2e", "expect"),
    [
        pytest.param(PROFILE, capacity.Mix(input_tokens=1, output_tokens=1), None, 10.0,
                     id="classic: 0.1 s a request on one worker serves 10 req/s"),
        pytest.param(capacity.Profile(kind="classic", service_s=0.1, workers=4),
                     capacity.Mix(input_tokens=1, output_tokens=1), None, 40.0, id="classic: four workers serve 4x"),
        pytest.param(LLM, capacity.Mix(input_tokens=10, output_tokens=10), None, 10.0,
                     id="llm: 10 output tokens at 10 ms each per sequence: 10 req/s"),
        pytest.param(capacity.Profile(kind="llm", decode_per_seq_s=0.01, prefill_per_token_s=0.001, max_num_seqs=1000),
                     capacity.Mix(input_tokens=100, output_tokens=10), None, 5.0,
                     id="llm: 100 prompt tokens at 1 ms add 0.1 s a request: 5 req/s"),
    ],
)  # fmt: skip
def test_requests_per_second_one_replica_sustains(profile: capacity.Profile, mix: capacity.Mix, e2e: float | None,
                                                  expect: float) -> None:  # fmt: skip
    assert capacity.rps(profile, mix, e2e, target=1.0) == pytest.approx(expect)


@pytest.mark.parametrize(
    ("profile", "mix", "e2e", "expect"),
    [
        pytest.param(capacity.Profile(kind="llm", decode_base_s=0.01, max_num_seqs=64), capacity.Mix(
            input_tokens=10, output_tokens=10), None, 64.0, id="batch: max_num_seqs"),
        pytest.param(capacity.Profile(kind="llm", decode_base_s=0.01, max_num_seqs=256, kv_cache_tokens=10000),
                     capacity.Mix(input_tokens=80, output_tokens=40), None, 90.0,
                     id="batch: 90 % of the KV cache over 100 tokens of context a sequence"),
        pytest.param(capacity.Profile(kind="llm", decode_base_s=0.01, decode_per_seq_s=0.001, max_num_seqs=256),
                     capacity.Mix(input_tokens=10, output_tokens=100), 5.0, 30.0,
                     id="batch: an e2e SLO of 5 s allows 40 ms steps for 100 tokens: 30 sequences"),
    ],
)  # fmt: skip
def test_batch_limit(profile: capacity.Profile, mix: capacity.Mix, e2e: float | None, expect: float) -> None:
    assert capacity.batch_limit(profile, mix, e2e) == pytest.approx(expect)


@pytest.mark.parametrize(
    ("profile", "e2e", "warned"),
    [
        pytest.param(capacity.Profile(kind="llm", decode_base_s=0.03, decode_per_seq_s=0.0006, max_num_seqs=256), 5.0,
                     True, id="250 answer tokens at 30 ms a step take 7.5 s alone: an e2e SLO of 5 s plans one at a time"),
        pytest.param(capacity.Profile(kind="llm", decode_base_s=0.03, decode_per_seq_s=0.0006, max_num_seqs=256), 60.0,
                     False, id="an e2e SLO of 60 s leaves room for a batch"),
        pytest.param(capacity.Profile(kind="llm", decode_base_s=0.03, max_num_seqs=256), None, False,
                     id="no e2e SLO: nothing to reach"),
        pytest.param(PROFILE, 0.01, False, id="a classic model has no batch to limit"),
    ],
)  # fmt: skip
def test_an_e2e_slo_the_mean_request_cannot_meet_alone_is_said(
    profile: capacity.Profile, e2e: float | None, warned: bool
) -> None:
    why = capacity.e2e_out_of_reach(profile, e2e, 50.0)
    assert bool(why) is warned
    if warned:
        assert "one request at a time" in why and "slo.e2e_s 5 s" in why and "50 % SLO" in why
        assert capacity.batch_limit(profile, capacity.mix_of(profile, None, None, None), e2e) == 1.0


def test_prefill_attention_counts_the_spread_of_prompt_lengths() -> None:
    """The attention term grows with n², so a mean prompt of n costs PROMPT_SPREAD·n²/2 pairs."""
    base = capacity.Profile(kind="llm", prefill_per_token_s=0.001, max_num_seqs=1000)
    attn = replace(base, prefill_per_token_pair_s=1e-6)
    mix = capacity.Mix(input_tokens=1000, output_tokens=1)
    extra = capacity.seconds_per_request(attn, mix) - capacity.seconds_per_request(base, mix)
    assert extra == pytest.approx(1e-6 * capacity.PROMPT_SPREAD * 1000 * 1000 / 2)
    assert capacity.rps(attn, mix) < capacity.rps(base, mix)


def test_an_llm_is_planned_below_its_full_batch_throughput_a_classic_model_at_its_workers_rate() -> None:
    mix = capacity.Mix(input_tokens=10, output_tokens=10)
    assert capacity.rps(LLM, mix) == pytest.approx(capacity.UTILIZATION * capacity.rps(LLM, mix, target=1.0))
    assert capacity.UTILIZATION < 1.0
    assert capacity.rps(PROFILE, mix) == pytest.approx(10.0)


CLASSIC = capacity.Profile(kind="classic", service_s=0.1, workers=1)


@pytest.mark.parametrize(
    ("profile", "target", "planned", "after_saturation"),
    [
        pytest.param(LLM, None, capacity.UTILIZATION, capacity.SATURATED_SHARE, id="an LLM by default"),
        pytest.param(CLASSIC, None, 1.0, capacity.SATURATED_SHARE, id="a classic model by default: its workers' rate"),
        pytest.param(LLM, capacity.UTILIZATION / 2, capacity.UTILIZATION / 2, capacity.SATURATED_SHARE / 2,
                     id="half the default target: half the share after a burst too"),
        pytest.param(LLM, 0.9, 0.9, 1.0, id="above the default: at most the full throughput seen saturated"),
    ],
)  # fmt: skip
def test_the_recipes_target_utilization(
    profile: capacity.Profile, target: float | None, planned: float, after_saturation: float
) -> None:
    assert capacity.utilization(profile, target) == pytest.approx(planned)
    assert capacity.saturated_share(profile, target) == pytest.approx(after_saturation)


def test_a_lower_target_utilization_plans_more_replicas_for_the_same_load() -> None:
    s = snap(0.0, reps("ready@a", "ready@a"), 20.0)  # 20 req/s; PROFILE's workers serve 10 a replica
    (default, _), (half, _) = (
        planner.decide(r, s, aged())
        for r in (rec(), rec(autoscaling=rec().autoscaling.model_dump() | {"target_utilization": 0.5}))
    )
    assert (default.desired, half.desired) == (2, 4)
    assert "at 0.5 of its throughput" in half.reason and "of its throughput" not in default.reason


def test_a_few_first_requests_barely_move_the_mix_from_the_default() -> None:
    early = capacity.mix_of(PROFILE, 0.1, 1000.0, 100.0, seen_s=10.0)  # one request of 10000/1000
    prior = capacity.PRIOR_REQUESTS
    assert early.input_tokens == pytest.approx((10000 + prior * 1000) / (1 + prior))
    assert early.input_tokens < 2000  # one request moves it less than a tenth of the way
    twenty = capacity.mix_of(PROFILE, 0.1, 1000.0, 100.0, seen_s=200.0)  # twenty such requests
    assert twenty.input_tokens > 5000  # ... twenty outweigh the default
    settled = capacity.mix_of(PROFILE, 10.0, 20000.0, 5000.0, seen_s=300.0)  # 3000 requests
    assert settled.input_tokens == pytest.approx(2000, rel=0.02)


def test_the_first_decision_plans_on_the_default_mix_not_on_its_first_seconds_of_counters() -> None:
    """Before the first decision the counters have seen seconds, not a window: prompts counted as
    they are admitted over the few requests already finished read 9,588 tokens a request (servegen-
    busy's first tick), which planned 9 replicas for 6 that served the load. The next decision
    weighs what 15 s of completions showed against the default, as PRIOR_REQUESTS says."""
    llm = capacity.Profile(kind="llm", decode_per_seq_s=0.01, prefill_per_token_s=0.0001, max_num_seqs=1000)
    early = {load.MIX_REQUESTS: 0.4, load.PROMPT: 0.4 * 9588, load.GENERATION: 0.4 * 819}
    two = reps("ready@a", "ready@a")
    d, state = planner.decide(rec(), snap(5.0, two, 0.4, profile=llm, **early), steps.State())
    assert "(1000/250 tokens in/out)" in d.reason and d.desired == 2
    d, _ = planner.decide(rec(), snap(20.0, two, 0.4, profile=llm, **early), state)
    n = 0.4 * 15.0  # six requests' worth against PRIOR_REQUESTS
    w = n / (n + capacity.PRIOR_REQUESTS)
    assert f"({w * 9588 + (1 - w) * 1000:.0f}/{w * 819 + (1 - w) * 250:.0f} tokens in/out)" in d.reason


def test_the_mix_comes_from_token_counters_else_the_profiles_default() -> None:
    assert capacity.mix_of(PROFILE, 2.0, 2000.0, 500.0) == capacity.Mix(input_tokens=1000, output_tokens=250)
    assert capacity.mix_of(PROFILE, None, 2000.0, 500.0).input_tokens == PROFILE.default_input_tokens
    assert capacity.mix_of(PROFILE, 0.0, 0.0, 0.0).output_tokens == PROFILE.default_output_tokens


@pytest.mark.parametrize(
    ("served", "queued", "ok", "expect", "undersized"),
    [
        pytest.param(15.0, 0.0, True, 1.025, False, id="serving 1.5x the model without a queue: up 5 % of the gap"),
        pytest.param(7.0, 4.0, None, 0.97, False, id="a queue while serving 0.7 of the model: down 10 % of the gap"),
        pytest.param(7.0, 0.0, False, 1.0, False,
                     id="latency over target without a queue: a drained backlog's latency, no evidence, unchanged"),
        pytest.param(
            5.0, 4.0, False, 1.0, False, id="a queue while serving half: not saturated (a backlog), unchanged"
        ),
        pytest.param(
            5.0, 0.0, True, 1.0, False, id="serving less than modelled without trouble: no evidence, unchanged"
        ),
        pytest.param(100.0, 0.0, True, 1.45, False, id="bounded above (one step)"),
        pytest.param(7.0, 4.0, False, 1.0, True,
                     id="a queue while fewer replicas are ready than the model needs: expected, unchanged"),
        pytest.param(15.0, 0.0, True, 1.025, True, id="undersized yet serving more than modelled: still up"),
    ],
)  # fmt: skip
def test_online_correction_is_bounded_and_said(
    served: float, queued: float, ok: bool | None, expect: float, undersized: bool
) -> None:
    new, note = capacity.correct(1.0, served_per_replica=served, modelled=10.0, queued_per_replica=queued,
                                 latency_ok=ok, undersized=undersized)  # fmt: skip
    assert new == pytest.approx(expect)
    assert (note != "") == (new != 1.0)
    assert capacity.correct(1.99, served_per_replica=1000.0, modelled=10.0, queued_per_replica=0.0,
                            latency_ok=True)[0] == capacity.FACTOR_MAX  # fmt: skip


@pytest.mark.parametrize(
    ("served", "saturated", "expect"),
    [
        pytest.param(15.0, True, 1.0 + capacity.UP_RATE * (capacity.SATURATED_SHARE * 1.5 - 1.0),
                     id="saturated serving 1.5x the model: up toward SATURATED_SHARE of what they serve"),
        pytest.param(10.5, True, 1.0, id="saturated serving about the model: its share is below the model, unchanged"),
        pytest.param(15.0, False, 1.0, id="a queue while serving 1.5x, not known to be saturated: unchanged"),
    ],
)  # fmt: skip
def test_saturated_replicas_show_their_full_throughput(served: float, saturated: bool, expect: float) -> None:
    new, _ = capacity.correct(1.0, served_per_replica=served, modelled=10.0, queued_per_replica=4.0,
                              latency_ok=False, undersized=True, saturated=saturated)  # fmt: skip
    assert new == pytest.approx(expect)


# ---- node-aware scale-down --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "excess", "expect"),
    [
        pytest.param(("ready@a", "ready@a", "ready@b", "ready@b"), 1, (0, 0), id="one fewer of 2+2 empties no node: none"),
        pytest.param(("ready@a", "ready@a", "ready@b", "ready@b"), 2, (2, 1), id="two fewer of 2+2: one whole node"),
        pytest.param(("ready@a", "ready@a", "ready@b", "pending"), 2, (2, 1),
                     id="pending first, then the emptiest node"),
        pytest.param(("ready@a", "ready@a", "ready@b", "ready@b", "ready@c"), 2, (1, 1),
                     id="2 fewer of 2+2+1: the lone replica's node; no other node fits in the rest"),
        pytest.param(("ready@a", "ready@a", "ready@b", "ready@b", "ready@c"), 3, (3, 2),
                     id="3 fewer of 2+2+1: the lone replica's node and one of the pairs"),
        pytest.param(("pending", "pending", "ready@a"), 5, (3, 1), id="never more than there is"),
        pytest.param(("ready", "ready", "ready"), 2, (2, 0), id="replicas without known nodes each stand alone"),
    ],
)  # fmt: skip
def test_emptying(layout: tuple[str, ...], excess: int, expect: tuple[int, int]) -> None:
    assert nodes.emptying(reps(*layout), excess) == expect


def test_pending_replicas_a_node_is_coming_for_are_kept_and_no_node_empties_meanwhile() -> None:
    layout = reps("ready@a", "ready@b", "ready@b", "pending", "pending")
    assert nodes.emptying(layout, 4, keep_pending=1) == (1, 0)
    assert nodes.emptying(layout, 4, keep_pending=0) == (3, 1)
    coming = (snapshot.NodeInfo(name="n", gpus=2, used_gpus=0, ready=False),
              snapshot.NodeInfo(name="m", gpus=2, used_gpus=0, ready=True))  # fmt: skip
    assert nodes.coming(coming, 1) == 2


def test_a_scale_down_keeps_the_pending_replica_its_node_is_provisioning_for() -> None:
    s = snap(0.0, reps("ready@a", "ready@a", "pending"), 5.0)
    s = snapshot.Snapshot(now=s.now, current=s.current, replicas=s.replicas, signals=s.signals, capacity=PROFILE,
                          nodes=(snapshot.NodeInfo(name="b", gpus=2, used_gpus=0, ready=False, requested_at=0.0),))  # fmt: skip
    d, _ = planner.decide(rec(), s, aged())
    assert (d.desired, d.bound_by) == (3, "capacity") and "kept for the node" in d.reason


def test_no_scale_down_before_the_load_history_spans_the_lead_time() -> None:
    layout = reps("ready@a", "ready@a", "ready@b", "ready@b")
    d, _ = planner.decide(rec(), snap(0.0, layout, 1.0), steps.State())
    assert (d.desired, d.bound_by) == (4, "stabilization")
    d, _ = planner.decide(rec(), snap(0.0, layout, 1.0), aged())
    assert d.desired == 2


@pytest.mark.parametrize(
    ("e2e", "desired"),
    [
        pytest.param(1.9, 4, id="e2e-above-90-percent-of-its-slo-holds-the-replicas"),
        pytest.param(1.7, 2, id="below-it-the-model-decides"),
        pytest.param(None, 2, id="no-e2e-reading-is-no-reason-to-hold"),
    ],
)  # fmt: skip
def test_no_scale_down_while_e2e_is_barely_within_its_slo(e2e: float | None, desired: int) -> None:
    """The model sizes a batch for the mean answer; a tight e2e SLO is set by the tail: replicas that
    barely meet it are not given back on the model's word (the gpt2 example's long plateau)."""
    r = rec(slo={"ttft_s": 2.0, "e2e_s": 2.0, "percentile": 95})
    more = {} if e2e is None else {load.E2E: e2e}
    d, _ = planner.decide(r, snap(0.0, reps("ready@a", "ready@a", "ready@b", "ready@b"), 1.0, **more), aged())
    assert d.desired == desired, d.reason
    if desired == 4:
        assert d.bound_by == "stabilization" and "e2e p95 1.9 s is above 90% of its SLO (2 s)" in d.reason, d.reason


def test_victims_are_pending_then_the_emptiest_node_starting_before_ready() -> None:
    layout = reps(
        "ready@a", "ready@a", "ready@b", "starting@b", "ready@c", "starting@c", "ready@c", "pending"
    )
    assert nodes.victims(layout, 4) == ["r7", "r3", "r2", "r1"]  # b before a: same size, b has a starting one


def aged(since: float = -1000.0) -> steps.State:
    """A planner state whose load history began long ago (longer than H) and holds no peak."""
    plan = plan_state.PlanState(
        lead=leadtime.LeadTimes.of(rec().node_pool), history=forecast.History(first=since)
    )
    return steps.State(plan=plan)


# ---- single decisions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "rps", "queued", "expect", "bound"),
    [
        pytest.param(("ready@a",), 25.0, 0.0, 3, "metrics", id="25 req/s at 10 per replica: 3 at once"),
        pytest.param(("ready@a",), 10.0, 600.0, 2, "metrics", id="a queue is load, drained within DRAIN_S (120 s)"),
        pytest.param(("ready@a", "starting@a", "pending"), 25.0, 0.0, 3, "metrics",
                     id="credits: starting and pending replicas count, nothing asked twice"),
        pytest.param(("ready@a", "ready@a", "ready@b", "ready@b"), 25.0, 0.0, 4, "capacity",
                     id="scale-down that would empty no node is held"),
        pytest.param(("ready@a", "ready@a", "ready@b", "pending"), 15.0, 0.0, 2, "metrics",
                     id="scale-down: the pending replica and the emptiest node go"),
        pytest.param(("ready@a",), 1000.0, 0.0, 20, "max", id="bounded by max_replicas"),
        pytest.param(("ready@a",), 1e308, 0.0, 20, "max", id="a reading past any fleet (1e308 req/s) is max_replicas, not an error"),
    ],
)  # fmt: skip
def test_one_decision(layout: tuple[str, ...], rps: float, queued: float, expect: int, bound: str) -> None:
    d, _ = planner.decide(rec(), snap(0.0, reps(*layout), rps, queued), aged())
    assert (d.desired, d.bound_by) == (expect, bound)
    assert "req/s per replica" in d.reason and "H 120 s" in d.reason


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        pytest.param(1e308, 20, id="an exporter's 1e308 req/s and queue for 15 minutes hold max_replicas"),
        pytest.param(-1e308, 1, id="a negative rate and queue read as none: min_replicas, not an error"),
    ],
)
def test_readings_no_fleet_could_serve_are_capped_not_fatal(value: float, expect: int) -> None:
    state, current, seen = aged(), 1, []
    for i in range(60):
        d, state = planner.decide(rec(), snap(15.0 * i, reps(*["ready@a"] * current), value, queued=value), state)
        current = d.desired
        seen.append(current)
    assert seen[1:] == [expect] * 59, seen


@pytest.mark.parametrize(
    ("reads", "expect", "says"),
    [
        pytest.param({load.BUFFERED: 3.0}, 1, "3 request(s) waiting at the gateway", id="requests buffered at zero wake it"),
        pytest.param({load.GATEWAY_REQUESTS: 0.5}, 1, "0.5 request(s)/s answered at the gateway with no replica",
                     id="requests the gateway answered at zero wake it"),
        pytest.param({load.BUFFERED: 0.0, load.GATEWAY_REQUESTS: 0.0}, 0, "idle at zero", id="nothing waiting: stay at zero"),
    ],
)  # fmt: skip
def test_the_planner_wakes_from_zero_on_what_the_gateway_holds(reads: dict[str, float], expect: int, says: str) -> None:
    """At zero no engine series exists, so the recipe's signals (here vLLM's queue and TTFT) cannot
    say there is demand; the gateway's reads can, and wake the service as a signal would."""
    r = rec(autoscaling=rec().autoscaling.model_dump() | {"min_replicas": 0})
    waiting = {load.REQUESTS: snapshot.Reading.missing("no replica"), **{k: snapshot.Reading.of(v) for k, v in reads.items()}}
    s = replace(snap(0.0, (), None, current=0), signals=waiting)
    d, _ = planner.decide(r, s, aged())
    assert (d.desired, d.bound_by) == (expect, "activation" if expect else "cooldown")
    assert says in d.reason


@pytest.mark.parametrize(
    ("slo", "expect"),
    [
        pytest.param({"ttft_s": 2.0, "e2e_s": 20.0}, 20.0,
                     id="nothing shed: a queue drains within the e2e SLO, every later request waits behind it"),
        pytest.param({"ttft_s": 2.0, "e2e_s": 600.0}, planner.DRAIN_S, id="nothing shed, a long e2e SLO: DRAIN_S"),
        pytest.param({"ttft_s": 2.0}, planner.DRAIN_S, id="no e2e SLO: DRAIN_S"),
        pytest.param({"ttft_s": 5.0, "e2e_s": 20.0, "deadline_s": 5.0}, planner.DRAIN_S,
                     id="shed at the deadline: the queue cannot grow past it, DRAIN_S"),
    ],
)  # fmt: skip
def test_how_soon_a_queue_is_planned_to_drain(slo: dict[str, float], expect: float) -> None:
    assert planner.drain_s(recipe.SLO(**slo)) == expect


@pytest.mark.parametrize(
    ("queued", "arrived", "served", "deadline", "expect"),
    [
        pytest.param(50.0, 12.0, 10.0, None, 50.0 + 2.0 * 120.0,
                     id="the queue grows by what arrives beyond what is served, for H (120 s)"),
        pytest.param(50.0, 8.0, 10.0, None, 50.0, id="served faster than it arrives: today's queue, no less"),
        pytest.param(50.0, 12.0, 10.0, 5.0, 60.0, id="shed at a 5 s deadline: at most 5 s of arrivals"),
    ],
)  # fmt: skip
def test_the_backlog_when_capacity_asked_now_is_ready(
    queued: float, arrived: float, served: float, deadline: float | None, expect: float
) -> None:
    ld = load.Load(served_rps=served, answered_rps=served, mix_rps=None, prompt_tps=None, generation_tps=None,
                   queued=queued, source="test")  # fmt: skip
    assert planner.backlog(ld, arrived, 120.0, deadline) == pytest.approx(expect)


@pytest.mark.parametrize(
    ("slo", "expect"),
    [
        # 10 req/s served, the queue 20 -> 70 in 5 s: 20 req/s arrive; by the time what was asked
        # when the queue began (5 s ago) is ready, 115 s on, it grows to 70 + 10 x 115 = 1220,
        # drained in 20 s: 20 + 61 = 81 req/s, 9 replicas of 10
        pytest.param({"ttft_s": 2.0, "e2e_s": 20.0}, 9, id="nothing shed: arrivals and the backlog H leaves, in 20 s"),
        # shed at 5 s: the queue holds at most 5 s of arrivals (100): 20 + 100 / 120 = 20.8 -> 3
        pytest.param({"ttft_s": 2.0, "e2e_s": 20.0, "deadline_s": 5.0}, 3,
                     id="shed at a deadline: the arrivals, and at most the deadline's queue"),
    ],
)  # fmt: skip
def test_saturated_replicas_plan_for_what_arrives_not_what_they_serve(slo: dict[str, float], expect: int) -> None:
    """One replica serving its full 10 req/s while its queue grows: completions under-read the
    load. Read as served plus the queue over DRAIN_S it plans 2; the planner plans for what arrives."""
    r = rec(gpus_per_node=1, slo=slo)
    one = reps("ready@a")
    _, state = planner.decide(r, snap(0.0, one, 10.0, queued=20.0), aged())
    d, _ = planner.decide(r, snap(5.0, one, 10.0, queued=70.0), state)
    assert d.desired == expect, d.reason
    note = d.proposals[0].note
    assert "20.00 req/s arriving" in note and f"drained in {planner.drain_s(r.slo):g} s" in note
    assert "(saturated: 20.00 req/s arriving" in d.reason


def test_a_queue_growing_as_projected_asks_for_no_more_than_when_it_began() -> None:
    """The queue is projected to grow until what was asked when it began is ready, not for a whole
    H from each tick: a minute later, 550 more waiting (as projected), the plan is the same 9; from
    each tick it would have compounded to 12. The state carries when it began through JSON."""
    r = rec(gpus_per_node=1, slo={"ttft_s": 2.0, "e2e_s": 20.0})
    one = reps("ready@a")
    _, state = planner.decide(r, snap(0.0, one, 10.0, queued=20.0), aged())
    first, state = planner.decide(r, snap(5.0, one, 10.0, queued=70.0), state)
    state = steps.State.from_json(json.loads(json.dumps(state.to_json())))
    assert state.plan is not None and state.plan.saturated_since == 0.0
    asked = reps("ready@a", *["pending"] * (first.desired - 1))
    later, state = planner.decide(r, snap(60.0, asked, 10.0, queued=620.0), state)
    assert (first.desired, later.desired) == (9, 9), later.reason
    assert "1220 queued when capacity comes" in later.reason
    _, state = planner.decide(r, snap(65.0, asked, 10.0, queued=1.0), state)
    assert state.plan is not None and state.plan.saturated_since is None


def test_to_zero_after_the_cooldown_and_back_on_activity_as_keda_does() -> None:
    """min_replicas 0: KEDA's steps come first, as in the reactive rules (cooldown 300 s by default)."""
    r = rec(autoscaling={"policy": "swell", "min_replicas": 0, "max_replicas": 4, "signals": [WAITING, TTFT]})
    state = aged()
    d, state = planner.decide(r, snap(0.0, reps("ready@a"), 0.0, waiting=0.0, ttft_p90=0.0), state)
    assert d.desired == 1 and d.bound_by != "cooldown"  # idle, but not for the cooldown yet
    d, state = planner.decide(r, snap(301.0, reps("ready@a"), 0.0, waiting=0.0, ttft_p90=0.0), state)
    assert (d.desired, d.bound_by) == (0, "cooldown") and "scale to zero" in d.reason
    d, state = planner.decide(r, snap(320.0, (), None, current=0, waiting=0.0, ttft_p90=0.0), state)
    assert (d.desired, d.bound_by) == (0, "cooldown")  # idle at zero
    d, _ = planner.decide(r, snap(330.0, (), None, current=0, waiting=3.0, ttft_p90=0.0), state)
    assert (d.desired, d.bound_by) == (1, "activation")


def test_a_missing_signal_is_no_evidence_of_idleness_for_the_cooldown() -> None:
    r = rec(autoscaling={"policy": "swell", "min_replicas": 0, "max_replicas": 4, "signals": [WAITING]})
    state = aged()
    _, state = planner.decide(r, snap(0.0, reps("ready@a"), 0.0, waiting=0.0), state)
    blind = snap(301.0, reps("ready@a"), 0.0)
    blind = replace(blind, signals={k: v for k, v in blind.signals.items() if k != "waiting"})
    d, _ = planner.decide(r, blind, state)
    assert d.desired == 1
    seen, _ = planner.decide(r, snap(301.0, reps("ready@a"), 0.0, waiting=0.0), state)
    assert seen.desired == 0  # the same tick with the signal read: to zero


def test_without_a_capacity_model_the_reactive_rules_decide() -> None:
    d, _ = planner.decide(rec(), snap(0.0, reps("ready@a"), 25.0, profile=None, waiting=40.0), steps.State())
    assert d.policy == planner.NAME == "swell" and d.reason.startswith("no capacity model")
    assert d.desired == 5  # the reactive waiting signal: 40 / 8


def test_without_a_load_reading_the_planner_never_scales_down() -> None:
    s = snap(0.0, reps("ready@a", "ready@a", "ready@b"), None, waiting=0.0)
    d, _ = planner.decide(rec(), s, steps.State())
    assert d.desired == 3 and "no load reading" in d.reason


def test_safety_net_ttft_over_the_slo_with_nothing_on_its_way_adds_half_the_ready() -> None:
    layout = reps(*["ready@a"] * 4)
    d, _ = planner.decide(rec(gpus_per_node=8), snap(0.0, layout, 20.0, ttft_p90=5.0), steps.State())
    assert (d.desired, d.bound_by) == (6, "panic")
    d, _ = planner.decide(rec(gpus_per_node=8), snap(0.0, (*layout, *reps("starting@a")), 20.0, ttft_p90=5.0),
                          steps.State())  # fmt: skip
    assert d.desired == 5, "capacity already on its way: no more"


def test_while_the_safety_net_alarms_nothing_is_removed_even_with_capacity_on_its_way() -> None:
    """A backlog's TTFT outlives the surge it fired on: were the replicas it added removed at the
    next tick (something is starting, so no surge is added), it would fire again, and so on."""
    layout = reps(*["ready@a"] * 4, *["starting@b"] * 4)  # 8 replicas for 20 req/s (2 needed)
    d, _ = planner.decide(rec(gpus_per_node=8), snap(0.0, layout, 20.0, ttft_p90=5.0), aged())
    assert (d.desired, d.bound_by) == (8, "panic") and "no scale-down now: ttft_p90 5.00 s > SLO 2 s" in d.reason
    calm, _ = planner.decide(rec(gpus_per_node=8), snap(0.0, layout, 20.0, ttft_p90=0.5), aged())
    assert calm.desired < 8  # the same fleet without the alarm: scaled down


def e2e_rec() -> recipe.Recipe:
    return rec(slo={"ttft_s": 2.0, "e2e_s": 30.0})


@pytest.mark.parametrize(
    ("e2e_p99", "moves"),
    [
        pytest.param(None, True, id="no e2e reading: TTFT alone judges, up"),
        pytest.param(25.0, True, id="e2e at the SLO's percentile within its SLO: up"),
        pytest.param(31.0, False, id="e2e at the SLO's percentile over its SLO: long answers are the limit, unchanged"),
    ],
)  # fmt: skip
def test_the_model_moves_up_only_while_the_e2e_tail_is_within_its_slo(e2e_p99: float | None, moves: bool) -> None:
    more = {"ttft_p90": 0.5} | ({} if e2e_p99 is None else {load.E2E: e2e_p99})
    s = snap(0.0, reps("ready@a", "ready@a"), 30.0, **more)  # 15 req/s a replica, modelled at 10
    _, state = planner.decide(e2e_rec(), s, aged())
    assert state.plan is not None and (state.plan.factor > 1.0) is moves


@pytest.mark.parametrize(
    ("slo", "quantile"),
    [
        pytest.param(None, 0.99, id="no SLO given: the 99th percentile"),
        pytest.param({"e2e_s": 30.0, "percentile": 95}, 0.95, id="a 95 % SLO is judged at the 95th, not held to the 99th"),
        pytest.param({"e2e_s": 30.0, "percentile": 99.9}, 0.999, id="a 99.9 % SLO is not let off at the 99th"),
    ],
)  # fmt: skip
def test_the_e2e_the_planner_judges_is_at_the_slos_percentile(slo: dict[str, float] | None, quantile: float) -> None:
    r = rec(**({} if slo is None else {"slo": slo}))
    got = {s.name: s for s in signals.required(r.autoscaling, None if slo is None else r.slo)}
    assert got[load.E2E].kind == "histogram_quantile" and got[load.E2E].quantile == pytest.approx(quantile)
    assert got[load.E2E].metric == "vllm:e2e_request_latency_seconds"


def test_the_model_is_not_lowered_while_new_replicas_settle() -> None:
    """Replicas just ready complete nothing for a while: what the fleet serves per replica then
    says nothing of the model, even with a queue. After SETTLE_S the same evidence lowers it."""
    before = snap(0.0, reps("ready@a", "ready@a"), 16.0)  # 2 ready, 8 req/s each: within the model
    _, state = planner.decide(rec(), before, aged())
    grown = reps("ready@a", "ready@a", "ready@b", "ready@b")  # 2 more ready: 4 x 8 req/s, a queue of 40
    for t in (5.0, 5.0 + planner.SETTLE_S - 5.0):
        _, state = planner.decide(rec(), snap(t, grown, 32.0, queued=40.0), state)
        assert state.plan is not None and state.plan.factor == 1.0
    _, state = planner.decide(rec(), snap(5.0 + planner.SETTLE_S + 5.0, grown, 32.0, queued=40.0), state)
    assert state.plan is not None and state.plan.factor < 1.0


def test_while_the_replicas_are_saturated_the_mix_is_the_one_read_before() -> None:
    """Under a queue the requests shed at the deadline finish (aborted) without tokens, and long
    prompts are the ones shed: the mix read then would make a replica look twice as capable. The
    mix read before is held instead."""
    llm = capacity.Profile(kind="llm", decode_per_seq_s=0.01, prefill_per_token_s=0.0001, max_num_seqs=1000)
    two = reps("ready@a", "ready@a")
    calm = snap(0.0, two, 10.0, profile=llm, **{load.MIX_REQUESTS: 10.0, load.PROMPT: 8000.0, load.GENERATION: 2000.0})
    _, state = planner.decide(rec(), calm, aged())
    assert state.plan is not None and state.plan.mix is not None
    assert (state.plan.mix.input_tokens, state.plan.mix.output_tokens) == pytest.approx((800, 200), rel=0.01)
    short = {load.MIX_REQUESTS: 10.0, load.PROMPT: 4000.0, load.GENERATION: 1000.0}  # 400/100 survivors
    d, held = planner.decide(rec(), snap(5.0, two, 10.0, queued=4.0, profile=llm, **short), state)
    assert "(801/200 tokens in/out)" in d.reason and "mix held at 801/200 while saturated" in d.reason
    assert held.plan is not None and held.plan.mix == state.plan.mix
    d, _ = planner.decide(rec(), snap(5.0, two, 10.0, queued=3.0, profile=llm, **short), state)
    assert "(402/100 tokens in/out)" in d.reason, "below QUEUE_SATURATED per replica the mix read is used"


@pytest.mark.parametrize(
    ("counters", "learns"),
    [
        pytest.param({load.REQUESTS: 30.0, load.ABORTED: 0.0}, True,
                     id="the engine's completions without its aborts: full throughput, the model moves up"),
        pytest.param({load.REQUESTS: None, load.GATEWAY_REQUESTS: 30.0}, False,
                     id="only the gateway's answers (they count what it shed too): unchanged"),
    ],
)  # fmt: skip
def test_a_standing_queue_shows_what_replicas_serve_at_full_throughput(
    counters: dict[str, float | None], learns: bool
) -> None:
    """Two ready replicas with 10 requests waiting serve 15 req/s each against a model of 10: the
    model learns from it only where the count is the engine's, without the requests it aborted."""
    s = snap(0.0, reps("ready@a", "ready@a"), None, queued=10.0, **counters)
    _, state = planner.decide(rec(), s, aged())
    assert state.plan is not None and (state.plan.factor > 1.0) is learns


def test_a_scheduled_floor_within_the_lead_time_is_started_now() -> None:
    r = rec(schedules=[{"name": "peak", "start": "0 10 * * *", "end": "0 11 * * *", "min_replicas": 6}])
    before = 10 * 3600.0 - 60.0  # one minute before the window, H = 120 s
    d, _ = planner.decide(r, snap(before, reps("ready@a"), 1.0), steps.State())
    assert (d.desired, d.bound_by) == (6, "schedule")


def test_min_replicas_over_the_need_is_bound_by_min_not_by_a_schedule() -> None:
    """No load, no window: the plan is min_replicas, and the decision says `min` (it said `schedule`,
    as min_replicas is the floor schedule.bounds reports without a window)."""
    r = rec(autoscaling={"policy": "planner", "min_replicas": 2, "max_replicas": 20, "signals": [WAITING, TTFT]})
    d, _ = planner.decide(r, snap(600.0, reps("ready@a", "ready@a"), 0.0), aged())
    assert (d.desired, d.bound_by) == (2, "min")


# ---- nodes ahead: spare nodes, not Pending replicas ----------------------------------------------


def node(name: str, used: int, ready: bool = True, placeholders: int = 0, gpus: int = 2) -> snapshot.NodeInfo:
    return snapshot.NodeInfo(name=name, gpus=gpus, used_gpus=used, ready=ready, headroom_pods=placeholders)


PEAK = [{"name": "peak", "start": "0 10 * * *", "end": "0 11 * * *", "min_replicas": 6}]
BEFORE_PEAK = 10 * 3600.0 - 60.0  # one minute before the window, H = 120 s


@pytest.mark.parametrize(
    ("layout", "nodes_", "rps", "expect", "spare"),
    [
        pytest.param(("ready@a",), (node("a", 1),), 1.0, 2, 2,
                     id="a peak within H: the ready node's free GPU now, 2 spare nodes for the other 4"),
        pytest.param(("ready@a",), (node("a", 1), node("b", 0)), 1.0, 4, 1,
                     id="an empty ready node is room: filled now, 1 spare node left to ask"),
        pytest.param(("ready@a",), (node("a", 2, placeholders=1), node("b", 2, placeholders=2)), 1.0, 4, 1,
                     id="a placeholder's slot is room: a replica preempts it"),
        pytest.param(("ready@a",), (node("a", 1), node("b", 0, ready=False)), 1.0, 2, 2,
                     id="a node still provisioning is no room yet"),
        pytest.param(("ready@a",), (node("a", 1),), 45.0, 4, 1,
                     id="load now beyond the ready nodes: what it needs at once (Pending), as reactive"),
    ],
)  # fmt: skip
def test_nodes_ahead_are_spare_nodes_and_replicas_fill_ready_ones(
    layout: tuple[str, ...], nodes_: tuple[snapshot.NodeInfo, ...], rps: float, expect: int, spare: int
) -> None:
    state = aged()
    for t in (BEFORE_PEAK - planner.SPARE_HOLD_S, BEFORE_PEAK):  # a need held SPARE_HOLD_S buys nodes
        d, state = planner.decide(
            rec(schedules=PEAK), replace(snap(t, reps(*layout), rps), nodes=nodes_), state
        )
    assert (d.desired, d.spare_nodes) == (expect, spare)
    assert d.desired >= d.proposals[0].replicas, "what the load needs now is never deferred"
    assert d.details["nodes_planned"] == 3 and d.to_json()["spare_nodes"] == spare
    if spare:
        assert f"{spare} spare node(s) kept" in d.reason


@pytest.mark.parametrize(
    ("asks", "want", "expect"),
    [
        pytest.param((), 3, 0, id="a new need buys nothing yet"),
        pytest.param(((0.0, 3), (30.0, 3)), 3, 0, id="held 30 s of 60: nothing yet"),
        pytest.param(((0.0, 3), (30.0, 3)), 3, 0, id="held 30 s of 60: nothing yet (again)"),
        pytest.param(((-10.0, 3), (30.0, 3)), 3, 3, id="held over 60 s: bought"),
        pytest.param(((-10.0, 3), (30.0, 9)), 3, 3, id="a one-tick spike inside the window is not bought"),
        pytest.param(((-10.0, 3), (30.0, 3)), 1, 1, id="less is given back at once"),
        pytest.param(((-100.0, 5), (-10.0, 2), (30.0, 4)), 4, 2,
                     id="the least over the window, counting the ask in force at its start"),
    ],
)  # fmt: skip
def test_spare_nodes_are_bought_for_a_need_held_over_the_window(
    asks: tuple[tuple[float, int], ...], want: int, expect: int
) -> None:
    got, remembered = planner.sustained(asks, 50.0, want)
    assert got == expect
    assert remembered[-1] == (50.0, want) and all(t > 50.0 - planner.SPARE_HOLD_S for t, _ in remembered[1:])


@pytest.mark.parametrize(
    ("plans", "plan", "expect"),
    [
        pytest.param((), 3, 3, id="no history: the plan itself"),
        pytest.param(((10.0, 6),), 3, 6, id="a higher plan within the window holds a scale-down"),
        pytest.param(((-200.0, 9), (10.0, 6)), 3, 6, id="one older than the window no longer counts"),
        pytest.param(((10.0, 6),), 8, 8, id="a rise is never held back"),
    ],
)  # fmt: skip
def test_a_scale_down_goes_no_lower_than_the_highest_plan_of_the_window(
    plans: tuple[tuple[float, int], ...], plan: int, expect: int
) -> None:
    got, remembered = planner.stabilized(plans, 50.0, plan)
    assert got == expect
    assert remembered[-1] == (50.0, plan)
    assert all(t > 50.0 - planner.DOWN_WINDOW_S and n > plan for t, n in remembered[:-1]), "only what can still bound"


def test_a_lapsed_forecast_gives_nothing_back_within_the_window_then_the_emptied_node_goes() -> None:
    layout = reps("ready@a", "ready@a", "ready@b", "ready@b")
    state = aged()
    state = replace(state, plan=replace(state.plan, recent_plans=((0.0, 4),)))
    d, state = planner.decide(rec(), snap(60.0, layout, 15.0), state)
    assert (d.desired, d.bound_by) == (4, "stabilization") and "highest plan of the last" in d.reason
    d, _ = planner.decide(rec(), snap(planner.DOWN_WINDOW_S + 1.0, layout, 15.0), state)
    assert d.desired == 2 and "node(s) emptied" in d.reason


def test_the_recipes_headroom_is_a_floor_under_the_planned_spare_nodes() -> None:
    s = replace(snap(0.0, reps("ready@a", "ready@a"), 1.0), nodes=(node("a", 2),))
    d, _ = planner.decide(rec(autoscaling={"policy": "planner", "max_replicas": 20, "headroom_nodes": 2,
                                           "signals": [WAITING]}), s, aged())  # fmt: skip
    assert (d.desired, d.spare_nodes) == (2, 2)


# ---- the free GPUs of nodes already billed --------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "nodes_", "rps", "max_replicas", "expect"),
    [
        pytest.param(("ready@a",), (node("a", 1),), 1.0, 20, 2,
                     id="a node running one replica of two: its free GPU serves too, for nothing more"),
        pytest.param(("ready@a", "ready@b"), (node("a", 1), node("b", 1, gpus=4)), 15.0, 20, 6,
                     id="every partly used node is filled, whatever its size"),
        pytest.param(("ready@a",), (node("a", 1), node("b", 0)), 1.0, 20, 1,
                     id="nothing while a node is empty (a spare, or one being given back): a replica may land there"),
        pytest.param(("ready@a", "ready@a"), (node("a", 2), node("b", 0)), 15.0, 20, 2,
                     id="full nodes: nothing to fill"),
        pytest.param(("ready@a", "starting@b"), (node("a", 1), node("b", 1)), 15.0, 20, 2,
                     id="not while a replica is starting: it may be the one meant for that GPU"),
        pytest.param(("ready@a", "pending"), (node("a", 1),), 15.0, 20, 2,
                     id="not while one is Pending: it takes the free GPU"),
        pytest.param(("ready@a", "ready@b"), (node("a", 1), node("b", 1)), 15.0, 3, 3,
                     id="never above max_replicas"),
        pytest.param(("ready@a",), (node("a", 1, ready=False),), 1.0, 20, 1, id="a node not Ready is not filled"),
    ],
)  # fmt: skip
def test_a_node_already_billed_is_filled_once_nothing_is_on_its_way(
    layout: tuple[str, ...], nodes_: tuple[snapshot.NodeInfo, ...], rps: float, max_replicas: int, expect: int
) -> None:
    r = rec(autoscaling={"policy": "planner", "min_replicas": 1, "max_replicas": max_replicas, "signals": [WAITING]})
    d, _ = planner.decide(r, replace(snap(0.0, reps(*layout), rps), nodes=nodes_), aged())
    assert d.desired == expect
    assert d.details["replicas_planned"] == -(-rps // 10), "the plan is the load's: the filled GPUs are not in it"
    filled = expect - len(layout)
    assert (f"{filled} free GPU(s) of nodes already billed filled" in d.reason) == (filled > 0), d.reason


def test_no_fill_while_a_replica_asked_for_is_not_yet_created() -> None:
    """Kubernetes: the Deployment says 2, one pod exists; the second may be the one for the free GPU."""
    s = replace(snap(0.0, reps("ready@a"), 15.0, current=2), nodes=(node("a", 1),))
    d, _ = planner.decide(rec(), s, aged())
    assert d.desired == 2 and "filled" not in d.reason


def test_no_fill_while_a_node_is_being_given_back() -> None:
    """Node b's last replica drains after a scale-down: a new replica could land on b (the least
    allocated node) and keep it, or be removed at the next tick to give it back, and come again."""
    s = replace(snap(0.0, reps("ready@a", "ready@a", "terminating@b"), 15.0),
                nodes=(node("a", 2, gpus=4), node("b", 1)))  # fmt: skip
    d, _ = planner.decide(rec(), s, aged())
    assert d.desired == 2 and "filled" not in d.reason


def test_two_half_used_nodes_give_one_back_rather_than_fill_it() -> None:
    """A scale-down comes first: the load needs one replica, and one of two half-used nodes empties."""
    d, _ = planner.decide(rec(), replace(snap(0.0, reps("ready@a", "ready@b"), 1.0),
                                         nodes=(node("a", 1), node("b", 1))), aged())  # fmt: skip
    assert d.desired == 1 and "1 node(s) emptied" in d.reason


def test_a_filled_replica_goes_only_with_its_node() -> None:
    """The plan drops by one replica on two full nodes: removing one would empty no node, so none
    goes; by two, a whole node goes (its filled GPU with it)."""
    layout = reps("ready@a", "ready@a", "ready@b", "ready@b")
    full = (node("a", 2), node("b", 2))
    d, _ = planner.decide(rec(), replace(snap(0.0, layout, 25.0), nodes=full), aged())
    assert d.desired == 4 and "would empty no more nodes" in d.reason
    d, _ = planner.decide(rec(), replace(snap(0.0, layout, 15.0), nodes=full), aged())
    assert d.desired == 2 and "1 node(s) emptied" in d.reason


def test_on_one_machine_there_are_no_nodes_to_buy_so_no_spare_nodes() -> None:
    r = rec(schedules=PEAK)
    local = steps.State(plan=plan_state.PlanState(lead=leadtime.LeadTimes.on_one_machine(r.node_pool),
                                                  history=forecast.History(first=-1000.0)))  # fmt: skip
    s = replace(snap(10 * 3600.0 - 10.0, reps("ready@host"), 1.0), nodes=(node("host", 1, gpus=4),))
    d, _ = planner.decide(r, s, local)
    assert (d.desired, d.spare_nodes) == (6, None)


def test_without_node_reports_the_plan_is_replicas_and_the_recipe_keeps_the_headroom() -> None:
    d, _ = planner.decide(rec(schedules=PEAK), snap(BEFORE_PEAK, reps("ready@a"), 1.0), aged())
    assert (d.desired, d.spare_nodes) == (6, None)


# ---- lead times -------------------------------------------------------------------------------


def test_lead_times_start_from_the_recipe() -> None:
    lt = leadtime.LeadTimes.of(rec().node_pool)
    assert (lt.node_s, lt.cold_replica_s, lt.warm_replica_s, lt.horizon_s) == (100.0, 20.0, 20.0, 120.0)


def test_a_node_asked_for_before_the_planner_watched_is_not_learned_from() -> None:
    lt = leadtime.LeadTimes.of(rec().node_pool)
    old = snapshot.NodeInfo(
        name="old", gpus=2, used_gpus=2, ready=True, requested_at=-5000.0, ready_at=-4990.0
    )
    new = snapshot.NodeInfo(name="new", gpus=2, used_gpus=0, ready=True, requested_at=10.0, ready_at=410.0)
    s = snapshot.Snapshot(now=500.0, current=1, nodes=(old, new))
    got, notes = leadtime.learn(lt, s, since=0.0)
    assert got.node_s == pytest.approx(0.7 * 100.0 + 0.3 * 400.0) and notes == ["new ready 400 s after asked"]


def test_on_one_machine_the_lead_time_is_a_replica_start_learned_from_the_replicas() -> None:
    lt = leadtime.LeadTimes.on_one_machine(rec().node_pool)
    assert (lt.node_s, lt.horizon_s, lt.new_nodes) == (0.0, 20.0, False)
    s = snapshot.Snapshot(now=10.0, current=1, replicas=(
        snapshot.Replica(name="r", state="ready", node="host", scheduled_at=0.0, ready_at=2.0),))  # fmt: skip
    got, _ = leadtime.learn(lt, s)
    assert got.horizon_s == pytest.approx(0.7 * 20.0 + 0.3 * 2.0), "a local start is a warm start"
    assert leadtime.LeadTimes.from_json(json.loads(json.dumps(got.to_json()))) == got


@pytest.mark.parametrize(
    ("node", "replica", "expect"),
    [
        pytest.param(snapshot.NodeInfo(name="n", gpus=2, used_gpus=0, ready=True, requested_at=0.0, ready_at=400.0),
                     None, (190.0, 20.0, 20.0), id="a node ready 400 s after asked moves node time 30 % of the way"),
        pytest.param(snapshot.NodeInfo(name="n", gpus=2, used_gpus=1, ready=True, requested_at=0.0, ready_at=100.0),
                     snapshot.Replica(name="r", state="ready", node="n", scheduled_at=110.0, ready_at=210.0),
                     (100.0, 44.0, 20.0), id="a replica started just after its node became ready is a cold start"),
        pytest.param(snapshot.NodeInfo(name="n", gpus=2, used_gpus=1, ready=True),
                     snapshot.Replica(name="r", state="ready", node="n", scheduled_at=500.0, ready_at=530.0),
                     (100.0, 20.0, 23.0), id="a replica on an older node is a warm start"),
        pytest.param(snapshot.NodeInfo(name="n", gpus=2, used_gpus=0, ready=False, requested_at=0.0),
                     None, (100.0, 20.0, 20.0), id="a node still provisioning teaches nothing"),
    ],
)  # fmt: skip
def test_lead_times_learn_from_events(node: snapshot.NodeInfo, replica: snapshot.Replica | None,
                                      expect: tuple[float, float, float]) -> None:  # fmt: skip
    lt = leadtime.LeadTimes.of(rec().node_pool)
    s = snapshot.Snapshot(now=600.0, current=1, nodes=(node,), replicas=(replica,) if replica else ())
    got, _ = leadtime.learn(lt, s)
    assert (got.node_s, got.cold_replica_s, got.warm_replica_s) == pytest.approx(expect)
    again, _ = leadtime.learn(got, s)
    assert again == got, "an event is learned once"


# ---- trajectories -----------------------------------------------------------------------------


def run(r: recipe.Recipe, load_at: Any, until: float, step: float = 5.0) -> list[tuple[float, int]]:
    """Ticks with replicas ready at once on 1-GPU nodes (each replica its own node)."""
    state, current, out, t = steps.State(), 1, [], 0.0
    while t <= until:
        layout = reps(*[f"ready@n{i}" for i in range(current)])
        d, state = planner.decide(r, snap(t, layout, load_at(t)), state)
        current = d.desired
        out.append((t, current))
        t += step
    return out


def test_trajectory_a_load_step_up_at_once_held_over_the_lead_time_then_down() -> None:
    r = rec(gpus_per_node=1)
    traj = dict(run(r, lambda t: 25.0 if 300 <= t < 600 else 5.0, until=1500.0))
    assert traj[295.0] == 1 and traj[300.0] == 3, "up at once"
    assert traj[600.0 + 120.0] == 3, "the burst is held for H after it ends"
    assert traj[1500.0] == 1, "down once the envelope has decayed"
    assert all(n >= 1 for n in traj.values())


def test_trajectory_a_sudden_silence_holds_the_replicas_for_its_return() -> None:
    """25 req/s (3 replicas) stops at once at t=600 (an outage upstream) and comes back at t=1400,
    read over a minute as a rate window fills: the 3 replicas are there when it does, and stay while
    it is read back; a silence past SILENCE_HOLD lead times lets them go."""
    r = rec(gpus_per_node=1)
    h = leadtime.LeadTimes.of(r.node_pool).horizon_s

    def outage(t: float) -> float:
        return 25.0 if t < 600 else 0.0 if t < 1400 else 25.0 * min(1.0, (t - 1395.0) / 60.0)

    back = dict(run(r, outage, until=1500.0))
    assert back[595.0] == 3 and min(n for t, n in back.items() if 600 <= t <= 1500) == 3, back
    gone = run(r, lambda t: 25.0 if t < 600 else 0.0, until=600.0 + planner.SILENCE_HOLD * h + 600.0)
    held = [t for t, n in gone if n == 3 and t >= 600]
    assert max(held) >= 600.0 + planner.SILENCE_HOLD * h - 60.0, "held for the whole hold"
    assert gone[-1][1] == 1, "then down once it has passed"
    state = steps.State()
    for t in range(0, 900, 5):  # the reason says why the count holds
        d, state = planner.decide(r, snap(float(t), reps(*["ready@n0"] * 3), 25.0 if t < 600 else 0.0), state)
    assert d.bound_by == "stabilization" and "no request since 5 min ago: the 3 replicas held up to 8 H" in d.reason, d.reason


@pytest.mark.parametrize(
    "before",
    [pytest.param(0.0, id="no request since the start"),
     pytest.param(0.1, id="6 requests a minute, where an empty minute is chance (1 in 400)")],
)  # fmt: skip
def test_a_silence_where_an_empty_minute_was_likely_is_not_held(before: float) -> None:
    """Not a sudden stop: the scale-down waits only for H of history and the 180 s window, as before."""
    r = rec(gpus_per_node=1)
    h = leadtime.LeadTimes.of(r.node_pool).horizon_s
    state, layout = steps.State(), reps("ready@n0", "ready@n1", "ready@n2")
    for t in range(0, int(h) + 600, 5):
        d, state = planner.decide(r, snap(float(t), layout, before if t < 300 else 0.0), state)
    assert d.desired == 1 and "no request since" not in d.reason, d.reason


def test_trajectory_a_load_falling_to_nothing_holds_only_what_it_fell_to() -> None:
    """A fall to zero over 20 minutes is not a sudden stop: the replicas follow it down as the
    envelope decays, and the silence at its end holds what is left, not the peak."""
    r = rec(gpus_per_node=1)
    traj = dict(run(r, lambda t: 25.0 if t < 600 else max(0.0, 25.0 * (1.0 - (t - 600.0) / 1200.0)), until=3000.0))
    assert traj[595.0] == 3 and traj[3000.0] == 1, traj


def test_trajectory_after_a_burst_past_its_forecast_more_is_held_for_its_return(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """5 req/s for 2.5 H, a 5-minute burst to 45 req/s that nothing before it said, then 5 again:
    while the burst's peak is held, the count held for its return is raised (a service that burst
    past its forecast may again, larger); the same run without the raise holds the peak as seen."""
    slow = {"node_boot_s": 900, "kubelet_s": 0, "gpu_driver_s": 0, "image_size_gb": 0, "model_load_s": 20}
    r = rec(node_pool={"shape": "custom", "gpus_per_node": 1, "max_nodes": 20, "provisioning": slow})
    h = leadtime.LeadTimes.of(r.node_pool).horizon_s  # 920 s: a 5-minute slot is finer than H
    start = 2.5 * h - (2.5 * h) % 300.0

    def burst(t: float) -> float:
        return 45.0 if start <= t < start + 300.0 else 5.0

    until = start + 300.0 + 1.5 * h
    raised = dict(run(r, burst, until=until))
    monkeypatch.setattr(forecast, "SURPRISE_MAX", 0.0)
    plain = dict(run(r, burst, until=until))
    t_end = max(raised)
    assert plain[start - 5.0] == raised[start - 5.0] == 1
    assert raised[t_end] > plain[t_end] >= 4, (raised[t_end], plain[t_end])  # 5 against 4
    monkeypatch.undo()
    state = steps.State()
    for t in range(0, int(until), 5):
        d, state = planner.decide(r, snap(float(t), reps(*[f"ready@n{i}" for i in range(6)]), burst(t)), state)
    assert "+30% for a burst past its forecast" in d.reason, d.reason


def test_trajectory_is_identical_after_the_state_round_trips_through_json() -> None:
    r = rec(gpus_per_node=1)
    state = steps.State()
    for t in range(0, 600, 5):
        _, state = planner.decide(r, snap(float(t), reps("ready@a"), 5.0 + t / 100), state)
    restored = steps.State.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state
    s = snap(600.0, reps("ready@a"), 12.0)
    assert planner.decide(r, s, restored)[0] == planner.decide(r, s, state)[0]


# ---- offered load ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("readings", "served", "answered", "source"),
    [
        pytest.param({load.REQUESTS: 8.0, load.ABORTED: 3.0}, 5.0, 8.0, "vllm:request_success_total",
                     id="aborted requests are demand, not served"),
        pytest.param({load.REQUESTS: 8.0, load.ABORTED: None}, 8.0, 8.0, "vllm:request_success_total",
                     id="no abort series (an engine that never aborted): all served"),
        pytest.param({load.REQUESTS: 8.0, load.ABORTED: 0.0, load.GATEWAY_REQUESTS: 10.0}, 8.0, 10.0,
                     "swell_gateway_requests_total", id="more answered at the gateway: refused there are demand"),
        pytest.param({load.GATEWAY_REQUESTS: 4.0}, 4.0, 4.0, "swell_gateway_requests_total",
                     id="an engine without vLLM's counters: the gateway is all there is"),
    ],
)  # fmt: skip
def test_offered_load(readings: dict[str, float | None], served: float, answered: float, source: str) -> None:
    s = snapshot.Snapshot(now=0.0, current=1, replicas=reps("ready@a"),
                          signals={k: snapshot.Reading.of(v) for k, v in readings.items()})  # fmt: skip
    got = load.read(s)
    assert (got.served_rps, got.answered_rps, got.source) == (served, answered, source)
    assert got.served_by_engine is (readings.get(load.REQUESTS) is not None)


@pytest.mark.parametrize(
    ("aborted", "expect"),
    [
        pytest.param(4.0, 6.0, id="aborted-requests-carry-no-tokens-and-are-left-out-of-the-mix"),
        pytest.param(None, 10.0, id="no-abort-series-every-finished-request-counts"),
    ],
)  # fmt: skip
def test_the_mix_is_over_requests_that_finished_with_their_tokens(aborted: float | None, expect: float) -> None:
    """Requests shed at the deadline finish aborted with no token: counted, black-friday's mix read
    764/199 tokens for 1,000/250 minutes after its surge, and its return read as a ramp."""
    s = snapshot.Snapshot(now=0.0, current=1, replicas=reps("ready@a"),
                          signals={load.MIX_REQUESTS: snapshot.Reading.of(10.0),
                                   load.MIX_ABORTED: snapshot.Reading.of(aborted)})  # fmt: skip
    assert load.read(s).mix_rps == expect
