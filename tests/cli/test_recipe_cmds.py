"""swell validate / plan / decide through the real console script (subprocess) and CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swell import recipe
from swell.cli import main, recipe_cmds

ROOT = Path(__file__).parent.parent.parent
runner = CliRunner()


def swell(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swell.cli.main", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def test_validate_ok_and_bad_recipe_exit_codes_without_traceback(tmp_path: Path) -> None:
    ok = swell("validate", str(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml"))
    assert ok.returncode == 0 and "valid recipe" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("service: {name: x, pollng: 5}\nautoscaling: {min_replicas: 3, max_replicas: 1}\n")
    res = swell("validate", str(bad))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "autoscaling.min_replicas: must not exceed max_replicas (1) (got 3)" in res.stderr
    assert "service.pollng: unknown field" in res.stderr
    preset = tmp_path / "preset.yaml"  # well-formed, but no engine model of that name: simulate would refuse it
    preset.write_text("service: {name: x, engine: vllm, preset: gpt-17}\n")
    for cmd in ("validate", "plan"):
        res = swell(cmd, str(preset))
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert "service.preset: unknown engine preset; known: " in res.stderr, res.stderr
    flags = tmp_path / "flags.yaml"  # a model the presets do not describe: its flags are not held to a stand-in's
    flags.write_text("service: {name: x, engine: vllm, model: Qwen/Qwen2.5-7B-Instruct, "
                     "args: [--max-model-len, '32768']}\n")  # fmt: skip
    assert swell("validate", str(flags)).returncode == 0


def test_plan_warns_when_an_average_value_fraction_cannot_reach_max(tmp_path: Path) -> None:
    data = json.loads((ROOT / "examples" / "corrino-pod-and-node.json").read_text())
    r = runner.invoke(main.app, ["plan", "--json", str(ROOT / "examples" / "corrino-pod-and-node.json")])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert (plan["replicas_per_node"], plan["max_reachable_replicas"], plan["warnings"]) == (2, 8, [])
    assert plan["time_to_capacity_s"]["new_node"] > plan["time_to_capacity_s"]["warm_node"]
    yaml_recipe = tmp_path / "avg.yaml"
    yaml_recipe.write_text(
        "service: {name: s}\nautoscaling:\n  max_replicas: 8\n  signals:\n"
        "    - {name: slow, kind: histogram_fraction, metric: lat, le: 5.0, target: 0.5, target_type: AverageValue}\n"
        "node_pool: {shape: BM.GPU.A10.4, max_nodes: 1}\nresources: {gpus: 3}\n"
    )
    r = runner.invoke(main.app, ["plan", "--json", str(yaml_recipe)])
    warnings = json.loads(r.output)["warnings"]
    assert any("never max_replicas 8" in w for w in warnings)
    assert any("do not divide the 4 GPUs" in w for w in warnings)
    assert any("7 replica(s) would stay Pending" in w for w in warnings)
    del data


def test_plan_says_when_the_default_policy_has_no_capacity_model_of_the_engine(tmp_path: Path) -> None:
    def warnings(service: str) -> list[str]:
        path = tmp_path / "r.yaml"
        path.write_text(
            f"service: {service}\nautoscaling:\n  policy: swell\n  max_replicas: 2\n  signals:\n"
            "    - {name: q, kind: gauge, metric: vllm:num_requests_waiting, target: 8, target_type: AverageValue}\n"
        )
        r = runner.invoke(main.app, ["plan", "--json", str(path)])
        assert r.exit_code == 0, r.output
        return [w for w in json.loads(r.output)["warnings"] if "no capacity model" in w]

    (llama,) = warnings("{name: s, engine: llama-cpp}")
    assert "engine 'llama-cpp'" in llama and "reactive rules" in llama and "service.preset" in llama
    assert warnings("{name: s, engine: simulated-llm, preset: tiny-cpu}") == []


@pytest.mark.parametrize(("policy", "warned"), [("hpa", True), ("threshold", True), ("swell", False)])
def test_plan_says_when_the_policy_ignores_the_target_utilization(tmp_path: Path, policy: str, warned: bool) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        f"service: {{name: s, engine: simulated-llm, preset: tiny-cpu}}\nautoscaling:\n  policy: {policy}\n"
        "  target_utilization: 0.6\n  max_replicas: 2\n  signals:\n"
        "    - {name: q, kind: gauge, metric: vllm:num_requests_waiting, target: 8, target_type: AverageValue}\n"
    )
    r = runner.invoke(main.app, ["plan", "--json", str(path)])
    assert r.exit_code == 0, r.output
    hits = [w for w in json.loads(r.output)["warnings"] if "target_utilization" in w]
    assert (len(hits) == 1) is warned
    assert all(f"policy {policy!r} ignores" in w for w in hits)


@pytest.mark.parametrize(("e2e_s", "warned"), [(5.0, True), (60.0, False)])
def test_plan_says_when_the_planner_would_plan_one_request_at_a_time(
    tmp_path: Path, e2e_s: float, warned: bool
) -> None:
    """The Corrino A10 example's SLO (e2e 5 s for 50 %) under the planner: 250 answer tokens at
    30 ms a step take 7.5 s even alone, so its model plans one request at a time per replica."""
    data = json.loads((ROOT / "examples" / "corrino-a10-advanced.json").read_text())
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    rec = recipe.load(path)
    swapped = rec.model_copy(update={
        "autoscaling": rec.autoscaling.model_copy(update={"policy": "swell"}),
        "slo": rec.slo.model_copy(update={"e2e_s": e2e_s}),
    })  # fmt: skip
    hits = [w for w in recipe_cmds.warnings_for(swapped) if "one request at a time" in w]
    assert (len(hits) == 1) is warned
    assert all("policy 'swell'" in w and f"slo.e2e_s {e2e_s:g} s" in w and "policy 'reactive'" in w for w in hits)


def test_decide_reproduces_hpa_scale_up_then_scale_down() -> None:
    """The README's `swell decide` example: the shipped observations (one ready replica; average
    latency 0.6 s, 3x the 0.2 s target, from t=30 to t=135, then 0.05 s; a 15 s tick)."""
    obs = ROOT / "examples" / "observations" / "gpt2-latency-spike.jsonl"
    lines = obs.read_text().splitlines()
    assert [json.loads(x)["signals"]["avg_e2e_latency"] for x in lines[1:4]] == [0.05, 0.6, 0.6]
    res = swell("decide", str(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml"), "--observations", str(obs))
    assert res.returncode == 0, res.stderr
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(out) == 40
    desired = {o["t"]: o["desired"] for o in out}
    bound = {o["t"]: o["bound_by"] for o in out}
    # 1 ready at 3x target -> 3 = max_replicas; latency falls -> held 300 s after the last high tick (135) -> min 1
    assert desired[15] == 1 and desired[30] == 3
    assert all(desired[t] == 3 for t in range(30, 435, 15))
    assert {bound[t] for t in range(150, 435, 15)} == {"stabilization"}
    assert desired[435] == 1 and bound[435] == "metrics"
    assert set(out[0]) == {"t", "desired", "proposals", "bound_by", "reason", "current"}


def test_decide_null_is_no_value_and_bad_lines_are_all_named(tmp_path: Path) -> None:
    rec = str(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    res = swell(
        "decide",
        rec,
        "-o",
        "-",
        stdin='{"t": 0, "replicas": {"ready": 2}, "signals": {"avg_e2e_latency": null}}\n',
    )
    assert res.returncode == 0
    line = json.loads(res.stdout)
    assert (line["desired"], line["bound_by"]) == (2, "no_data")
    obs = tmp_path / "o.jsonl"
    obs.write_text('{"t": 5, "signals": {"latency": 1}}\nnot json\n{"t": 1, "replicas": {"ready": -1}}\n')
    res = swell("decide", rec, "--observations", str(obs))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    for fragment in (
        "line 1.signals.latency: not a signal of the recipe",
        "line 2: not JSON",
        "line 3.t: must not go back in time",
        "line 3.replicas.ready: a whole number in [0, 100000]",
    ):
        assert fragment in res.stderr
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n")
    res = swell("decide", rec, "--observations", str(blank))
    assert res.returncode == 1 and "--observations: holds no observation" in res.stderr


def test_every_command_has_help() -> None:
    for cmd in ("validate", "plan", "decide"):
        r = runner.invoke(main.app, [cmd, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output


def test_decide_rejects_times_a_clock_cannot_hold() -> None:
    rec = str(ROOT / "examples" / "cronhpa-schedule.yaml")
    res = swell("decide", rec, "-o", "-", stdin='{"t": NaN}\n{"t": 1e300}\n')
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "line 1.t: a finite number of seconds" in res.stderr and "line 2.t" in res.stderr


def test_plan_shows_a_cpu_only_recipe_without_a_gpu_lens() -> None:
    path = str(ROOT / "examples" / "kserve-sklearn-iris.yaml")
    r = runner.invoke(main.app, ["plan", "--json", path])
    plan = json.loads(r.output)
    assert plan["gpus_per_replica"] == 0
    assert list(plan["time_to_capacity_s"]["new_node_steps"]) == ["node_boot", "kubelet", "model_load"]
    assert plan["cost_per_hour_at_max"] is None and plan["cost_note"].startswith("unknown")
    table = runner.invoke(main.app, ["plan", path], terminal_width=200).output
    for gpu_words in ("GPU(s)/node", "gpu_driver", "image_pull", "GPU-hour"):
        assert gpu_words not in table
    assert "none (CPU only)" in table and "replica slot(s)/node" in table


def test_plan_shows_an_unknown_price_as_unknown_not_zero(tmp_path: Path) -> None:
    path = tmp_path / "noprice.yaml"
    path.write_text(
        "service: {name: s}\nresources: {gpus: 1}\nnode_pool: {shape: VM.GPU.A10.2, max_nodes: 2}\n"
    )
    plan = json.loads(runner.invoke(main.app, ["plan", "--json", str(path)]).output)
    assert plan["cost_per_hour_at_max"] is None
    assert plan["cost_note"] == "unknown: set node_pool.price_per_gpu_hour"
    priced = tmp_path / "priced.yaml"
    priced.write_text(
        "service: {name: s}\nresources: {gpus: 1}\n"
        "node_pool: {shape: VM.GPU.A10.2, max_nodes: 2, price_per_gpu_hour: 0}\n"
    )
    assert (
        json.loads(runner.invoke(main.app, ["plan", "--json", str(priced)]).output)["cost_per_hour_at_max"]
        == 0
    )


def test_plan_sizes_nodes_and_cost_at_the_most_replicas_max_nodes_hold(tmp_path: Path) -> None:
    """max_replicas 10 of 8 GPUs each on 2 nodes of 8: 2 replicas reachable, on 2 nodes, 16 GPUs
    priced (not the 10 nodes and 80 GPUs max_replicas alone would take), and the warning says why."""
    path = tmp_path / "big.yaml"
    path.write_text(
        "service: {name: s, engine: simulated-llm}\nresources: {gpus: 8}\n"
        "autoscaling: {max_replicas: 10, signals: [{name: q, kind: gauge, metric: q, target: 1}]}\n"
        "node_pool: {shape: BM.GPU.H100.8, max_nodes: 2, price_per_gpu_hour: 4}\n"
    )
    plan = json.loads(runner.invoke(main.app, ["plan", "--json", str(path)]).output)
    assert (plan["max_reachable_replicas"], plan["nodes_for_max_replicas"]) == (2, 2)
    assert plan["cost_per_hour_at_max"] == 2 * 8 * 4 and "16 GPUs" in plan["cost_note"]
    assert any("max_replicas 10 exceeds" in w for w in plan["warnings"]), plan["warnings"]


def test_decide_rejects_an_observation_without_replicas() -> None:
    rec = str(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    obs = (
        '{"t": 0, "replicas": {"ready": 1}, "signals": {}}\n{"t": 15, "signals": {"avg_e2e_latency": 0.4}}\n'
    )
    res = swell("decide", rec, "-o", "-", stdin=obs)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "line 2.replicas: missing" in res.stderr and "line 1" not in res.stderr


def test_decide_names_an_unknown_key_of_an_observation() -> None:
    rec = str(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    res = swell("decide", rec, "-o", "-", stdin='{"t": 0, "replicas": {"ready": 1}, "signal": {"avg_e2e_latency": 5}}\n')
    assert res.returncode == 1 and "line 1.signal: known keys: t, replicas, signals" in res.stderr, res.stderr


def test_decide_refuses_a_deeply_nested_line_with_a_message() -> None:
    rec = str(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    res = swell("decide", rec, "-o", "-", stdin='{"t": 0, "replicas": ' + "[" * 5000 + "]" * 5000 + "}\n")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "line 1: nested too deeply" in res.stderr and "unexpected" not in res.stderr


GAUGE = {"kind": "gauge", "aggregate": "sum", "target": 2, "target_type": "AverageValue"}


@pytest.mark.parametrize(
    ("signals", "min_replicas", "warned"),
    [
        ([GAUGE | {"name": "waiting", "metric": "vllm:num_requests_waiting"}], 0, True),
        ([{"name": "gpu", "kind": "utilization", "resource": "gpu", "target": 70, "target_type": "Utilization"}], 0, True),
        ([GAUGE | {"name": "waiting", "metric": "vllm:num_requests_waiting"},
          GAUGE | {"name": "buffered", "metric": "swell_gateway_requests_buffered"}], 0, False),
        ([GAUGE | {"name": "queue", "metric": "rabbitmq_queue_messages"}], 0, False),
        ([GAUGE | {"name": "waiting", "metric": "vllm:num_requests_waiting"}], 1, False),
    ],
    ids=["vLLM's queue alone at min 0: nothing wakes it", "GPU utilization alone at min 0",
         "with the gateway's buffer beside it", "a queue in front of the replicas",
         "min 1: never at zero"],
)  # fmt: skip
def test_plan_says_when_nothing_could_scale_a_service_from_zero(
    signals: list[dict], min_replicas: int, warned: bool
) -> None:
    rec = recipe.load(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    auto = rec.autoscaling.model_dump() | {"policy": "threshold", "min_replicas": min_replicas, "signals": signals}
    rec = rec.model_copy(update={"autoscaling": recipe.Autoscaling.model_validate(auto)})
    hits = [w for w in recipe_cmds.warnings_for(rec) if "scale the service from zero" in w]
    assert len(hits) == (1 if warned else 0), recipe_cmds.warnings_for(rec)


def test_plan_says_the_planner_wakes_from_zero_only_where_the_gateway_is() -> None:
    rec = recipe.load(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    auto = rec.autoscaling.model_dump() | {"policy": "swell", "min_replicas": 0,
                                           "signals": [GAUGE | {"name": "r", "metric": "vllm:num_requests_running"}]}  # fmt: skip
    rec = rec.model_copy(update={"autoscaling": recipe.Autoscaling.model_validate(auto)})
    hits = [w for w in recipe_cmds.warnings_for(rec) if "only the planner's own reads of the gateway" in w]
    assert len(hits) == 1 and "on Kubernetes only with `swell render --gateway`" in hits[0]


@pytest.mark.parametrize(("policy", "behavior", "warned"), [("panic", True, True), ("panic", False, False),
                                                          ("reactive", True, False)],
                         ids=["panic with a behavior: said to be ignored", "panic without one: nothing said",
                              "reactive reads its behavior: nothing said"])  # fmt: skip
def test_plan_says_the_kpa_ignores_the_hpa_behavior(policy: str, behavior: bool, warned: bool) -> None:
    auto: dict = {"policy": policy, "min_replicas": 1, "max_replicas": 8,
                  "signals": [GAUGE | {"name": "c", "metric": "concurrency"}], "panic": {"signal": "c"}}  # fmt: skip
    if behavior:
        auto["behavior"] = {"scale_down": {"stabilization_window_s": 600}}
    rec = recipe.load(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    rec = rec.model_copy(update={"autoscaling": recipe.Autoscaling.model_validate(auto)})
    hits = [w for w in recipe_cmds.warnings_for(rec) if "scale_down_delay_s" in w]
    assert len(hits) == (1 if warned else 0)


@pytest.mark.parametrize(
    ("auto", "says"),
    [
        ({"policy": "ray", "behavior": {"scale_down": {"stabilization_window_s": 600}}}, "policy 'ray' (Ray Serve's) ignores `behavior`"),
        ({"policy": "hpa", "ray": {"upscale_delay_s": 5}}, "the `ray` section is read by policy 'ray' only"),
        ({"policy": "ray", "signals": [GAUGE | {"name": "a", "metric": "x"}, GAUGE | {"name": "b", "metric": "y"}]},
         "policy 'ray' scales on one signal of ongoing requests, 'a'; it ignores 'b' (name the one with ray.signal)"),
        ({"policy": "ray", "ray": {"signal": "b"},
          "signals": [GAUGE | {"name": "a", "metric": "x"}, GAUGE | {"name": "b", "metric": "y"}]},
         "scales on one signal of ongoing requests, 'b'; it ignores 'a'"),
    ],
    ids=["a behavior it ignores", "a ray section under another policy", "several signals: the first",
         "several signals: the one named"],
)  # fmt: skip
def test_plan_says_what_policy_ray_ignores(auto: dict, says: str) -> None:
    base: dict = {"min_replicas": 1, "max_replicas": 8, "signals": [GAUGE | {"name": "c", "metric": "concurrency"}]}
    rec = recipe.load(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    rec = rec.model_copy(update={"autoscaling": recipe.Autoscaling.model_validate(base | auto)})
    warned = recipe_cmds.warnings_for(rec)
    assert any(says in w for w in warned), warned


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        # the recipe has no `panic` section: the policy asserted, an "unexpected error"
        (["--policy", "panic", "-o", "-"], b'{"t": 0, "replicas": {"ready": 1}}\n',
         "--policy: policy 'panic' needs the recipe's autoscaling.panic section"),
        # bytes on stdin: one "not JSON" problem per line of garbage, unlike the same bytes in a file
        (["-o", "-"], b"\xff\xfe\x00{garbage\n\x80\x81\n", "--observations: not UTF-8 text: invalid start byte at byte 0"),
    ],
)  # fmt: skip
def test_decide_names_a_policy_the_recipe_cannot_run_and_binary_stdin(
    args: list[str], stdin: bytes, message: str
) -> None:
    rec = str(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    res = runner.invoke(main.app, ["decide", rec, *args], input=stdin)
    assert res.exit_code == 1 and res.exception is not None, res.output
    text = str(res.exception)
    assert message in text and "line 2" not in text, text


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        ("price_per_gpu_hour: 1.0e+308", "node_pool.price_per_gpu_hour: Input should be less than or equal to 1000000"),
        ("provisioning: {image_size_gb: 1.0e+308}", "node_pool.provisioning.image_size_gb: its pull"),
        ("provisioning: {pull_gbps: 1.0e-300}", "must take at most a week (604800 s)"),
        ("price_per_gpu_hour: 1000000", None),  # at the bounds: a cost, strict JSON
        ("provisioning: {image_size_gb: 34020}", None),
    ],
)  # fmt: skip
def test_plan_refuses_a_pool_that_would_cost_or_pull_for_ever(tmp_path: Path, pool: str, message: str | None) -> None:
    """`plan --json` wrote `Infinity` (not JSON) for the cost and the image pull of such a pool."""
    path = tmp_path / "pool.yaml"
    path.write_text(
        "service: {name: s}\nresources: {gpus: 64}\nautoscaling: {max_replicas: 10000, "
        "signals: [{name: q, kind: gauge, metric: q, target: 1}]}\n"
        f"node_pool: {{shape: x, gpus_per_node: 64, max_nodes: 10000, {pool}}}\n"
    )
    r = runner.invoke(main.app, ["plan", "--json", str(path)])
    if message is not None:
        assert r.exit_code == 1 and message in str(r.exception), (r.output, r.exception)
        return
    assert r.exit_code == 0, r.output

    def refuse(constant: str) -> None:
        raise AssertionError(f"plan --json wrote {constant}, which is not JSON")

    plan = json.loads(r.output, parse_constant=refuse)
    assert plan["time_to_capacity_s"]["new_node"] < 2 * 604800


@pytest.mark.parametrize(
    ("signal", "warned"),
    [
        pytest.param({"metric": "vllm:num_requests_running", "target_type": "AverageValue", "aggregate": "avg"}, True,
                     id="an-engine-gauge-averaged-per-replica-as-a-total-is-said"),
        pytest.param({"metric": "vllm:num_requests_running", "target_type": "AverageValue", "aggregate": "sum"}, False,
                     id="summed-it-is-the-total"),
        pytest.param({"metric": "vllm:num_requests_running", "target_type": "Value", "aggregate": "avg"}, False,
                     id="a-per-replica-level-against-value"),
        pytest.param({"metric": "swell_gateway_requests_buffered", "target_type": "AverageValue", "aggregate": "avg"},
                     False,
                     id="the-gateway-has-one-series-its-average-is-its-total"),
    ],
)  # fmt: skip
def test_plan_says_when_an_average_value_target_reads_a_per_replica_average(signal: dict, warned: bool) -> None:
    rec = recipe.load(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    auto = rec.autoscaling.model_dump() | {"policy": "hpa", "signals": [GAUGE | {"name": "r", "target": 16} | signal]}
    rec = rec.model_copy(update={"autoscaling": recipe.Autoscaling.model_validate(auto)})
    hits = [w for w in recipe_cmds.warnings_for(rec) if "more replicas never raise it" in w]
    assert len(hits) == (1 if warned else 0), recipe_cmds.warnings_for(rec)


def test_plan_says_a_schedule_floor_above_max_replicas_is_held_at_the_max() -> None:
    rec = recipe.load(ROOT / "examples" / "gpt2-vllm-latency-hpa.yaml")
    window = recipe.ScheduleWindow(start="0 9 * * *", end="0 17 * * *", min_replicas=rec.autoscaling.max_replicas + 5)
    rec = rec.model_copy(update={"schedules": [window]})
    hits = [w for w in recipe_cmds.warnings_for(rec) if "schedules[0].min_replicas" in w]
    assert hits == [f"schedules[0].min_replicas {rec.autoscaling.max_replicas + 5} is above max_replicas "
                    f"{rec.autoscaling.max_replicas}: the window holds {rec.autoscaling.max_replicas}"]  # fmt: skip


def test_every_shipped_example_is_free_of_the_average_value_trap() -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        rec = recipe.load(path)
        assert not [w for w in recipe_cmds.warnings_for(rec) if "more replicas never raise it" in w], path


def test_python_dash_m_swell_is_the_swell_command() -> None:
    res = subprocess.run([sys.executable, "-m", "swell", "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0 and res.stdout.startswith("swell "), res.stderr
