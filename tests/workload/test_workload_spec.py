"""The workload string grammar: what each form builds, and what a bad one says."""

from __future__ import annotations

import gzip
import math
import pathlib

import pytest

from swell import errors
from swell.workload import patterns, rates, servegen, shapes, spec, traces

NO_TRACES = (
    f"public traces not found in {traces.traces_dir()}: set SWELL_TRACES to a copy of the shared traces"
    " (docs/loadgen.md, Traces)"
)
HAVE_TRACES = (traces.traces_dir() / traces.NAMED["azure-conv"]).is_file()

CASES = {
    "poisson:rate=5": lambda w: w.schedule == rates.Constant(rps=5) and w.burstiness == 1,
    "poisson:5": lambda w: w.schedule == rates.Constant(rps=5),
    "gamma:rate=5,burstiness=0.5": lambda w: w.burstiness == 0.5,
    "constant:2": lambda w: math.isinf(w.burstiness),
    "steps:rates=2/5/10,every=30s": lambda w: (
        w.schedule == rates.Steps(starts=(0, 30, 60), rates=(2, 5, 10), last_s=30)
    ),
    "steps:rates=1/3,at=0/2m": lambda w: w.schedule.starts == (0, 120),
    "ramp:from=1,to=20,over=5m,hold=1m": lambda w: (
        w.schedule == rates.Ramp(start_rps=1, end_rps=20, over_s=300, hold_s=60)
    ),
    "diurnal:mean=5,period=1h": lambda w: w.schedule.period_s == 3600 and w.schedule.peak_s == 1800,
    "black-friday": lambda w: w.schedule == rates.BlackFriday(),
    "Black-Friday:base=3,surge=10,start=1m,burstiness=0.5": lambda w: (
        w.schedule.base_rps == 3 and w.burstiness == 0.5
    ),
    "poisson:5,input=512/64,output=128": lambda w: (
        w.shape == shapes.Shape(input_mean=512, input_stddev=64, output_mean=128, output_stddev=0)
    ),
    "closed:users=8,think=0.5": lambda w: w == patterns.ClosedLoop(users=8, think_s=0.5),
    "closed:4": lambda w: w.users == 4,
}


@pytest.mark.parametrize("text", list(CASES), ids=list(CASES))
def test_each_form_builds_what_it_says(text: str) -> None:
    assert CASES[text](spec.parse(text))


@pytest.mark.skipif(not HAVE_TRACES, reason=NO_TRACES)
def test_named_traces_and_servegen() -> None:
    conv = spec.parse("azure-conv:speedup=10,scale=0.5,start=10m")
    assert isinstance(conv, traces.Replay)
    assert (conv.speedup, conv.scale, conv.start_s, conv.shape) == (10, 0.5, 600, None)
    assert spec.parse("azure-code").path.name == "AzureLLMInferenceTrace_code.csv.gz"
    sg = spec.parse("servegen:m-small,scale=0.01")
    assert isinstance(sg, servegen.ServeGenReplay) and sg.scale == 0.01
    assert isinstance(spec.parse("servegen"), servegen.ServeGenReplay)


def test_trace_path_and_an_explicit_shape(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("t,input_tokens,output_tokens\n0,1,1\n")
    replay = spec.parse(f"trace:{path},speedup=4")
    assert isinstance(replay, traces.Replay) and replay.path == path and replay.speedup == 4
    shape = shapes.Shape(input_mean=9, input_stddev=0)
    assert spec.parse(f"trace:{path}", shape=shape).shape == shape
    assert spec.parse("poisson:1", shape=shape).shape == shape
    assert spec.parse("poisson:1,output=5", shape=shape).shape.input_mean == 9


BAD = {
    "nope": ("kind", "unknown workload kind"),
    "poisson": ("poisson", "needs rate"),
    "poisson:rate=abc": ("rate", "must be a number"),
    "poisson:rate=-1": ("rate", "must be a finite number > 0"),
    "gamma:rate=1,foo=2": ("foo", "unknown key for 'gamma'"),
    "gamma:rate=1,rate=2": ("rate", "given twice"),
    "steps:rates=1/2,at=0/0": ("steps", "must begin at 0 and increase"),
    "ramp:over=xx": ("over", "must be a duration"),
    "closed:users=1.5": ("users", "whole number"),
    "black-friday:7": ("7", "only KEY=VALUE"),
    "trace": ("trace", "needs a file"),
    "trace:/no/such/file.csv": ("file", "no such file"),
    "poisson:5,input=1/2/3": ("input", "must be MEAN or MEAN/STDDEV"),
    "gamma:rate=1,burstiness=0": ("burstiness", "must be >= 0.001"),
    "poisson:rate=1,input=-5": ("input", "its mean must be >= 1"),
    "poisson:rate=1,output=100/-3": ("output", "its stddev must be >= 0"),
    # hostile sizes: refused by name instead of a MemoryError, a hang, or a silent clip
    "poisson:rate=1e12": ("rate", "must be at most 100000 req/s"),
    "ramp:from=1,to=1e6": ("to", "must be at most 100000 req/s"),
    "diurnal:mean=60000": ("mean", "peak rate, mean x (1 + amplitude) = 108000 req/s, at most 100000"),
    "black-friday:base=20000,surge=10": ("surge", "peak rate, base x surge = 200000 req/s"),
    "gamma:rate=5,burstiness=1e-300": ("burstiness", "must be >= 0.001 (1 = Poisson"),
    "closed:users=1000000000": ("users", "must be within [1, 100000]"),
    "poisson:rate=1,input=1e12": ("input", "its mean must be at most 32768 tokens"),
    "poisson:rate=1,output=inf": ("output", "its mean must be at most 32768 tokens"),
    "poisson:rate=1,input=100/inf": ("input", "its stddev must be a finite number of tokens"),
    f"trace:{pathlib.Path(__file__).parent / 'fixtures' / 'mooncake_sample.jsonl'},scale=1e12": (
        "scale",
        "must be at most 1000 (copies of each request)",
    ),
}


@pytest.mark.parametrize("text", list(BAD), ids=list(BAD))
def test_bad_strings_name_the_key_and_the_rule(text: str) -> None:
    path, rule = BAD[text]
    with pytest.raises(errors.RecipeError) as info:
        spec.parse(text)
    assert any(p.path == path and rule in p.rule for p in info.value.problems), info.value
    assert text in str(info.value)


def test_a_trailing_comma_is_no_second_rate() -> None:
    assert spec.parse("poisson:1,") == spec.parse("poisson:1")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(errors.RecipeError) as info:
        spec.parse("gamma:rate=x,burstiness=y,colour=red")
    assert [p.path for p in info.value.problems] == ["colour", "rate", "burstiness"]


def test_the_grammar_mentions_every_kind() -> None:
    for kind in spec.KINDS:
        assert kind in spec.GRAMMAR


FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def test_a_bare_path_means_trace(tmp_path: pathlib.Path) -> None:
    mooncake = FIXTURES / "mooncake_sample.jsonl"
    for text in (str(mooncake), f"{mooncake},speedup=2"):
        replay = spec.parse(text)
        assert isinstance(replay, traces.Replay) and replay.path == mooncake
    assert spec.parse(f"{mooncake},speedup=2").speedup == 2  # type: ignore[union-attr]
    upper = tmp_path / "Traces" / "BurstGPT_1.CSV"
    upper.parent.mkdir()
    upper.write_bytes((FIXTURES / "burstgpt_sample.csv").read_bytes())
    assert spec.parse(str(upper)).path == upper  # type: ignore[union-attr]


def test_a_missing_path_keeps_its_case_in_the_error() -> None:
    with pytest.raises(errors.RecipeError) as info:
        spec.parse("/data/My-Traces/Mooncake_Conversation.jsonl")
    problem = info.value.problems[0]
    assert problem.path == "file" and problem.value == "/data/My-Traces/Mooncake_Conversation.jsonl"
    with pytest.raises(errors.RecipeError) as info:
        spec.parse("NoSuchKind:rate=1")
    assert info.value.problems[0].value == "NoSuchKind" and "path to a trace file" in info.value.problems[0].rule


def test_a_missing_named_trace_says_where_it_comes_from(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWELL_TRACES", str(tmp_path))
    for text in ("azure-conv", "long-conv", "azure-code:speedup=2"):
        with pytest.raises(errors.RecipeError) as info:
            spec.parse(text)
        rule = info.value.problems[0].rule
        assert "github.com/Azure/AzurePublicDataset" in rule and "SWELL_TRACES" in rule, rule
    with pytest.raises(errors.RecipeError, match=r"github\.com/alibaba/ServeGen"):
        spec.parse("servegen:m-small")


def test_long_conv_is_the_conversation_trace_with_longer_prompts(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conv = tmp_path / traces.NAMED["azure-conv"]
    conv.parent.mkdir(parents=True)
    conv.write_bytes(gzip.compress(b"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"))
    monkeypatch.setenv("SWELL_TRACES", str(tmp_path))
    long = spec.parse("long-conv:speedup=10")
    assert isinstance(long, traces.Replay) and long.path == conv
    assert (long.input_scale, long.speedup) == (spec.LONG_CONV_INPUT_SCALE, 10)
    assert spec.parse("azure-conv:input-scale=4").input_scale == 4  # type: ignore[union-attr]
    assert spec.parse("azure-conv").input_scale == 1  # type: ignore[union-attr]
