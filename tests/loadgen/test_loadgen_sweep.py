"""`swell bench --sweep`: one run per load level, a row each, the highest level sustained within
the goodput SLO, the JSON and the report; bad sweeps named."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest
from typer.testing import CliRunner

from swell import errors
from swell.cli import main
from swell.loadgen import options, summary, sweep

from . import fake_llm


@pytest.mark.parametrize(
    ("text", "kind", "levels"),
    [("concurrency=4,1,2", "concurrency", (1.0, 2.0, 4.0)), ("rate=0.5, 2", "rate", (0.5, 2.0))],
    ids=["levels sorted", "fractional rates"],
)
def test_a_sweep_names_its_kind_and_levels(text: str, kind: str, levels: tuple[float, ...]) -> None:
    sw = sweep.parse(text)
    assert (sw.kind, sw.levels) == (kind, levels)
    opts = sweep.at(options.Options(url="http://x", concurrency=9), sw, levels[0])
    assert (opts.concurrency, opts.rate) == ((int(levels[0]), None) if kind == "concurrency" else (None, levels[0]))


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("users=1,2", "KIND=V1,V2,... with KIND one of concurrency, rate"),
        ("concurrency", "KIND=V1,V2"),
        ("rate=1,x", "the levels are numbers"),
        ("rate=", "give 1 to 32 levels"),
        ("rate=0,1", "each level is a finite number > 0"),
        ("rate=inf", "each level is a finite number > 0"),
        ("concurrency=1.5", "whole numbers of users"),
        ("concurrency=2,2", "each level once"),
    ],
)
def test_a_bad_sweep_is_named(text: str, rule: str) -> None:
    with pytest.raises(errors.RecipeError) as exc:
        sweep.parse(text)
    assert rule in str(exc.value) and exc.value.problems[0].path == "--sweep"


@dataclasses.dataclass
class _Run:
    """What `sustained` reads of a run: its summary."""

    summary: summary.Summary


def _point(level: float, attainment: float | None) -> sweep.Point:
    s = dataclasses.replace(summary.summarize([], 1.0), slo_attainment=attainment)
    return sweep.Point(level=level, result=_Run(s))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attainments", "best"),
    [([1.0, 0.995, 0.97], 2.0), ([0.98, 1.0, 0.5], 2.0), ([0.9, 0.8, 0.7], None), ([None, None, None], None)],
    ids=["the last at or above 99 %", "a level below it between two above", "none", "no goodput SLO"],
)
def test_sustained_is_the_highest_level_within_the_slo(attainments: list[float | None], best: float | None) -> None:
    points = [_point(level, a) for level, a in zip((1.0, 2.0, 4.0), attainments, strict=True)]
    got = sweep.sustained(points)
    assert (None if got is None else got.level) == best


def test_the_cli_runs_each_level_and_writes_the_json_and_report(
    threaded_server: fake_llm.Server, tmp_path: pathlib.Path
) -> None:
    out, page = tmp_path / "s.json", tmp_path / "s.html"
    args = ["bench", threaded_server.url, "--sweep", "concurrency=1,2,4", "-n", "8", "-q", "--output-tokens", "3",
            "-H", "X-TTFT: 0.01", "-H", "X-ITL: 0.001", "--goodput", "ttft:2000", f"--json={out}", f"--report={page}"]  # fmt: skip
    res = CliRunner().invoke(main.app, args)
    assert res.exit_code == 0, res.output
    assert res.output.count("closed loop") == 3 and "sweep of concurrency" in res.output
    assert "sustained within the goodput SLO (99% of requests): concurrency 4" in res.output
    data = json.loads(out.read_text())["sweep"]
    assert data["kind"] == "concurrency" and data["sustained_within_slo"] == 4.0
    assert [r["level"] for r in data["runs"]] == [1.0, 2.0, 4.0]
    assert [r["options"]["concurrency"] for r in data["runs"]] == [1, 2, 4]
    assert all(r["summary"]["ok"] == 8 for r in data["runs"])
    assert page.read_text().count("<img") == 2


@pytest.mark.parametrize(
    ("extra", "says"),
    [(["--concurrency", "4"], "--sweep sets the load of each run: drop --concurrency"),
     (["--csv", "x.csv"], "--csv writes one run's requests"),
     (["--pattern", "black-friday"], "drop --pattern")],
    ids=["with a load of its own", "with a CSV", "with a pattern"],
)  # fmt: skip
def test_the_cli_refuses_a_sweep_with_what_it_replaces(extra: list[str], says: str) -> None:
    res = CliRunner().invoke(main.app, ["bench", "http://127.0.0.1:9", "--sweep", "concurrency=1,2", *extra])
    assert res.exit_code == 2 and says in res.output
