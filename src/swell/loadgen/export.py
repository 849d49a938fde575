"""A run's results as files: JSON (options, summary, per-interval timeline) and CSV (per request).

The timeline (offered and completed requests per second, errors, output tokens per second,
latency percentiles per interval) is also what the HTML report plots.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import json
import math
import pathlib
from typing import Any

import numpy as np

from swell import files
from swell.loadgen import dataset, runner, summary
from swell.report import plots

CSV_COLUMNS = (
    "index", "scheduled_s", "start_s", "end_s", "e2e_s", "ttft_s", "tpot_s", "mean_itl_s",
    "input_tokens", "input_tokens_from", "output_tokens", "status", "error", "error_detail", "attempts",
)  # fmt: skip


def bucket_width(duration_s: float) -> float:
    """A round interval giving at most ~300 points over the run."""
    for width in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if duration_s / width <= 300:
            return float(width)
    return 3600.0


def timeline(result: runner.Result, width_s: float | None = None) -> dict[str, list[float | None]]:
    """Per-interval series of the run (NaN-free: empty latency intervals are None)."""
    rows = result.records
    width = width_s or bucket_width(result.summary.duration_s)
    end = result.summary.duration_s
    starts = np.array([r.start_s for r in rows])
    ends = np.array([r.end_s for r in rows])
    ok = np.array([r.ok for r in rows], dtype=bool)
    scheduled = np.array([r.scheduled_s if r.scheduled_s is not None else r.start_s for r in rows])
    e2e = ends - starts
    ttft = np.array([r.ttft_s if r.ttft_s is not None else np.nan for r in rows])
    out_tokens = np.array([r.output_tokens for r in rows], dtype=np.float64)
    t, offered = plots.bucketed(scheduled, width_s=width, end=end)
    series = {
        "t": t,
        "offered_rps": offered,
        "completed_rps": plots.bucketed(ends[ok], width_s=width, end=end)[1],
        "errors_rps": plots.bucketed(ends[~ok], width_s=width, end=end)[1] if len(rows) else offered * 0,
        "output_tokens_per_s": plots.bucketed(ends[ok], out_tokens[ok], width_s=width, stat="sum", end=end)[1]
        / width,
        "e2e_p50_s": plots.bucketed(starts[ok], e2e[ok], width_s=width, stat="p50", end=end)[1],
        "e2e_p95_s": plots.bucketed(starts[ok], e2e[ok], width_s=width, stat="p95", end=end)[1],
    }
    has_ttft = ok & np.isfinite(ttft)
    if has_ttft.any():
        series["ttft_p50_s"] = plots.bucketed(
            starts[has_ttft], ttft[has_ttft], width_s=width, stat="p50", end=end
        )[1]
        series["ttft_p95_s"] = plots.bucketed(
            starts[has_ttft], ttft[has_ttft], width_s=width, stat="p95", end=end
        )[1]
    # Requests in flight at each interval start: started before it and not yet ended.
    series["in_flight"] = np.array([np.sum((starts <= x) & (ends > x)) for x in t], dtype=np.float64)
    return {
        k: [None if math.isnan(v) else round(float(v), 6) for v in np.asarray(arr, dtype=np.float64)]
        for k, arr in series.items()
    }


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def to_dict(result: runner.Result) -> dict[str, Any]:
    """The run as JSON-ready data (latencies in seconds)."""
    options = {f.name: _plain(getattr(result.options, f.name)) for f in dataclasses.fields(result.options)}
    options["workload"] = result.description
    options["headers"] = [k for k, _ in result.options.headers]  # names only: values may be secrets
    return {
        "url": result.url,
        "workload": result.description,
        "started_at": datetime.datetime.fromtimestamp(result.started_at, datetime.UTC).isoformat(),
        "interrupted": result.interrupted,
        "options": options,
        "warmup": {"requests": len(result.warmup), "failed": sum(1 for r in result.warmup if not r.ok)},
        "summary": _plain(result.summary),
        "vllm_compatible": _plain(summary.vllm_compatible(result.records, result.summary)),
        "prompts": result.prompts.to_dict() if result.prompts is not None else dict(dataset.SYNTHETIC),
        "timeline": timeline(result),
    }


def write_json(result: runner.Result, path: str | pathlib.Path) -> pathlib.Path:
    target = pathlib.Path(path)
    files.write_text(target, json.dumps(to_dict(result), indent=2) + "\n")
    return target


def write_csv(result: runner.Result, path: str | pathlib.Path) -> pathlib.Path:
    """One row per request, in the order they were issued."""
    buf = io.StringIO(newline="")
    out = csv.writer(buf)
    out.writerow(CSV_COLUMNS)
    for r in result.records:
        mean_itl = sum(r.itl_s) / len(r.itl_s) if r.itl_s else None
        row = (
            r.index, r.scheduled_s, r.start_s, r.end_s, r.e2e_s, r.ttft_s, r.tpot_s, mean_itl,
            r.input_tokens, r.input_tokens_from, r.output_tokens, r.status, r.error, r.error_detail,
            r.attempts,
        )  # fmt: skip
        out.writerow(["" if v is None else (f"{v:.6f}" if isinstance(v, float) else v) for v in row])
    files.write_text(path, buf.getvalue())
    return pathlib.Path(path)
