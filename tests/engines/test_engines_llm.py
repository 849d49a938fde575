"""Unit tests of the continuous-batching LLM replica model (virtual time, no wall clock)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from swell.engines import llm, presets

TINY = presets.get("tiny-cpu")


def run_all(r: llm.Replica) -> list[llm.Event]:
    """Advance event by event until idle."""
    out: list[llm.Event] = []
    while (t := r.next_event_time()) is not None:
        out += r.advance(t)
    return out


def req(i: int | str, inp: int = 100, out: int = 10) -> llm.Request:
    return llm.Request(id=str(i), input_tokens=inp, output_tokens=out)


def finished(events: list[llm.Event]) -> dict[str, llm.Finished]:
    return {e.request_id: e for e in events if isinstance(e, llm.Finished)}


def test_single_request_follows_the_linear_timings() -> None:
    r = llm.Replica(TINY)
    r.submit(0.0, req("a", inp=100, out=10))
    events = run_all(r)
    first = [e for e in events if isinstance(e, llm.FirstToken)]
    prefill = max(TINY.prefill_base_s, TINY.decode_base_s) + TINY.prefill_per_token_s * 100
    step = TINY.decode_base_s + TINY.decode_per_seq_s
    assert first[0].ttft == pytest.approx(prefill)
    done = finished(events)["a"]
    assert done.e2e == pytest.approx(prefill + 9 * step)
    assert done.output_tokens == 10 and done.reason == "length" and done.queue_time == 0.0
    assert r.stats.generation_tokens == 10 and r.stats.prompt_tokens == 100
    assert r.stats.inter_token_latency.count == 9
    assert r.kv_cache_usage == 0.0 and r.num_running == 0
    assert r.busy_seconds(10.0) == pytest.approx(done.e2e)


def test_simultaneous_requests_share_one_batch() -> None:
    r = llm.Replica(TINY)
    for i in range(4):
        r.submit(0.0, req(i))
    assert r.num_waiting == 4  # nothing is scheduled until the step starting now is committed
    r.next_event_time()
    assert r.num_running == 4 and r.num_waiting == 0
    events = run_all(r)
    firsts = {e.time for e in events if isinstance(e, llm.FirstToken)}
    ends = {round(e.time, 12) for e in finished(events).values()}
    assert len(firsts) == 1 and len(ends) == 1  # one prefill step, decoded together
    alone = llm.Replica(TINY)
    alone.submit(0.0, req("x"))
    solo = finished(run_all(alone))["x"].e2e
    together = next(iter(finished(events).values())).e2e
    assert solo < together < 4 * solo  # batching costs a little per sequence, far less than serial


def test_max_num_seqs_leaves_the_rest_waiting_in_fifo_order() -> None:
    r = llm.Replica(TINY)
    for i in range(TINY.max_num_seqs + 3):
        r.submit(0.0, req(i, inp=20))
    r.next_event_time()
    assert r.num_running == TINY.max_num_seqs and r.num_waiting == 3
    done = finished(run_all(r))
    order = sorted(done.values(), key=lambda f: f.time)
    assert [f.request_id for f in order[-3:]] == [str(TINY.max_num_seqs + k) for k in range(3)]
    assert all(done[str(TINY.max_num_seqs + k)].queue_time > 0 for k in range(3))  # type: ignore[operator]


def test_kv_capacity_limits_admission() -> None:
    small = dataclasses.replace(TINY, kv_cache_tokens=1024, max_model_len=1024)  # 64 blocks
    r = llm.Replica(small)
    for i in range(3):
        r.submit(0.0, req(i, inp=400, out=5))  # 25 blocks each: two fit, the third waits
    r.next_event_time()
    assert r.num_running == 2 and r.num_waiting == 1
    assert r.kv_cache_usage == pytest.approx(50 / 64)
    assert len(finished(run_all(r))) == 3


def test_decode_out_of_blocks_preempts_and_recomputes() -> None:
    small = dataclasses.replace(TINY, kv_cache_tokens=1024, max_model_len=1024)
    r = llm.Replica(small)
    r.submit(0.0, req("a", inp=300, out=600))
    r.submit(0.0, req("b", inp=300, out=600))  # together they outgrow 64 blocks
    events = run_all(r)
    preempted = [e for e in events if isinstance(e, llm.Preempted)]
    done = finished(events)
    assert preempted and r.stats.num_preemptions == len(preempted)
    assert {d.output_tokens for d in done.values()} == {600}
    assert sum(d.preemptions for d in done.values()) == len(preempted)
    assert r.stats.generation_tokens == 1200
    assert r.kv_cache_usage == 0.0


def test_long_prompt_is_prefilled_in_chunks() -> None:
    r = llm.Replica(TINY)  # 512-token budget per step
    r.submit(0.0, req("long", inp=1500, out=2))
    first = next(e for e in run_all(r) if isinstance(e, llm.FirstToken))
    chunk = max(TINY.prefill_base_s, TINY.decode_base_s)
    expected = 3 * chunk + TINY.prefill_per_token_s * 1500  # 512 + 512 + 476
    assert first.ttft == pytest.approx(expected)


def poisson_run(rate: float, n: int = 300, seed: int = 7) -> float:
    rng = random.Random(seed)
    r = llm.Replica(TINY)
    t = 0.0
    events: list[llm.Event] = []
    for i in range(n):
        t += rng.expovariate(rate)
        events += r.advance(t)
        r.submit(t, req(i, inp=rng.randint(20, 400), out=rng.randint(5, 60)))
    events += run_all(r)
    done = finished(events)
    assert len(done) == n
    return sum(d.e2e for d in done.values()) / n


def test_latency_grows_with_load() -> None:
    means = [poisson_run(rate) for rate in (2.0, 20.0, 60.0, 120.0)]
    assert means == sorted(means)
    assert means[-1] > 2 * means[0]


def test_same_inputs_give_the_same_events() -> None:
    assert poisson_run(30.0, seed=3) == poisson_run(30.0, seed=3)


def test_stepping_finely_matches_jumping_between_events() -> None:
    """Leaps cut by advance() at arbitrary times must not change the trajectory."""
    rng = random.Random(11)
    arrivals = [(i * 0.013, rng.randint(10, 300), rng.randint(1, 80)) for i in range(40)]

    def run(fine: bool) -> dict[str, float]:
        r = llm.Replica(TINY)
        events: list[llm.Event] = []
        t = 0.0
        for i, (at, inp, out) in enumerate(arrivals):
            while fine and t + 0.0007 < at:
                t += 0.0007
                events += r.advance(t)
            events += r.advance(at)
            r.submit(at, req(i, inp=inp, out=out))
        events += run_all(r)
        return {e.request_id: e.time for e in events if isinstance(e, llm.Finished)}

    coarse, fine = run(False), run(True)
    assert coarse.keys() == fine.keys()
    for k in coarse:
        assert fine[k] == pytest.approx(coarse[k], abs=1e-9)


def test_generated_tokens_grow_step_by_step() -> None:
    r = llm.Replica(TINY)
    r.submit(0.0, req("s", inp=50, out=20))
    seen = []
    while (t := r.next_step_time()) is not None:
        r.advance(t)
        n = r.generated_tokens("s")
        if n is not None:
            seen.append(n)
    assert seen == list(range(1, 20))  # the 20th token finishes the request
    assert r.generated_tokens("s") is None


def test_abort_frees_the_request() -> None:
    r = llm.Replica(TINY)
    r.submit(0.0, req("a", out=100))
    r.submit(0.0, req("b", out=100))
    r.advance(0.05)
    assert r.abort(0.05, "a") and not r.abort(0.05, "nope")
    events = r.advance(0.05) + run_all(r)
    done = finished(events)
    assert done["a"].reason == "abort" and 0 < done["a"].output_tokens < 100
    assert done["b"].reason == "length"
    assert r.stats.request_success == {"stop": 0, "length": 1, "abort": 1}
    assert r.kv_cache_usage == 0.0


def test_bad_requests_and_backward_time_are_refused() -> None:
    r = llm.Replica(TINY)
    with pytest.raises(ValueError, match="max_model_len"):
        r.submit(0.0, req("big", inp=TINY.max_model_len, out=1))
    r.submit(1.0, req("a"))
    with pytest.raises(ValueError, match="already"):
        r.submit(1.0, req("a"))
    with pytest.raises(ValueError, match="backwards"):
        r.advance(0.5)


def test_histograms_and_state_are_consistent() -> None:
    poisson = llm.Replica(TINY)
    for i in range(20):
        poisson.submit(i * 0.01, req(i, inp=64, out=16))
    r0 = poisson.state()
    assert 0 < r0.kv_cache_usage <= 1 and r0.running == TINY.max_num_seqs and r0.waiting > 0
    run_all(poisson)
    st = poisson.stats
    assert st.e2e_request_latency.count == 20 == st.request_success["length"]
    assert st.inter_token_latency.count == st.generation_tokens - 20
    assert st.time_to_first_token.cumulative()[-1][1] == 20
    assert st.e2e_request_latency.quantile(0.5) is not None
    assert poisson.state().busy_seconds <= poisson.state().time + 1e-9


def test_decode_is_leapt_not_stepped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Speed sanity without a clock: segments processed are far fewer than tokens generated."""
    calls = 0
    original = llm.Replica._complete

    def counting(self: llm.Replica, j: int) -> None:
        nonlocal calls
        calls += 1
        original(self, j)

    monkeypatch.setattr(llm.Replica, "_complete", counting)
    r = llm.Replica(presets.get("llama2-70b-h100-tp8"))
    for i in range(200):
        r.submit(i * 0.5, req(i, inp=500, out=300))
    run_all(r)
    assert r.stats.generation_tokens == 200 * 300
    assert calls < r.stats.generation_tokens / 20


def test_block_accounting_holds_under_random_pressure() -> None:
    """White-box invariant: used blocks equal what the live sequences hold, at every step."""
    small = dataclasses.replace(TINY, kv_cache_tokens=2048, max_model_len=1024, max_num_seqs=16)
    r = llm.Replica(small)
    rng = random.Random(99)

    def held() -> int:
        total = 0
        for s in r._running.values():
            tokens = s.prefill_total + (r._step - s.s0 if s.state == 2 else 0)
            total += -(-tokens // small.block_size)
        return total

    events: list[llm.Event] = []
    t = 0.0
    for i in range(150):
        t += rng.expovariate(80.0)
        while (nxt := r.next_event_time()) is not None and nxt <= t:
            events += r.advance(nxt)
            assert r._used_blocks == held() and r.kv_cache_usage <= 1.0
        events += r.advance(t)
        r.submit(t, req(i, inp=rng.randint(10, 500), out=rng.randint(1, 400)))
    while (nxt := r.next_event_time()) is not None:
        events += r.advance(nxt)
        assert r._used_blocks == held()
    done = finished(events)
    assert len(done) == 150 and r.kv_cache_usage == 0.0 and r.stats.num_preemptions > 0
    assert sum(d.output_tokens for d in done.values()) == r.stats.generation_tokens
