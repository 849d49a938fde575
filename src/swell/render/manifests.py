"""`swell render`: a recipe -> the manifests a user would otherwise write by hand, per mode.

Always the workload (Deployment, Service, ServiceMonitor), plus: `swell` a ScalingRecipe; `hpa` an
autoscaling/v2 HPA with prometheus-adapter rules (seed 000); `keda` a ScaledObject with prometheus
triggers, ignoreNullValues false (seed 001); `cronhpa` a CronHPA for the schedules (seed 002);
`kserve` instead of the workload a raw-deployment InferenceService and a ScalingRecipe on its predictor.
With `Options.gateway`, swell's gateway in front of the pods (render.gateway), except for KServe,
whose own activator does that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from swell import errors, recipe
from swell.render import autoscalers, gateway, workload

Obj = dict[str, Any]
MODES: dict[str, Callable[[recipe.Recipe, workload.Options], autoscalers.Rendered]] = {
    "swell": autoscalers.scaling_recipe,
    "hpa": autoscalers.hpa,
    "keda": autoscalers.keda,
    "cronhpa": autoscalers.cronhpa,
    "kserve": autoscalers.kserve,
}


@dataclass(frozen=True, kw_only=True)
class Bundle:
    objects: tuple[Obj, ...]
    warnings: tuple[str, ...]


def render(rec: recipe.Recipe, mode: str, opts: workload.Options | None = None) -> Bundle:
    if mode not in MODES:
        raise errors.RecipeError(
            "swell render",
            [errors.Problem(path="--mode", value=mode, rule=f"one of {', '.join(MODES)}")],
        )
    opts = opts or workload.Options()
    scaler, warnings = MODES[mode](rec, opts)
    if mode == "kserve":  # the InferenceService is the workload: KServe makes Deployment and Service
        if opts.gateway:
            warnings = [*warnings, "--gateway is not rendered with --mode kserve: KServe makes the predictor's "
                        "Service; run `swell gateway <name>-predictor` in front of it yourself"]  # fmt: skip
        warnings = [*warnings, *gateway.unserved(rec)]
        return Bundle(
            objects=(*scaler, *workload.extras(rec, opts)), warnings=(*workload.notes(rec), *warnings)
        )
    replicas = max(rec.autoscaling.start_replicas, 1 if mode in ("hpa", "cronhpa") else 0)  # an HPA at 0 is off
    objects = [
        workload.deployment(rec, opts, replicas),
        workload.service(rec, opts),
        workload.service_monitor(rec, opts),
        *scaler,
        *workload.extras(rec, opts),
    ]
    if opts.gateway:
        objects += gateway.objects(rec, opts)
        warnings = [*warnings, *gateway.warnings(rec)]
    else:
        warnings = [*warnings, *gateway.unserved(rec)]
    return Bundle(objects=tuple(objects), warnings=(*workload.notes(rec), *warnings))


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (prometheus-adapter's config.yaml, dashboards)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: Obj) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=120)


def dump(objects: tuple[Obj, ...] | list[Obj]) -> str:
    """Multi-document YAML."""
    return "---\n".join(to_yaml(o) for o in objects)


def file_name(obj: Obj) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def write(bundle: Bundle, directory: Path) -> list[Path]:
    """One file per object plus a kustomization.yaml listing them (`kubectl apply -k DIR`)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for obj in bundle.objects:
            path = directory / file_name(obj)
            path.write_text(to_yaml(obj), encoding="utf-8")
            paths.append(path)
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [p.name for p in paths],
        }
        path = directory / "kustomization.yaml"
        path.write_text(yaml.safe_dump(kustomization, sort_keys=False), encoding="utf-8")
    except OSError as exc:
        raise errors.SwellError(f"cannot write manifests to {directory}: {exc.strerror or exc}") from None
    return [*paths, path]
