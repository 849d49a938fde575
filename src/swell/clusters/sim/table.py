"""The comparison's rows, one per run, as the CLI, the HTML report and the scorecard print them.

Policies first, then the baselines (best fixed fleet, max fleet), then the replayed oracle.
"drop" counts the requests refused: dropped (no room, too long) and shed (no first token by the SLO's
deadline_s). ×oracle is given only to a run that met its SLO (a miss is marked ✗ and has no ratio); cost is
unknown ("—") when the node pool has no price; GPU-hours are dropped for CPU-only recipes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from swell.clusters.sim import oracle as oracle_mod
from swell.clusters.sim import outcomes

COLUMNS = ("policy", "SLO", "TTFT p50/95", "e2e p50/95", "drop", "t/o", "GPU-h", "node-h", "cost", "×oracle",
           "events", "peak")  # fmt: skip
GPU_COLUMN = COLUMNS.index("GPU-h")


def seconds(a: float | None, b: float | None) -> str:
    """'0.52/3.1': two latencies, 2 significant digits below 10 s."""
    return "/".join("—" if v is None else f"{v:.0f}" if v >= 10 else f"{v:.2g}" for v in (a, b))


def row(run: outcomes.Run, oracle_gpu_hours: float | None, *, gpu: bool = True) -> tuple[str, ...]:
    s = run.summary
    ratio = run.oracle_ratio(oracle_gpu_hours)
    peak = int(run.timeline.desired.max()) if len(run.timeline.desired) else 0
    cost = f"{run.cost:.3g}" if run.config.node_pool.price_per_gpu_hour > 0 else "—"
    cells = (
        run.policy,
        outcomes.percent(s.attainment) + ("" if run.meets_slo else " ✗"),
        seconds(s.ttft["p50"], s.ttft["p95"]),
        seconds(s.e2e["p50"], s.e2e["p95"]),
        str(s.dropped + s.shed),
        str(s.timed_out + s.unfinished),
        f"{run.gpu_hours:.3g}",
        f"{run.node_hours:.3g}",
        cost,
        "miss" if not run.meets_slo else "—" if ratio is None else f"{ratio:.2f}",
        str(run.scale_events),
        str(peak),
    )
    return cells if gpu else cells[:GPU_COLUMN] + cells[GPU_COLUMN + 1 :]


def columns(*, gpu: bool = True) -> tuple[str, ...]:
    return COLUMNS if gpu else COLUMNS[:GPU_COLUMN] + COLUMNS[GPU_COLUMN + 1 :]


def groups(
    runs: Sequence[outcomes.Run],
    baselines: Sequence[outcomes.Run],
    orc: oracle_mod.Oracle | None,
    *,
    gpu: bool = True,
) -> list[list[tuple[str, ...]]]:
    """The rows in three groups: policies, baselines, the oracle's replay (empty groups left out)."""
    ref = orc.gpu_hours if orc is not None and orc.reachable else None
    out = [[row(r, ref, gpu=gpu) for r in runs], [row(r, ref, gpu=gpu) for r in baselines]]
    if orc is not None and orc.replayed is not None:
        cells = list(row(dataclasses.replace(orc.replayed, policy="oracle (replayed)"), ref, gpu=gpu))
        if not orc.reachable:
            cells[columns(gpu=gpu).index("×oracle")] = "out of reach"
        out.append([tuple(cells)])
    return [g for g in out if g]


def notes(
    slo: str, capacity_rps: float | None, orc: oracle_mod.Oracle | None, baselines: Sequence[outcomes.Run],
    warnings: Sequence[str] = (), engine: str = "",
) -> list[str]:  # fmt: skip
    """The lines under the table: the SLO, the engine preset, one replica's capacity, the oracle's note,
    what a baseline that says (`extra["about"]`: perfect reaction) is, warnings."""
    out = [f"latencies in s; SLO {slo}"]
    if engine:
        out.append(engine)
    if capacity_rps is not None and 0 < capacity_rps < float("inf"):
        out.append(f"one replica meets it up to {capacity_rps:.3g} req/s (engine model)")
    if orc is not None:
        if orc.capacity_rps <= 0:
            out.append("oracle: out of reach even one request at a time")
        elif orc.note:
            out.append(f"oracle: {orc.note}")
    fleets = [r for r in baselines if not r.extra.get("about")]
    if fleets and not any(r.policy.startswith("best fixed") for r in fleets):
        out.append(f"no fixed fleet within the bounds meets the SLO ({fleets[-1].policy} does not)")
    out.extend(f"{r.policy.split(' (')[0]}: {r.extra['about']}" for r in baselines if r.extra.get("about"))
    out.extend(f"warning: {w}" for w in warnings)
    return out
