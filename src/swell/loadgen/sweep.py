"""A sweep: the same bench at several loads, one run each (genai-perf's concurrency sweep, vLLM's
and GuideLLM's rate sweeps), to see where throughput stops growing and latency turns.

`--sweep concurrency=1,2,4,8` or `--sweep rate=1,2,4`: each level is a whole run with the other
options as given (bounds, shape, prompts, goodput). The table has one row per level; with
`--goodput`, the highest level at which at least `SLO_SHARE` of the requests met the SLO is what
one endpoint sustains within it: the number a recipe's target (or the planner's capacity) wants.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from swell import errors
from swell.loadgen import export, options, runner, summary
from swell.report import html, plots

KINDS = ("concurrency", "rate")
SLO_SHARE = 0.99  # the share of requests within the goodput SLO that counts as sustained
MAX_LEVELS = 32


@dataclass(frozen=True, kw_only=True)
class Sweep:
    kind: str  # concurrency or rate
    levels: tuple[float, ...]

    def label(self, level: float) -> str:
        return f"{self.kind} {level:g}"


def _problem(value: str, rule: str) -> errors.RecipeError:
    return errors.RecipeError("--sweep", [errors.Problem(path="--sweep", value=value, rule=rule)])


def parse(text: str) -> Sweep:
    """'concurrency=1,2,4' or 'rate=0.5,1,2' -> a Sweep; RecipeError naming the rule otherwise."""
    kind, sep, values = text.partition("=")
    kind = kind.strip()
    if not sep or kind not in KINDS:
        raise _problem(text, f"KIND=V1,V2,... with KIND one of {', '.join(KINDS)}, e.g. concurrency=1,2,4,8")
    try:
        levels = tuple(float(v) for v in values.split(",") if v.strip())
    except ValueError:
        raise _problem(text, "the levels are numbers, comma-separated") from None
    if not levels or len(levels) > MAX_LEVELS:
        raise _problem(text, f"give 1 to {MAX_LEVELS} levels")
    if any(not (math.isfinite(v) and v > 0) for v in levels):
        raise _problem(text, "each level is a finite number > 0")
    if kind == "concurrency" and any(not v.is_integer() for v in levels):
        raise _problem(text, "concurrency levels are whole numbers of users")
    if len(set(levels)) != len(levels):
        raise _problem(text, "each level once")
    return Sweep(kind=kind, levels=tuple(sorted(levels)))


def at(opts: options.Options, sweep: Sweep, level: float) -> options.Options:
    """The options of one level's run."""
    if sweep.kind == "concurrency":
        return dataclasses.replace(opts, concurrency=int(level), rate=None)
    return dataclasses.replace(opts, rate=level, concurrency=None)


@dataclass(frozen=True, kw_only=True)
class Point:
    level: float
    result: runner.Result


def sustained(points: Sequence[Point]) -> Point | None:
    """The highest level at which at least SLO_SHARE of the requests met the goodput SLO (None
    without --goodput, or where none did)."""
    ok = [p for p in points if (p.result.summary.slo_attainment or 0.0) >= SLO_SHARE]
    return max(ok, key=lambda p: p.level) if ok else None


def table(sweep: Sweep, points: Sequence[Point]) -> html.Table:
    rows = []
    for p in points:
        s = p.result.summary
        rows.append((
            f"{p.level:g}", s.sent, s.ok, s.request_rate, s.output_token_rate, summary.ms(s.ttft.p50),
            summary.ms(s.ttft.p95), summary.ms(s.e2e.p95), s.goodput_rps,
            None if s.slo_attainment is None else 100.0 * s.slo_attainment,
        ))  # fmt: skip
    columns = (sweep.kind, "sent", "ok", "req/s", "output tok/s", "TTFT p50 ms", "TTFT p95 ms", "e2e p95 ms",
               "goodput req/s", "within SLO %")  # fmt: skip
    return html.Table(columns=columns, rows=tuple(rows), caption="one run per level")


def to_dict(sweep: Sweep, points: Sequence[Point]) -> dict[str, Any]:
    best = sustained(points)
    return {
        "sweep": {
            "kind": sweep.kind,
            "levels": list(sweep.levels),
            "sustained_within_slo": None if best is None else best.level,
            "slo_share": SLO_SHARE,
            "runs": [{"level": p.level, **export.to_dict(p.result)} for p in points],
        }
    }


def sections(sweep: Sweep, points: Sequence[Point]) -> list[html.Section]:
    x = [p.level for p in points]
    s = [p.result.summary for p in points]

    def line(label: str, ys: list[float | None], axis: str = "left") -> plots.Series:
        return plots.Series(label=label, t=x, y=[math.nan if y is None else y for y in ys],
                            axis=axis, style="line")  # type: ignore[arg-type]  # fmt: skip

    throughput = plots.time_series(
        "Throughput by load",
        [line("requests/s", [v.request_rate for v in s]), line("output tokens/s", [v.output_token_rate for v in s], "right")]
        + ([line("goodput requests/s", [v.goodput_rps for v in s])] if any(v.goodput_rps is not None for v in s) else []),
        ylabel="requests/s", y2label="tokens/s", xlabel=sweep.kind,
    )  # fmt: skip
    latency = plots.time_series(
        "Latency by load",
        [line("TTFT p50", [v.ttft.p50 for v in s]), line("TTFT p95", [v.ttft.p95 for v in s]),
         line("e2e p50", [v.e2e.p50 for v in s]), line("e2e p95", [v.e2e.p95 for v in s])],
        ylabel="seconds", xlabel=sweep.kind,
    )  # fmt: skip
    best = sustained(points)
    text = (
        f"Sustained within the goodput SLO (at least {SLO_SHARE:.0%} of requests): {sweep.label(best.level)}."
        if best is not None
        else (f"No level kept {SLO_SHARE:.0%} of requests within the goodput SLO." if any(v.slo is not None for v in s)
              else "Give --goodput to see the highest level sustained within an SLO.")
    )  # fmt: skip
    return [html.Section(title=f"Sweep of {sweep.kind}", text=text, tables=(table(sweep, points),),
                         figures=(throughput, latency))]  # fmt: skip


def write_report(sweep: Sweep, points: Sequence[Point], path: str | pathlib.Path) -> pathlib.Path:
    subtitle = f"{len(points)} runs: {sweep.kind} " + ", ".join(f"{p.level:g}" for p in points)
    return html.write(path, "swell bench sweep", sections(sweep, points), subtitle=subtitle)
