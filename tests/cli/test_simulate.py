"""`swell simulate`: the comparison table, --json and --report, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from swell.cli import simulate
from swell.runtime import sim
from tests.clusters.sim.simhelp import FAST_NODES, SURGE

RECIPE = f"""
service: {{name: chat, engine: simulated-llm, preset: tiny-cpu}}
resources: {{gpus: 1}}
autoscaling:
  min_replicas: 1
  max_replicas: 6
  signals:
    - {{name: waiting, kind: gauge, metric: "vllm:num_requests_waiting", aggregate: sum, target: 2,
       target_type: AverageValue}}
node_pool: {json.dumps(FAST_NODES)}
slo: {{ttft_s: 2.0, e2e_s: 20.0}}
"""


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()
    a.callback()(lambda: None)
    simulate.register(a)
    return a


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    path = tmp_path / "chat.yaml"
    path.write_text(RECIPE)
    return path


def test_compare_prints_a_table_and_writes_json_and_an_html_report(
    app: typer.Typer, recipe_file: Path, tmp_path: Path
) -> None:
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    res = CliRunner().invoke(app, [
        "simulate", str(recipe_file), "--workload", SURGE, "--compare", "swell,recipe", "--seed", "2",
        "--json", str(out), "--report", str(page), "--quiet", "--speedup", "2",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "swell" in res.output and "×oracle" in res.output and "GPU-h" in res.output
    for row in ("best fixed (", "max fleet (6)", "oracle (replayed)", "starting from"):
        assert row in res.output, row
    data = json.loads(out.read_text())
    assert [p["policy"] for p in data["policies"]] == ["swell", "recipe"]
    assert data["oracle"]["gpu_hours"] > 0 and data["horizon_s"] == pytest.approx(
        (60 + 120 + 180 + 3 * 60) / 2
    )
    assert all(p["decisions"] and p["timeline"]["t"] for p in data["policies"])
    assert [b["policy"].split(" (")[0] for b in data["baselines"]] == ["best fixed", "max fleet"]
    assert data["oracle"]["replay"]["meets_slo"] and data["initial_replicas"] >= 1
    html = page.read_text()
    assert html.count("<img") == 5  # two policies, two fixed fleets, the oracle's replay
    assert "scaling decisions" in html and "data:image/png;base64" in html and "best fixed" in html


def test_reaction_adds_perfect_reaction_as_a_baseline_and_says_what_it_is(
    app: typer.Typer, recipe_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, [
        "simulate", str(recipe_file), "--workload", SURGE, "--compare", "swell", "--seed", "2", "--reaction",
        "--json", str(out), "--quiet", "--speedup", "2",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "perfect reaction (" in res.output and "each minute's load known when it comes" in res.output
    data = json.loads(out.read_text())
    react = [b for b in data["baselines"] if b["policy"].startswith("perfect reaction")]
    assert len(react) == 1 and "capacity 1 min after it is asked for" in react[0]["about"]
    assert react[0]["meets_slo"] and react[0]["gpu_hours"] > 0
    # it knows each minute as it comes and nothing after: never cheaper than the oracle, which sees ahead
    assert react[0]["gpu_hours"] >= data["oracle"]["gpu_hours"] - 1e-9
    plain = CliRunner().invoke(app, ["simulate", str(recipe_file), "--workload", SURGE, "--compare", "swell",
                                     "--seed", "2", "--quiet", "--speedup", "2", "--no-oracle"])  # fmt: skip
    assert plain.exit_code == 0 and "perfect reaction" not in plain.output


def test_suggest_schedule_prints_windows_that_meet_the_slo_and_plots_their_replay(
    app: typer.Typer, recipe_file: Path, tmp_path: Path
) -> None:
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    res = CliRunner().invoke(app, [
        "simulate", str(recipe_file), "--workload", SURGE, "--compare", "swell", "--initial-replicas", "1",
        "--suggest-schedule", "--no-oracle", "--json", str(out), "--report", str(page), "--quiet",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "suggested schedules (known peaks):" in res.output and "(meets the SLO)" in res.output
    assert "- name: known-peak-1" in res.output and "min_replicas:" in res.output
    (x,) = json.loads(out.read_text())["suggested_schedules"]
    assert x["after"]["meets_slo"] and not x["before"]["meets_slo"] and x["schedules"]
    html = page.read_text()
    assert "Suggested schedules (known peaks)" in html and "swell + suggested schedule" in html
    plain = CliRunner().invoke(app, ["simulate", str(recipe_file), "--workload", SURGE, "--compare", "swell",
                                     "--initial-replicas", "1", "--no-oracle", "--quiet"])  # fmt: skip
    assert plain.exit_code == 0 and "suggested schedules" not in plain.output
    assert "--suggest-schedule finds them" in " ".join(plain.output.split())
    met = CliRunner().invoke(app, ["simulate", str(recipe_file), "--workload", SURGE, "--compare", "swell",
                                   "--initial-replicas", "3", "--no-oracle", "--quiet", "--suggest-schedule"])  # fmt: skip
    assert met.exit_code == 0 and "none, every policy met the SLO" in met.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--compare", "swell,hpa-magic"], "unknown policy preset; known: hpa-latency"),
        (["--compare", "ray-serve:target=0,hpa-magic"], "--compare: 2 problem(s)"),  # every bad one at once
        (["--workload", "surge:rate=2"], "unknown workload kind"),
        (["--workload", "poisson:rate=2"], "never ends by itself: give --duration"),
        (["--scale", "0"], "--scale: must be a number > 0"),
        (["--router", "random"], "one of least-outstanding, round-robin"),
        (["--model-load", "nowhere.csv"], "use 'fixed', 'alibaba' or a CSV"),
        (["--duration", "soon"], "a duration such as 90"),
        (["--initial-replicas", "many"], "a whole number of replicas or 'auto'"),
        (["--initial-replicas", "9"], "must be within [0, max_replicas 6]"),
        (["--start", "black friday"], "--start: an ISO 8601 date or date-time"),
        (["--start", "auto"], "'auto' takes the date a trace file records (the workload is not a trace replay)"),
        (["--duration", "0.001"], "--duration: at least 1 s"),
        (["--only", "azure-conv"], "--only: only with --scorecard"),
        (["--json", "/proc/version/out.json"], "--json: /proc/version is a file, not a directory"),
        (["--report", "-"], "--report: standard output ('-') is not offered here"),
        (["--report", "/tmp"], "--report: is a directory: give a file name"),
        # hostile sizes: a MemoryError or a run that never ends before
        (["--duration", "1e12"], "--duration: at most 31 days (the simulator steps through every second)"),
        (["--workload", "steps:rates=1/2,every=1e12"], "lasts longer than 31 days (the simulator steps"),
        (["--scale", "1e12"], "rate: at most 100000 req/s: lower the rate, --scale or --speedup"),
        (["--speedup", "1e12"], "rate: at most 100000 req/s: lower the rate, --scale or --speedup"),
        (["--workload", "poisson:rate=1e12", "--duration", "1m"], "rate: must be at most 100000 req/s"),
        (["--workload", "gamma:rate=2,burstiness=1e-300", "--duration", "1m"], "burstiness: must be >= 0.001"),
        # nonsense accepted before: a table of no requests, a policy run twice
        (["--workload", "steps:rates=0/0"], "offers no request within 120 s"),
        (["--compare", "swell,swell"], "--compare: names swell twice: each policy once"),
    ],
)
def test_bad_input_is_a_clear_error_without_a_traceback(
    app: typer.Typer, recipe_file: Path, args: list[str], message: str
) -> None:
    base = {"--workload": SURGE, "--compare": "swell"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["simulate", str(recipe_file), "-q", *[x for kv in base.items() for x in kv]]
    res = CliRunner().invoke(app, argv)
    assert res.exit_code == 1, res.output
    assert message in res.output and "Traceback" not in res.output


def test_a_trace_scaled_past_its_bound_or_started_past_its_end_is_named(
    app: typer.Typer, recipe_file: Path, tmp_path: Path
) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("t,input_tokens,output_tokens\n0,100,20\n1,100,20\n")
    for workload, extra, message in (
        (f"trace:{trace},scale=600", ["--scale", "2"],  # a ValueError from the replay, an "unexpected error"
         "--scale: must be at most 1000 (copies of each request) (the workload's scale=600 times --scale 2)"),
        (f"trace:{trace},start=1e12", [], "offers no request within"),  # 100 % SLO over nothing
    ):  # fmt: skip
        res = CliRunner().invoke(app, ["simulate", str(recipe_file), "-w", workload, *extra, "-q", "--no-oracle"])
        assert res.exit_code == 1, res.output
        assert message in " ".join(res.output.split()) and "Traceback" not in res.output


def test_more_requests_than_a_simulation_holds_is_refused_while_drawing(
    app: typer.Typer, recipe_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim, "MAX_REQUESTS", 100)  # 10,000,000 in earnest (servegen at scale 1: a billion)
    res = CliRunner().invoke(app, ["simulate", str(recipe_file), "-w", "constant:rate=5", "--duration", "1m", "-q"])
    assert res.exit_code == 1, res.output
    assert "offers more requests than a simulation holds (100)" in " ".join(res.output.split())


def test_start_puts_the_run_on_a_date_and_its_dated_windows_fire(
    app: typer.Typer, recipe_file: Path, tmp_path: Path
) -> None:
    dated = tmp_path / "dated.yaml"
    sale = {"name": "sale", "start": "1 9 27 11 *", "end": "4 9 27 11 *", "timezone": "UTC", "min_replicas": 5}
    dated.write_text(yaml.safe_dump(yaml.safe_load(recipe_file.read_text()) | {"schedules": [sale]}))
    peaks = {}
    for start in ("2026-11-27T09:00:00+00:00", "2026-11-28"):
        out = tmp_path / f"{start}.json"
        res = CliRunner().invoke(app, ["simulate", str(dated), "-w", "constant:rate=1,input=100,output=50",
                                       "--duration", "5m", "--compare", "reactive", "--initial-replicas", "1",
                                       "--no-oracle", "--start", start, "--json", str(out), "-q"])  # fmt: skip
        assert res.exit_code == 0, res.output
        assert "at " + start[:10] in res.output  # the table's title says when the run starts
        data = json.loads(out.read_text())
        assert data["start"].startswith(start[:10])
        peaks[start[:10]] = max(d["desired"] for d in data["policies"][0]["decisions"])
    assert peaks == {"2026-11-27": 5, "2026-11-28": 1}, "the sale's floor on its day only"


def test_start_auto_replays_a_dated_trace_on_its_own_date(
    app: typer.Typer, recipe_file: Path, tmp_path: Path
) -> None:
    trace = tmp_path / "azure.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     + "".join(f"2023-11-16 18:{15 + i // 60:02d}:{i % 60:02d}.0000000,300,40\n" for i in range(90)))  # fmt: skip
    out = tmp_path / "auto.json"
    res = CliRunner().invoke(app, ["simulate", str(recipe_file), "-w", f"trace:{trace}", "--compare", "swell",
                                   "--initial-replicas", "1", "--no-oracle", "--start", "auto", "--json", str(out),
                                   "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "at 2023-11-16T18:15:00Z" in res.output
    assert json.loads(out.read_text())["start"].startswith("2023-11-16T18:15:00")
    fast = CliRunner().invoke(app, ["simulate", str(recipe_file), "-w", f"trace:{trace}", "--speedup", "2",
                                    "--compare", "swell", "--no-oracle", "--start", "auto", "-q"])  # fmt: skip
    assert fast.exit_code == 1 and "replayed ×2 faster" in fast.output and "Traceback" not in fast.output


def test_a_missing_or_invalid_recipe_names_the_problem(app: typer.Typer, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["simulate", str(tmp_path / "none.yaml"), "-w", SURGE])
    assert res.exit_code == 1 and "cannot read file" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("service: {name: chat, preset: gpt-17}\n")
    res = CliRunner().invoke(app, ["simulate", str(bad), "-w", SURGE, "-q"])
    assert res.exit_code == 1 and "service.preset: unknown engine preset" in res.output


def test_help_lists_the_policies_and_the_workload_grammar(app: typer.Typer) -> None:
    res = CliRunner().invoke(app, ["simulate", "--help"])
    assert res.exit_code == 0, res.output
    assert "hpa-latency" in res.output and "black-friday" in res.output and "MEAN[/STD]" in res.output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--scorecard", "--only", "azure-conv,nope"], "not a scorecard workload; known: azure-conv"),
        (["simulate", "some.yaml", "--scorecard"], "runs its own recipe and workloads: give neither"),
        (["simulate", "-w", "black-friday"], "give a recipe file (or --scorecard)"),
        (["simulate", "--scorecard", "--suggest-schedule"], "--suggest-schedule: not with --scorecard"),
        (["simulate", "--scorecard", "--only", "black-friday", "--duration", "60"], "--duration: not with --scorecard"),
        (["simulate", "--scorecard", "--scale", "2", "--start", "2026-11-27"], "--start: not with --scorecard"),
        (["simulate", "--scorecard", "--only", ","], "--only: name at least one workload"),
        (["simulate", "--scorecard", "--json", "/proc/version/out.json"], "--json: /proc/version is a file"),
    ],
)
def test_scorecard_and_missing_arguments_are_clear_errors(app: typer.Typer, argv: list[str], message: str) -> None:
    res = CliRunner().invoke(app, [*argv, "-q"])
    assert res.exit_code == 1, res.output
    assert message in res.output and "Traceback" not in res.output


def test_json_and_report_go_into_folders_made_for_them(app: typer.Typer, recipe_file: Path, tmp_path: Path) -> None:
    out, page = tmp_path / "runs" / "today" / "run.json", tmp_path / "pages" / "run.html"
    res = CliRunner().invoke(app, ["simulate", str(recipe_file), "-w", "constant:rate=1,input=100,output=50",
                                   "--duration", "2m", "--compare", "reactive", "--initial-replicas", "1",
                                   "--no-oracle", "--json", str(out), "--report", str(page), "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["policies"][0]["decisions"] and "<html" in page.read_text().lower()


@pytest.mark.parametrize("quiet", [False, True], ids=["off-a-terminal-a-line-per-finished-run", "quiet-says-nothing"])
def test_progress_off_a_terminal_is_a_line_per_finished_run(
    app: typer.Typer, recipe_file: Path, quiet: bool
) -> None:
    """A log or CI has no live bar: each run says it is done, so minutes of simulation are never silent."""
    args = ["simulate", str(recipe_file), "--workload", SURGE, "--compare", "swell", "--speedup", "2"]
    res = CliRunner().invoke(app, args + (["--quiet"] if quiet else []))
    assert res.exit_code == 0, res.output
    done = [line for line in res.output.splitlines() if line.startswith("done: ")]
    if quiet:
        assert done == []
    else:
        assert any(line.startswith("done: swell (") for line in done) and any("oracle" in line for line in done), done
        assert len(done) == len(set(done)), "each run said once"
