"""Requests through the simulated cluster: routing, the gateway buffer, timeouts, draining, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from swell import recipe
from swell.clusters.sim import cluster, emit, events, outcomes, replicas, router
from swell.core import signals, windows
from swell.workload import arrivals
from tests.clusters.sim.simhelp import sim_recipe


def make(
    rec: recipe.Recipe, options: cluster.Options | None = None, sigs: tuple[recipe.Signal, ...] | None = None
) -> tuple[events.Loop, cluster.Cluster, windows.Store]:
    loop = events.Loop(seed=0)
    sigs = signals.required(rec.autoscaling) if sigs is None else sigs
    store = windows.Store(wanted=signals.metric_names(sigs))
    c = cluster.SimCluster(rec, loop, store, sigs, options)
    return loop, c, store


def feed(c: cluster.Cluster, t: list[float], inp: int = 100, out: int = 20) -> None:
    n = len(t)
    batch = arrivals.Arrivals(
        t=np.asarray(t, dtype=np.float64),
        input_tokens=np.full(n, inp, dtype=np.int64),
        output_tokens=np.full(n, out, dtype=np.int64),
    )
    c.feed(iter([batch]))


def test_least_outstanding_spreads_requests_and_round_robin_cycles() -> None:
    reps = [replicas.SimReplica(i, 0.0) for i in range(3)]
    lor = router.Router("least-outstanding")
    for r in reps:
        lor.add(r)
    reps[0].live.update({1, 2})
    reps[1].live.add(3)
    assert lor.choose() is reps[2]
    reps[2].live.update({4, 5, 6})
    assert lor.choose() is reps[1]
    for r in reps:
        r.live.clear()
    assert {lor.choose().index for _ in range(3)} == {0, 1, 2}  # type: ignore[union-attr]  # ties in turn
    rr = router.Router("round-robin")
    for r in reps:
        rr.add(r)
    assert [rr.choose().index for _ in range(4)] == [1, 2, 0, 1]  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown router"):
        router.Router("random")  # type: ignore[arg-type]


def test_a_capped_router_skips_full_replicas_and_has_no_room_when_all_are() -> None:
    reps = [replicas.SimReplica(i, 0.0) for i in range(2)]
    capped = router.Router("least-outstanding", cap=2)
    for r in reps:
        capped.add(r)
    reps[0].live.update({1, 2})
    reps[1].live.add(3)
    assert capped.choose() is reps[1] and capped.has_room()
    reps[1].live.add(4)
    assert capped.choose() is None and not capped.has_room()


@pytest.mark.parametrize(("cap", "most"), [(0, 10), (2, 2)], ids=["no cap: all ten at once", "cap 2: two at a time"])
def test_max_ongoing_requests_queues_the_rest_in_the_gateway_and_serves_them_all(cap: int, most: int) -> None:
    """One replica, ten requests at once: with max_ongoing_requests 2 it never holds more than two,
    the rest wait in the gateway's buffer and are served as slots free (Knative's containerConcurrency)."""
    rec = sim_recipe(autoscaling={"min_replicas": 1, "max_replicas": 1, "signals": []},
                     local={"max_ongoing_requests": cap})  # fmt: skip
    loop, c, _ = make(rec)
    c.start(0.0)
    feed(c, [1.0 + 0.001 * i for i in range(10)])
    seen: list[int] = []

    def look(now: float, _: object) -> None:
        seen.append(len(c.replicas["replica-1"].live))
        if now < 200:
            loop.at(now + 0.05, events.CONTROL, look, None)

    loop.at(1.01, events.CONTROL, look, None)
    loop.run(until=300.0)
    c.finish(300.0)
    assert max(seen) == most
    assert (c.requests.arrays().status == outcomes.SERVED).all()


def test_requests_are_served_and_recorded_with_their_latencies() -> None:
    loop, c, _ = make(sim_recipe(autoscaling={"min_replicas": 2, "max_replicas": 2, "signals": []}))
    c.start(0.0)
    feed(c, [0.5 * i for i in range(20)])
    loop.run(until=60.0)
    c.finish(60.0)
    r = c.requests.arrays()
    assert len(r.status) == 20 and (r.status == outcomes.SERVED).all()
    assert (r.ttft > 0).all() and (r.e2e >= r.ttft).all()
    counts = [
        rep.engine.histograms()["e2e_request_latency_seconds"].count
        for rep in c.replicas.values()
        if rep.engine
    ]
    assert counts == [10, 10]  # idle replicas tie: taken in turn


def test_without_a_ready_replica_requests_wait_in_the_buffer_then_time_out() -> None:
    rec = sim_recipe(autoscaling={"min_replicas": 0, "max_replicas": 1}, local={"buffer_requests": 3})
    loop, c, _ = make(rec, cluster.Options(request_timeout_s=30.0, initial_replicas=0))
    c.start(0.0)
    feed(c, [1.0, 2.0, 3.0, 4.0, 5.0])
    loop.run(until=100.0)
    c.finish(100.0)
    status = c.requests.arrays().status.tolist()
    assert status == [outcomes.TIMED_OUT] * 3 + [outcomes.DROPPED] * 2  # buffer of 3, then 503s


def test_a_buffered_request_is_served_once_a_replica_is_ready() -> None:
    rec = sim_recipe(autoscaling={"min_replicas": 0, "max_replicas": 1})
    loop, c, _ = make(rec, cluster.Options(initial_replicas=0, request_timeout_s=3000.0))
    c.start(0.0)
    feed(c, [1.0])
    loop.at(2.0, events.CONTROL, lambda now, _: c.set_target(now, 1))
    loop.run(until=2000.0)
    c.finish(2000.0)
    r = c.requests.arrays()
    ready = c.replicas["replica-1"].timeline["ready"]
    assert r.status.tolist() == [outcomes.SERVED]
    assert r.ttft[0] > ready - 1.0  # it waited for the cold start


def test_a_terminating_replica_drains_then_drops_what_outlives_the_grace_period() -> None:
    rec = sim_recipe(autoscaling={"min_replicas": 1, "max_replicas": 1, "signals": []})
    loop, c, _ = make(rec, cluster.Options(grace_period_s=5.0))
    c.start(0.0)
    feed(c, [0.0, 0.0], out=2000)  # long generations: still running when the replica goes
    loop.at(1.0, events.CONTROL, lambda now, _: c.set_target(now, 0))
    loop.run(until=100.0)
    c.finish(100.0)
    gone = c.gone[0]
    assert gone.timeline["terminating"] == 1.0 and gone.timeline["gone"] == 6.0
    assert c.requests.arrays().status.tolist() == [outcomes.DROPPED] * 2


@pytest.mark.parametrize(
    ("slo", "local", "expect"),
    [
        pytest.param({"e2e_s": 600.0}, {}, outcomes.SERVED,
                     id="answers the e2e SLO lets run for minutes finish: the drain is the SLO, not 30 s"),
        pytest.param({}, {"drain_timeout_s": 600.0}, outcomes.SERVED, id="or local.drain_timeout_s where longer"),
        pytest.param({}, {}, outcomes.DROPPED, id="without either, the 30 s drain cuts them, as swell up does"),
    ],
)  # fmt: skip
def test_a_replica_scaled_down_drains_for_the_recipes_drain(slo: dict[str, float], local: dict[str, float],
                                                            expect: int) -> None:  # fmt: skip
    rec = sim_recipe(autoscaling={"min_replicas": 1, "max_replicas": 1, "signals": []}, slo=slo, local=local)
    loop, c, _ = make(rec)
    c.start(0.0)
    feed(c, [0.0] * 100, out=4000)  # a batch of long answers: the last finish well after 30 s
    loop.at(1.0, events.CONTROL, lambda now, _: c.set_target(now, 0))
    loop.run(until=2000.0)
    c.finish(2000.0)
    status, gone = c.requests.arrays().status.tolist(), c.gone[0].timeline["gone"]
    if expect == outcomes.SERVED:
        assert status == [outcomes.SERVED] * 100 and gone > 31.0
    else:
        assert outcomes.DROPPED in status and gone == 31.0


def test_metrics_carry_vllm_names_labels_and_only_the_buckets_a_signal_reads() -> None:
    frac = recipe.Signal(name="slow", kind="histogram_fraction", metric="vllm:e2e_request_latency_seconds",
                         le=5.0, target=0.5, window_s=60)  # fmt: skip
    gauge = recipe.Signal(name="w", kind="gauge", metric="vllm:num_requests_waiting", target=1)
    util = recipe.Signal(name="g", kind="utilization", resource="gpu", target=50)
    rec = sim_recipe(autoscaling={"min_replicas": 1, "max_replicas": 1, "signals": []})
    loop, c, store = make(rec, sigs=(frac, gauge, util))
    c.start(0.0)
    feed(c, [0.1 * i for i in range(50)])
    loop.every(0.0, 1.0, events.SCRAPE, c.scrape)
    loop.run(until=30.0)
    assert store.names() == sorted(["DCGM_FI_DEV_GPU_UTIL", "vllm:e2e_request_latency_seconds_bucket",
                                    "vllm:num_requests_waiting"])  # fmt: skip
    les = sorted(dict(lb)["le"] for lb, _ in store.select("vllm:e2e_request_latency_seconds_bucket"))
    assert les == ["+Inf", "5.0"]
    labels = dict(next(iter(store.select("vllm:num_requests_waiting")))[0])
    assert labels == {"replica": "replica-1", "model_name": "chat"}
    reading = signals.evaluate(frac, store, 30.0, rec.resources)
    assert reading.ok and reading.value == 0.0  # tiny requests: none slower than 5 s
    util_now = signals.evaluate(util, store, 30.0, rec.resources).value
    assert util_now is not None and 0.0 < util_now <= 100.0
    assert emit.le_label(math.inf) == "+Inf" and emit.le_label(0.25) == "0.25"


def test_a_classic_model_runs_on_workers_and_reports_cpu() -> None:
    rec = sim_recipe(
        service={"engine": "sklearn-iris", "preset": None},
        resources={"gpus": 0, "cpu": 1},
        workers={"min_workers": 2, "max_workers": 4},
        autoscaling={"min_replicas": 1, "max_replicas": 1, "signals": []},
    )
    cpu = recipe.Signal(name="cpu", kind="utilization", resource="cpu", target=50)
    loop, c, store = make(rec, sigs=(cpu,))
    assert c.kind == "fixed" and c.preset.workers == 2  # type: ignore[attr-defined]
    c.start(0.0)
    feed(c, [0.01 * i for i in range(500)])
    loop.every(0.0, 1.0, events.SCRAPE, c.scrape)
    loop.run(until=10.0)
    c.finish(10.0)
    assert (c.requests.arrays().status == outcomes.SERVED).all()
    used = signals.evaluate(cpu, store, 10.0, rec.resources).value
    assert used is not None and 0.0 < used < 100.0


@pytest.mark.parametrize(
    ("preset", "dropped"),
    [("llama3.1-8b-128k-h100", 0), ("llama3-8b-h100", 3)],
    ids=["128k preset: nothing dropped", "8k preset: the three prompts past 8192 dropped"],
)
def test_a_long_context_trace_fits_a_128k_preset(preset: str, dropped: int) -> None:
    inputs = [500, 2_000, 6_000, 9_000, 30_000, 100_000]  # a heavy tail up to 100k tokens
    rec = sim_recipe(
        service={"engine": "vllm", "preset": preset},
        autoscaling={"min_replicas": 2, "max_replicas": 2, "signals": []},
    )
    loop, c, _ = make(rec)
    c.start(0.0)
    batch = arrivals.Arrivals(
        t=np.arange(len(inputs), dtype=np.float64),
        input_tokens=np.asarray(inputs, dtype=np.int64),
        output_tokens=np.full(len(inputs), 200, dtype=np.int64),
    )
    c.feed(iter([batch]))
    loop.run(until=300.0)
    c.finish(300.0)
    status = c.requests.arrays().status
    assert int((status == outcomes.DROPPED).sum()) == dropped
    assert int((status == outcomes.SERVED).sum()) == len(inputs) - dropped


def test_the_corrino_a10_example_simulates_on_a10s_with_a_cost() -> None:
    from pathlib import Path

    from swell.runtime import sim
    from swell.workload import spec

    rec = recipe.load(Path(__file__).parent.parent.parent.parent / "examples" / "corrino-a10-advanced.json")
    kind, preset = replicas.engine_factory(rec)
    assert kind == "llm" and preset.gpu == "a10-24gb" and preset.gpus == 2  # type: ignore[attr-defined]
    batch = arrivals.collect(spec.parse("poisson:rate=1"), seed=0, horizon_s=60.0)
    run = sim.simulate(rec, batch, horizon_s=60.0, policy="corrino-keda")
    assert run.gpu_hours > 0 and run.cost == run.gpu_hours * 2.0


@pytest.mark.parametrize(
    ("service", "shape", "preset", "where"),
    [
        ({"model": "openai-community/gpt2"}, "VM.GPU.A10.1", "gpt2-a10", "for openai-community/gpt2 on VM.GPU.A10.1"),
        ({"args": ["--model", "gpt2"]}, "VM.GPU.A10.1", "gpt2-a10", "for gpt2 on VM.GPU.A10.1"),
        ({"model": "gpt2"}, "BM.GPU.H100.8", "gpt2-h100", "for gpt2 on BM.GPU.H100.8"),
        ({"model": "gpt2", "preset": "tiny-cpu"}, "VM.GPU.A10.1", "tiny-cpu", "named in the recipe"),
        ({"model": "gpt2", "preset": "gpt2-a10"}, "VM.GPU.A10.1", "gpt2-a10", "for gpt2 on VM.GPU.A10.1"),
        ({"model": "gpt2"}, "BM.GPU.L40S.4", replicas.DEFAULT_LLM_PRESET, "default: no preset for gpt2 on BM.GPU.L40S.4"),
        ({"model": "gpt2"}, "x", replicas.DEFAULT_LLM_PRESET, "default: no preset for gpt2 on x"),
    ],
    ids=["model on A10", "model from args", "H100 node", "a named preset wins", "named and the shape's agree",
         "no preset for the shape's GPU: default", "not a GPU shape: default"],
)  # fmt: skip
def test_the_simulator_runs_the_preset_for_the_recipes_model_and_shape(
    service: dict[str, object], shape: str, preset: str, where: str
) -> None:
    gpus = {"BM.GPU.H100.8": 8, "BM.GPU.L40S.4": 4}.get(shape, 1)
    rec = sim_recipe(
        service={"name": "gpt2", "engine": "vllm", "preset": None, **service},
        node_pool={"shape": shape, "gpus_per_node": gpus},
    )
    kind, chosen = replicas.engine_factory(rec)
    assert kind == "llm" and chosen.name == preset  # type: ignore[attr-defined]
    assert replicas.llm_preset_choice(rec) == (preset, where)
    assert replicas.engine_note(rec) == f"engine: {preset} ({where})"


def test_the_comparisons_caption_names_the_engine_the_flagship_example_runs() -> None:
    from pathlib import Path

    from typer.testing import CliRunner

    from swell.cli import main

    example = Path(__file__).parent.parent.parent.parent / "examples" / "gpt2-vllm-latency-hpa.yaml"
    res = CliRunner().invoke(
        main.app,
        ["simulate", str(example), "-w", "poisson:rate=2", "--duration", "60s", "--compare", "recipe", "-q"],
    )
    assert res.exit_code == 0, res.output
    assert "engine: gpt2-a10 (for openai-community/gpt2 on VM.GPU.A10.1)" in res.output
    assert "out of reach even one request at a time" not in res.output  # llama3-8b-h100's verdict before
