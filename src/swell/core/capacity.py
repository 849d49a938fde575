"""What one replica sustains within the SLO, for the current request mix: the planner's capacity model.

A `Profile` is plain data (an engine's timings or a classic model's service time), built above
core from `swell.engines` and handed to the policy in the snapshot; core never imports engines.
`rps(profile, mix, slo)` is the request rate one replica serves within the SLO; the planner
corrects it online with a bounded factor (`correct`) from what replicas are seen to serve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

UTILIZATION = 0.7  # the share of its full-batch throughput an LLM replica serves within the SLO: queueing
# for the KV cache and for prefill behind long prompts sets in well before full throughput. Measured on the
# engine model, one replica alone (bench/replica_capacity.py, docs/benchmarks.md): 99 % within the scorecard's
# SLO up to 0.7x on the Azure conversation mix (Llama 3 8B, A10), up to 0.4x on its x8 long-prompt variant
# (128k, H100); replicas behind one gateway pool their queues and do better. The online factor corrects the rest
FACTOR_MIN, FACTOR_MAX = 0.5, 2.0  # how far the online correction may move the engine's model
UP_RATE = 0.05  # the share of the gap to what replicas serve that one decision closes, upward
DOWN_BAND = 0.6  # replicas serving less than this share of the current model are not saturated
PROMPT_SPREAD = 1.9  # E[n²] / E[n]² of prompt lengths: the attention term grows with n², so the mean
# prompt under-counts it; 1.9 on both Azure 2023 traces (conversation and code) and their ×8 long variant
SATURATED_SHARE = 0.9  # what a replica sustains within the SLO, as a share of what it serves saturated:
# a queue of requests always waiting is the one time a replica shows its full throughput (the planner
# otherwise keeps replicas below its model, where they never show more). Black-friday's surge, 4 ready
# replicas shedding at the deadline, showed x1.5 of the model: the plateau then took 10 replicas, not 12
# (30.6 -> 27.0 GPU-h, no more misses); 0.8 moved nothing, 1.0 planned so close that it ran short
KV_FILL = 0.9  # share of the KV cache the batch may fill before vLLM starts preempting
E2E_BUDGET = 0.8  # the share of the e2e SLO a mean request's decode steps may take (the rest: prefill, a wait)


@dataclass(frozen=True, kw_only=True)
class Profile:
    """One replica's performance model. LLM: a continuous-batching step model (vLLM-like);
    classic: `workers` servers of `service_s` each."""

    kind: Literal["llm", "classic"]
    source: str = ""  # where the numbers come from (an engine preset's name)
    # llm: prefill = prefill_base_s + prefill_per_token_s x tokens; a decode step = decode_base_s
    # + decode_per_seq_s x batch + decode_per_context_token_s x cached tokens
    prefill_base_s: float = 0.0
    prefill_per_token_s: float = 0.0
    prefill_per_token_pair_s: float = 0.0  # attention: each prompt token attends to those before it
    decode_base_s: float = 0.0
    decode_per_seq_s: float = 0.0
    decode_per_context_token_s: float = 0.0
    max_num_seqs: int = 256
    kv_cache_tokens: int = 0
    default_input_tokens: float = 1000.0  # the mix assumed before any request is seen
    default_output_tokens: float = 250.0
    # classic
    service_s: float = 0.0
    workers: int = 1


@dataclass(frozen=True, kw_only=True)
class Mix:
    """Mean tokens per request (ignored by classic profiles)."""

    input_tokens: float
    output_tokens: float


PRIOR_REQUESTS = 10.0  # the profile's default mix weighs as much as this many observed requests (50 kept
# a local service at 0.3 req/s on the default mix for minutes: 6 replicas planned for 1 replica's load)


def mix_of(profile: Profile, requests_s: float | None, prompt_s: float | None, generation_s: float | None,
           seen_s: float = math.inf) -> Mix:  # fmt: skip
    """The mix from counter rates (tokens/s ÷ requests/s) over `seen_s` seconds, shrunk toward the
    profile's default by PRIOR_REQUESTS (a few first requests do not make a mix)."""
    default = Mix(input_tokens=profile.default_input_tokens, output_tokens=profile.default_output_tokens)
    if requests_s is None or requests_s <= 1e-9 or prompt_s is None or generation_s is None:
        return default
    n = requests_s * seen_s
    w = 1.0 if math.isinf(n) else n / (n + PRIOR_REQUESTS)
    seen_in, seen_out = max(1.0, prompt_s / requests_s), max(1.0, generation_s / requests_s)
    return Mix(
        input_tokens=w * seen_in + (1 - w) * default.input_tokens,
        output_tokens=w * seen_out + (1 - w) * default.output_tokens,
    )


def batch_limit(p: Profile, mix: Mix, e2e_s: float | None = None) -> float:
    """Largest decode batch: max_num_seqs, the KV cache, and (with an e2e SLO) the step time
    that still finishes `output_tokens` steps within it."""
    context = mix.input_tokens + mix.output_tokens / 2.0
    b = float(p.max_num_seqs)
    if p.kv_cache_tokens > 0:
        b = min(b, KV_FILL * p.kv_cache_tokens / context)
    if e2e_s is not None and mix.output_tokens > 0:
        step = E2E_BUDGET * e2e_s / mix.output_tokens
        per_seq = p.decode_per_seq_s + p.decode_per_context_token_s * context
        if per_seq > 0:
            b = min(b, max(1.0, (step - p.decode_base_s) / per_seq))
    return max(1.0, b)


def seconds_per_request(p: Profile, mix: Mix, e2e_s: float | None = None) -> float:
    """Replica-seconds one request costs at the largest allowed batch (the base step cost shared)."""
    if p.kind == "classic":
        return p.service_s / max(1, p.workers)
    b = batch_limit(p, mix, e2e_s)
    context = mix.input_tokens + mix.output_tokens / 2.0
    decode = mix.output_tokens * (
        p.decode_base_s / b + p.decode_per_seq_s + p.decode_per_context_token_s * context
    )
    n = mix.input_tokens
    prefill = p.prefill_per_token_s * n + p.prefill_per_token_pair_s * PROMPT_SPREAD * n * n / 2.0
    return max(1e-9, decode + prefill)


def rps(p: Profile, mix: Mix, e2e_s: float | None = None, target: float | None = None) -> float:
    """Requests/s one replica serves within the SLO: `utilization(p, target)` of its full-batch
    throughput (UTILIZATION for an LLM; a classic model's workers at their full rate, as nothing
    here measured theirs: its online factor corrects it)."""
    return utilization(p, target) / seconds_per_request(p, mix, e2e_s)


def utilization(p: Profile, target: float | None = None) -> float:
    """The share of its full throughput a replica is planned at: `target` (the recipe's
    autoscaling.target_utilization), else UTILIZATION for an LLM and 1.0 for a classic model."""
    if target is not None:
        return target
    return UTILIZATION if p.kind == "llm" else 1.0


def saturated_share(p: Profile, target: float | None = None) -> float:
    """SATURATED_SHARE, moved with the recipe's target against the default (a target below it
    keeps that much more headroom after a burst too), at most 1."""
    return min(1.0, SATURATED_SHARE * utilization(p, target) / utilization(p))


def correct(factor: float, *, served_per_replica: float, modelled: float, queued_per_replica: float,
            latency_ok: bool | None, undersized: bool = False, saturated: bool = False,
            saturated_share: float = SATURATED_SHARE) -> tuple[float, str]:  # fmt: skip
    """The online correction of the modelled capacity, one bounded step per decision.

    Replicas serving more than modelled with no queue and latency within target: the model is
    pessimistic, move up toward what they serve. A queue building while they serve less than
    modelled but close to it (at least 0.6 of it: replicas far below the model are not saturated,
    their queue comes from a backlog or a burst), the model is optimistic, move down toward what
    they serve. Latency over target without a queue is no evidence against the model: a latency
    quantile still holds the requests of a backlog already drained (black-friday's plateau lowered
    the model to x0.89 on it right after the surge). Never down while `undersized` (fewer ready
    replicas than the current model says the load needs: capacity still on its way, a backlog
    draining, replicas just ready): a queue is then expected and says nothing about the model,
    and a factor lowered by it would stay low, since replicas sized by it are never saturated
    enough to raise it again. `saturated` (a standing queue, and what replicas serve counted by the
    engine, without the requests it aborted): what they serve is their full throughput, and the
    model moves up toward `saturated_share` of it (a burst over capacity shows what the replicas
    can do; up only, as a replica slowed by something else serves less and says nothing)."""
    if modelled <= 0 or served_per_replica <= 0:
        return factor, ""
    seen = served_per_replica / modelled  # observed throughput in units of the current model
    new = factor
    if queued_per_replica < 0.5 and latency_ok is not False and seen > factor:
        new = factor + UP_RATE * (seen - factor)
    elif saturated and saturated_share * seen > factor:
        new = factor + UP_RATE * (saturated_share * seen - factor)
    elif not undersized and queued_per_replica >= 2.0 and DOWN_BAND * factor <= seen < factor:
        new = factor + 0.1 * (seen - factor)
    new = min(FACTOR_MAX, max(FACTOR_MIN, new))
    if math.isclose(new, factor, rel_tol=1e-3):
        return factor, ""
    return new, f"capacity ×{factor:.2f}→×{new:.2f} (replicas serve ×{seen:.2f} of the model)"


def e2e_out_of_reach(p: Profile, e2e_s: float | None, percentile: float) -> str:
    """Why this model would plan one request at a time per replica ('' if it would not): the
    profile's mean answer does not finish within the e2e SLO, less the batch limit's margin, even
    alone (the model sizes the batch for the mean request to meet it, whatever the percentile)."""
    if p.kind != "llm" or e2e_s is None:
        return ""
    mix = mix_of(p, None, None, None)
    if batch_limit(p, mix, e2e_s) > 1.0 or batch_limit(p, mix) <= 1.0:
        return ""
    return (
        f"slo.e2e_s {e2e_s:g} s: a mean request of {p.source} ({mix.input_tokens:.0f}/{mix.output_tokens:.0f} "
        f"tokens in/out) does not finish within {E2E_BUDGET * 100:.0f} % of it even alone, so the capacity "
        f"model plans one request at a time, {rps(p, mix, e2e_s):.2g} req/s a replica, and the planner heads "
        f"for max_replicas (a {percentile:g} % SLO met by short requests alone is not modelled); raise "
        "slo.e2e_s or scale on latency with policy 'reactive'"
    )
