"""The CR status: conditions like the HPA's, transition times kept, decisions compressed."""

from __future__ import annotations

import pytest

from swell.clusters.kubernetes import status
from swell.core import decision, snapshot
from tests.conftest import make_recipe

OK = {"q": snapshot.Reading(value=3.0)}
MISSING = {"q": snapshot.Reading.missing("prometheus unreachable")}


def d(current: int, desired: int, bound: decision.BoundBy, t: float = 0.0) -> decision.Decision:
    return decision.Decision(
        t=t, policy="hpa", current=current, desired=desired, bound_by=bound, reason=f"r {bound}"
    )


def by_type(conds: list[status.Condition]) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in conds}


CASES = {
    "scaled up on metrics": (
        d(1, 3, "metrics"),
        OK,
        {"AbleToScale": ("True", "SucceededRescale"), "ScalingActive": ("True", "ValidMetricFound"),
         "ScalingLimited": ("False", "DesiredWithinRange"), "MetricsAvailable": ("True", "AllSignalsRead")},
    ),
    "capped at max": (d(4, 6, "max"), OK, {"ScalingLimited": ("True", "TooManyReplicas")}),
    "raised to min": (d(0, 1, "min"), OK, {"ScalingLimited": ("True", "TooFewReplicas")}),
    "rate policy on the way up": (d(1, 5, "rate"), OK, {"ScalingLimited": ("True", "ScaleUpLimit")}),
    "held by the down stabilization window": (
        d(4, 4, "stabilization"), OK, {"AbleToScale": ("True", "ScaleDownStabilized")},
    ),
    "Prometheus down: hold": (
        d(3, 3, "no_data"),
        MISSING,
        {"ScalingActive": ("False", "FailedGetMetrics"), "MetricsAvailable": ("False", "NoValue")},
    ),
    "target scaled to zero by hand": (d(0, 0, "disabled"), OK, {"ScalingActive": ("False", "ScalingDisabled")}),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_conditions(
    case: tuple[decision.Decision, dict[str, snapshot.Reading], dict[str, tuple[str, str]]],
) -> None:
    dec, readings, want = case
    got = by_type(status.conditions(dec, readings, dry_run=False, error=""))
    assert {k: got[k] for k in want} == want


def test_dry_run_and_failures_are_not_able_to_scale() -> None:
    assert by_type(status.conditions(d(1, 2, "metrics"), OK, dry_run=True, error=""))["AbleToScale"] == (
        "False",
        "DryRun",
    )
    failed = by_type(status.conditions(None, {}, dry_run=False, error="HTTP 403"))
    assert failed["AbleToScale"] == ("False", "FailedScale")
    assert failed["ScalingActive"] == ("False", "NoDecision")


def test_transition_time_moves_only_when_the_status_does() -> None:
    first = status.merge_conditions(status.conditions(d(1, 1, "metrics"), OK, dry_run=False, error=""), [], 0)
    again = status.merge_conditions(
        status.conditions(d(1, 1, "metrics"), OK, dry_run=False, error=""), first, 60
    )
    down = status.merge_conditions(
        status.conditions(d(1, 1, "no_data"), MISSING, dry_run=False, error=""), again, 120
    )
    t = {c["type"]: c["lastTransitionTime"] for c in down}
    assert t["AbleToScale"] == "1970-01-01T00:00:00Z"
    assert t["MetricsAvailable"] == "1970-01-01T00:02:00Z"


def test_decisions_newest_first_repeats_counted_not_listed() -> None:
    hist: list[dict] = []
    for t in range(3):
        hist = status.add_decision(hist, d(1, 1, "tolerance", t=t))
    hist = status.add_decision(hist, d(1, 3, "metrics", t=10))
    assert [(h["boundBy"], h["count"]) for h in hist] == [("metrics", 1), ("tolerance", 3)]
    assert hist[1]["since"] == "1970-01-01T00:00:00Z" and hist[1]["time"] == "1970-01-01T00:00:02Z"
    for t in range(40):
        hist = status.add_decision(hist, d(t, t + 1, "metrics", t=100 + t))
    assert len(hist) == status.KEEP_DECISIONS


def test_the_signal_summary_of_a_planner_recipe_shows_its_plan_not_its_internal_reads() -> None:
    """`kubectl get`'s Signals column: the planner's load, forecast and capacity per replica, then
    the recipe's own signals; its `planner:…` reads (each with a target of 1) are left to `signals`."""
    rec = make_recipe(policy="swell")
    reads = {"latency": snapshot.Reading(value=80.0), "planner:requests": snapshot.Reading(value=5.0)}
    planned = decision.Decision(t=0.0, policy="swell", current=3, desired=4, bound_by="metrics", reason="r",
                                details={"load_rps": 5.2, "forecast_rps": 7.14, "capacity_rps": 1.25})  # fmt: skip
    line = status.signal_summary(rec, reads, planned)
    assert line == "load=5.2/s forecast=7.14/s per-replica=1.25/s, latency=80/100"
    assert "planner:" not in status.signal_summary(rec, reads)  # before its first decision: signals only
    assert status.signal_summary(make_recipe(), reads, d(1, 2, "metrics")) == "latency=80/100"  # an HPA recipe


def test_the_planners_reads_count_as_one_load_read_either_counter_gives() -> None:
    """On Kubernetes there is no swell gateway and aborts may never have been counted: the planner's
    load is read when vLLM's request counter or the gateway's has a value; only neither is missing."""
    none = snapshot.Reading.missing("empty result")
    vllm_only = {"planner:requests": snapshot.Reading(value=5.0), "planner:gateway_requests": none,
                 "planner:aborted": none, "q": snapshot.Reading(value=3.0)}  # fmt: skip
    got = by_type(status.conditions(d(2, 2, "metrics"), vllm_only, dry_run=False, error=""))
    assert got["MetricsAvailable"] == ("True", "AllSignalsRead")
    neither = vllm_only | {"planner:requests": none}
    conds = {c.type: c for c in status.conditions(d(2, 2, "no_data"), neither, dry_run=False, error="")}
    assert (conds["MetricsAvailable"].status, conds["MetricsAvailable"].reason) == ("False", "NoValue")
    assert "planner load: no value for vllm:request_success_total" in conds["MetricsAvailable"].message
    assert conds["ScalingActive"].status == "True"  # the recipe's own signal still reads
    all_gone = {k: none for k in neither}
    conds = {c.type: c for c in status.conditions(d(2, 2, "no_data"), all_gone, dry_run=False, error="")}
    assert (conds["ScalingActive"].status, conds["ScalingActive"].reason) == ("False", "FailedGetMetrics")
    assert status.signal_summary(make_recipe(policy="swell", signals=[], max_replicas=1), all_gone) == "-"
