"""The ScalingRecipe CustomResourceDefinition, its spec schema generated from the recipe model.

pydantic's JSON Schema becomes a structural OpenAPI v3 schema (refs inlined, `null` unions as
`nullable`, `const` as an enum, exclusive bounds in the OpenAPI 3.0 form, no defaults: the
controller applies them), so the API server rejects a bad spec and `kubectl explain` works.
`python -m swell.render.crd > deploy/base/crd.yaml` writes the installed copy; a test keeps the two equal.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from swell import recipe
from swell.clusters.kubernetes import scalingrecipe

Obj = dict[str, Any]
KEEP = {
    "type", "enum", "required", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "uniqueItems",
}  # fmt: skip
BOUNDS = {"ge": "minimum", "le": "maximum"}  # bounds some fields carry as schema extras


def structural(schema: Obj, defs: Obj) -> Obj:
    """One JSON Schema node -> its structural OpenAPI v3 form."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        return structural({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, defs)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        if len(options) == 1:
            one = structural({**options[0], **rest}, defs)
            if len(options) < len(schema["anyOf"]):
                one["nullable"] = True
            return one
        anything = {k: v for k, v in structural(rest, defs).items() if k != "type"}
        return anything | {"x-kubernetes-preserve-unknown-fields": True}
    out: Obj = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {k: structural(v, defs) for k, v in value.items()}
        elif key == "items":
            out[key] = structural(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = structural(value, defs)
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out[key.replace("exclusiveM", "m")] = value
            out[key] = True
        elif key == "description":
            out[key] = " ".join(str(value).split())[:600]
        elif key in BOUNDS and isinstance(value, int | float) and BOUNDS[key] not in schema:
            out[BOUNDS[key]] = value
        elif key in KEEP:
            out[key] = value
    if "type" not in out and "enum" in out:
        out["type"] = "string"
    return out


def spec_schema() -> Obj:
    """The ScalingRecipe spec: the recipe's own sections plus target, placement and metricLabels."""
    full = recipe.Recipe.model_json_schema(by_alias=True)
    defs = full.get("$defs", {})
    props = full["properties"]
    sections = {k: structural(props[k], defs) for k in scalingrecipe.RECIPE_KEYS}
    for k in sections:
        sections[k].pop("nullable", None)
    service = structural(props["service"], defs)
    service = {
        "description": "What sizes a replica's capacity for the planner: the model (on the node pool's GPU), "
        "vLLM's flags, or an engine preset by name. The Deployment runs the server itself.",
        "type": "object",
        "properties": {k: service["properties"][k] for k in scalingrecipe.SERVICE_KEYS},
    }
    return {
        "type": "object",
        "required": ["scaleTargetRef", "autoscaling"],
        "properties": {
            "scaleTargetRef": {
                "description": "Anything with a scale subresource (Deployment, StatefulSet, InferenceService, "
                "LeaderWorkerSet).",
                "type": "object",
                "required": ["name"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": {"type": "string", "minLength": 1},
                },
            },
            "metricLabels": {
                "description": "Label matchers that select this service's own series, besides its "
                "namespace (always added). Default: service: <scaleTargetRef.name>.",
                "type": "object",
                "additionalProperties": {"type": "string"},
            },
            "service": service,
            **sections,
            "placement": {
                "description": "How to find the pool's nodes and where headroom placeholders go.",
                "type": "object",
                "properties": {
                    "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
                    "tolerations": {
                        "type": "array",
                        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                },
            },
        },
    }


COLUMNS = [
    {"name": "Target", "type": "string", "jsonPath": ".status.scaleTargetRef"},
    {"name": "Min", "type": "integer", "jsonPath": ".spec.autoscaling.min_replicas"},
    {"name": "Max", "type": "integer", "jsonPath": ".spec.autoscaling.max_replicas"},
    {"name": "Current", "type": "integer", "jsonPath": ".status.currentReplicas"},
    {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
    {"name": "Signals", "type": "string", "jsonPath": ".status.signalSummary"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Bound-By", "type": "string", "jsonPath": ".status.boundBy", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{scalingrecipe.PLURAL}.{scalingrecipe.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "swell"},
        },
        "spec": {
            "group": scalingrecipe.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": scalingrecipe.KIND,
                "listKind": f"{scalingrecipe.KIND}List",
                "plural": scalingrecipe.PLURAL,
                "singular": scalingrecipe.KIND.lower(),
                "shortNames": ["srec"],
            },
            "versions": [
                {
                    "name": scalingrecipe.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "description": "A recipe's autoscaling for one scale target (docs/kubernetes.md).",
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }


HEADER = (
    "# ScalingRecipe: generated from the recipe model by `python -m swell.render.crd`; do not edit by hand.\n"
    "# The spec is the recipe's own sections (keys as in a recipe file) plus the target, the labels of\n"
    "# the service's series and where its GPU nodes are. tests/render checks this file is current.\n"
)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def text() -> str:
    return HEADER + yaml.dump(crd(), Dumper=_NoAliases, sort_keys=False, width=110)


if __name__ == "__main__":
    sys.stdout.write(text())
