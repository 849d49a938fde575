"""The planner's forecaster against statsmodels' Holt (damped trend) on the Azure LLM traces.

Each 5 s tick sees the request rate over the last 30 s (as the planner does) and forecasts the
peak per-minute mean rate over the next H (seed 000: 956 s). Prints JSON per trace and method:
the share of ticks whose forecast fell short of the real peak by more than 10 %, the mean
forecast / real peak, the mean absolute percentage error, and CPU microseconds per decision.
    python bench/forecast.py [--horizon 956]   (needs ../shared/traces; statsmodels optional)
"""

from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import time
from typing import Any

import numpy as np

from swell.core import forecast

TRACES = pathlib.Path(__file__).resolve().parents[2] / "shared" / "traces" / "azure_llm_2023"
TICK, WINDOW = 5.0, 30.0


def arrivals(path: pathlib.Path) -> np.ndarray:
    with gzip.open(path, "rt") as fh:
        next(fh)
        stamps = np.array([line.split(",", 1)[0] for line in fh], dtype="datetime64[us]")
    t = (stamps - stamps.min()).astype(np.float64) / 1e6
    return np.sort(t)


def rates(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ticks = np.arange(WINDOW, t.max(), TICK)
    counts = np.searchsorted(t, ticks) - np.searchsorted(t, ticks - WINDOW)
    return ticks, counts / WINDOW


def truth(t: np.ndarray, ticks: np.ndarray, horizon: float) -> np.ndarray:
    """The peak per-minute mean rate over (tick, tick + horizon]."""
    minutes = np.histogram(t, bins=np.arange(0.0, t.max() + 60.0, 60.0))[0] / 60.0
    out = np.full(len(ticks), np.nan)
    for i, s in enumerate(ticks):
        lo, hi = int(s // 60) + 1, int((s + horizon) // 60)
        if hi <= len(minutes) - 1 and hi > lo:
            out[i] = minutes[lo:hi].max()
    return out


def ours(ticks: np.ndarray, r: np.ndarray, horizon: float) -> tuple[np.ndarray, float]:
    h, out = forecast.History(), np.empty(len(ticks))
    start = time.process_time()
    for i, (s, v) in enumerate(zip(ticks.tolist(), r.tolist(), strict=True)):
        h = forecast.observe(h, s, v)
        out[i] = forecast.forecast(h, s, horizon).value
    return out, (time.process_time() - start) / len(ticks) * 1e6


def holt(ticks: np.ndarray, r: np.ndarray, horizon: float) -> tuple[np.ndarray, float] | None:
    """Holt's damped trend fitted each minute on the per-minute means seen so far; the forecast path's
    max over H plus 1.64 residual standard deviations (a 95 % upper envelope); held between refits."""
    try:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing  # type: ignore[import-untyped]
    except ImportError:
        return None
    import warnings

    out, last, means = np.empty(len(ticks)), 0.0, []
    steps = max(1, int(horizon // 60))
    start = time.process_time()
    for i, (s, v) in enumerate(zip(ticks.tolist(), r.tolist(), strict=True)):
        if s % 60.0 < TICK:  # a new minute: refit on the finished minutes
            minute = r[max(0, i - 12) : i]
            if len(minute):
                means.append(float(minute.mean()))
            if len(means) >= 10:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = ExponentialSmoothing(np.asarray(means[-120:]), trend="add", damped_trend=True).fit()
                    path = fit.forecast(steps)
                    last = float(np.max(path) + 1.64 * np.std(fit.resid))
            else:
                last = max(means) if means else v
        out[i] = max(last, v)
    return out, (time.process_time() - start) / len(ticks) * 1e6


def score(pred: np.ndarray, real: np.ndarray, us: float) -> dict[str, Any]:
    ok = ~np.isnan(real) & (real > 0)
    p, q = pred[ok], real[ok]
    return {
        "short_by_10pct_share": round(float(np.mean(p < 0.9 * q)), 4),
        "mean_forecast_over_real": round(float(np.mean(p / q)), 3),
        "mape": round(float(np.mean(np.abs(p - q) / q)), 3),
        "cpu_us_per_decision": round(us, 1),
        "ticks": int(ok.sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--horizon", type=float, default=956.0)
    args = ap.parse_args()
    if not TRACES.exists():
        print(json.dumps({"skipped": f"no traces at {TRACES}"}))
        return
    out: dict[str, Any] = {"horizon_s": args.horizon}
    for name in ("conv", "code"):
        t = arrivals(TRACES / f"AzureLLMInferenceTrace_{name}.csv.gz")
        ticks, r = rates(t)
        real = truth(t, ticks, args.horizon)
        pred, us = ours(ticks, r, args.horizon)
        out[name] = {"swell.core.forecast": score(pred, real, us), "last value": score(r, real, 0.0)}
        h = holt(ticks, r, args.horizon)
        out[name]["statsmodels Holt damped + 1.64 sd"] = (
            score(h[0], real, h[1]) if h else "statsmodels not installed"
        )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
