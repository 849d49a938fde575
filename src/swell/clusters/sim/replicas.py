"""Simulated replicas: their lifecycle and the engine performance model each one runs.

A replica is pending until bound to a node, then starting (image pull, model load, readiness
probe), ready (served by the router), terminating (draining its requests within the grace period)
and gone. LLM services run `swell.engines.llm` (continuous batching); classic models run
`swell.engines.fixed` (workers and a service-time distribution). Both sit behind one small API;
a classic model's workers can also be resized (the loop's worker decisions).
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Literal, NamedTuple

from swell import errors, gpu_shapes, recipe
from swell.clusters.sim import nodes
from swell.core import snapshot, windows
from swell.engines import catalog, fixed, llm, presets, stats, vllm_flags

State = Literal["pending", "starting", "ready", "terminating", "gone"]
DEFAULT_LLM_PRESET = "llama3-8b-h100"


class Done(NamedTuple):
    """A request the engine is finished with: served (ok) or aborted."""

    rid: int
    ok: bool
    ttft: float | None
    e2e: float


class LlmEngine:
    """`engines.llm.Replica` behind the simulator's engine API."""

    __slots__ = ("preset", "replica")

    def __init__(self, preset: presets.LlmPreset) -> None:
        self.preset = preset
        self.replica = llm.Replica(preset)

    def submit(self, now: float, rid: int, input_tokens: int, output_tokens: int) -> bool:
        self.replica.submit(
            now, llm.Request(id=str(rid), input_tokens=input_tokens, output_tokens=output_tokens)
        )
        return True

    def abort(self, now: float, rid: int) -> bool:
        return self.replica.abort(now, str(rid))

    def answering(self, rid: int) -> bool:
        return self.replica.answering(str(rid))

    def advance(self, until: float) -> list[Done]:
        return [
            Done(int(e.request_id), e.reason != "abort", e.ttft, e.e2e)
            for e in self.replica.advance(until)
            if type(e) is llm.Finished
        ]

    def next_event_time(self) -> float | None:
        return self.replica.next_event_time()

    def gauges(self, now: float) -> tuple[int, int, float, float]:
        """(running, waiting, KV cache usage 0..1, busy seconds so far)."""
        r = self.replica
        return r.num_running, r.num_waiting, r.kv_cache_usage, r.busy_seconds(now)

    def histograms(self) -> dict[str, stats.Histogram]:
        return self.replica.stats.histograms()

    def counters(self) -> dict[str, float]:
        st = self.replica.stats
        return {"prompt_tokens": st.prompt_tokens, "generation_tokens": st.generation_tokens}

    def successes(self) -> dict[str, int]:
        return self.replica.stats.request_success

    @property
    def fb_used_mib(self) -> float:
        return self.preset.fb_used_mib

    def max_tokens(self) -> int:
        return self.preset.max_model_len


class FixedEngine:
    """`engines.fixed.Service` (a classic model with workers) behind the same API."""

    __slots__ = ("preset", "service")

    def __init__(self, preset: fixed.ServicePreset, rng: random.Random) -> None:
        self.preset = preset
        self.service = fixed.Service(preset, rng)

    def submit(self, now: float, rid: int, input_tokens: int, output_tokens: int) -> bool:
        return self.service.submit(now, str(rid))

    def abort(self, now: float, rid: int) -> bool:
        return self.service.abort(now, str(rid))

    def answering(self, rid: int) -> bool:
        return self.service.answering(str(rid))

    def advance(self, until: float) -> list[Done]:
        return [
            Done(int(e.request_id), e.reason == "ok", e.latency if e.reason == "ok" else None, e.latency)
            for e in self.service.advance(until)
        ]

    def next_event_time(self) -> float | None:
        return self.service.next_event_time()

    def gauges(self, now: float) -> tuple[int, int, float, float]:
        s = self.service.state(now)
        return s.busy, s.queued, 0.0, s.busy_seconds / max(1, s.workers)

    def histograms(self) -> dict[str, stats.Histogram]:
        st = self.service.stats
        return {
            "e2e_request_latency_seconds": st.latency,
            "time_to_first_token_seconds": st.latency,
            "request_queue_time_seconds": st.queue_time,
        }

    def counters(self) -> dict[str, float]:
        return {}

    def successes(self) -> dict[str, int]:
        st = self.service.stats
        return {"stop": st.requests, "abort": st.aborted}

    @property
    def fb_used_mib(self) -> float:
        return 0.0

    def max_tokens(self) -> int:
        return 1 << 62

    @property
    def workers(self) -> int:
        return self.service.workers

    def queue(self) -> int:
        """Requests at the replica, waiting or being served (call after advancing to now)."""
        s = self.service.state()
        return s.busy + s.queued

    def set_workers(self, now: float, workers: int) -> None:
        self.service.set_workers(now, workers)


Engine = LlmEngine | FixedEngine


def engine_factory(rec: recipe.Recipe) -> tuple[str, object]:
    """('llm', LlmPreset) or ('fixed', ServicePreset) for the recipe's service; bad names are errors."""
    svc = rec.service
    name = svc.preset
    classic = catalog.ENGINES[svc.engine].classic_preset
    if classic is not None or (name is not None and name in fixed.PRESETS):
        chosen = name or classic or "sklearn-cpu"
        if chosen not in fixed.PRESETS:
            raise _bad_preset(chosen, sorted(fixed.PRESETS))
        preset = fixed.PRESETS[chosen]
        if rec.workers is not None:  # a replica starts at the floor; the loop's worker decisions resize it
            preset = dataclasses.replace(preset, workers=rec.workers.min_workers)
        return "fixed", preset
    chosen, _ = llm_preset_choice(rec)
    if chosen not in presets.PRESETS:
        raise _bad_preset(chosen, sorted(presets.PRESETS) + sorted(fixed.PRESETS))
    return "llm", _server_flags(presets.PRESETS[chosen], svc)


def llm_preset_choice(rec: recipe.Recipe) -> tuple[str, str]:
    """The LLM engine preset the recipe runs and where it came from: `service.preset`, else the preset
    for its model on its node shape's GPU (gpu_shapes), else DEFAULT_LLM_PRESET."""
    svc, shape = rec.service, rec.node_pool.shape
    model = svc.model or gpu_shapes.served_model(svc.args) or "an unnamed model"
    found = gpu_shapes.llm_preset(shape, model, gpu_shapes.tensor_parallel(svc.args))
    if svc.preset and svc.preset != found:  # a Corrino payload's preset is the one for its shape
        return svc.preset, "named in the recipe"
    if found is not None:
        return found, f"for {model} on {shape}"
    return DEFAULT_LLM_PRESET, f"default: no preset for {model} on {shape}"


def engine_note(rec: recipe.Recipe) -> str:
    """The caption line naming the engine preset a run simulates, and why that one."""
    kind, preset = engine_factory(rec)
    assert isinstance(preset, presets.LlmPreset | fixed.ServicePreset)
    if kind == "llm":
        where = llm_preset_choice(rec)[1]
    else:
        where = "named in the recipe" if rec.service.preset else f"for engine {rec.service.engine}"
    return f"engine: {preset.name} ({where})"


def _server_flags(preset: presets.LlmPreset, svc: recipe.Service) -> presets.LlmPreset:
    """The engine flags in `service.args`, so the simulator runs the engine the replica runs: vLLM's
    (--max-model-len, --max-num-seqs, --max-num-batched-tokens, --gpu-memory-utilization,
    --tensor-parallel-size) for vllm and simulated-llm, and the simulated server's --time-scale."""
    if svc.engine not in ("simulated-llm", "vllm"):
        return preset
    try:
        if svc.engine == "simulated-llm":
            scale = vllm_flags.find(svc.args, ("--time-scale",))
            if scale:
                preset = preset.scaled(float(scale["--time-scale"]))
        preset = vllm_flags.apply(preset, vllm_flags.find(svc.args))
    except ValueError as exc:
        raise errors.RecipeError(
            "recipe", [errors.Problem(path="service.args", value=list(svc.args), rule=str(exc))]
        ) from None
    return preset


def _bad_preset(name: str, known: list[str]) -> errors.RecipeError:
    return errors.RecipeError(
        "recipe",
        [
            errors.Problem(
                path="service.preset", value=name, rule=f"unknown engine preset; known: {', '.join(known)}"
            )
        ],
    )


def make_engine(kind: str, preset: object, rng: random.Random) -> Engine:
    if kind == "llm":
        assert isinstance(preset, presets.LlmPreset)
        return LlmEngine(preset)
    assert isinstance(preset, fixed.ServicePreset)
    return FixedEngine(preset, rng)


class SimReplica:
    """One replica's state, its node, its engine (once started) and the requests it holds."""

    __slots__ = ("busy_mark", "created_at", "engine", "index", "live", "name", "node", "series", "state",
                 "timeline", "wake_seq", "workers")  # fmt: skip

    def __init__(self, index: int, now: float) -> None:
        self.index = index
        self.name = f"replica-{index}"
        self.created_at = now
        self.state: State = "pending"
        self.node: nodes.Node | None = None
        self.engine: Engine | None = None
        self.live: set[int] = set()  # request ids routed here and not finished
        self.timeline: dict[str, float] = {"created": now}
        self.wake_seq = 0
        self.busy_mark = (now, 0.0)  # (t, busy seconds) at the last scrape, for GPU utilisation
        self.series: dict[object, windows.Series] = {}  # its metric series, once scraped
        self.workers = 0  # the worker count set on a classic model (some may still be starting)

    @property
    def outstanding(self) -> int:
        return len(self.live)

    def info(self) -> snapshot.Replica:
        state: snapshot.ReplicaState = "terminating"
        if self.state in ("pending", "starting", "ready"):
            state = self.state
        reason = ""
        if self.state == "pending":
            reason = "Unschedulable: Insufficient nvidia.com/gpu"
        elif self.state == "starting":
            reason = "pulling image / loading model"
        return snapshot.Replica(name=self.name, state=state, reason=reason)


def ready_time(pulled: float, load_s: float, probe: recipe.Probe) -> float:
    """First readiness probe at or after the model is loaded (probes every period after the delay)."""
    first = pulled + probe.initial_delay_s
    if pulled + load_s <= first:
        return first
    k = math.ceil(round((pulled + load_s - first) / probe.period_s, 9))
    return first + k * probe.period_s
