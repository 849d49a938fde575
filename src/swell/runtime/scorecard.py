"""The scorecard: a fixed suite of workloads × every policy preset, the baselines and the oracle.

`swell simulate --scorecard` runs it. Each workload is replayed against the scorecard recipe
(data/scorecard-recipe.yaml: Llama 3 8B on A10s, 2-GPU nodes, seed 000's provisioning) through
`sim.compare`, so every policy, the best fixed fleet, the max fleet and the replayed oracle see
the same arrivals from the same starting fleet. The summary says, per policy, on how many
workloads it met the SLO and its median GPU-hours over the oracle's where it did.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from swell import errors, recipe
from swell.core.policies import presets
from swell.runtime import sim
from swell.workload import rescale, spec, traces

RECIPE = "scorecard-recipe.yaml"


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One workload of the suite, with what it tests and any change to the recipe it needs."""

    name: str
    workload: str
    about: str
    duration_s: float | None = None
    traces: bool = False  # replays files from the traces directory (../shared/traces)
    overrides: dict[str, Any] = field(default_factory=dict)  # merged into the recipe's sections


CONV = "input=1000/600,output=250/150"
SUITE: tuple[Entry, ...] = (
    Entry(name="azure-conv", workload="azure-conv", traces=True,
          about="Azure LLM 2023 conversation trace, one hour as recorded"),
    Entry(name="azure-code", workload="azure-code", traces=True,
          about="Azure LLM 2023 code trace: long prompts, short answers, bursty"),
    Entry(name="servegen-busy", workload="servegen:m-small,start=1015200,scale=0.0036," + CONV,
          duration_s=3 * 3600.0, traces=True,
          about="ServeGen m-small (Alibaba Bailian), its busiest 3 hours (day 12), rate ×0.0036"),
    Entry(name="diurnal", workload="diurnal:mean=1,amplitude=0.8,period=6h,peak=3.5h,input=2000/800,output=600/300",
          duration_s=6 * 3600.0,
          about="a day's shape compressed into 6 hours (long answers; peak 9× the trough): a full day of "
                "1-second scrapes would take the scorecard past its 10 minutes"),
    Entry(name="black-friday",
          workload="black-friday:base=1.5,surge=6,start=40m,ramp=15m,plateau=60m,decay=20m," + CONV,
          duration_s=3 * 3600.0, about="steady load, a ×6 surge ramping over 15 min, an hour's plateau"),
    Entry(name="long-context", workload="long-conv", traces=True,
          overrides={"service": {"preset": "llama3.1-8b-128k-h100"},
                     "node_pool": {"shape": "h100x2", "gpus_per_node": 2, "price_per_gpu_hour": 10.0}},
          about="Azure conversations with prompts ×8 (up to ~112k tokens) on Llama 3.1 8B with 128k context, "
                "one H100 a replica, two a node (two A10s cannot hold 128k and meet the SLO)"),
)  # fmt: skip


def base_recipe() -> recipe.Recipe:
    """The scorecard recipe shipped in the package."""
    text = resources.files("swell.data").joinpath(RECIPE).read_text(encoding="utf-8")
    return recipe.load_text(text, RECIPE)


def entry_recipe(base: recipe.Recipe, entry: Entry) -> recipe.Recipe:
    data = base.model_dump(by_alias=True)
    for section, values in entry.overrides.items():
        data[section] = {**data.get(section, {}), **values}
    return recipe.Recipe.model_validate(data)


def policies() -> list[str]:
    """Every shipped preset but 'recipe' (the scorecard recipe's own policy is one of them)."""
    return [n for n in presets.NAMES if n != "recipe"]


@dataclass(frozen=True, kw_only=True, eq=False)
class Result:
    entry: Entry
    comparison: sim.Comparison | None
    skipped: str = ""  # why the workload was not run


@dataclass(frozen=True, kw_only=True)
class Standing:
    """One policy (or baseline) across the suite."""

    policy: str
    met: int  # workloads where it met the SLO
    ran: int
    median_ratio: float | None  # median GPU-hours / oracle over the workloads it met
    worst_attainment: float


@dataclass(frozen=True, kw_only=True, eq=False)
class Scorecard:
    results: tuple[Result, ...]
    seed: int

    def standings(self) -> list[Standing]:
        rows: dict[str, list[tuple[bool, float | None, float]]] = {}
        for res in self.results:
            comp = res.comparison
            if comp is None:
                continue
            ref = comp.oracle_gpu_hours
            for run in (*comp.runs, *comp.baselines):
                key = run.policy.split(" (")[0]  # "best fixed (6)" -> "best fixed"
                rows.setdefault(key, []).append(
                    (run.meets_slo, run.oracle_ratio(ref), run.summary.attainment)
                )
        out = []
        for name, vals in rows.items():
            ratios = [r for ok, r, _ in vals if ok and r is not None]
            out.append(Standing(
                policy=name, met=sum(1 for ok, _, _ in vals if ok), ran=len(vals),
                median_ratio=statistics.median(ratios) if ratios else None,
                worst_attainment=min(a for _, _, a in vals),
            ))  # fmt: skip
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "summary": [s.__dict__ for s in self.standings()],
            "workloads": [
                {"name": r.entry.name, "workload": r.entry.workload, "about": r.entry.about,
                 "skipped": r.skipped or None,
                 "comparison": None if r.comparison is None else _lean(r.comparison.to_json())}
                for r in self.results
            ],
        }  # fmt: skip


def _lean(data: dict[str, object]) -> dict[str, object]:
    """A comparison without per-decision and per-node detail (the scorecard's JSON stays small)."""
    drop = {"decisions", "nodes", "samples", "timeline"}
    for key in ("policies", "baselines"):
        runs = data.get(key)
        if isinstance(runs, list):
            data[key] = [{k: v for k, v in r.items() if k not in drop} for r in runs]
    return data


def entries(only: str | Sequence[str] = (), suite: Sequence[Entry] = SUITE) -> list[Entry]:
    """The entries of `suite` named in `only` (names, or one comma-separated string; all of them when
    empty), in the suite's order; a name that is not a workload of the suite is a RecipeError naming
    it and the known ones."""
    if isinstance(only, str):
        only = [n.strip() for n in only.split(",") if n.strip()]
    names = [e.name for e in suite]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise errors.RecipeError(
            "--scorecard",
            [errors.Problem(path="only", value=n, rule=f"not a scorecard workload; known: {', '.join(names)}")
             for n in unknown],
        )  # fmt: skip
    return [e for e in suite if not only or e.name in only]


def missing(entry: Entry) -> str:
    """Why `entry` cannot run here ('' when it can): it replays public trace files not found."""
    if entry.traces and not traces.traces_dir().is_dir():
        return (f"needs the public trace files: {traces.traces_dir()} is not a directory "
                "(set SWELL_TRACES to a directory holding them; docs/simulator.md)")  # fmt: skip
    return ""


def run(
    *,
    only: Sequence[str] = (),
    seed: int = 0,
    progress: Callable[[str, str, float], None] | None = None,
    suite: Sequence[Entry] = SUITE,
    base: recipe.Recipe | None = None,
    with_reaction: bool = False,
) -> Scorecard:
    """Run the suite (or the entries named in `only`); workloads whose trace files are missing are
    skipped with the reason. `with_reaction` adds perfect reaction to every workload's baselines
    (about as much CPU again)."""
    picked = entries(only, suite)
    base = base or base_recipe()
    out: list[Result] = []
    for entry in picked:
        if why := missing(entry):
            out.append(Result(entry=entry, comparison=None, skipped=why))
            continue
        rec = entry_recipe(base, entry)
        report = None if progress is None else (lambda what, f, e=entry.name: progress(e, what, f))
        comp = sim.compare(rec, rescale.rescale(spec.parse(entry.workload)), policies(), seed=seed,
                           duration_s=entry.duration_s, with_reaction=with_reaction, progress=report)  # fmt: skip
        out.append(Result(entry=entry, comparison=comp))
    return Scorecard(results=tuple(out), seed=seed)
