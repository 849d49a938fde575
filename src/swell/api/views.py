"""What GET shows of a deployment: replicas by state and why, signals against targets, conditions.

Conditions follow the HPA's (`AbleToScale`, `ScalingActive`, `ScalingLimited`) plus
`MetricsAvailable` and `Ready`, each with a reason and a sentence.
"""

from __future__ import annotations

from swell.api import deployments, schemas
from swell.core import load


def replicas(dep: deployments.Deployment) -> schemas.Replicas:
    reps = dep.rt.cluster.manager.replicas()
    count = {s: sum(1 for r in reps if r.state == s) for s in ("ready", "starting", "pending", "terminating")}
    return schemas.Replicas(target=dep.rt.cluster.target, **count)


def summary(dep: deployments.Deployment) -> schemas.Summary:
    rec = dep.recipe
    return schemas.Summary(
        name=dep.name,
        engine=rec.service.engine,
        url=dep.rt.endpoint,
        state="failed" if dep.rt.failure else "running",
        failure=dep.rt.failure,
        replicas=replicas(dep),
        min_replicas=rec.autoscaling.min_replicas,
        max_replicas=rec.autoscaling.max_replicas,
        policy=dep.rt.controller.policy_name,
        created_at=dep.created_at,
        rollout=rollout(dep),
    )


def rollout(dep: deployments.Deployment) -> schemas.Rollout | None:
    if dep.rollout is None or dep.rollout.state != "rolling":
        return dep.rollout
    return dep.rollout.model_copy(update={"old_replicas": len(dep.rt.cluster.manager.old())})


def _cond(type_: str, ok: bool | None, reason: str, message: str) -> schemas.Condition:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return schemas.Condition.model_validate(
        {"type": type_, "status": status, "reason": reason, "message": message}
    )


def conditions(dep: deployments.Deployment) -> list[schemas.Condition]:
    last = dep.rt.history.last()
    rec = dep.recipe
    reps = replicas(dep)
    out = [
        _cond("AbleToScale", False, "FailedStart", dep.rt.failure)
        if dep.rt.failure
        else _cond("AbleToScale", True, "ReadyForNewScale", "the controller can change the replica count"),
    ]
    if last is None:
        out.append(_cond("ScalingActive", None, "NoDecisionYet", "no decision has been made yet"))
        out.append(_cond("MetricsAvailable", None, "NoDecisionYet", "no signal has been read yet"))
        out.append(_cond("ScalingLimited", None, "NoDecisionYet", "no decision has been made yet"))
    else:
        missing, read = load.missing(last.snapshot.signals)
        have = read - len(missing)
        out.append(
            _cond("ScalingActive", True, "ValidMetricFound", f"{have} signal(s) had a value")
            if have
            else _cond("ScalingActive", False, "FailedGetMetrics", "no signal had a value: holding")
        )
        out.append(
            _cond("MetricsAvailable", True, "AllSignalsRead", "every signal had a value")
            if not missing
            else _cond(
                "MetricsAvailable",
                False,
                "MissingSignals",
                "; ".join(f"{k}: {v}" for k, v in missing.items()),
            )
        )
        limited = last.decision.bound_by in ("min", "max")
        bound = (
            rec.autoscaling.min_replicas if last.decision.bound_by == "min" else rec.autoscaling.max_replicas
        )
        out.append(
            _cond(
                "ScalingLimited",
                True,
                f"Bound by {last.decision.bound_by}",
                f"held at {bound}: {last.decision.reason}",
            )
            if limited
            else _cond("ScalingLimited", False, "DesiredWithinRange", f"bound by {last.decision.bound_by}")
        )
    out.append(
        _cond("Ready", reps.ready > 0, "ReplicasReady" if reps.ready else "NoReplicaReady",
              f"{reps.ready} of {reps.target} replica(s) ready")
    )  # fmt: skip
    return out


def signals(dep: deployments.Deployment) -> list[schemas.SignalOut]:
    last = dep.rt.history.last()
    readings = last.snapshot.signals if last else {}
    props = {p.signal: p for p in last.decision.proposals} if last else {}
    out = []
    for s in dep.recipe.autoscaling.signals:
        r = readings.get(s.name)
        p = props.get(s.name)
        out.append(
            schemas.SignalOut(
                name=s.name,
                value=r.value if r else None,
                target=s.target,
                wants=p.replicas if p else None,
                error=(r.error if r else "not read yet") or "",
            )
        )
    return out


def _node(dep: deployments.Deployment) -> schemas.NodeOut:
    n = dep.rt.cluster.node()
    return schemas.NodeOut(name=n.name, slots=n.gpus, used=n.used_gpus)


def detail(dep: deployments.Deployment, decisions: list[schemas.DecisionOut]) -> schemas.Detail:
    slo = dep.recipe.slo
    return schemas.Detail(
        **summary(dep).model_dump(),
        replica_list=[
            schemas.ReplicaOut(
                name=r.name,
                state=r.state,
                reason=r.reason,
                slot=r.slot,
                url=r.url,
                restarts=r.restarts,
                last_error=r.last_error,
            )
            for r in dep.rt.cluster.manager.replicas()
        ],
        node=_node(dep),
        signals=signals(dep),
        conditions=conditions(dep),
        decisions=decisions,
        slo={"ttft_s": slo.ttft_s, "e2e_s": slo.e2e_s, "percentile": slo.percentile},
    )
