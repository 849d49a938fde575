"""The default local recipe scales on the gateway's concurrency: the simulator emits that too."""

from __future__ import annotations

from importlib import resources

from swell import recipe
from swell.runtime import sim
from swell.workload import arrivals, spec

SURGE = "black-friday:base=0.5,surge=6,start=30s,ramp=10s,plateau=60s,decay=20s"


def test_the_default_recipe_scales_in_the_simulator_on_gateway_concurrency() -> None:
    text = resources.files("swell").joinpath("data/default-recipe.yaml").read_text()
    rec = recipe.load_text(text, "default-recipe.yaml")
    assert rec.autoscaling.signals[0].metric == "swell_gateway_concurrency_seconds_total"
    w = spec.parse(SURGE)
    run = sim.simulate(
        rec, arrivals.collect(w, seed=0, horizon_s=180), horizon_s=180, policy="recipe", seed=0
    )
    readings = [d for d in run.decisions if d.bound_by != "no_data"]
    assert len(readings) == len(run.decisions)  # the signal always had a value
    assert max(run.timeline.desired) >= 2  # the surge was seen and met
    assert run.timeline.desired[-1] < max(run.timeline.desired)  # and back down after it
