"""ServeGen per-client rate windows replayed as arrivals.

The ServeGen files hold, per client and 600 s window, the mean rate and a fitted inter-arrival
distribution (Gamma or Weibull, scipy's shape and scale). The fitted shape carries the burstiness
(its coefficient of variation); the scale is set so the mean gap is 1/rate, so each window keeps
its measured rate. Gaps are sampled per client per window, and all clients are merged.
"""

from __future__ import annotations

import functools
import gzip
import math
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from swell import errors
from swell.workload import arrivals, shapes, traces

WINDOW_S = 600.0
GAMMA, WEIBULL = 1, 2


@dataclass(frozen=True, kw_only=True, eq=False)
class Client:
    """One client's windows: start (s), rate (req/s), distribution kind and shape."""

    name: str
    start: arrivals.FloatArray
    rate: arrivals.FloatArray
    kind: arrivals.IntArray
    shape: arrivals.FloatArray


def resolve(name_or_dir: str) -> pathlib.Path:
    """`m-small` → the shared traces' servegen/language/m-small; a directory path stays as it is."""
    path = pathlib.Path(name_or_dir)
    if path.is_dir():
        return path
    return traces.traces_dir() / "servegen" / "language" / name_or_dir


def _problem(source: str, path: str, value: object, rule: str) -> errors.RecipeError:
    return errors.RecipeError(source, [errors.Problem(path=path, value=value, rule=rule)])


@functools.lru_cache(maxsize=4)
def load(directory: pathlib.Path) -> tuple[Client, ...]:
    """Every `chunk-*-trace.csv[.gz]` client in `directory` (read once, then cached)."""
    source = f"servegen {directory}"
    files = sorted(directory.glob("chunk-*-trace.csv*")) if directory.is_dir() else []
    if not files:
        raise _problem(
            source,
            "directory",
            str(directory),
            "holds no chunk-*-trace.csv(.gz) files; they are data/language/<name>/chunk-*-trace.csv of "
            "github.com/alibaba/ServeGen (Apache-2.0): copy a directory of them under "
            "$SWELL_TRACES/servegen/language/, or give its path as servegen:DIR",
        )
    clients = []
    for file in files:
        opener = gzip.open if file.suffix == ".gz" else open
        with opener(file, "rt", encoding="utf-8") as text:
            rows = [line.rstrip("\n").split(",") for line in text if line.strip()]
        try:
            start = np.array([float(r[0]) for r in rows])
            rate = np.array([float(r[1]) for r in rows])
            kind = np.array([GAMMA if r[3] == "Gamma" else WEIBULL if r[3] == "Weibull" else 0 for r in rows])
            shape = np.array([float(r[4]) for r in rows])
        except (ValueError, IndexError) as exc:
            raise _problem(
                source,
                file.name,
                str(exc)[:80],
                "rows need 6 columns: start, rate, cv, pattern, shape, scale",
            ) from exc
        usable = (kind > 0) & (rate > 0) & (shape > 0)
        rate = np.where(usable, rate, 0.0)
        clients.append(
            Client(name=file.name.split("-trace")[0], start=start, rate=rate, kind=kind, shape=shape)
        )
    return tuple(clients)


def _gaps(rng: np.random.Generator, kind: int, shape: float, rate: float, n: int) -> arrivals.FloatArray:
    """`n` gaps with the fitted shape and mean 1/rate."""
    if kind == GAMMA:
        return rng.gamma(shape, 1.0 / (rate * shape), n)
    return rng.weibull(shape, n) / (rate * math.gamma(1.0 + 1.0 / shape))


def _window(
    rng: np.random.Generator, kind: int, shape: float, rate: float, length: float
) -> arrivals.FloatArray:
    """Arrival offsets within one window of `length` seconds."""
    out: list[arrivals.FloatArray] = []
    now = 0.0
    expected = rate * length
    for _ in range(64):  # heavy tails can need a few rounds; never loop for ever
        t = now + np.cumsum(_gaps(rng, kind, shape, rate, int(expected * 1.3) + 16))
        out.append(t[t < length])
        if t[-1] >= length:
            break
        now = float(t[-1])
    return np.concatenate(out)


@dataclass(frozen=True, kw_only=True)
class ServeGenReplay:
    """ServeGen client windows from `directory`: `speedup`× faster, `scale`× the rate, from `start_s`."""

    directory: pathlib.Path
    speedup: float = 1.0
    scale: float = 1.0
    start_s: float = 0.0
    shape: shapes.Shape = field(default_factory=shapes.Shape)

    def __post_init__(self) -> None:
        traces.check_replay(self.speedup, self.scale, self.start_s)

    @property
    def description(self) -> str:
        return (
            f"servegen {self.directory.name} ({len(load(self.directory))} clients), ×{self.speedup:g} faster, "
            f"rate ×{self.scale:g}, from {self.start_s:g} s; {self.shape.description}"
        )

    @property
    def natural_duration_s(self) -> float | None:
        end = max(float(c.start[-1]) + WINDOW_S for c in load(self.directory))
        return max(0.0, end - self.start_s) / self.speedup

    def batches(self, rng: np.random.Generator, horizon_s: float) -> Iterator[arrivals.Arrivals]:
        clients = load(self.directory)
        data_end = max(float(c.start[-1]) + WINDOW_S for c in clients)
        trace_end = min(self.start_s + horizon_s * self.speedup, data_end)
        if self.start_s >= trace_end:  # starting past the data: nothing to replay
            return
        first = math.floor(self.start_s / WINDOW_S) * WINDOW_S
        for window_start in np.arange(first, trace_end, WINDOW_S):
            parts = []
            for client in clients:
                i = int(np.searchsorted(client.start, window_start))
                if i >= len(client.start) or client.start[i] != window_start or client.rate[i] <= 0:
                    continue
                rate = float(client.rate[i]) * self.scale
                offsets = _window(rng, int(client.kind[i]), float(client.shape[i]), rate, WINDOW_S)
                parts.append(window_start + offsets)
            if not parts:
                continue
            trace_t = np.sort(np.concatenate(parts))
            trace_t = trace_t[(trace_t >= self.start_s) & (trace_t < trace_end)]
            if len(trace_t):
                yield shapes.attach((trace_t - self.start_s) / self.speedup, self.shape, rng)
