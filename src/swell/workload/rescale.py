"""A workload played faster or at another rate: `rescale(workload, scale=, speedup=)`.

Traces (Azure, ServeGen) thin or copy arrivals and compress their clock; rate patterns multiply
their rate schedule and compress it (`Compressed`: K x the rate for 1/K of the time). Used by
`swell simulate --scale/--speedup` and the scorecard. A closed loop cannot be rescaled here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from swell import errors
from swell.workload import arrivals as arrivals_mod
from swell.workload import patterns, rates, servegen, traces


@dataclass(frozen=True, kw_only=True)
class Compressed:
    """A rate schedule played `factor` times faster: K x the rate, 1/K of the length."""

    inner: rates.RateSchedule
    factor: float

    def rate(self, t: arrivals_mod.FloatArray) -> arrivals_mod.FloatArray:
        return self.inner.rate(np.asarray(t) * self.factor) * self.factor

    @property
    def natural_duration_s(self) -> float | None:
        d = self.inner.natural_duration_s
        return None if d is None else d / self.factor

    @property
    def description(self) -> str:
        return f"{self.inner.description}, ×{self.factor:g} faster"


def rescale(workload: object, *, scale: float = 1.0, speedup: float = 1.0) -> arrivals_mod.Workload:
    """The workload with its rate multiplied by `scale` and its time compressed `speedup` times."""
    if isinstance(workload, traces.Replay | servegen.ServeGenReplay):
        given = {"scale": scale, "speedup": speedup}
        own = {"scale": workload.scale, "speedup": workload.speedup}
        problem = traces.replay_problem(own["speedup"] * speedup, own["scale"] * scale, workload.start_s)
        if problem is not None:  # the product is out of bounds (e.g. scale above traces.MAX_SCALE)
            name, rule, value = problem
            rule += f" (the workload's {name}={own[name]:g} times --{name} {given[name]:g})"
            raise errors.RecipeError("--workload", [errors.Problem(path=f"--{name}", value=value, rule=rule)])
        return dataclasses.replace(workload, scale=own["scale"] * scale, speedup=own["speedup"] * speedup)
    if isinstance(workload, patterns.OpenLoop):
        schedule: rates.RateSchedule = workload.schedule
        if scale != 1.0:
            schedule = rates.Scaled(inner=schedule, factor=scale)
        if speedup != 1.0:
            schedule = Compressed(inner=schedule, factor=speedup)
        return dataclasses.replace(workload, schedule=schedule)
    raise errors.RecipeError(
        "--workload",
        [errors.Problem(path="kind", value="closed",
                        rule="the simulator replays open-loop workloads (patterns and traces), not a closed loop: "
                             "`swell bench --concurrency N` drives one against a running service")],
    )  # fmt: skip
