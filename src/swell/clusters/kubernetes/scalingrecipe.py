"""The ScalingRecipe custom resource (group swell.dev): its spec read as a recipe and a target.

The spec is the recipe's own sections, keys as in a recipe file (`autoscaling`, `resources`,
`node_pool`, `schedules`, `workers`, `slo`), what of its `service` the planner's capacity model reads
(`model`, `args`, `preset`: the Deployment itself runs the server), plus a `scaleTargetRef` to
anything with a scale subresource and an optional `placement` (node selector and tolerations of
the GPU node pool, used to find its nodes and to place headroom pods). No import of the
kubernetes client here: `swell render` uses it too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swell import errors, recipe
from swell.engines import catalog

GROUP = "swell.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ScalingRecipe"
PLURAL = "scalingrecipes"
# `workers`: TorchServe workers inside each pod, set through its management API (the only engine
# with workers on Kubernetes; `spec_of` writes it for engine torchserve only)
RECIPE_KEYS = ("autoscaling", "resources", "node_pool", "schedules", "workers", "slo")
# of the service, what sizes a replica's capacity (the model on the pool's GPU, vLLM's flags such as
# --max-num-seqs or --tensor-parallel-size, or an engine preset by name); its name is the resource's, its
# engine vLLM (TorchServe with workers), its image and command the Deployment's own
SERVICE_KEYS = ("model", "args", "preset")
PAUSE_ANNOTATION = "swell.dev/paused"  # "true": decide and report, act on nothing

Obj = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class TargetRef:
    """What a ScalingRecipe scales: anything with a scale subresource."""

    api_version: str
    kind: str
    name: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where the target's replicas run: how to find the pool's nodes and place headroom pods."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Obj, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Spec:
    namespace: str
    name: str
    uid: str
    generation: int
    target: TargetRef
    recipe: recipe.Recipe
    placement: Placement
    # label matchers of the service's own series (the namespace is always added): what its
    # ServiceMonitor attaches; default `service: <target name>`
    metric_labels: Mapping[str, str] = field(default_factory=dict)
    paused: bool = False  # the pause annotation is "true"


def service_name(name: str) -> str:
    """A DNS label from a resource name (recipes want one; CR names may hold dots)."""
    label = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:63].strip("-")
    return label or "service"


def parse(obj: Obj) -> Spec:
    """A ScalingRecipe object -> Spec; every problem at once as a RecipeError."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace") or "default", meta.get("name") or ""
    source = f"{KIND} {ns}/{name}"
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise errors.RecipeError(source, [errors.Problem(path="spec", value=spec, rule="must be a mapping")])
    problems: list[errors.Problem] = []
    ref = spec.get("scaleTargetRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        problems.append(
            errors.Problem(
                path="spec.scaleTargetRef",
                value=ref,
                rule="needs at least `name` (and `kind`, `apiVersion`; default Deployment, apps/v1)",
            )
        )
        ref = {}
    placement = spec.get("placement") or {}
    selector = placement.get("nodeSelector") or {}
    tolerations = placement.get("tolerations") or []
    if not isinstance(selector, dict) or not all(isinstance(v, str) for v in selector.values()):
        problems.append(
            errors.Problem(path="spec.placement.nodeSelector", value=selector, rule="a map of label: value")
        )
        selector = {}
    if not isinstance(tolerations, list):
        problems.append(
            errors.Problem(path="spec.placement.tolerations", value=tolerations, rule="a list of tolerations")
        )
        tolerations = []
    mlabels = spec.get("metricLabels")
    if mlabels is None:
        mlabels = {"service": ref.get("name") or ""}
    if not isinstance(mlabels, dict) or not all(isinstance(v, str) for v in mlabels.values()):
        problems.append(errors.Problem(path="spec.metricLabels", value=mlabels, rule="a map of label: value"))
        mlabels = {}
    if "namespace" in mlabels:
        problems.append(
            errors.Problem(
                path="spec.metricLabels.namespace",
                value=mlabels["namespace"],
                rule="must not be set: the recipe's own namespace is always the scope",
            )
        )
    # the Deployment a ScalingRecipe scales serves an LLM with vLLM (the planner's capacity model and
    # offered-load reads are vLLM's), or, with workers, a TorchServe model (workers on Kubernetes are
    # TorchServe's)
    engine = "torchserve" if spec.get("workers") is not None else "vllm"
    service = spec.get("service") or {}
    if not isinstance(service, dict):
        problems.append(errors.Problem(path="spec.service", value=service,
                                       rule=f"a mapping of {', '.join(SERVICE_KEYS)}"))  # fmt: skip
        service = {}
    for key in sorted(set(service) - set(SERVICE_KEYS), key=str):
        problems.append(errors.Problem(path=f"spec.service.{key}", value=service[key],
                                       rule=f"not part of a ScalingRecipe's service (only {', '.join(SERVICE_KEYS)}: "
                                       "the Deployment runs the server, and its name is the resource's)"))  # fmt: skip
    if why := catalog.preset_problem(service.get("preset")):
        problems.append(errors.Problem(path="spec.service.preset", value=service["preset"], rule=why))
    data: Obj = {"service": {"name": service_name(name), "engine": engine,
                             **{k: service[k] for k in SERVICE_KEYS if service.get(k) is not None}}}  # fmt: skip
    data.update({k: spec[k] for k in RECIPE_KEYS if spec.get(k) is not None})
    try:
        rec = recipe.parse(data, source)
    except errors.RecipeError as exc:
        problems += [
            errors.Problem(path=f"spec.{p.path}" if p.path else "spec", value=p.value, rule=p.rule)
            for p in exc.problems
        ]
    if problems:
        raise errors.RecipeError(source, problems)
    return Spec(
        namespace=ns,
        name=name,
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
        target=TargetRef(
            api_version=ref.get("apiVersion") or "apps/v1",
            kind=ref.get("kind") or "Deployment",
            name=ref["name"],
            namespace=ns,
        ),
        recipe=rec,
        placement=Placement(node_selector=dict(selector), tolerations=tuple(tolerations)),
        metric_labels=dict(mlabels),
        paused=is_paused(obj),
    )


def is_paused(obj: Obj) -> bool:
    """Whether a ScalingRecipe object carries the pause annotation ("true")."""
    notes = (obj.get("metadata") or {}).get("annotations") or {}
    return str(notes.get(PAUSE_ANNOTATION, "")).lower() == "true"


def spec_of(
    rec: recipe.Recipe,
    target: Mapping[str, str],
    placement: Placement | None = None,
    metric_labels: Mapping[str, str] | None = None,
) -> Obj:
    """The ScalingRecipe spec for a recipe (what `swell render --mode swell` writes)."""
    dumped = rec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    out: Obj = {"scaleTargetRef": dict(target)}
    if metric_labels is not None:
        out["metricLabels"] = dict(metric_labels)
    out.update({k: dumped[k] for k in RECIPE_KEYS if dumped.get(k)})
    service = {k: dumped["service"][k] for k in SERVICE_KEYS if dumped["service"].get(k)}
    if rec.service.engine != "vllm":  # the flags of another engine are not vLLM's, which the spec's engine is
        service.pop("args", None)
    if service:
        out["service"] = service
    if rec.workers is not None and rec.service.engine == "torchserve":
        out["workers"] = rec.workers.model_dump(mode="json", by_alias=True)
    else:
        out.pop("workers", None)
    auto = rec.autoscaling  # the bounds and the policy are worth reading even when they are defaults
    out["autoscaling"] = {
        "policy": auto.policy,
        "min_replicas": auto.min_replicas,
        "max_replicas": auto.max_replicas,
        **out.get("autoscaling", {}),
    }
    if placement is not None and (placement.node_selector or placement.tolerations):
        out["placement"] = {
            k: v
            for k, v in (
                ("nodeSelector", dict(placement.node_selector)),
                ("tolerations", list(placement.tolerations)),
            )
            if v
        }
    return out
