"""Request traces: loading them and replaying them faster, slower, denser or sparser.

Formats, each plain or gzip-compressed, told apart by their header or first line: the Azure LLM
inference trace 2023 (`TIMESTAMP, ContextTokens, GeneratedTokens`), BurstGPT's CSV (`Timestamp`
in seconds, `Request tokens`, `Response tokens`, ...), Mooncake's JSONL (`timestamp` in ms,
`input_length`, `output_length`, `hash_ids`) and a plain CSV or JSONL of `t, input_tokens,
output_tokens` (seconds). Replay compresses time by `speedup` (×N faster), scales the rate by
`scale` (thinning below 1, copies in the gap to the next request above 1) and prompts by
`input_scale`, without changing the trace's shape.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import math
import os
import pathlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from swell import errors
from swell.workload import arrivals, shapes

BATCH = 4096
MAX_SCALE = 1000.0  # a replay's rate multiplier: 1e12 would copy each request a trillion times
MAX_TOKENS = 10_000_000  # a request's prompt or answer: past any context window (int64 holds the counts)
NAMED = {
    "azure-conv": "azure_llm_2023/AzureLLMInferenceTrace_conv.csv.gz",
    "azure-code": "azure_llm_2023/AzureLLMInferenceTrace_code.csv.gz",
}
# Where a user gets each named trace (said in the docs and in the error when it is missing).
ORIGIN = {
    "azure-conv": "data/AzureLLMInferenceTrace_conv.csv of github.com/Azure/AzurePublicDataset (CC-BY 4.0)",
    "azure-code": "data/AzureLLMInferenceTrace_code.csv of github.com/Azure/AzurePublicDataset (CC-BY 4.0)",
}
_BURSTGPT = ["timestamp", "model", "request tokens", "response tokens"]
_MOONCAKE = ("timestamp", "input_length", "output_length")


def traces_dir() -> pathlib.Path:
    """Where the shared public traces live: $SWELL_TRACES, else the first of ../shared/traces near here."""
    if env := os.environ.get("SWELL_TRACES"):
        return pathlib.Path(env)
    here = pathlib.Path(__file__).resolve()
    candidates = [p / "shared" / "traces" for p in here.parents] + [pathlib.Path.cwd() / "shared" / "traces"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[-1]


def _problem(source: str, path: str, value: object, rule: str) -> errors.RecipeError:
    return errors.RecipeError(source, [errors.Problem(path=path, value=value, rule=rule)])


def _open_text(path: pathlib.Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return io.TextIOWrapper(path.open("rb"), encoding="utf-8")


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> tuple[arrivals.Arrivals, float | None]:
    """(the arrivals, the Unix time of the first request where the file carries dates, else None)."""
    del mtime_ns  # part of the cache key only: a changed file is read again
    file = pathlib.Path(path)
    source = f"trace {path}"
    try:
        with _open_text(file) as text:
            first = text.readline().strip()
            body = text.read()
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as exc:  # zlib: a gzip body corrupted
        raise _problem(source, "file", path, f"cannot be read: {exc}") from exc
    if first.startswith("{"):
        return _from_jsonl(source, first + "\n" + body), None
    columns = [c.strip().lower() for c in first.split(",")]
    if columns[:3] == ["timestamp", "contexttokens", "generatedtokens"]:
        return _from_azure(source, body)
    if columns[:3] == ["t", "input_tokens", "output_tokens"]:
        return _from_plain_csv(source, body), None
    if columns[:4] == _BURSTGPT:
        return _from_burstgpt(source, first, body), None
    raise _problem(
        source,
        "header",
        first[:80],
        "expected 'TIMESTAMP,ContextTokens,GeneratedTokens' (Azure), 'Timestamp,Model,Request tokens,"
        "Response tokens,...' (BurstGPT), 't,input_tokens,output_tokens' (CSV), or JSON lines of "
        "t/input_tokens/output_tokens or of Mooncake's timestamp/input_length/output_length",
    )


def _table(source: str, body: str, dtypes: tuple[str, ...]) -> list[np.ndarray]:
    lines = [line for line in body.splitlines() if line.strip()]
    if not lines:
        raise _problem(source, "rows", 0, "the trace has no requests")
    try:
        rows = np.loadtxt(lines, delimiter=",", dtype=",".join(dtypes), ndmin=1)
    except ValueError as exc:
        line, rule = _row_rule(body, dtypes)  # numpy's own words name its internals ("use `usecols`"): not shown
        raise _problem(source, "rows", line, rule) from exc
    return [rows[name] for name in rows.dtype.names or ()]


def _row_rule(body: str, dtypes: tuple[str, ...]) -> tuple[str, str]:
    """(the row, what is wrong with it) of the first row numpy refused: its count of values, or a value
    that is no number (numbered as in the file: line 1 is the header, blank lines count)."""
    for i, line in enumerate(body.splitlines(), start=2):
        if not line.strip():
            continue
        cells, shown = line.split(","), errors.cut(line.strip(), 80)
        if len(cells) != len(dtypes):
            return shown, f"line {i}: {len(cells)} value(s) where every row has {len(dtypes)} comma-separated values"
        for cell, kind in zip(cells, dtypes, strict=True):
            if kind.startswith(("f", "i")):
                try:
                    float(cell) if kind.startswith("f") else int(cell)
                except ValueError:
                    return shown, f"line {i}: {cell.strip()!r} is not a {'whole ' if kind.startswith('i') else ''}number"
    return "", f"every row needs {len(dtypes)} comma-separated values"


def _from_azure(source: str, body: str) -> tuple[arrivals.Arrivals, float]:
    """Azure's TIMESTAMP column: dates and times without an offset, read as UTC."""
    stamps, ctx, gen = _table(source, body, ("U32", "i8", "i8"))
    try:
        ns = np.array(stamps, dtype="datetime64[ns]").astype(np.int64)
    except ValueError as exc:
        raise _problem(source, "TIMESTAMP", str(exc)[:80], "must be a date and time") from exc
    return _finish(source, (ns - ns.min()) / 1e9, ctx, gen), float(ns.min()) / 1e9


def _from_plain_csv(source: str, body: str) -> arrivals.Arrivals:
    t, inp, out = _table(source, body, ("f8", "f8", "f8"))
    return _finish(source, t, inp, out)


def _from_burstgpt(source: str, header: str, body: str) -> arrivals.Arrivals:
    """BurstGPT (github.com/HPMLL/BurstGPT): seconds since the trace start, one row a request."""
    names = [c.strip().lower() for c in next(csv.reader([header]))]
    at = {name: names.index(name) for name in ("timestamp", "request tokens", "response tokens")}
    t, inp, out = [], [], []
    for number, row in enumerate(csv.reader(body.splitlines()), start=2):
        if not row:
            continue
        try:
            t.append(float(row[at["timestamp"]]))
            inp.append(float(row[at["request tokens"]]))
            out.append(float(row[at["response tokens"]]))
        except (ValueError, IndexError) as exc:
            raise _problem(
                source,
                f"line {number}",
                ",".join(row)[:80],
                "needs numbers Timestamp, Request tokens, Response tokens",
            ) from exc
    return _finish(source, _from_first(t), np.array(inp), np.array(out))


def _from_jsonl(source: str, body: str) -> arrivals.Arrivals:
    """Plain JSON lines (t in seconds) or Mooncake's (github.com/kvcache-ai/Mooncake, FAST'25):
    `timestamp` in milliseconds, `input_length`, `output_length`; `hash_ids` (its prefix-cache
    blocks) are not used, since the engine model has no prefix cache."""
    t, inp, out = [], [], []
    mooncake = False
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if number == 1:
                mooncake = isinstance(row, dict) and all(k in row for k in _MOONCAKE)
            if mooncake:
                t.append(float(row["timestamp"]) / 1000.0)
                inp.append(float(row["input_length"]))
                out.append(float(row["output_length"]))
            else:
                t.append(float(row["t"]))
                inp.append(float(row["input_tokens"]))
                out.append(float(row["output_tokens"]))
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
            rule = (
                "needs numbers timestamp (ms), input_length, output_length (Mooncake)"
                if mooncake
                else "needs numbers t, input_tokens, output_tokens"
            )
            raise _problem(source, f"line {number}", line[:80], rule) from exc
    return _finish(source, _from_first(t) if mooncake else np.array(t), np.array(inp), np.array(out))


def _from_first(t: list[float]) -> np.ndarray:
    """Seconds since the first request (the published traces start at an arbitrary offset)."""
    times = np.array(t, dtype=np.float64)
    return times - times.min() if len(times) and np.isfinite(times).all() else times


def _finish(source: str, t: np.ndarray, inp: np.ndarray, out: np.ndarray) -> arrivals.Arrivals:
    t = np.asarray(t, dtype=np.float64)
    if len(t) == 0:
        raise _problem(source, "rows", 0, "the trace has no requests")
    inp, out = np.asarray(inp, dtype=np.float64), np.asarray(out, dtype=np.float64)
    bad = ~np.isfinite(t) | (t < 0) | ~np.isfinite(inp) | ~np.isfinite(out) | (inp < 0) | (out < 0)
    bad |= (inp > MAX_TOKENS) | (out > MAX_TOKENS)
    if bad.any():
        row = int(np.argmax(bad))
        raise _problem(
            source, f"row {row + 1}", f"t {t[row]:g}, {inp[row]:g} tokens in, {out[row]:g} out",
            f"times and token counts must be >= 0, token counts at most {MAX_TOKENS:,}",
        )  # fmt: skip
    order = np.argsort(t, kind="stable")
    return arrivals.Arrivals(
        t=t[order],
        input_tokens=np.asarray(inp, dtype=np.int64)[order],
        output_tokens=np.asarray(out, dtype=np.int64)[order],
    )


def is_file(path: pathlib.Path) -> bool:
    """Path.is_file, False for a name the file system refuses (longer than 255 bytes) too."""
    try:
        return path.is_file()
    except OSError:
        return False


def not_a_file(path: pathlib.Path) -> str:
    """Why a trace path that is no file cannot be read."""
    return "a directory: give a trace file (CSV or JSONL) in it" if path.is_dir() else "no such file"


def _read(path: str | os.PathLike[str]) -> tuple[arrivals.Arrivals, float | None]:
    file = pathlib.Path(path)
    if not is_file(file):
        raise _problem(f"trace {file}", "file", str(file), not_a_file(file))
    return _load_cached(str(file.resolve()), file.stat().st_mtime_ns)


def load(path: str | os.PathLike[str]) -> arrivals.Arrivals:
    """A trace file as arrivals, times relative to its first request (read once, then cached)."""
    return _read(path)[0]


def first_date(path: str | os.PathLike[str]) -> float | None:
    """The Unix time of a trace's first request where its file carries dates (Azure's TIMESTAMP);
    None where it holds only relative times (plain CSV, BurstGPT, JSON lines, Mooncake)."""
    return _read(path)[1]


def named_path(name: str) -> pathlib.Path:
    """The file of a named public trace (`azure-conv`, `azure-code`): gzipped, else plain."""
    path = traces_dir() / NAMED[name]
    plain = path.with_suffix("")
    return plain if not path.is_file() and plain.is_file() else path


def missing_named(name: str) -> str:
    """Where a named trace's file was looked for, where it comes from and how to get it."""
    return (
        f"not found; it is {ORIGIN[name]}: download it to {named_path(name)} (gzipped or plain), "
        "or point SWELL_TRACES at a directory holding azure_llm_2023/, or replay any copy with trace:PATH"
    )


def replay_problem(speedup: float, scale: float, start_s: float) -> tuple[str, str, float] | None:
    """(option, rule, value) of the first of a replay's time-compression, rate-scale and start
    options that is out of bounds; None when all three are in."""
    for name, value in (("speedup", speedup), ("scale", scale)):
        if not (math.isfinite(value) and value > 0):
            return name, "must be a finite number > 0", value
    if scale > MAX_SCALE:
        return "scale", f"must be at most {MAX_SCALE:g} (copies of each request)", scale
    if not start_s >= 0:
        return "start", "must be >= 0", start_s
    return None


def check_replay(speedup: float, scale: float, start_s: float) -> None:
    """The time-compression, rate-scale and start options every replay shares (ValueError)."""
    if (problem := replay_problem(speedup, scale, start_s)) is not None:
        name, rule, value = problem
        raise ValueError(f"{name} {rule}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Replay:
    """A trace file replayed: `speedup`× faster, `scale`× the requests, from `start_s` into the trace."""

    path: pathlib.Path
    speedup: float = 1.0
    scale: float = 1.0
    start_s: float = 0.0
    input_scale: float = 1.0  # prompts × this (a longer-context variant of the same traffic)
    shape: shapes.Shape | None = None  # None: the trace's own lengths

    def __post_init__(self) -> None:
        check_replay(self.speedup, self.scale, self.start_s)
        if not (math.isfinite(self.input_scale) and self.input_scale > 0):
            raise ValueError(f"input-scale must be a number > 0, got {self.input_scale!r}")

    @property
    def description(self) -> str:
        extra = "".join(
            [
                f", ×{self.speedup:g} faster" if self.speedup != 1 else "",
                f", rate ×{self.scale:g}" if self.scale != 1 else "",
                f", from {self.start_s:g} s" if self.start_s else "",
                f", prompts ×{self.input_scale:g}" if self.input_scale != 1 else "",
                f"; {self.shape.description}" if self.shape else "",
            ]
        )
        return f"trace {self.path.name}{extra}"

    def calendar(self) -> tuple[float | None, str]:
        """(the Unix time of the replay's t = 0, or None, and why not): the trace's own date where
        its file carries dates, moved by `start_s`; a replay run faster than recorded has none."""
        first = first_date(self.path)
        if first is None:
            return None, f"{self.path.name} holds relative times, not dates"
        if self.speedup != 1:
            return None, f"replayed ×{self.speedup:g} faster, its hours are not the calendar's"
        return first + self.start_s, ""

    @property
    def natural_duration_s(self) -> float | None:
        trace = load(self.path)
        return max(0.0, float(trace.t[-1]) - self.start_s) / self.speedup + 1e-9

    def batches(self, rng: np.random.Generator, horizon_s: float) -> Iterator[arrivals.Arrivals]:
        trace = load(self.path)
        t = (trace.t - self.start_s) / self.speedup
        keep = (t >= 0) & (t < horizon_s)
        chosen = trace[keep]
        t = t[keep]
        mean_gap = float(t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else 1.0
        for lo in range(0, len(t), BATCH):
            part = chosen[lo : lo + BATCH]
            times = t[lo : lo + BATCH]
            next_t = t[lo + BATCH] if lo + BATCH < len(t) else float(t[-1]) + mean_gap
            batch = _rescale(rng, times, part, next_t, self.scale)
            if self.shape is not None:
                batch = shapes.attach(batch.t, self.shape, rng)
            elif self.input_scale != 1:
                longer = np.maximum(1, np.rint(batch.input_tokens * self.input_scale)).astype(np.int64)
                batch = arrivals.Arrivals(t=batch.t, input_tokens=longer, output_tokens=batch.output_tokens)
            batch = batch[batch.t < horizon_s]
            if len(batch):
                yield batch


def _rescale(
    rng: np.random.Generator, t: arrivals.FloatArray, part: arrivals.Arrivals, next_t: float, scale: float
) -> arrivals.Arrivals:
    """Keep each request floor(scale) or ceil(scale) times (expected `scale`), copies within its gap."""
    if scale == 1:
        return arrivals.Arrivals(t=t, input_tokens=part.input_tokens, output_tokens=part.output_tokens)
    whole, frac = divmod(scale, 1.0)
    copies = int(whole) + (rng.random(len(t)) < frac).astype(np.int64)
    idx = np.repeat(np.arange(len(t)), copies)
    gaps = np.diff(np.append(t, next_t))
    first = np.concatenate(([True], idx[1:] != idx[:-1])) if len(idx) else np.zeros(0, bool)
    jitter = np.where(first, 0.0, rng.random(len(idx)) * gaps[idx])
    times = t[idx] + jitter
    order = np.argsort(times, kind="stable")
    return arrivals.Arrivals(
        t=times[order],
        input_tokens=part.input_tokens[idx][order],
        output_tokens=part.output_tokens[idx][order],
    )
