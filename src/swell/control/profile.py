"""One replica's capacity profile for the planner, from the engine model the recipe's service runs.

The same engine preset the simulator and the simulated server use (`engines`, chosen by the
simulator's `engine_factory`, which honours the vLLM flags in `service.args`) becomes plain
`core.capacity.Profile` data, so the pure policy never imports an engine. A service with no known
engine model gets None: the planner then leaves the decision to its reactive rules. So does an
engine the presets do not describe (llama.cpp on a CPU, a `command`; `catalog.Engine.modelled`) unless
the recipe names a `service.preset`: the LLM preset the simulator stands in for it is not its capacity.
"""

from __future__ import annotations

from swell import errors, recipe
from swell.clusters.sim import replicas
from swell.core import capacity, load
from swell.core.policies import workers as workers_policy
from swell.engines import catalog, fixed, presets


def e2e_warning(rec: recipe.Recipe) -> str:
    """`capacity.e2e_out_of_reach` for a recipe whose policy plans on the engine's model ('' for any
    other policy, or an engine without one)."""
    if rec.autoscaling.policy not in load.POLICIES:
        return ""
    prof = of(rec)
    return "" if prof is None else capacity.e2e_out_of_reach(prof, rec.slo.e2e_s, rec.slo.percentile)


def check(rec: recipe.Recipe, source: str) -> None:
    """A `service.preset` the recipe names is a known engine model (errors.RecipeError from `source`
    otherwise). Engine flags are not checked here: against the stand-in model of an engine the presets
    do not describe they would refuse what the real engine runs (a 32k context on a model the
    stand-in gives 8k); the simulator, which runs that stand-in, checks them."""
    if why := catalog.preset_problem(rec.service.preset):
        raise errors.RecipeError(source, [errors.Problem(path="service.preset", value=rec.service.preset, rule=why)])


def of(rec: recipe.Recipe) -> capacity.Profile | None:
    if not catalog.ENGINES[rec.service.engine].modelled and rec.service.preset is None:
        return None
    try:
        kind, preset = replicas.engine_factory(rec)
    except errors.SwellError:
        return None
    if kind == "llm" and isinstance(preset, presets.LlmPreset):
        return capacity.Profile(
            kind="llm",
            source=preset.name,
            prefill_base_s=preset.prefill_base_s,
            prefill_per_token_s=preset.prefill_per_token_s,
            prefill_per_token_pair_s=preset.prefill_per_token_pair_s,
            decode_base_s=preset.decode_base_s,
            decode_per_seq_s=preset.decode_per_seq_s,
            decode_per_context_token_s=preset.decode_per_context_token_s,
            max_num_seqs=preset.max_num_seqs,
            kv_cache_tokens=preset.kv_cache_tokens,
        )
    if kind == "fixed" and isinstance(preset, fixed.ServicePreset):
        workers = preset.workers
        if rec.workers is not None:  # the most workers a replica runs: max_workers, or what its memory holds
            workers = rec.workers.max_workers
            cap = workers_policy.memory_cap(rec.workers, rec.resources.memory_gib, ())
            if cap is not None:
                workers = min(workers, max(cap.workers, rec.workers.min_workers))
        return capacity.Profile(
            kind="classic", source=preset.name, service_s=preset.mean_s, workers=max(1, workers)
        )
    return None
