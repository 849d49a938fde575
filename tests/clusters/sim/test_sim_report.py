"""The simulator's report: the planner's load, forecast and plan drawn beside what happened."""

from __future__ import annotations

import numpy as np
import pytest

from swell.clusters.sim import outcomes, report
from swell.runtime import sim
from swell.workload import arrivals, spec
from tests.clusters.sim.simhelp import SURGE, scheduled_peak_recipe, surge_recipe


def test_the_planner_figure_shows_its_forecast_and_plan_and_other_policies_do_not() -> None:
    comp = sim.compare(surge_recipe(), spec.parse(SURGE), ["swell", "reactive"], seed=3, with_oracle=False,
                       with_baselines=False)  # fmt: skip
    planner, reactive = comp.runs
    series = report.planner_series(planner, 60.0)
    assert [s.label for s in series] == ["load the planner saw", "forecast over the lead time",
                                         "planned (forecast need)"]  # fmt: skip
    forecast = np.asarray(series[1].y, dtype=float)
    assert len(forecast) >= len(planner.decisions) // 2 and np.nanmax(forecast) > np.nanmin(forecast)
    assert report.planner_series(reactive, 60.0) == []
    fig = report.policy_figure(planner, comp.arrivals.t, None)
    labels = {t.get_text() for ax in fig.axes if (leg := ax.get_legend()) for t in leg.get_texts()}
    assert "forecast over the lead time" in labels and "planned (forecast need)" in labels
    assert "ready replicas serve (model)" in labels


def test_what_the_ready_replicas_serve_by_the_model_is_ready_times_capacity_at_each_decision() -> None:
    comp = sim.compare(surge_recipe(), spec.parse(SURGE), ["swell", "reactive"], seed=3, with_oracle=False,
                       with_baselines=False)  # fmt: skip
    planner, reactive = comp.runs
    (line,) = report.capacity_series(planner, 1.0)
    logged = [d for d in planner.decisions if d.capacity_rps is not None]
    assert len(line.t) == len(logged) > 0
    tl = planner.timeline
    for k in (0, len(logged) // 2, len(logged) - 1):
        d = logged[k]
        ready = tl.ready[np.searchsorted(tl.t, d.t, side="right") - 1]
        assert line.y[k] == pytest.approx(ready * d.capacity_rps)
    assert max(line.y) > min(line.y), "the line moves with the ready replicas and the model"
    assert report.capacity_series(reactive, 1.0) == [], "a policy without a capacity model draws none"
    assert planner.decisions[-1].to_json()["capacity_rps"] == logged[-1].capacity_rps


def test_the_spare_nodes_the_planner_asked_for_are_drawn_on_the_nodes_panel() -> None:
    w = spec.parse("poisson:rate=1,input=100,output=50")
    run = sim.simulate(scheduled_peak_recipe(), arrivals.collect(w, seed=0, horizon_s=420.0), horizon_s=420.0)
    (spare,) = report.spare_series(run, 60.0)
    assert max(spare.y) >= 1 and run.decisions[0].to_json().get("spare_nodes") == 0
    fig = report.policy_figure(run, run.requests.arrival, None)
    labels = {t.get_text() for ax in fig.axes if (leg := ax.get_legend()) for t in leg.get_texts()}
    assert "spare asked" in labels
    reactive = sim.compare(surge_recipe(), spec.parse(SURGE), ["reactive"], seed=3, with_oracle=False).runs[0]
    assert report.spare_series(reactive, 60.0) == [], "a policy that asks for no spare node draws none"


def test_a_schedule_windows_floor_is_drawn_on_the_replicas_panel_minute_by_minute() -> None:
    w = spec.parse("poisson:rate=1,input=100,output=50")
    run = sim.simulate(scheduled_peak_recipe(), arrivals.collect(w, seed=0, horizon_s=720.0), horizon_s=720.0)
    (floor,) = report.schedule_series(run, 60.0)
    by_minute = dict(zip(np.asarray(floor.t).round().astype(int).tolist(), np.asarray(floor.y).tolist(), strict=True))
    assert by_minute[4] == 1 and by_minute[5] == by_minute[9] == 4 and by_minute[10] == 1  # window 00:05-00:10
    fig = report.policy_figure(run, run.requests.arrival, None)
    labels = {t.get_text() for ax in fig.axes if (leg := ax.get_legend()) for t in leg.get_texts()}
    assert "scheduled floor" in labels
    plain = sim.simulate(surge_recipe(), arrivals.collect(w, seed=0, horizon_s=120.0), horizon_s=120.0)
    assert report.schedule_series(plain, 60.0) == [], "no schedule, no line"


@pytest.mark.parametrize(
    ("share", "shown"),
    [
        pytest.param(0.98962, "98.9 %", id="a miss just under 99 % never reads as 99.0 %"),
        pytest.param(0.99, "99.0 %", id="exactly the target reads as the target"),
        pytest.param(0.99999, "99.9 %", id="one request short of all is not 100.0 %"),
        pytest.param(1.0, "100.0 %", id="all requests"),
    ],
)
def test_attainment_is_shown_rounded_down(share: float, shown: str) -> None:
    assert outcomes.percent(share) == shown


def test_a_runs_brief_is_its_full_record_rounded() -> None:
    w = spec.parse("poisson:rate=1,input=100,output=50")
    run = sim.simulate(scheduled_peak_recipe(), arrivals.collect(w, seed=0, horizon_s=120.0), horizon_s=120.0)
    full, brief = run.to_json(), run.brief()
    assert brief == {"policy": full["policy"], "attainment": round(full["slo_attainment"], 5),
                     "meets_slo": full["meets_slo"], "gpu_hours": round(full["gpu_hours"], 2),
                     "scale_events": full["scale_events"]}  # fmt: skip
    assert brief["gpu_hours"] > 0
