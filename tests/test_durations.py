"""One duration grammar wherever swell reads one: the CLI's --duration, workload patterns, Corrino
payloads and the hint for a recipe's seconds written as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swell import durations, errors, recipe
from swell.workload import spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), (" 90s ", 90.0), ("500ms", 0.5), ("5m", 300.0), ("1.5h", 5400.0), ("1d", 86400.0),
     (".5m", 30.0), ("1e3", 1000.0), ("2.5e1s", 25.0)],
    ids=["bare seconds", "seconds with spaces", "milliseconds", "minutes", "fractional hours", "a day",
         "a leading dot", "exponent", "exponent with a unit"],
)  # fmt: skip
def test_a_duration_reads_as_seconds(text: str, seconds: float) -> None:
    assert durations.parse(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["-5", "5 minutes", "1w", "", "nan", "inf", "5m30s", "m"])
def test_anything_else_is_refused_with_what_a_duration_looks_like(text: str) -> None:
    with pytest.raises(ValueError, match="a duration such as 90, 90s, 500ms, 5m, 2h or 1d"):
        durations.parse(text)


def test_digits_past_floats_range_are_infinite_for_the_callers_bound_to_name() -> None:
    assert durations.parse("9" * 400) == float("inf")


def test_with_unit_is_only_for_text_that_says_its_unit() -> None:
    assert durations.with_unit("30s") == 30.0 and durations.with_unit("2m") == 120.0
    assert durations.with_unit("30") is None and durations.with_unit("thirty") is None


def test_every_reader_takes_the_same_grammar() -> None:
    """500ms and 1d read alike in a workload pattern, a Corrino payload and a recipe's hint (each had its
    own grammar: Corrino refused both, the recipe's hint knew no days)."""
    wl = spec.parse("black-friday:base=1,surge=2,start=1d,ramp=500ms,plateau=1h,decay=1m")
    assert wl.description  # parsed
    corrino = json.loads((EXAMPLES / "corrino-a10-advanced.json").read_text())
    corrino["recipe_pod_autoscaling_params"] |= {"scaling_cooldown": "1d", "stabilization_window_down": "1.5m",
                                                 "polling_interval": "15000ms"}  # fmt: skip
    rec = recipe.parse(corrino)
    assert rec.autoscaling.cooldown_s == 86400.0 and rec.autoscaling.polling_interval_s == 15.0
    assert rec.autoscaling.behavior.scale_down.stabilization_window_s == 90
    with pytest.raises(errors.RecipeError) as info:
        recipe.parse({"service": {"name": "a"}, "autoscaling": {"cooldown_s": "1d"}})
    assert "write 86400" in info.value.problems[0].rule
