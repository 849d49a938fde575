"""The simulator's report: the planner's load, forecast and plan drawn beside what happened."""

from __future__ import annotations

import numpy as np

from swell.clusters.sim import report
from swell.runtime import sim
from swell.workload import spec
from tests.clusters.sim.simhelp import SURGE, surge_recipe


def test_the_planner_figure_shows_its_forecast_and_plan_and_other_policies_do_not() -> None:
    comp = sim.compare(surge_recipe(), spec.parse(SURGE), ["planner", "swell"], seed=3, with_oracle=False,
                       with_baselines=False)  # fmt: skip
    planner, swell = comp.runs
    series = report.planner_series(planner, 60.0)
    assert [s.label for s in series] == ["load the planner saw", "forecast over the lead time",
                                         "planned (forecast need)"]  # fmt: skip
    forecast = np.asarray(series[1].y, dtype=float)
    assert len(forecast) >= len(planner.decisions) // 2 and np.nanmax(forecast) > np.nanmin(forecast)
    assert report.planner_series(swell, 60.0) == []
    fig = report.policy_figure(planner, comp.arrivals.t, None)
    labels = {t.get_text() for ax in fig.axes if (leg := ax.get_legend()) for t in leg.get_texts()}
    assert "forecast over the lead time" in labels and "planned (forecast need)" in labels
