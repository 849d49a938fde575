"""Fit the LLM engine model's linear timings to Splitwise's measured performance profiles.

The table (Mutinifni/splitwise-sim `data/perf_model.csv`, copied under
shared/traces/calibration) holds prefill and per-token decode times of llama2-70b and
bloom-176b on DGX-A100/H100 by prompt size and batch size. Two simple models are fitted:
`prefill_s = a + b * tokens` (tokens = prompt_size * batch_size) and `step_s = c + d * batch`.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, kw_only=True)
class ProfileRow:
    """One measured run of the Splitwise table (times converted to seconds)."""

    model: str
    hardware: str
    tensor_parallel: int
    prompt_size: int
    batch_size: int
    prompt_time_s: float
    token_time_s: float


@dataclass(frozen=True, kw_only=True)
class LinearFit:
    """Fitted engine timings for one (model, hardware, tensor parallel) profile."""

    model: str
    hardware: str
    tensor_parallel: int
    prefill_base_s: float
    prefill_per_token_s: float
    decode_base_s: float
    decode_per_seq_s: float
    prefill_max_rel_error: float  # worst |fit - measured| / measured over the rows
    decode_max_rel_error: float
    rows: int


def load_splitwise(path: str | Path) -> list[ProfileRow]:
    """Read the (optionally gzipped) Splitwise perf_model CSV."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", newline="") as fh:
        return [
            ProfileRow(
                model=r["model"],
                hardware=r["hardware"],
                tensor_parallel=int(r["tensor_parallel"]),
                prompt_size=int(r["prompt_size"]),
                batch_size=int(r["batch_size"]),
                prompt_time_s=float(r["prompt_time"]) / 1000.0,
                token_time_s=float(r["token_time"]) / 1000.0,
            )
            for r in csv.DictReader(fh)
        ]


def profiles(rows: Iterable[ProfileRow]) -> list[tuple[str, str, int]]:
    """The distinct (model, hardware, tensor_parallel) keys in the table."""
    return sorted({(r.model, r.hardware, r.tensor_parallel) for r in rows})


def _relative_lstsq(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least squares of y ≈ p + q·x minimising *relative* error; returns (p, q, max rel error).

    Plain least squares is dominated by the longest prefills (32k tokens, superlinear because of
    attention) and gives negative intercepts; weighting by 1/y keeps short prompts honest.
    """
    a = np.vstack([np.ones_like(x), x]).T
    w = 1.0 / y
    (p, q), *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
    err = float(np.max(np.abs(p + q * x - y) / y))
    return float(p), float(q), err


def fit_profile(rows: Iterable[ProfileRow], *, model: str, hardware: str, tensor_parallel: int) -> LinearFit:
    """Fit prefill and decode-step timings for one profile of the table."""
    sel = [
        r
        for r in rows
        if r.model == model and r.hardware == hardware and r.tensor_parallel == tensor_parallel
    ]
    if not sel:
        raise ValueError(
            f"no rows for model={model!r} hardware={hardware!r} tensor_parallel={tensor_parallel}"
        )
    tokens = np.array([r.prompt_size * r.batch_size for r in sel], dtype=float)
    prefill = np.array([r.prompt_time_s for r in sel])
    batch = np.array([r.batch_size for r in sel], dtype=float)
    step = np.array([r.token_time_s for r in sel])
    a, b, e_pre = _relative_lstsq(tokens, prefill)
    c, d, e_dec = _relative_lstsq(batch, step)
    return LinearFit(
        model=model,
        hardware=hardware,
        tensor_parallel=tensor_parallel,
        prefill_base_s=a,
        prefill_per_token_s=b,
        decode_base_s=c,
        decode_per_seq_s=d,
        prefill_max_rel_error=e_pre,
        decode_max_rel_error=e_dec,
        rows=len(sel),
    )
