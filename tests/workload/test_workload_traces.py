"""Trace replay reproduces the trace's arrival times; ServeGen windows keep their rates."""

from __future__ import annotations

import datetime
import gzip
import json
import pathlib

import numpy as np
import pytest

from swell import errors
from swell.workload import arrivals, servegen, shapes, traces

NO_TRACES = (
    f"public traces not found in {traces.traces_dir()}: set SWELL_TRACES to a copy of the shared traces"
    " (docs/loadgen.md, Traces)"
)
AZURE_CONV = traces.traces_dir() / traces.NAMED["azure-conv"]
M_SMALL = traces.traces_dir() / "servegen" / "language" / "m-small"
needs_traces = pytest.mark.skipif(not AZURE_CONV.is_file(), reason=NO_TRACES)


def _azure_reference(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seconds since the first request, read independently of swell (datetime, 100 ns digits)."""
    with gzip.open(path, "rt") as f:
        next(f)
        rows = [line.strip().split(",") for line in f if line.strip()]
    stamps = [datetime.datetime.strptime(r[0][:26], "%Y-%m-%d %H:%M:%S.%f") for r in rows]
    t = np.array([(s - stamps[0]).total_seconds() for s in stamps])
    return t, np.array([int(r[1]) for r in rows]), np.array([int(r[2]) for r in rows])


@needs_traces
def test_azure_replay_reproduces_the_trace_times_and_lengths() -> None:
    t, ctx, gen = _azure_reference(AZURE_CONV)
    got = arrivals.collect(traces.Replay(path=AZURE_CONV), horizon_s=1e9)
    assert len(got) == len(t) == 19366
    np.testing.assert_allclose(got.t, t, atol=1e-6)
    np.testing.assert_array_equal(got.input_tokens, ctx)
    np.testing.assert_array_equal(got.output_tokens, gen)


@needs_traces
def test_speedup_compresses_time_and_start_skips_into_the_trace() -> None:
    t, _, _ = _azure_reference(AZURE_CONV)
    fast = arrivals.collect(traces.Replay(path=AZURE_CONV, speedup=10), horizon_s=60)
    expected = t[t < 600] / 10
    np.testing.assert_allclose(fast.t, expected, atol=1e-6)
    later = arrivals.collect(traces.Replay(path=AZURE_CONV, start_s=1800, speedup=60), horizon_s=10)
    in_window = t[(t >= 1800) & (t < 2400)]
    np.testing.assert_allclose(later.t, (in_window - 1800) / 60, atol=1e-6)


@needs_traces
@pytest.mark.parametrize("scale", [0.25, 2.0, 3.5])
def test_rate_scaling_thins_or_copies_without_moving_the_load(scale: float) -> None:
    base = arrivals.collect(traces.Replay(path=AZURE_CONV), horizon_s=1e9)
    got = arrivals.collect(traces.Replay(path=AZURE_CONV, scale=scale), seed=1, horizon_s=1e9)
    assert len(got) == pytest.approx(scale * len(base), rel=0.03)
    assert np.all(np.diff(got.t) >= 0)
    per_5min = np.histogram(got.t, bins=np.arange(0, 3601, 300))[0]
    base_5min = np.histogram(base.t, bins=np.arange(0, 3601, 300))[0]
    np.testing.assert_allclose(per_5min, scale * base_5min, rtol=0.12)


@needs_traces
def test_a_shape_overrides_the_trace_lengths() -> None:
    shape = shapes.Shape(input_mean=100, input_stddev=0, output_mean=7, output_stddev=0)
    got = arrivals.collect(traces.Replay(path=AZURE_CONV, shape=shape), horizon_s=100)
    assert set(got.input_tokens.tolist()) == {100} and set(got.output_tokens.tolist()) == {7}


def test_plain_csv_jsonl_and_gzip_read_the_same(tmp_path: pathlib.Path) -> None:
    rows = [(0.0, 10, 5), (0.5, 20, 6), (0.25, 30, 7)]
    csv = tmp_path / "r.csv"
    csv.write_text("t,input_tokens,output_tokens\n" + "".join(f"{t},{i},{o}\n" for t, i, o in rows))
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"t": t, "input_tokens": i, "output_tokens": o}) + "\n" for t, i, o in rows)
    )
    gz = tmp_path / "r.csv.gz"
    gz.write_bytes(gzip.compress(csv.read_bytes()))
    for path in (csv, jsonl, gz):
        got = traces.load(path)
        assert got.t.tolist() == [0.0, 0.25, 0.5]  # sorted by time
        assert got.input_tokens.tolist() == [10, 30, 20]
    replay = arrivals.collect(traces.Replay(path=csv, speedup=2), horizon_s=10)
    assert replay.t.tolist() == [0.0, 0.125, 0.25]


def test_a_dated_trace_keeps_its_first_date_and_a_replay_its_calendar(tmp_path: pathlib.Path) -> None:
    azure = tmp_path / "azure.csv"
    azure.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:15:50.9951690,396,109\n2023-11-16 18:15:46.6805900,374,44\n")  # fmt: skip
    first = datetime.datetime(2023, 11, 16, 18, 15, 46, 680590, tzinfo=datetime.UTC).timestamp()
    assert traces.first_date(azure) == pytest.approx(first, abs=1e-6)  # the earliest row, read as UTC
    assert traces.load(azure).t.tolist() == pytest.approx([0.0, 4.314579])
    assert traces.Replay(path=azure).calendar() == (pytest.approx(first, abs=1e-6), "")
    assert traces.Replay(path=azure, start_s=3600).calendar()[0] == pytest.approx(first + 3600, abs=1e-6)
    when, why = traces.Replay(path=azure, speedup=10).calendar()
    assert when is None and "×10 faster" in why
    plain = tmp_path / "r.csv"
    plain.write_text("t,input_tokens,output_tokens\n0,10,5\n")
    assert traces.first_date(plain) is None
    when, why = traces.Replay(path=plain).calendar()
    assert when is None and "relative times" in why


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("a,b,c\n1,2,3\n", "header"),
        ("t,input_tokens,output_tokens\n", "rows"),
        ("t,input_tokens,output_tokens\n1,2\n", "rows"),
        ("t,input_tokens,output_tokens\n-1,2,3\n", "row 1"),
        ('{"t": 1, "input_tokens": 2}\n', "line 1"),
    ],
    ids=["unknown header", "no rows", "short row", "negative time", "jsonl missing key"],
)
def test_bad_trace_files_say_what_is_wrong(tmp_path: pathlib.Path, content: str, where: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(errors.RecipeError) as info:
        traces.load(path)
    assert info.value.problems[0].path == where


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        pytest.param("t,input_tokens,output_tokens\n0,100,5\n1,abc,5\n", "line 3: 'abc' is not a number",
                     id="a-value-that-is-no-number-is-named-on-its-line"),
        pytest.param("t,input_tokens,output_tokens\n0,100,5\n1,100\n", "line 3: 2 value(s) where every row has 3",
                     id="a-short-row-is-counted"),
        pytest.param("t,input_tokens,output_tokens\n0,100,5\n\n1,abc,5\n", "line 4: 'abc' is not a number",
                     id="a-blank-line-counts-as-the-file-numbers-it"),
        pytest.param("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,374,4.5\n",
                     "line 2: '4.5' is not a whole number", id="an-azure-count-must-be-whole"),
    ],
)  # fmt: skip
def test_a_bad_row_says_which_line_and_value(tmp_path: pathlib.Path, content: str, rule: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(errors.RecipeError) as info:
        traces.load(path)
    assert info.value.problems[0].rule.startswith(rule), info.value.problems[0]
    assert info.value.problems[0].value in content.splitlines(), "the row as written, not numpy's words"


def test_a_negative_row_is_shown_in_the_files_units() -> None:
    with pytest.raises(errors.RecipeError) as info:
        traces._finish("t", np.array([0.0, -5.0]), np.array([10.0, 10.0]), np.array([5.0, 5.0]))
    assert info.value.problems[0].value == "t -5, 10 tokens in, 5 out"


@pytest.mark.skipif(not M_SMALL.is_dir(), reason=NO_TRACES)
def test_servegen_windows_keep_their_rate_and_merge_clients() -> None:
    clients = servegen.load(M_SMALL)
    assert len(clients) == 43
    start = 72000.0
    expected = sum(float(c.rate[c.start == start].sum()) for c in clients)  # req/s in that window
    replay = servegen.ServeGenReplay(directory=M_SMALL, start_s=start, scale=0.05, speedup=10)
    got = arrivals.collect(replay, seed=2, horizon_s=60)  # one 600 s window, 10× faster
    assert len(got) == pytest.approx(expected * 0.05 * 600, rel=0.1)
    assert np.all(np.diff(got.t) >= 0) and got.t.max() < 60
    again = arrivals.collect(replay, seed=2, horizon_s=60)
    np.testing.assert_array_equal(got.t, again.t)


def test_servegen_gaps_have_the_fitted_shape_and_the_window_rate() -> None:
    rng = np.random.default_rng(0)
    gamma = servegen._window(rng, servegen.GAMMA, 0.5, 20.0, 5000.0)
    gaps = np.diff(gamma)
    assert len(gamma) == pytest.approx(100_000, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(2**0.5, rel=0.05)  # gamma cv = 1/sqrt(shape)
    weibull = servegen._window(rng, servegen.WEIBULL, 1.0, 20.0, 5000.0)  # shape 1: exponential
    assert len(weibull) == pytest.approx(100_000, rel=0.03)


def test_servegen_missing_directory_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.RecipeError, match="chunk-"):
        servegen.load(tmp_path)


FIXTURES = pathlib.Path(__file__).parent / "fixtures"  # synthetic rows in the published formats


def test_mooncake_jsonl_is_read_natively_in_seconds(tmp_path: pathlib.Path) -> None:
    plain = FIXTURES / "mooncake_sample.jsonl"
    gz = tmp_path / "mooncake.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, gz):
        got = traces.load(path)
        assert got.t.tolist() == [0.0, 0.75, 1.5, 3.0]  # milliseconds -> seconds, sorted
        assert got.input_tokens.tolist() == [6955, 512, 98000, 20480]
        assert got.output_tokens.tolist() == [52, 300, 12, 7]


def test_mooncake_times_start_at_the_first_request(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "later.jsonl"
    path.write_text(
        "".join(
            json.dumps({"timestamp": ms, "input_length": 10, "output_length": 2, "hash_ids": [1]}) + "\n"
            for ms in (60_000, 61_000)
        )
    )
    assert traces.load(path).t.tolist() == [0.0, 1.0]


def test_burstgpt_csv_is_read_natively() -> None:
    got = traces.load(FIXTURES / "burstgpt_sample.csv")
    assert got.t.tolist() == [0.0, 7.5, 40.0]  # seconds since the first request
    assert got.input_tokens.tolist() == [472, 300, 1087]
    assert got.output_tokens.tolist() == [18, 250, 0]  # a failed request keeps its zero


def test_input_scale_lengthens_prompts_only() -> None:
    path = FIXTURES / "burstgpt_sample.csv"
    got = arrivals.collect(traces.Replay(path=path, input_scale=8), horizon_s=100)
    assert got.input_tokens.tolist() == [472 * 8, 300 * 8, 1087 * 8]
    assert got.output_tokens.tolist() == [18, 250, 0] and got.t.tolist() == [0.0, 7.5, 40.0]


@pytest.mark.parametrize(
    ("content", "where", "rule"),
    [
        ('{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": "x", "input_length": 5, '
         '"output_length": 1}\n', "line 2", "timestamp (ms)"),
        ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n1,m,many,2,3,x\n", "line 2",
         "Request tokens"),
    ],
    ids=["mooncake bad timestamp", "burstgpt bad tokens"],
)  # fmt: skip
def test_bad_rows_of_the_native_formats_name_the_line(
    tmp_path: pathlib.Path, content: str, where: str, rule: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(errors.RecipeError) as info:
        traces.load(path)
    assert info.value.problems[0].path == where and rule in info.value.problems[0].rule
