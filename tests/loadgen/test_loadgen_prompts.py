"""Prompts from a file (--prompts: JSON lines, ShareGPT) and the vLLM-compatible summary fields."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest
from typer.testing import CliRunner

from swell import errors
from swell.cli import main
from swell.loadgen import dataset, export, options, records, runner, summary
from swell.workload import shapes

from . import fake_llm

FAST = (("X-TTFT", "0.01"), ("X-ITL", "0.002"))
SMALL = shapes.Shape(input_mean=20, input_stddev=0, output_mean=5, output_stddev=0)
VLLM_FIELDS = {
    "duration", "completed", "failed", "total_input_tokens", "total_output_tokens", "request_throughput",
    "output_throughput", "total_token_throughput",
    *(f"{stat}_{name}_ms" for stat in ("mean", "median", "std", "p99") for name in ("ttft", "tpot", "itl", "e2el")),
}  # fmt: skip


def _write(tmp_path: pathlib.Path, name: str, content: object) -> pathlib.Path:
    path = tmp_path / name
    if isinstance(content, list) and name.endswith(".jsonl"):
        path.write_text(
            "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in content)
        )
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _opts(server: fake_llm.Server, prompts: pathlib.Path | None, **kw: object) -> options.Options:
    base: dict[str, object] = {"url": server.url, "shape": SMALL, "timeout_s": 10.0, "headers": FAST}
    return options.Options(**{**base, "prompts": None if prompts is None else str(prompts), **kw})  # type: ignore[arg-type]


def _turns(human: str | None, gpt: str | None) -> dict[str, object]:
    turns = [{"from": "human", "value": human}] if human is not None else []
    return {"conversations": turns + ([{"from": "gpt", "value": gpt}] if gpt is not None else [])}


@pytest.mark.parametrize(
    ("name", "content", "where", "rule"),
    [
        ("a.jsonl", "", "file", "empty file"),
        ("a.jsonl", "\n  \n", "file", "empty file"),
        ("a.jsonl", ['{"prompt": "hi"}', "{not json"], "line 2", "not JSON"),
        ("a.jsonl", [{"prompt": "hi"}, {"text": "hi"}], "line 2", "missing prompt"),
        ("a.jsonl", [{"prompt": 5}], "line 1", 'wrong type: "prompt" must be a non-empty string'),
        ("a.jsonl", [{"prompt": "  "}], "line 1", 'wrong type: "prompt" must be a non-empty string'),
        ("a.jsonl", [["hi"], {"prompt": "a"}], "line 1", "wrong type: each line must be a JSON object"),
        ("a.jsonl", [{"prompt": "a"}, 3], "line 2", "wrong type: each line must be a JSON object"),
        ("a.jsonl", [{"messages": "hi"}], "line 1", 'wrong type: "messages" must be a non-empty list'),
        ("a.jsonl", [{"messages": [{"role": "user"}]}], "line 1", 'wrong type: "messages"'),
        ("a.jsonl", [{"prompt": "a", "max_tokens": 0}], "line 1", '"max_tokens" must be an integer >= 1'),
        ("a.jsonl", [{"prompt": "a", "output_tokens": "9"}], "line 1", '"output_tokens" must be an integer'),
        ("a.jsonl", [{"prompt": "a", "max_tokens": True}], "line 1", '"max_tokens" must be an integer'),
        ("a.jsonl", [{"prompt": "a", "messages": []}], "line 1", "not both"),
        ("s.json", "[1, {", "line 1", "not JSON"),
        ("s.json", [{"conversations": "hi"}], "entry 1", 'an object with a "conversations" list'),
        ("s.json", [_turns("q", "a"), 7], "entry 2", 'an object with a "conversations" list'),
        ("s.json", [], "file", "empty file"),
        ("s.json", '[\n  {"conversations": 1}\n]', "entry 1", 'an object with a "conversations" list'),
        ("s.json", [_turns("q", None), _turns(None, "a")], "file", "empty file"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_a_bad_file_names_the_file_the_place_and_the_rule(
    tmp_path: pathlib.Path, name: str, content: object, where: str, rule: str
) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(errors.RecipeError) as info:
        options.plan(options.Options(url="http://127.0.0.1:1", requests=1, prompts=str(path)))
    text = str(info.value)
    assert f"prompts file {path}" in text and f"{where}: " in text and rule in text, text


def test_a_byte_order_mark_is_no_part_of_the_first_prompt(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"prompt": "hello"}\n')
    assert dataset.load(path).entries[0].text == "hello"


def test_a_missing_file_is_a_problem_not_a_traceback(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.RecipeError, match="cannot read file"):
        dataset.load(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("protocol", "lines", "sent"),
    [
        (
            "openai-completions",
            [{"prompt": "one two three", "max_tokens": 3}, {"prompt": "four five"}],
            [("one two three", 3), ("four five", 5), ("one two three", 3), ("four five", 5), ("one two three", 3)],
        ),
        (
            "openai-chat",
            [{"prompt": "one two three", "output_tokens": 2}],
            [([{"role": "user", "content": "one two three"}], 2)] * 5,
        ),
        (
            "openai-chat",
            [{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "a b c d"}]},
             {"prompt": "x y", "max_tokens": 4}],
            [([{"role": "system", "content": "be brief"}, {"role": "user", "content": "a b c d"}], 5),
             ([{"role": "user", "content": "x y"}], 4)] * 2
            + [([{"role": "system", "content": "be brief"}, {"role": "user", "content": "a b c d"}], 5)],
        ),
        (
            "openai-completions",
            [{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u v"}]}],
            [("s\nu v", 5)] * 5,
        ),
    ],
    ids=["completions cycle in order", "chat from a prompt", "chat messages as given", "messages as completion"],
)  # fmt: skip
async def test_jsonl_requests_cycle_through_the_file_in_order(
    server: fake_llm.Server,
    tmp_path: pathlib.Path,
    protocol: str,
    lines: list[object],
    sent: list[tuple[object, int]],
) -> None:
    path = _write(tmp_path, "p.jsonl", lines)
    result = await runner.run(_opts(server, path, protocol=protocol, concurrency=1, requests=5))
    assert result.summary.ok == 5
    key = "messages" if protocol == "openai-chat" else "prompt"
    assert [(b[key], b["max_tokens"]) for b in server.seen.bodies] == sent
    assert [r.output_tokens for r in result.records] == [n for _, n in sent]
    assert result.prompts is not None and result.prompts.format == dataset.JSONL
    assert "prompts from" in result.description


async def test_shuffled_prompts_follow_the_seed_and_keep_every_entry(
    server: fake_llm.Server, tmp_path: pathlib.Path
) -> None:
    path = _write(tmp_path, "p.jsonl", [{"prompt": f"prompt {i}"} for i in range(8)])
    sent = {}
    for seed in (1, 1, 2):
        server.seen.bodies.clear()
        opts = dataclasses.replace(_opts(server, path, protocol="openai-completions", concurrency=1, requests=8),
                                   shuffle_prompts=True, seed=seed)
        result = await runner.run(opts)
        order = [b["prompt"] for b in server.seen.bodies]
        assert sorted(order) == sorted(f"prompt {i}" for i in range(8))  # each entry once per pass
        assert result.prompts is not None and result.prompts.to_dict()["order"] == f"shuffled with seed {seed}, cycling"
        sent.setdefault(seed, []).append(order)
    assert sent[1][0] == sent[1][1]  # the same seed, the same order
    assert sent[1][0] != sent[2][0] and sent[1][0] != [f"prompt {i}" for i in range(8)]


def test_shuffle_without_a_prompts_file_is_refused(threaded_server: fake_llm.Server) -> None:
    result = CliRunner().invoke(main.app, ["bench", threaded_server.url, "-n", "1", "--shuffle-prompts"])
    assert result.exit_code == 2 and "--shuffle-prompts orders a --prompts file" in result.output


@pytest.mark.parametrize(
    ("usage", "source", "expected"),
    [("full", records.FROM_SERVER, [3 + 9, 5 + 9]), ("none", records.FROM_WORDS, [3, 5])],
    ids=["the server's count", "else the prompt's words"],
)
async def test_input_tokens_are_the_servers_count_else_the_prompts_words(
    server: fake_llm.Server, tmp_path: pathlib.Path, usage: str, source: str, expected: list[int]
) -> None:
    path = _write(tmp_path, "p.jsonl", [{"prompt": "a b c"}, {"prompt": "a b c d e"}])
    headers = (*FAST, ("X-Usage", usage))
    result = await runner.run(_opts(server, path, headers=headers, requests=2))
    assert [r.input_tokens for r in result.records] == expected  # chat: the template adds 9
    assert {r.input_tokens_from for r in result.records} == {source}


async def test_sharegpt_first_human_turn_is_the_prompt_first_gpt_turn_the_length(
    server: fake_llm.Server, tmp_path: pathlib.Path
) -> None:
    data = [
        {"conversations": [{"from": "system", "value": "sys"}, {"from": "human", "value": "hello there"},
                           {"from": "gpt", "value": "w1 w2 w3"}, {"from": "human", "value": "later"},
                           {"from": "gpt", "value": "not this one at all"}]},
        _turns("only a question", None),  # skipped: no answer
        _turns("second one", "a b"),
    ]  # fmt: skip
    path = _write(tmp_path, "share.json", data)
    result = await runner.run(
        _opts(server, path, protocol="openai-completions", rate=50.0, requests=3)  # an open loop
    )
    assert result.summary.ok == 3
    sent = sorted((b["prompt"], b["max_tokens"]) for b in server.seen.bodies)
    assert sent == [("hello there", 3), ("hello there", 3), ("second one", 2)]
    assert result.prompts is not None
    assert (result.prompts.format, len(result.prompts.entries), result.prompts.skipped) == ("sharegpt", 2, 1)


def _rec(
    i: int, *, e2e: float, ttft: float | None, out: int, inp: int = 10, error: str | None = None
) -> records.RequestRecord:
    gaps = ((e2e - ttft) / (out - 1),) * (out - 1) if ttft is not None and out > 1 else ()
    return records.RequestRecord(
        index=i, scheduled_s=None, start_s=0.0, end_s=e2e, ttft_s=ttft, itl_s=gaps, input_tokens=inp,
        output_tokens=out, status=None if error else 200, error=error,
    )  # fmt: skip


def test_goodput_is_among_vllms_fields_only_with_an_slo() -> None:
    rows = [_rec(0, e2e=1.0, ttft=0.1, out=10), _rec(1, e2e=3.0, ttft=0.3, out=10)]
    slo = summary.parse_slo("e2el:2000")
    fields = summary.vllm_compatible(rows, summary.summarize(rows, 2.0, slo))
    assert set(fields) == VLLM_FIELDS | {"request_goodput"}
    assert fields["request_goodput"] == pytest.approx(0.5)  # 1 of the 2 within 2 s, over 2 s


@pytest.mark.parametrize(
    ("rows", "duration", "expected"),
    [
        (
            [_rec(0, e2e=1.0, ttft=0.1, out=10), _rec(1, e2e=3.0, ttft=0.3, out=10)],
            2.0,
            {"completed": 2, "failed": 0, "total_input_tokens": 20, "total_output_tokens": 20,
             "request_throughput": 1.0, "output_throughput": 10.0, "total_token_throughput": 20.0,
             "mean_ttft_ms": 200.0, "median_ttft_ms": 200.0, "p99_ttft_ms": 298.0,
             "mean_tpot_ms": 200.0, "median_tpot_ms": 200.0, "mean_itl_ms": 200.0,
             "mean_e2el_ms": 2000.0, "median_e2el_ms": 2000.0, "p99_e2el_ms": 2980.0,
             "std_ttft_ms": 100.0, "std_e2el_ms": 1000.0, "std_tpot_ms": 100.0},
        ),
        (  # failures count in no total; no streaming: no TTFT, TPOT or ITL (None, where vLLM writes 0)
            [_rec(0, e2e=0.5, ttft=None, out=4), _rec(1, e2e=9.0, ttft=None, out=7, error="http_503")],
            0.5,
            {"completed": 1, "failed": 1, "total_input_tokens": 10, "total_output_tokens": 4,
             "request_throughput": 2.0, "output_throughput": 8.0, "total_token_throughput": 28.0,
             "mean_ttft_ms": None, "p99_tpot_ms": None, "median_itl_ms": None, "mean_e2el_ms": 500.0,
             "std_ttft_ms": None, "std_e2el_ms": 0.0},
        ),
    ],
    ids=["streamed", "a failure and no stream"],
)  # fmt: skip
def test_vllm_compatible_fields_use_vllms_names_and_milliseconds(
    rows: list[records.RequestRecord], duration: float, expected: dict[str, object]
) -> None:
    fields = summary.vllm_compatible(rows, summary.summarize(rows, duration))
    assert set(fields) == VLLM_FIELDS
    assert fields["duration"] == duration
    for name, value in expected.items():
        assert fields[name] == (None if value is None else pytest.approx(value)), name


@pytest.mark.parametrize("use_file", [False, True], ids=["synthetic", "file"])
def test_cli_json_has_the_prompt_source_and_vllm_fields(
    threaded_server: fake_llm.Server, tmp_path: pathlib.Path, use_file: bool
) -> None:
    path = _write(tmp_path, "p.jsonl", [{"prompt": "a b c", "max_tokens": 3}])
    extra = ["--prompts", str(path)] if use_file else []
    out = tmp_path / "b.json"
    args = ["bench", threaded_server.url, "-n", "4", "-c", "2", "-q", "-H", "X-TTFT: 0.01", "-H", "X-ITL: 0.002",
            "--output-tokens", "2", f"--json={out}", *extra]  # fmt: skip
    result = CliRunner().invoke(main.app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["prompts"] == (
        {"source": "file", "path": str(path), "format": "jsonl", "entries": 1, "skipped": 0,
         "order": "in order, cycling"} if use_file else {"source": "synthetic"}
    )  # fmt: skip
    vllm = data["vllm_compatible"]
    assert set(vllm) == VLLM_FIELDS and vllm["completed"] == 4
    assert vllm["total_output_tokens"] == 4 * (3 if use_file else 2)
    assert vllm["mean_ttft_ms"] == pytest.approx(data["summary"]["ttft"]["mean"] * 1000)
    assert data["summary"]["ok"] == 4  # the nested summary stays


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ('{"prompt": "a"}\n{oops\n', [], "line 2: not JSON"),
        ('{"prompt": "a"}\n', ["--input-tokens", "50"], "input lengths come from the prompts file"),
    ],
    ids=["bad line", "input tokens too"],
)
def test_cli_refuses_a_bad_prompts_file_with_a_message(
    tmp_path: pathlib.Path, content: str, extra: list[str], message: str
) -> None:
    path = _write(tmp_path, "p.jsonl", content)
    result = CliRunner().invoke(
        main.app, ["bench", "http://127.0.0.1:1", "-n", "1", "--prompts", str(path), *extra]
    )
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_export_of_a_plain_result_keeps_the_old_keys() -> None:
    rows = (_rec(0, e2e=1.0, ttft=0.1, out=3),)
    result = runner.Result(
        options=options.Options(url="http://x"), description="d", url="http://x", started_at=0.0, records=rows,
        summary=summary.summarize(rows, 1.0), interrupted=False,
    )  # fmt: skip
    data = export.to_dict(result)
    assert {"summary", "timeline", "options", "warmup", "vllm_compatible", "prompts"} <= set(data)
    assert data["vllm_compatible"]["completed"] == 1 and data["prompts"] == {"source": "synthetic"}


def test_a_device_that_never_ends_is_read_only_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset, "MAX_CHARS", 1000)
    with pytest.raises(errors.RecipeError, match="longer than 1,000 characters"):
        dataset.load("/dev/zero")
