"""The engine table: one entry per engine a recipe can name, read by the local cluster, the
renderer and the simulator."""

from __future__ import annotations

import importlib.util
import typing

from swell import recipe
from swell.clusters.local import engines as local_engines
from swell.clusters.sim import replicas
from swell.engines import catalog, fixed


def test_every_engine_a_recipe_names_has_one_entry() -> None:
    assert set(catalog.ENGINES) == set(typing.get_args(recipe.EngineName))


def test_each_built_in_server_module_exists_and_the_local_cluster_runs_it() -> None:
    for name, module in catalog.server_modules().items():
        assert importlib.util.find_spec(module) is not None, name
    assert catalog.server_modules() == local_engines.SERVER_MODULES


def test_a_classic_engine_is_simulated_on_its_fixed_preset_and_the_rest_as_llms() -> None:
    for name, engine in catalog.ENGINES.items():
        if engine.classic_preset is not None:
            assert engine.classic_preset in fixed.PRESETS, name
    rec = recipe.parse({"service": {"name": "iris", "engine": "sklearn-iris"}})
    assert replicas.engine_factory(rec)[0] == "fixed"
    llm = recipe.parse({"service": {"name": "chat", "engine": "simulated-llm"}})
    assert replicas.engine_factory(llm)[0] == "llm"
