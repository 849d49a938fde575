"""Known peaks from a replay: schedule windows that have capacity ready for the surges a policy
met a lead time late.

A policy that only sees load cannot serve a surge that rises faster than a GPU node arrives (the
scorecard's black-friday: x6 within 15 minutes, nodes 16 minutes away). A user who knows when it
comes declares it as a schedule window: `min_replicas` from a cron start to a cron end (CronHPA's
idea). `episodes` finds, in one run, the minutes that missed the SLO while capacity the policy had
asked for was not yet ready (lead-bound), merged across short gaps. `suggest` turns the fewest of
them that carry the misses into windows floored at what the policy itself asked for once it saw
the surge, replays the policy with them, and lowers the floors by bisection while the replay still
meets the SLO. A planner policy (`swell`) provisions a window's floor a lead time before it opens,
so its window opens with the episode; for the reactive rules, which apply a floor only from its
start, it opens a lead time earlier.

The windows are on the run's calendar: the trace starts at `swell simulate --start` (default
Thursday 1 January 1970, 00:00 UTC), so with the event's own start date the crons carry its date;
without one, the user puts it in (or `*` for every day).
Everything here runs simulations through the `simulate` it is given; of a policy it knows only
whether it plans ahead (`load.POLICIES`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from swell import recipe
from swell.clusters.sim import cluster as cluster_mod
from swell.clusters.sim import outcomes
from swell.core import leadtime, load
from swell.workload import arrivals as arrivals_mod

Progress = Callable[[str, float], None]
Simulate = Callable[..., outcomes.Run]
MINUTE = 60.0
GAP_S = 300.0  # lead-bound minutes this close together are one episode
LOUD = 2.0  # a minute counts when it misses more than this many times the share the SLO allows
REFINE = 3  # bisection steps on the floors once a replay meets the SLO
MARGIN = 0.5  # windows are chosen until the misses left outside them are at most this share of those allowed
MAX_ADDED = 4  # episodes added one replay at a time while the replay still misses


@dataclass(frozen=True, kw_only=True)
class Episode:
    """Minutes [start_s, end_s) that missed the SLO while capacity was on its way."""

    start_s: float
    end_s: float
    misses: int
    ready: int  # ready replicas when it began
    asked: int  # the most the policy asked for during it

    def text(self) -> str:
        return (f"minutes {self.start_s / MINUTE:.0f}-{self.end_s / MINUTE:.0f}: {self.misses} misses, "
                f"{self.ready} ready, {self.asked} asked for")  # fmt: skip


def episodes(run: outcomes.Run, gap_s: float = GAP_S) -> list[Episode]:
    """The run's lead-bound episodes, in time order: minutes whose requests missed the SLO more than
    LOUD times its allowance while the policy wanted more replicas than were ready and capacity was on
    its way (a replica starting, a node provisioning), merged when at most `gap_s` apart."""
    req, tl = run.requests, run.timeline
    if not len(req.arrival) or not len(tl.t):
        return []
    minute = np.floor(np.asarray(req.arrival) / MINUTE).astype(int)
    n_min = int(max(minute.max(), math.floor(float(tl.t[-1]) / MINUTE))) + 1
    total = np.bincount(minute, minlength=n_min)
    missed = np.bincount(minute, weights=~req.met(run.slo), minlength=n_min)
    tick = np.floor(np.asarray(tl.t) / MINUTE).astype(int)
    short = np.zeros(n_min, dtype=bool)
    # wanted more than were ready, with capacity on its way: a replica starting or a node coming (a
    # replica Pending where no node can come, the pool at max_nodes, waits for nothing a schedule buys)
    coming = (np.asarray(tl.starting) > 0) | (np.asarray(tl.nodes_provisioning) > 0)
    np.logical_or.at(short, tick, (np.asarray(tl.desired) > np.asarray(tl.ready)) & coming)
    allow = 1.0 - run.slo.percentile / 100.0
    bad = np.flatnonzero((total > 0) & (missed > LOUD * allow * total) & short)
    spans: list[list[int]] = []
    for m in bad.tolist():
        if spans and (m - spans[-1][1]) * MINUTE <= gap_s:
            spans[-1][1] = m
        else:
            spans.append([m, m])
    out = []
    for a, b in spans:
        sel = (tick >= a) & (tick <= b)
        out.append(Episode(start_s=a * MINUTE, end_s=(b + 1) * MINUTE, misses=int(missed[a : b + 1].sum()),
                           ready=int(np.asarray(tl.ready)[sel][0]), asked=int(np.asarray(tl.desired)[sel].max())))  # fmt: skip
    return out


def lead_bound_note(name: str, run: outcomes.Run) -> str:
    """A line for a run that missed its SLO mostly in lead-bound episodes ('' otherwise): where, and
    that a schedule could have served it."""
    if run.meets_slo:
        return ""
    eps = episodes(run)
    missed = run.summary.missed
    bound = sum(e.misses for e in eps)
    if not eps or bound * 2 < missed:
        return ""
    where = ", ".join(
        f"{e.start_s / MINUTE:.0f}-{e.end_s / MINUTE:.0f}" for e in sorted(eps, key=lambda e: -e.misses)[:3]
    )
    return (f"{name}: {bound} of its {missed} misses came while replicas it had asked for were still on their way "
            f"(minutes {where}): surges faster than a node's lead time; if they are known peaks, declare them "
            "as schedules (--suggest-schedule finds them)")  # fmt: skip


def cron_at(t: float, start_s: float = 0.0) -> str:
    """A cron expression (UTC) for the minute `t` seconds into a run that starts at Unix time `start_s`."""
    d = dt.datetime.fromtimestamp(MINUTE * math.floor((start_s + max(0.0, t)) / MINUTE), dt.UTC)
    return f"{d.minute} {d.hour} {d.day} {d.month} *"


def windows_for(chosen: list[Episode], floors: list[int], lead_s: float, start_s: float = 0.0
                ) -> tuple[recipe.ScheduleWindow, ...]:  # fmt: skip
    return tuple(
        recipe.ScheduleWindow(name=f"known-peak-{i + 1}", start=cron_at(e.start_s - lead_s, start_s),
                              end=cron_at(e.end_s, start_s), min_replicas=f)
        for i, (e, f) in enumerate(zip(chosen, floors, strict=True))
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    """Schedule windows for one policy's run, and the replay that checked them."""

    policy: str
    before: outcomes.Run
    episodes: tuple[Episode, ...] = ()
    windows: tuple[recipe.ScheduleWindow, ...] = ()
    after: outcomes.Run | None = None
    opens_early_s: float = 0.0  # how long before its episode each window opens
    note: str = ""
    tried: tuple[tuple[tuple[int, ...], float, float], ...] = ()  # (floors, attainment, GPU-hours)
    checked: outcomes.Run | None = None  # the windows on other arrivals of the workload
    checked_seed: int | None = None

    def yaml(self) -> str:
        """The windows as a recipe's `schedules:` block."""
        rows = [w.model_dump(exclude_defaults=True) for w in self.windows]
        return yaml.safe_dump({"schedules": rows}, sort_keys=False).rstrip()

    def lines(self) -> list[str]:
        """For a terminal or a report: the verdict, the episodes, the note and the windows as YAML."""
        head = f"{self.policy}: {_brief(self.before)}"
        if self.after is None:
            return [f"{head}; {self.note}"]
        verdict = "meets the SLO" if self.after.meets_slo else "still misses the SLO"
        return [
            f"{head}; with the schedule below {_brief(self.after)} ({verdict})",
            *(f"  {e.text()}" for e in self.episodes),
            f"  {self.note}",
            *([] if self.checked is None else [
                f"  on other arrivals of the workload (seed {self.checked_seed}) the same windows give "
                f"{_brief(self.checked)} ({'meets' if self.checked.meets_slo else 'misses'} the SLO)"]),
            *("  " + line for line in self.yaml().splitlines()),
        ]  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        brief = None if self.after is None else self.after.brief()
        return {
            "policy": self.policy,
            "before": self.before.brief(),
            "episodes": [dataclasses.asdict(e) for e in self.episodes],
            "schedules": [w.model_dump(exclude_defaults=True) for w in self.windows],
            "after": brief,
            "opens_early_s": self.opens_early_s,
            "note": self.note,
            "tried": [{"floors": list(f), "attainment": a, "gpu_hours": g} for f, a, g in self.tried],
            "checked": None if self.checked is None else {"seed": self.checked_seed} | self.checked.brief(),
        }


def _brief(run: outcomes.Run) -> str:
    hours = f"{run.gpu_hours:.3g}" if run.gpu_hours < 10 else f"{run.gpu_hours:.1f}"
    return f"{outcomes.percent(run.summary.attainment)} at {hours} GPU-h"


def _floors(chosen: list[Episode], x: float) -> list[int]:
    """Each episode's floor a share `x` of the way from what was ready to what the policy asked for."""
    return [e.ready + max(1, math.ceil(x * (max(e.asked, e.ready + 1) - e.ready))) for e in chosen]


def suggest(
    simulate: Simulate,
    rec: recipe.Recipe,
    arr: arrivals_mod.Arrivals,
    run: outcomes.Run,
    *,
    policy: str,
    horizon_s: float,
    seed: int,
    options: cluster_mod.Options,
    progress: Progress | None = None,
    check: tuple[int, arrivals_mod.Arrivals] | None = None,
) -> Suggestion:
    """Schedule windows that make `policy` (its run: `run`) meet the SLO on these arrivals, the
    fewest episodes first by misses, at the lowest floors a few replays find; or a note on why none
    is suggested. `check` (seed, arrivals): other arrivals of the same workload the windows that met
    are replayed on once more, to show whether they hold beyond the replay that found them."""
    if run.meets_slo:
        return Suggestion(policy=policy, before=run, note="it meets the SLO: no schedule needed")
    found = episodes(run)
    if not found:
        return Suggestion(policy=policy, before=run,
                          note="no misses came while capacity was on its way (ready replicas missed it): a "
                               "schedule would not help; lower autoscaling.target_utilization instead")  # fmt: skip
    plans_ahead = run.config.autoscaling.policy in load.POLICIES
    early = 0.0 if plans_ahead else leadtime.LeadTimes.of(rec.node_pool).horizon_s
    order = sorted(found, key=lambda e: -e.misses)
    missed = run.summary.missed
    allowed = (1.0 - run.slo.percentile / 100.0) * run.summary.requests
    k = 1
    while k < len(order) and missed - sum(e.misses for e in order[:k]) > MARGIN * allowed:
        k += 1
    tried: list[tuple[tuple[int, ...], float, float]] = []

    def run_with(wins: tuple[recipe.ScheduleWindow, ...], on: arrivals_mod.Arrivals, seed: int) -> outcomes.Run:
        with_sched = rec.model_copy(update={"schedules": (*rec.schedules, *wins)})
        return simulate(with_sched, on, horizon_s=horizon_s, policy=policy, seed=seed, options=options,
                        progress=progress, label=f"{policy} + suggested schedule")  # fmt: skip

    def replay(
        chosen: list[Episode], floors: list[int]
    ) -> tuple[tuple[recipe.ScheduleWindow, ...], outcomes.Run]:
        wins = windows_for(chosen, floors, early, options.start_s)
        r = run_with(wins, arr, seed)
        tried.append((tuple(floors), r.summary.attainment, r.gpu_hours))
        return wins, r

    chosen = sorted(order[:k], key=lambda e: e.start_s)
    wins, after = replay(chosen, _floors(chosen, 1.0))
    while not after.meets_slo and k < len(order) and len(tried) <= MAX_ADDED:
        k += 1
        chosen = sorted(order[:k], key=lambda e: e.start_s)
        wins, after = replay(chosen, _floors(chosen, 1.0))
    met = [(wins, after)] if after.meets_slo else []  # the windows that met, highest floors first
    if after.meets_slo:
        good, bad = 1.0, 0.0
        for _ in range(REFINE):
            mid = (good + bad) / 2.0
            if _floors(chosen, mid) == _floors(chosen, good):  # the same windows: they meet
                good = mid
                continue
            w, r = replay(chosen, _floors(chosen, mid))
            if r.meets_slo:
                good = mid
                met.append((w, r))
            else:
                bad = mid
    checked = None
    for w, r in reversed(met):  # the lowest floors that also meet on the other arrivals
        wins, after = w, r
        if check is None:
            break
        checked = run_with(w, check[1], check[0])
        if checked.meets_slo:
            break
    when = ("each opens as its episode begins: the planner provisions a window's floor a lead time ahead"
            if plans_ahead else f"each opens {early / MINUTE:.0f} min (the lead time) before its episode: a "
            "policy that does not plan applies a floor only from its start")  # fmt: skip
    if not after.meets_slo:
        floors = "at what the policy asked for, and still short: the misses left are not all lead-bound"
    elif check is None:
        floors = "at the lowest floors whose replay met the SLO (add a node's worth for a margin)"
    elif checked is not None and checked.meets_slo:
        floors = f"at the lowest floors whose replay met the SLO here and on other arrivals (seed {check[0]})"
    else:
        floors = f"at what the policy asked for: no floors met the SLO on other arrivals (seed {check[0]}) too"
    dates = (f"Dates are the run's: it starts {cluster_mod.start_text(options.start_s)}" if options.start_s else
             "Dates are the simulator's (the trace starts 1 January 00:00 UTC; --start gives its own): put the "
             "event's own date in their place")  # fmt: skip
    note = f"{len(chosen)} of {len(found)} lead-bound episodes, {floors}; {when}. {dates}."
    return Suggestion(policy=policy, before=run, episodes=tuple(chosen), windows=wins, after=after,
                      opens_early_s=early, note=note, tried=tuple(tried), checked=checked,
                      checked_seed=None if checked is None or check is None else check[0])  # fmt: skip
