"""The ScalingRecipe status: what `kubectl describe hpa` shows, and more.

Replicas by state with the reasons of those not ready, each signal's value, proposal and PromQL,
nodes, headroom, the conditions AbleToScale, ScalingActive, ScalingLimited, MetricsAvailable,
the last decisions with reasons, and the policy state a controller that takes over carries on from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swell import recipe
from swell.clusters.kubernetes import controller, scalingrecipe
from swell.core import decision, load, signals, snapshot

Obj = dict[str, Any]
KEEP_DECISIONS = 10
PAUSE = scalingrecipe.PAUSE_ANNOTATION  # "true" stops acting; the status keeps updating
SHOWN_PODS = 20

LIMITED = {
    "max": "TooManyReplicas",
    "min": "TooFewReplicas",
    "schedule": "ScheduleLimit",
    "capacity": "CapacityLimit",
}


@dataclass(frozen=True, kw_only=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def conditions(
    d: decision.Decision | None,
    readings: Mapping[str, snapshot.Reading],
    *,
    dry_run: bool,
    error: str,
    paused: bool = False,
) -> list[Condition]:
    """The four conditions for this tick (`error`: why the tick failed, if it did), and `Ready`."""
    return [
        *(c := _conditions(d, readings, dry_run=dry_run, error=error, paused=paused)),
        ready(c, paused=paused),
    ]


def _conditions(
    d: decision.Decision | None,
    readings: Mapping[str, snapshot.Reading],
    *,
    dry_run: bool,
    error: str,
    paused: bool,
) -> list[Condition]:
    if error:
        able = Condition(type="AbleToScale", status="False", reason="FailedScale", message=error)
    elif paused:
        able = Condition(
            type="AbleToScale",
            status="False",
            reason="Paused",
            message=f"{PAUSE}=true: decisions only, no patching",
        )
    elif dry_run:
        able = Condition(
            type="AbleToScale",
            status="False",
            reason="DryRun",
            message="dry run: decisions only, no patching",
        )
    elif d is not None and d.bound_by == "stabilization":
        way = "ScaleDownStabilized" if d.desired >= d.current else "ScaleUpStabilized"
        able = Condition(type="AbleToScale", status="True", reason=way, message=d.reason)
    elif d is not None and d.changes:
        able = Condition(type="AbleToScale", status="True", reason="SucceededRescale", message=d.reason)
    else:
        able = Condition(
            type="AbleToScale", status="True", reason="ReadyForNewScale", message="the target can be scaled"
        )
    missing, read = load.missing(readings)
    if not readings:
        metrics = Condition(
            type="MetricsAvailable", status="Unknown", reason="NoSignals", message="no signals"
        )
    elif missing:
        what = "; ".join(f"{k}: {v}" for k, v in sorted(missing.items()))
        metrics = Condition(type="MetricsAvailable", status="False", reason="NoValue", message=what)
    else:
        metrics = Condition(
            type="MetricsAvailable",
            status="True",
            reason="AllSignalsRead",
            message="every signal has a value",
        )
    if d is None:
        active = Condition(
            type="ScalingActive", status="False", reason="NoDecision", message=error or "no tick"
        )
        limited = Condition(type="ScalingLimited", status="Unknown", reason="NoDecision", message="")
        return [able, active, limited, metrics]
    if d.bound_by == "disabled":
        active = Condition(type="ScalingActive", status="False", reason="ScalingDisabled", message=d.reason)
    elif readings and len(missing) == read:
        active = Condition(type="ScalingActive", status="False", reason="FailedGetMetrics", message=d.reason)
    else:
        active = Condition(type="ScalingActive", status="True", reason="ValidMetricFound", message=d.reason)
    if d.bound_by == "rate":
        reason = "ScaleUpLimit" if d.desired > d.current else "ScaleDownLimit"
        limited = Condition(type="ScalingLimited", status="True", reason=reason, message=d.reason)
    elif d.bound_by in LIMITED:
        limited = Condition(
            type="ScalingLimited", status="True", reason=LIMITED[d.bound_by], message=d.reason
        )
    else:
        limited = Condition(
            type="ScalingLimited",
            status="False",
            reason="DesiredWithinRange",
            message="within min, max and rates",
        )
    return [able, active, limited, metrics]


def ready(conds: Sequence[Condition], *, paused: bool = False) -> Condition:
    """kstatus's `Ready`: True when the recipe is served (scaling active and the target scalable,
    or a dry run); else False with the reason and message of what stops it."""
    if paused:
        return Condition(type="Ready", status="False", reason="Paused", message=f"{PAUSE}: decisions only")
    by_type = {c.type: c for c in conds}
    for kind in ("ScalingActive", "AbleToScale"):
        c = by_type.get(kind)
        if c is not None and c.status != "True" and c.reason != "DryRun":
            return Condition(type="Ready", status="False", reason=c.reason, message=c.message)
    return Condition(type="Ready", status="True", reason="Scaling", message="the recipe is being served")


def signal_summary(
    rec: recipe.Recipe, readings: Mapping[str, snapshot.Reading], d: decision.Decision | None = None
) -> str:
    """One line for `kubectl get`: the planner's load, forecast and capacity per replica when it
    decided on them, then each of the recipe's signals as value/target ("-" without a value). The
    planner's own reads (`planner:…`) stay in `signals`: a target of 1 says nothing there."""
    parts = []
    details = d.details if d is not None else {}
    if {"load_rps", "forecast_rps", "capacity_rps"} <= details.keys():
        parts.append(f"load={details['load_rps']:.3g}/s forecast={details['forecast_rps']:.3g}/s "
                     f"per-replica={details['capacity_rps']:.3g}/s")  # fmt: skip
    for sig in signals.required(rec.autoscaling, rec.slo):
        if sig.name.startswith(load.PREFIX):
            continue
        r = readings.get(sig.name)
        value = f"{r.value:.3g}" if r is not None and r.ok and r.value is not None else "-"
        parts.append(f"{sig.name}={value}/{sig.target:g}")
    return ", ".join(parts) or "-"


def merge_conditions(new: Sequence[Condition], previous: Sequence[Obj], now: float) -> list[Obj]:
    """Conditions as JSON; lastTransitionTime changes only when the status does."""
    before = {c.get("type"): c for c in previous}
    out = []
    for c in new:
        old = before.get(c.type) or {}
        since = old.get("lastTransitionTime") if old.get("status") == c.status else None
        out.append(
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message[:1000],
                "lastTransitionTime": since or controller.rfc3339(now),
            }
        )
    return out


def add_decision(previous: Sequence[Obj], d: decision.Decision) -> list[Obj]:
    """The last decisions, newest first; a tick like the one before only updates it (count, time)."""
    entry = {
        "time": controller.rfc3339(d.t),
        "current": d.current,
        "desired": d.desired,
        "boundBy": d.bound_by,
        "reason": d.reason,
    }
    head = previous[0] if previous else None
    same = head is not None and all(head.get(k) == entry[k] for k in ("current", "desired", "boundBy"))
    if same and head is not None:
        entry |= {"since": head.get("since", head.get("time")), "count": int(head.get("count", 1)) + 1}
        return [entry, *previous[1:KEEP_DECISIONS]]
    entry |= {"since": entry["time"], "count": 1}
    return [entry, *previous[: KEEP_DECISIONS - 1]]


def signals_json(
    rec: recipe.Recipe,
    d: decision.Decision | None,
    readings: Mapping[str, snapshot.Reading],
    sent: Mapping[str, str] | None = None,
) -> list[Obj]:
    """Each signal's value (or why none), target, proposal and the PromQL sent (`sent`: the
    scoped queries; else the signal rendered unscoped)."""
    proposals = {p.signal: p for p in (d.proposals if d else ())}
    out = []
    for sig in signals.required(rec.autoscaling, rec.slo):
        r = readings.get(sig.name) or snapshot.Reading.missing("not read")
        p = proposals.get(sig.name)
        item: Obj = {
            "name": sig.name,
            "target": sig.target,
            "targetType": sig.target_type,
            "query": (sent or {}).get(sig.name)
            or signals.render(sig, idle_as_zero=True, resources=rec.resources),
        }
        # No value is shown as no `value` key (and an `error`), never as 0.
        if r.ok:
            item["value"] = r.value
        else:
            item["error"] = r.error or "no value"
        if p is not None and p.replicas is not None:
            item["proposal"] = p.replicas
        out.append(item)
    return out


def replicas_json(obs: controller.Observation) -> Obj:
    states = ("ready", "starting", "pending", "terminating", "failed")
    out: Obj = {s: sum(1 for r in obs.replicas if r.state == s) for s in states}
    waiting = [r for r in obs.replicas if r.state != "ready"][:SHOWN_PODS]
    out["notReady"] = [{"pod": r.name, "state": r.state, "reason": r.reason} for r in waiting]
    return out


def nodes_json(obs: controller.Observation) -> Obj:
    ns = obs.nodes
    return {
        "count": len(ns),
        "ready": sum(1 for n in ns if n.ready),
        "gpus": sum(n.gpus for n in ns),
        "usedGpus": sum(n.used_gpus for n in ns),
        "headroomPods": sum(n.headroom_pods for n in ns),
        "items": [
            {"name": n.name, "ready": n.ready, "gpus": n.gpus, "usedGpus": n.used_gpus}
            for n in ns[:SHOWN_PODS]
        ],
    }


# -- when to write it -------------------------------------------------------------------------
# The status is written when something a reader acts on changed, not every tick: what changes
# by itself every tick (the time and count of the newest decision, the times in the policy
# state, condition messages, signal values within SIGNAL_TOLERANCE of the value last written)
# waits for the next heartbeat.

SIGNAL_TOLERANCE = 0.05  # relative change of a signal's value that is written at once
_WINDOWS = ("recommendations", "worker_asks")  # (t, n) windows: their values matter, not their times


def shown(body: Obj) -> tuple[Obj, dict[str, float]]:
    """A status body as a reader sees it: (the fields compared exactly, each signal's value)."""
    out = {
        k: v for k, v in body.items() if k not in ("conditions", "lastDecisions", "signals", "signalSummary")
    }
    out["conditions"] = [
        (c.get("type"), c.get("status"), c.get("reason")) for c in body.get("conditions") or []
    ]
    out["lastDecisions"] = [
        (d.get("current"), d.get("desired"), d.get("boundBy")) for d in body.get("lastDecisions") or []
    ]
    out["signals"] = [{k: v for k, v in s.items() if k != "value"} | {"hasValue": "value" in s}
                      for s in body.get("signals") or []]  # fmt: skip
    policy = dict(body.get("policyState") or {})
    for key in _WINDOWS:
        if key in policy:
            policy[key] = sorted({int(n) for _, n in policy[key]})
    if "last_active" in policy:
        policy["last_active"] = policy["last_active"] is not None
    out["policyState"] = policy
    values = {
        str(s.get("name")): float(s["value"])
        for s in body.get("signals") or []
        if isinstance(s.get("value"), int | float)
    }
    return out, values


def what_changed(
    new: tuple[Obj, dict[str, float]], old: tuple[Obj, dict[str, float]], tolerance: float = SIGNAL_TOLERANCE
) -> str:
    """The first field a reader would see change from `old` to `new` ("" if none): exact fields,
    or a signal value that moved more than `tolerance` (relative) from the one written."""
    (fields, values), (was, was_values) = new, old
    for key in sorted(fields.keys() | was.keys()):
        if fields.get(key) != was.get(key):
            return key
    for name, v in values.items():
        before = was_values.get(name)
        if before is None or not math.isclose(v, before, rel_tol=tolerance, abs_tol=1e-9):
            return f"signals.{name}.value"
    return ""
