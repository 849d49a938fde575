"""Odd files and options a fuzzer found to crash a command: each is now an error that names the
file, line, field or option and why, never an unexpected exception (every command's own input)."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swell import errors
from swell.cli import main

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = str(ROOT / "examples" / "llama3-8b-a10.yaml")
SCHEDULED = ROOT / "examples" / "cronhpa-schedule.yaml"
BIG = "9" * 5000  # past Python's 4,300 digits for int(str)
DEEP = "[" * 100_000 + "]" * 100_000


def _corrupt_gzip(path: Path) -> None:
    raw = bytearray(gzip.compress(b"t,input_tokens,output_tokens\n" + b"".join(b"%d,100,20\n" % i for i in range(200))))
    raw[20], raw[21] = raw[21] ^ 0xFF, raw[20] ^ 0xFF  # inside the deflate stream: zlib's error, not gzip's
    path.write_bytes(bytes(raw))


Write = Callable[[Path], list[str]]  # writes the case's files into a folder, returns the command's arguments


def _file(name: str, text: str, *args: str) -> Write:
    def write(d: Path) -> list[str]:
        (d / name).write_text(text)
        return [a.replace("{}", str(d / name)) for a in args]

    return write


def _gz(d: Path) -> list[str]:
    _corrupt_gzip(d / "t.csv.gz")
    return ["simulate", EXAMPLE, "-q", "--no-oracle", "-w", str(d / "t.csv.gz")]


def _timezone(d: Path) -> list[str]:
    (d / "r.yaml").write_text(SCHEDULED.read_text().replace("Asia/Shanghai", "America"))
    return ["validate", str(d / "r.yaml")]


CASES = [
    pytest.param(_file("r.yaml", f"service: {{name: x}}\nautoscaling: {{max_replicas: {BIG}}}\n", "validate", "{}"),
                 "4300 digits", id="a recipe number of 5,000 digits"),
    pytest.param(_file("r.json", f'{{"service": {{"name": "x"}}, "autoscaling": {{"max_replicas": {BIG}}}}}', "plan", "{}"),
                 "4300 digits", id="a recipe number of 5,000 digits, in JSON"),
    pytest.param(_file("r.yaml", "service: {name: a}\nautoscaling: {max_replicas: 3}\nservice: {name: b}\n", "validate", "{}"),
                 "key 'service' appears twice in one mapping (lines 1 and 3)", id="a recipe key written twice"),
    pytest.param(_file("r.yaml", "service: {name: a, name: b}\n", "validate", "{}"),
                 "key 'name' appears twice in one mapping (line 1)", id="a key written twice on one line"),
    pytest.param(_file("r.json", '{"service": {"name": "a", "name": "b"}}', "validate", "{}"),
                 "key 'name' appears twice in one object", id="a JSON key written twice"),
    pytest.param(_file("o.jsonl", f'{{"t": {BIG}, "replicas": {{"ready": 1}}}}\n', "decide", EXAMPLE, "-o", "{}"),
                 "line 1: not an observation's numbers", id="an observation's t of 5,000 digits"),
    pytest.param(lambda d: ["render", EXAMPLE, "-m", "keda", "--prometheus-url", "http://[::1"],
                 "--prometheus-url: not a URL", id="a URL whose brackets hold no address"),
    pytest.param(_timezone, "schedules.0.timezone", id="a timezone that is tzdata's folder"),
    pytest.param(lambda d: ["simulate", str(SCHEDULED), "-q", "--no-oracle", "-w", "poisson:rate=1", "--duration", "60s",
                            "--start", "9999-12-31T23:59Z"], "--start: a date from 1900-01-01 to 5000-01-01",
                 id="a start at the calendar's end, with schedules"),
    pytest.param(_file("t.jsonl", '{"t": 0, "input_tokens": 1' + "0" * 400 + ', "output_tokens": 5}\n',
                       "simulate", EXAMPLE, "-q", "--no-oracle", "-w", "{}"),
                 "line 1: needs numbers t, input_tokens, output_tokens", id="a trace's token count of 400 digits"),
    pytest.param(_file("t.jsonl", '{"t": 0, "input_tokens": 10, "output_tokens": 5}\n' + DEEP + "\n",
                       "simulate", EXAMPLE, "-q", "--no-oracle", "-w", "{}"),
                 "line 2: needs numbers", id="a trace line nested 100,000 deep"),
    pytest.param(_file("t.jsonl", '{"t": 0, "input_tokens": 1e12, "output_tokens": 5}\n',
                       "simulate", EXAMPLE, "-q", "--no-oracle", "-w", "{}"),
                 "token counts at most 10,000,000", id="a token count no int64 would hold exactly"),
    pytest.param(lambda d: ["simulate", EXAMPLE, "-q", "--no-oracle", "-w", "x" * 10_000],
                 "kind: unknown workload kind", id="a workload name longer than any file name"),
    pytest.param(lambda d: ["simulate", EXAMPLE, "-q", "--no-oracle", "-w", "poisson:rate=1", "--duration", "9" * 400],
                 "--duration: at most 31 days", id="a duration past float's range"),
    pytest.param(_gz, "cannot be read: Error -3 while decompressing", id="a gzip trace corrupted inside"),
    pytest.param(_file("p.jsonl", '{"prompt": ' + DEEP + "}\n", "bench", "http://127.0.0.1:9", "-q", "-n", "1",
                       "--prompts", "{}"), "line 1: nested too deeply to be a prompt", id="a prompts line nested too deeply"),
    pytest.param(_file("k.yaml", "apiVersion: v1\nkind: 5\n", "import", "{}"), "kind: must be text",
                 id="an import whose kind is a number"),
    pytest.param(_file("k.yaml", "apiVersion: v1\nkind: Pod\nmetadata: x\n", "import", "{}"), "metadata: must be a mapping",
                 id="an import whose metadata is text"),
    pytest.param(_file("k.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {config.yaml: 5}\n",
                       "import", "{}"), "data: must be a mapping of text", id="a ConfigMap whose file is a number"),
    pytest.param(_file("a.yaml", "rules: [5]\n", "import", "{}"), "prometheus-adapter config: rules[0]: must be a mapping",
                 id="a prometheus-adapter rule that is a number"),
    pytest.param(_file("a.yaml", 'rules: [{seriesQuery: "x_total", name: {matches: "("}}]\n', "import", "{}"),
                 "rules[0].name: matches/as: not a regular expression", id="a prometheus-adapter rename that is no regex"),
]  # fmt: skip


@pytest.mark.parametrize(("write", "says"), CASES)
def test_odd_input_is_an_error_that_says_what(write: Write, says: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(main.app, write(tmp_path))
    # a SwellError reaches main() (which prints it); a command that prints its own exits 1 (bench: 2)
    said = str(r.exception) if isinstance(r.exception, errors.SwellError) else r.output
    assert isinstance(r.exception, errors.SwellError) or r.exit_code in (1, 2), (repr(r.exception), r.output)
    assert says in " ".join(said.split()), said


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this system")
@pytest.mark.parametrize("args", [["validate", "/dev/zero"], ["decide", EXAMPLE, "-o", "/dev/zero"]], ids=" ".join)
def test_a_file_that_never_ends_is_read_up_to_a_limit(args: list[str]) -> None:
    r = CliRunner().invoke(main.app, args)
    assert isinstance(r.exception, errors.RecipeError) and "longer than" in str(r.exception), repr(r.exception)
