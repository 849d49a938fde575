"""Validating manifests as an API server would: built-in kinds with kubernetes-validate, custom
resources against the openAPIV3Schema of their CRD (upstream copies vendored in tests/fixtures/schemas,
swell's own in deploy/), with the fields the server would silently prune reported as errors."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).parents[2]
SCHEMAS = ROOT / "tests" / "fixtures" / "schemas"
K8S_VERSION = "1.30.0"  # kubernetes-validate ships 1.25 and later; autoscaling/v2 is GA there
CRD_FILES = {
    ("monitoring.coreos.com", "ServiceMonitor"): SCHEMAS / "monitoring.coreos.com_servicemonitors.yaml",
    ("keda.sh", "ScaledObject"): SCHEMAS / "keda.sh_scaledobjects.yaml",
    ("autoscaling.alibabacloud.com", "CronHorizontalPodAutoscaler"): SCHEMAS
    / "autoscaling.alibabacloud.com_cronhorizontalpodautoscalers.v1.22.yaml",
    ("swell.dev", "ScalingRecipe"): ROOT / "deploy" / "base" / "crd.yaml",
    # 2 MB: read from ../shared (not vendored); tests skip without it
    ("serving.kserve.io", "InferenceService"): ROOT.parent
    / "shared"
    / "schemas"
    / "serving.kserve.io_inferenceservices.yaml",
}

Obj = dict[str, Any]


@functools.cache
def crd_schema(group: str, version: str, kind: str) -> Obj:
    path = CRD_FILES[(group, kind)]
    if not path.is_file():
        pytest.skip(f"{path} is missing (the KServe CRD lives in ../shared/schemas)")
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return v["schema"]["openAPIV3Schema"]
    raise AssertionError(f"{kind}.{group} has no version {version}")


def _draft4(schema: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as draft 4 says it: null among the types."""
    if isinstance(schema, list):
        return [_draft4(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _draft4(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") and "type" in schema:
        out["type"] = [schema["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def pruned(obj: Any, schema: Obj, path: str = "") -> list[str]:
    """Fields a structural schema does not declare: the API server drops them without a word."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out = []
    if isinstance(obj, dict) and schema.get("type") == "object":
        props, extra = schema.get("properties") or {}, schema.get("additionalProperties")
        for k, v in obj.items():
            if path == "" and k in ("apiVersion", "kind", "metadata"):
                continue  # the server's own, never pruned
            if k in props:
                out += pruned(v, props[k], f"{path}.{k}")
            elif isinstance(extra, dict):
                out += pruned(v, extra, f"{path}.{k}")
            elif extra is not True:
                out.append(f"{path}.{k}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(obj):
            out += pruned(v, schema["items"], f"{path}[{i}]")
    return out


def _spec_min_le_max(spec: Obj) -> bool:
    return spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 100)


# CEL rules (x-kubernetes-validations) of the CRDs above, checked here by hand: jsonschema does not
# run CEL. A rule not listed fails the test, so an upstream update cannot slip one past.
CEL_RULES = {
    "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)": (
        "spec",
        _spec_min_le_max,
    ),
}


def cel_rules(schema: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, rule) of every CEL rule in a schema."""
    out: list[tuple[str, str]] = []
    if isinstance(schema, dict):
        out += [(path, r["rule"]) for r in schema.get("x-kubernetes-validations", [])]
        for k, v in (schema.get("properties") or {}).items():
            out += cel_rules(v, f"{path}.{k}".lstrip("."))
        out += cel_rules(schema.get("items"), path + "[]")
    return out


def validate(obj: Obj) -> None:
    """Raise if the API server (v1.30 for built-in kinds, the CRD for custom ones) would reject or
    prune any part of `obj`."""
    group, _, version = obj["apiVersion"].rpartition("/")
    if (group, obj["kind"]) in CRD_FILES:
        schema = crd_schema(group, version, obj["kind"])
        jsonschema.Draft4Validator(_draft4(schema)).validate(obj)  # OpenAPI 3.0: draft 4 + nullable
        for path, rule in cel_rules(schema):
            assert " ".join(rule.split()) in CEL_RULES, f"CEL rule at {path} not checked here: {rule}"
            where, check = CEL_RULES[" ".join(rule.split())]
            assert path == where and check(obj[where]), f"{obj['kind']} breaks the CEL rule {rule}"
        assert not pruned(obj, schema), f"{obj['kind']}: fields the server would prune: {pruned(obj, schema)}"
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
