"""`swell validate`, `swell plan` and `swell decide`: test a recipe before it touches a cluster.

validate reports every problem at once; plan shows capacity, reachable replicas, time to add
capacity and warnings; decide replays observations (JSON lines) through the recipe's policy and
prints one JSON decision per tick.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from swell import errors, recipe
from swell.cli import checks
from swell.control import loop, profile
from swell.core import load, nodes, snapshot, world
from swell.core.policies import schedule

MAX_T = 1e11  # seconds: Unix time until the year 5138
OBSERVATIONS_MAX = 100_000_000  # characters of an observations file (a day of ticks at 1 s is ~20 MB)
MAX_REPLICAS = 100_000
RecipeArg = Annotated[
    Path, typer.Argument(metavar="RECIPE", help="Recipe file (YAML or JSON; swell's form or a Corrino payload).")
]


def validate(path: RecipeArg) -> None:
    """Check a recipe: exit 0 if valid, else 1 with every problem (field, value, rule)."""
    rec = recipe.load(path)
    profile.check(rec, str(path))
    typer.echo(
        f"{path}: valid recipe for service {rec.service.name!r} "
        f"({rec.service.engine}, policy {rec.autoscaling.policy}, "
        f"{rec.autoscaling.min_replicas}-{rec.autoscaling.max_replicas} replicas)"
    )


# ---------------------------------------------------------------------------------------------
# plan


def fraction_bound(sig: recipe.Signal) -> float | None:
    """Upper bound of a signal's value when it is a fraction (0..1), else None."""
    return 1.0 if sig.kind == "histogram_fraction" else None


REPLICA_PREFIXES = ("vllm:", "llamacpp:", "ts_", "DCGM_")  # series only a running replica (or its GPU) writes


def from_replicas(sig: recipe.Signal) -> bool:
    """Whether a signal's value comes only from running replicas: a resource's utilization, a
    per-replica reading, or engine series (vLLM, llama.cpp, TorchServe, DCGM). At zero replicas
    such a signal has no value, and nothing it says can scale a service from zero."""
    if sig.kind == "utilization" or sig.per_replica:
        return True
    names = [n for n in (sig.metric, sig.numerator, sig.denominator) if n]
    return bool(names) and all(n.startswith(REPLICA_PREFIXES) for n in names)


def warnings_for(rec: recipe.Recipe) -> list[str]:
    auto, pool, gpus = rec.autoscaling, rec.node_pool, rec.resources.gpus
    out = []
    waste = nodes.wasted_gpus(gpus, pool.gpus)
    if waste:
        out.append(
            f"{gpus} GPUs per replica do not divide the {pool.gpus} GPUs of a {pool.shape} node: "
            f"{waste} GPU(s) per node stay idle (choose a divisor of {pool.gpus})"
        )
    cap = nodes.capacity(pool, gpus)
    if auto.max_replicas > cap:
        out.append(
            f"max_replicas {auto.max_replicas} exceeds what {pool.max_nodes} node(s) hold ({cap}): "
            f"{auto.max_replicas - cap} replica(s) would stay Pending"
        )
    for sig in auto.signals:
        reach = recipe.reachable_max(auto, sig, fraction_bound(sig))
        if reach < auto.max_replicas:
            out.append(
                f"signal {sig.name!r}: a {sig.target_type} target of {sig.target:g} on a 0-1 fraction asks for at "
                f"most ceil(1 / {sig.target:g}) = {reach:.0f} replicas, never max_replicas {auto.max_replicas}; "
                "use target_type Value (desired = ceil(ready x value / target))"
            )
    for sig in auto.signals:
        if sig.kind == "gauge" and sig.target_type == "AverageValue" and sig.aggregate != "sum" and from_replicas(sig):
            out.append(
                f"signal {sig.name!r}: AverageValue asks for ceil(value / {sig.target:g}) replicas, the value taken as "
                f"the service's total, but aggregate {sig.aggregate!r} reads {sig.metric} per replica (one series "
                "each): more replicas never raise it, so it cannot scale up as its load grows; set aggregate: sum "
                "(or target_type: Value for a per-replica level)"
            )
    for i, win in enumerate(rec.schedules):
        if win.min_replicas is not None and win.min_replicas > auto.max_replicas:
            out.append(
                f"schedules[{i}].min_replicas {win.min_replicas} is above max_replicas {auto.max_replicas}: the "
                f"window holds {auto.max_replicas}"
            )
    if auto.min_replicas == 0 and auto.policy == "hpa":
        out.append(
            "min_replicas 0 with policy 'hpa': the HPA cannot scale from zero; use policy 'threshold' or 'swell'"
        )
    elif auto.min_replicas == 0 and auto.signals and all(from_replicas(s) for s in auto.signals):
        names = ", ".join(repr(s.name) for s in auto.signals)
        gateway = ("the gateway's (e.g. a gauge on swell_gateway_requests_buffered, aggregate sum): on this machine, "
                   "in the simulator, and on Kubernetes with `swell render --gateway`, which puts the gateway in "
                   "front of the pods (KEDA's and Knative's answer: demand read in front of the replicas)")  # fmt: skip
        if auto.policy in load.POLICIES:  # the planner reads the gateway's requests itself
            out.append(
                f"min_replicas 0: every signal ({names}) is read from running replicas, and at zero there are "
                "none: only the planner's own reads of the gateway (requests buffered or answered at zero) wake "
                "the service, and those exist on this machine, in the simulator, and on Kubernetes only with "
                f"`swell render --gateway`. For a signal that wakes it too, add one with a value at zero: {gateway}"
            )
        else:
            out.append(
                f"min_replicas 0: every signal ({names}) is read from running replicas, and at zero there are "
                f"none: nothing would scale the service from zero. Add a signal that has a value at zero: {gateway}"
            )
    if auto.policy == "panic" and "behavior" in auto.model_fields_set:
        out.append("policy 'panic' (Knative's KPA) ignores `behavior` (the HPA's windows and rate policies); "
                   "its rates are panic.max_scale_up_rate and max_scale_down_rate, and Knative's "
                   "scale-down-delay is panic.scale_down_delay_s")  # fmt: skip
    if auto.policy == "ray" and "behavior" in auto.model_fields_set:
        out.append("policy 'ray' (Ray Serve's) ignores `behavior` (the HPA's windows and rate policies); "
                   "its delays are ray.upscale_delay_s and ray.downscale_delay_s")  # fmt: skip
    if auto.policy == "ray" and len(auto.signals) > 1:
        used = auto.ray_settings.signal or auto.signals[0].name
        others = ", ".join(repr(x.name) for x in auto.signals if x.name != used)
        out.append(f"policy 'ray' scales on one signal of ongoing requests, {used!r}; it ignores {others}"
                   + ("" if auto.ray_settings.signal else " (name the one with ray.signal)"))  # fmt: skip
    if auto.ray is not None and auto.policy != "ray":
        out.append(f"the `ray` section is read by policy 'ray' only; policy {auto.policy!r} ignores it")
    if auto.max_replicas > auto.min_replicas and auto.policy == "hpa" and auto.fallback is not None:
        out.append("policy 'hpa' ignores `fallback` (a KEDA feature); use 'threshold' or 'swell'")
    if auto.target_utilization is not None and auto.policy not in load.POLICIES:
        out.append(
            f"policy {auto.policy!r} ignores `target_utilization` (the planner's share of a replica's "
            "throughput); use policy 'swell'"
        )
    if auto.policy in load.POLICIES and profile.of(rec) is None:
        out.append(
            f"policy {auto.policy!r}: swell has no capacity model of engine {rec.service.engine!r}, so the "
            "planner leaves every decision to its reactive rules; name a `service.preset` to plan with one"
        )
    if why := profile.e2e_warning(rec):
        out.append(f"policy {auto.policy!r}: {why}")
    return out


def capacity_steps(rec: recipe.Recipe) -> dict[str, float]:
    """What adding a node takes, step by step. A CPU-only replica (`gpus: 0`) waits for no GPU
    driver, and for no image pull unless the recipe sets `image_size_gb` (the default 20 GB is a
    GPU engine's image)."""
    prov = rec.node_pool.provisioning
    steps = {"node_boot": prov.node_boot_s, "kubelet": prov.kubelet_s}
    if rec.resources.gpus:
        steps["gpu_driver"] = prov.gpu_driver_s
    if rec.resources.gpus or "image_size_gb" in prov.model_fields_set:
        steps["image_pull"] = round(prov.image_pull_s, 1)
    steps["model_load"] = prov.model_load_s
    return steps


def cost_per_hour(rec: recipe.Recipe) -> tuple[float | None, str]:
    """The node pool's cost per hour at the most replicas reachable, or None with why it is unknown."""
    pool, gpus = rec.node_pool, rec.resources.gpus
    if gpus == 0:
        return None, "unknown: a CPU-only recipe has no price (node_pool prices GPUs)"
    if "price_per_gpu_hour" not in pool.model_fields_set:
        return None, "unknown: set node_pool.price_per_gpu_hour"
    nodes_at_max = nodes.nodes_for(reachable(rec), gpus, pool.gpus)
    cost = round(nodes_at_max * pool.gpus * pool.price_per_gpu_hour, 2)
    return cost, f"{cost:g} ({nodes_at_max * pool.gpus} GPUs x {pool.price_per_gpu_hour:g} per GPU-hour)"


def reachable(rec: recipe.Recipe) -> int:
    """The most replicas the recipe can run: max_replicas, or fewer where max_nodes holds fewer."""
    return min(rec.autoscaling.max_replicas, nodes.capacity(rec.node_pool, rec.resources.gpus))


def plan_data(rec: recipe.Recipe, now: float) -> dict[str, Any]:
    auto, pool, prov = rec.autoscaling, rec.node_pool, rec.node_pool.provisioning
    gpus = rec.resources.gpus
    b = schedule.bounds(rec, now)
    steps = capacity_steps(rec)
    cost, cost_text = cost_per_hour(rec)
    return {
        "service": rec.service.name,
        "engine": rec.service.engine,
        "policy": auto.policy,
        "replicas": {"min": auto.min_replicas, "max": auto.max_replicas},
        "node_pool": {
            "shape": pool.shape,
            "gpus_per_node": pool.gpus,
            "min_nodes": pool.min_nodes,
            "max_nodes": pool.max_nodes,
        },
        "gpus_per_replica": gpus,
        "replicas_per_node": nodes.per_node(gpus, pool.gpus),
        "max_reachable_replicas": reachable(rec),
        "nodes_for_max_replicas": nodes.nodes_for(reachable(rec), gpus, pool.gpus),
        "time_to_capacity_s": {
            "new_node": round(sum(steps.values()), 1),
            "new_node_steps": steps,
            "warm_node": prov.warm_replica_s,
        },
        "cost_per_hour_at_max": cost,  # None: unknown (see cost_note)
        "cost_note": cost_text,
        "signals": [
            {"name": s.name, "kind": s.kind, "target": s.target, "target_type": s.target_type}
            for s in auto.signals
        ],
        "schedule_now": {"min": b.lo, "max": b.hi, "active": list(b.active)},
        "next_schedule_change": schedule.next_change(rec, now),
        "warnings": warnings_for(rec),
    }


def plan(
    path: RecipeArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Capacity plan: replicas per node, most replicas reachable, time to add capacity, warnings."""
    import time

    rec = recipe.load(path)
    profile.check(rec, str(path))
    rec = recipe.as_one_machine(rec)  # a local pool that gives no size: this machine's slots
    data = plan_data(rec, time.time())
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    console = Console()
    t = Table(title=f"plan: {data['service']} ({data['engine']}, policy {data['policy']})", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    ttc = data["time_to_capacity_s"]
    steps_txt = " + ".join(f"{k} {v:g}s" for k, v in ttc["new_node_steps"].items())
    pool = data["node_pool"]
    cpu_only = data["gpus_per_replica"] == 0
    per_node = "replica slot(s)" if cpu_only else "GPU(s)"
    rows = [
        ("replicas", f"{data['replicas']['min']} - {data['replicas']['max']}"),
        (
            "node pool",
            f"{pool['shape']}: {pool['gpus_per_node']} {per_node}/node, "
            f"{pool['min_nodes']}-{pool['max_nodes']} nodes",
        ),
        ("GPUs per replica", "none (CPU only)" if cpu_only else str(data["gpus_per_replica"])),
        ("replicas per node", str(data["replicas_per_node"])),
        ("most replicas reachable", str(data["max_reachable_replicas"])),
        ("nodes at the most replicas", str(data["nodes_for_max_replicas"])),
        ("time to capacity, new node", f"{ttc['new_node']:.0f} s ({steps_txt})"),
        ("time to capacity, warm node", f"{ttc['warm_node']:.0f} s (model load)"),
        ("cost per hour at the most", data["cost_note"]),
        (
            "signals",
            ", ".join(
                f"{s['name']} ({s['kind']}, {s['target_type']} {s['target']:g})" for s in data["signals"]
            )
            or "none",
        ),
    ]
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    for w in data["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")


# ---------------------------------------------------------------------------------------------
# decide


OBSERVATION_KEYS = ("t", "replicas", "signals")


def _observation(
    line: str, lineno: int, names: set[str], source: str, last_t: float | None
) -> tuple[dict[str, Any], list[errors.Problem]]:
    problems: list[errors.Problem] = []
    where = f"line {lineno}"
    try:
        obs = json.loads(line)
    except json.JSONDecodeError as exc:
        return {}, [errors.Problem(path=where, value=line[:60], rule=f"not JSON: {exc.msg}")]
    except ValueError as exc:  # an integer past Python's 4,300 digits
        return {}, [errors.Problem(path=where, value=line[:60], rule=f"not an observation's numbers: {exc}".split(";")[0])]
    except RecursionError:
        return {}, [
            errors.Problem(path=where, value=line[:60], rule="nested too deeply to be an observation")
        ]
    if not isinstance(obs, dict):
        return {}, [errors.Problem(path=where, value=obs, rule="each line is a JSON object")]
    for k in obs:  # a typo ("signal") would replay as no reading at all
        if k not in OBSERVATION_KEYS:
            problems.append(errors.Problem(path=f"{where}.{k}", value=obs[k], rule="known keys: " + ", ".join(OBSERVATION_KEYS)))
    t = obs.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t) or abs(t) > MAX_T:
        problems.append(
            errors.Problem(path=f"{where}.t", value=t, rule=f"a finite number of seconds within ±{MAX_T:g}")
        )
    elif last_t is not None and t < last_t:
        problems.append(
            errors.Problem(path=f"{where}.t", value=t, rule=f"must not go back in time (previous {last_t})")
        )
    if "replicas" not in obs:
        problems.append(
            errors.Problem(
                path=f"{where}.replicas",
                value=None,
                rule='missing: each observation says how many replicas there are, e.g. "replicas": {"ready": 1}',
            )
        )
    reps = obs.get("replicas", {})
    if not isinstance(reps, dict):
        problems.append(
            errors.Problem(path=f"{where}.replicas", value=reps, rule="an object {ready, starting, pending}")
        )
        reps = {}
    for k, v in reps.items():
        if k not in ("ready", "starting", "pending", "current"):
            problems.append(
                errors.Problem(
                    path=f"{where}.replicas.{k}",
                    value=v,
                    rule="known keys: ready, starting, pending, current",
                )
            )
        elif not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_REPLICAS:
            problems.append(
                errors.Problem(
                    path=f"{where}.replicas.{k}", value=v, rule=f"a whole number in [0, {MAX_REPLICAS}]"
                )
            )
    sigs = obs.get("signals", {})
    if not isinstance(sigs, dict):
        problems.append(
            errors.Problem(path=f"{where}.signals", value=sigs, rule="an object {NAME: value or null}")
        )
        sigs = {}
    for k, v in sigs.items():
        if k not in names:
            problems.append(
                errors.Problem(
                    path=f"{where}.signals.{k}",
                    value=v,
                    rule=f"not a signal of the recipe ({', '.join(sorted(names))})",
                )
            )
        elif isinstance(v, list):  # per ready replica, in order; null: that replica reported nothing
            ready = reps.get("ready") if isinstance(reps.get("ready"), int) else None
            if len(v) > MAX_REPLICAS or not all(x is None or _number(x) for x in v):
                problems.append(
                    errors.Problem(
                        path=f"{where}.signals.{k}",
                        value=v,
                        rule="a list of numbers or nulls, one per ready replica",
                    )
                )
            elif ready is not None and len(v) > ready:  # a value of a replica that is not there
                problems.append(
                    errors.Problem(
                        path=f"{where}.signals.{k}",
                        value=v,
                        rule=f"one value per ready replica: at most {ready} (replicas.ready), got {len(v)}",
                    )
                )
        elif v is not None and not _number(v):
            problems.append(
                errors.Problem(
                    path=f"{where}.signals.{k}", value=v, rule="a number, a list (per ready replica) or null"
                )
            )
    return obs, problems


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _reading(v: object) -> snapshot.Reading:
    """A number, null, or per-ready-replica values (the HPA's pod rules read them by replica)."""
    if not isinstance(v, list):
        return snapshot.Reading.of(v if isinstance(v, int | float) else None, "null in the observations")
    per = {f"ready-{i}": x for i, x in enumerate(v)}
    present = [x for x in v if x is not None]
    if not present:
        return snapshot.Reading.missing("no replica reported a value")
    return snapshot.Reading(value=sum(present) / len(present), per_replica=per)


def _replicas(reps: dict[str, int]) -> tuple[snapshot.Replica, ...]:
    states: tuple[snapshot.ReplicaState, ...] = ("ready", "starting", "pending")
    return tuple(snapshot.Replica(name=f"{s}-{i}", state=s) for s in states for i in range(reps.get(s, 0)))


def decide(
    path: RecipeArg,
    observations: Annotated[
        Path,
        typer.Option(
            "--observations",
            "-o",
            help="JSON lines: {t, replicas: {ready, starting, pending}, signals: {NAME: value|[per ready replica]|null}}; '-' for stdin.",
        ),
    ],
    policy: Annotated[
        str | None,
        typer.Option(help=f"Use this policy instead of the recipe's ({', '.join(checks.POLICY_NAMES)})."),
    ] = None,
) -> None:
    """Replay observations through the recipe's policy: one JSON decision per line."""
    rec = recipe.load(path)
    checks.policy(policy, rec)
    controller = loop.Controller(rec, policy=policy)
    names = {s.name for s in controller.signals}
    text = checks.stdin_text("--observations", OBSERVATIONS_MAX) if str(observations) == "-" else recipe.read_text(observations, OBSERVATIONS_MAX)
    parsed: list[dict[str, Any]] = []
    problems: list[errors.Problem] = []
    last_t: float | None = None
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        obs, probs = _observation(line, i, names, str(observations), last_t)
        problems += probs
        if not probs:
            parsed.append(obs)
        if isinstance(obs.get("t"), int | float) and not any(p.path.endswith(".t") for p in probs):
            last_t = obs["t"]
    if not problems and not parsed:
        problems.append(errors.Problem(path="--observations", value=str(observations),
                                       rule="holds no observation: one JSON object per line, e.g. "
                                            '{"t": 0, "replicas": {"ready": 1}, "signals": {...}}'))  # fmt: skip
    if problems:
        raise errors.RecipeError(str(observations), problems)
    current: int | None = None
    for obs in parsed:
        reps = obs.get("replicas", {})
        if "current" in reps:
            current = reps["current"]
        elif current is None:
            current = reps.get("ready", 0) + reps.get("starting", 0) + reps.get("pending", 0)
        readings = {n: _reading(obs.get("signals", {}).get(n)) for n in names}
        state = world.ClusterState(current=current, replicas=_replicas(reps))
        d = controller.step(float(obs["t"]), state, readings)
        out = d.to_json()
        typer.echo(
            json.dumps(
                {k: out[k] for k in ("t", "desired", "proposals", "bound_by", "reason")}
                | {"current": current}
            )
        )
        current = d.desired


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("plan")(plan)
    app.command("decide")(decide)
