"""`swell import`: recipes from the autoscaling manifests people already run.

Reads HPAs (autoscaling/v2, v2beta2), KEDA ScaledObjects (prometheus, cpu, memory and cron
triggers), Alibaba CronHorizontalPodAutoscalers, prometheus-adapter rules (to resolve the custom
and external metrics an HPA names), KServe InferenceServices and Ray Serve configs (a file, or a
KubeRay RayService; `import_ray`), and writes one recipe per scale
target, listing what it could not carry over. `swell render` gives back equivalent manifests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from swell import errors
from swell.clusters.kubernetes import scalingrecipe
from swell.core import signals
from swell.render import import_ray, workload

Obj = dict[str, Any]
KNATIVE_AS_VLLM = {  # Knative's metrics an LLM predictor's vLLM series stand for
    "concurrency": ("sum(vllm:num_requests_running) + sum(vllm:num_requests_waiting)",
                    "vLLM's requests running + waiting, per replica (what the queue-proxy counts in flight)"),
    "rps": ("sum(rate(vllm:request_success_total[1m]))", "vLLM's finished requests a second, per replica"),
}
KNATIVE_TARGETS = {"concurrency": 100.0, "rps": 200.0}  # Knative's defaults where the predictor sets none
CREDENTIALS = ("a recipe carries no credentials: give the controller its own, --prometheus-header, "
               "--prometheus-bearer-token-file, --prometheus-ca-file (docs/kubernetes.md)")  # fmt: skip
SUFFIX = {"m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
_WINDOW = r"\[(\d+(?:\.\d+)?)(ms|s|m|h)\]"
_SEL = r"(?:\{[^}]*\})?"
_METRIC = r"([a-zA-Z_:][a-zA-Z0-9_:]*)"


def quantity(value: Any) -> float:
    """A Kubernetes quantity ("200m", "60", "1Gi") or a number -> float."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = re.fullmatch(r"\s*([0-9.eE+-]+)(m|k|M|G|Ki|Mi|Gi)?\s*", str(value))
    if not m:
        raise ValueError(f"not a quantity: {value!r}")
    return float(m.group(1)) * SUFFIX[m.group(2) or ""]


def _seconds(n: str, unit: str) -> float:
    return float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def _labels(selector: str) -> dict[str, str]:
    """Equality matchers, less namespace and pod: swell scopes every query to its own."""
    found = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"', selector or ""))
    return {k: v for k, v in found.items() if k not in ("namespace", "pod")}


def _clean(sig: Obj) -> Obj:
    return {k: v for k, v in sig.items() if v != {}}


def signal_from_query(name: str, query: str) -> Obj:
    """A PromQL expression -> the signal kind that renders to it (ratio, rate, gauge, utilization),
    else a raw `promql` signal. Label matchers become the signal's labels."""
    return _clean(_signal_from_query(name, query))


def _signal_from_query(name: str, query: str) -> Obj:
    q = " ".join(query.split())
    q = re.sub(r"\s*by\s*\([^)]*\)\s*", " ", q).strip()  # a per-pod grouping: swell aggregates itself
    guarded = re.fullmatch(r"\(\s*(.+?)\s*>\s*-Inf\s*\)\s*or\s*\(.+==\s*0\s*\)", q)
    if guarded:  # `(a / b > -Inf) or (b == 0)`: swell's own render of a ratio (0 where nothing was counted)
        q = guarded.group(1)
    ratio = re.fullmatch(
        rf"\(?\s*sum\s*\(\s*rate\s*\(\s*{_METRIC}({_SEL})\s*{_WINDOW}\s*\)\s*\)\s*/\s*"
        rf"sum\s*\(\s*rate\s*\(\s*{_METRIC}({_SEL})\s*{_WINDOW}\s*\)\s*\)\s*\)?",
        q,
    )
    if ratio:
        return {"name": name, "kind": "ratio", "numerator": ratio.group(1), "denominator": ratio.group(5),
                "labels": _labels(ratio.group(2)), "window_s": _seconds(ratio.group(3), ratio.group(4))}  # fmt: skip
    rate = re.fullmatch(rf"sum\s*\(\s*rate\s*\(\s*{_METRIC}({_SEL})\s*{_WINDOW}\s*\)\s*\)", q)
    if rate:
        return {"name": name, "kind": "rate", "metric": rate.group(1), "labels": _labels(rate.group(2)),
                "window_s": _seconds(rate.group(3), rate.group(4))}  # fmt: skip
    gauge = re.fullmatch(
        rf"(avg|sum|max|min)?\s*\(?\s*(?:avg_over_time\s*\(\s*)?{_METRIC}({_SEL})\s*(?:{_WINDOW}\s*\))?\s*\)?",
        q,
    )
    if gauge and gauge.group(2) not in ("sum", "avg", "max", "min", "rate"):
        metric, how = gauge.group(2), gauge.group(1) or "avg"
        window = _seconds(gauge.group(4), gauge.group(5)) if gauge.group(4) else 60.0
        if metric == signals.GPU_UTIL:
            return {"name": name, "kind": "utilization", "resource": "gpu", "window_s": window}
        return {"name": name, "kind": "gauge", "metric": metric, "aggregate": how,
                "labels": _labels(gauge.group(3)), "window_s": window}  # fmt: skip
    return {"name": name, "kind": "promql", "query": query.strip()}


# --- prometheus-adapter -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AdapterRule:
    metric: str  # the name the HPA asks for
    series: str  # the series it reads
    query: str  # metricsQuery with the template filled for a whole service
    external: bool


KSERVE_CPU_TARGET = 80.0  # KServe's scaleTarget when scaleMetric is cpu and none is given


def _adapter_problem(path: str, value: object, rule: str) -> errors.RecipeError:
    return errors.RecipeError("prometheus-adapter config", [errors.Problem(path=path, value=value, rule=rule)])


def _adapter_rules(config: Obj) -> list[AdapterRule]:
    """prometheus-adapter's rules and external rules (RecipeError naming a rule of the wrong kind)."""
    out = []
    for key, external in (("rules", False), ("externalRules", True)):
        rules = config.get(key) or []
        if not isinstance(rules, list):
            raise _adapter_problem(key, rules, "must be a list")
        for i, rule in enumerate(rules):
            naming = rule.get("name") if isinstance(rule, dict) else None
            if not isinstance(rule, dict) or not isinstance(naming or {}, dict):
                where, got = (f"{key}[{i}]", rule) if not isinstance(rule, dict) else (f"{key}[{i}].name", naming)
                raise _adapter_problem(where, got, "must be a mapping")
            sq = str(rule.get("seriesQuery", ""))
            m = re.search(r'__name__\s*=~?\s*"\^?([a-zA-Z_:][a-zA-Z0-9_:]*)', sq) or re.match(_METRIC, sq)
            if not m:
                continue
            series = m.group(1)
            naming = naming or {}
            exposed = series
            try:
                if naming.get("matches"):
                    exposed = re.sub(
                        str(naming["matches"]), re.sub(r"\$\{?(\d+)\}?", r"\\\1", str(naming.get("as") or "$0")), series
                    )
                elif naming.get("as"):
                    exposed = str(naming["as"])
            except re.error as exc:
                raise _adapter_problem(f"{key}[{i}].name", naming, f"matches/as: not a regular expression ({exc})") from None
            query = str(rule.get("metricsQuery", ""))
            query = query.replace("<<.Series>>", series).replace("{<<.LabelMatchers>>}", "")
            query = query.replace("<<.LabelMatchers>>", "").replace(",}", "}").replace("{,", "{")
            query = re.sub(r"\s*by\s*\(\s*<<\.GroupBy>>\s*\)", "", query)
            out.append(AdapterRule(metric=exposed, series=series, query=query, external=external))
    return out


def adapter_config(obj: Obj) -> Obj | None:
    """prometheus-adapter's config from a ConfigMap (any data key) or the config file itself."""
    if "rules" in obj or "externalRules" in obj or "resourceRules" in obj:
        return obj
    if obj.get("kind") == "ConfigMap":
        for text in (obj.get("data") or {}).values():
            try:
                cfg = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(cfg, dict) and ("rules" in cfg or "externalRules" in cfg):
                return cfg
    return None


# --- one recipe per target ------------------------------------------------------------------------


@dataclass(kw_only=True)
class Imported:
    name: str
    namespace: str
    target: Obj
    autoscaling: Obj = field(default_factory=dict)
    schedules: list[Obj] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    extra: Obj = field(default_factory=dict)  # other recipe sections (resources, local)
    scaler: str | None = None  # the HPA or ScaledObject that scales the target (one at most)

    def scaled_by(self, source: str) -> None:
        """Take `source` as the target's autoscaler, or name the one already there: two on one
        target (two HPAs, or an HPA and a ScaledObject, whose own HPA KEDA makes) fight, and the
        HPA controller runs neither (AmbiguousSelector); merged, the last one's bounds won unsaid."""
        if self.scaler is not None:
            kind = self.target.get("kind") or "Deployment"
            raise errors.RecipeError("", [errors.Problem(
                path="spec.scaleTargetRef", value=f"{kind} {self.name}",
                rule=f"{self.scaler} scales it too: Kubernetes runs neither of two autoscalers on one target; import one")])  # fmt: skip
        self.scaler = source

    def recipe(self) -> Obj:
        out: Obj = {"service": {"name": self.name}, "autoscaling": self.autoscaling} | self.extra
        if self.schedules:
            out["schedules"] = self.schedules
        return out


def _behavior(b: Obj | None) -> Obj:
    out: Obj = {}
    for src, dst in (("scaleUp", "scale_up"), ("scaleDown", "scale_down")):
        rules = (b or {}).get(src)
        if not rules:
            continue
        r: Obj = {}
        if "stabilizationWindowSeconds" in rules:
            r["stabilization_window_s"] = rules["stabilizationWindowSeconds"]
        if "selectPolicy" in rules:
            r["select_policy"] = rules["selectPolicy"]
        if rules.get("policies"):
            r["policies"] = [
                {"type": p["type"], "value": p["value"], "period_s": p["periodSeconds"]}
                for p in rules["policies"]
            ]
        out[dst] = r
    return out


def _sig_name(metric: str, used: set[str]) -> str:
    base = re.sub(r"[^a-zA-Z0-9_]", "_", metric).strip("_") or "signal"
    base = base if re.match(r"[a-zA-Z_]", base) else f"m_{base}"
    name, i = base, 2
    while name in used:
        name, i = f"{base}_{i}", i + 1
    used.add(name)
    return name


def _owned_by_keda(meta: Obj) -> bool:
    """An HPA a ScaledObject owns (KEDA's keda-hpa-NAME, in an export of a cluster's objects)."""
    owners = meta.get("ownerReferences") or []
    return any(isinstance(o, dict) and o.get("kind") == "ScaledObject" for o in owners)


class Importer:
    def __init__(self) -> None:
        self.rules: list[AdapterRule] = []
        self.out: dict[tuple[str, str], Imported] = {}
        self.hpa_targets: dict[tuple[str, str], Obj] = {}  # HPA name -> its scaleTargetRef
        self.unknown: list[str] = []

    def entry(self, meta: Obj, target: Obj, source: str) -> Imported:
        ns = meta.get("namespace") or "default"
        name = str(target.get("name") or meta.get("name") or "service")
        key = (ns, name)
        if key not in self.out:
            self.out[key] = Imported(name=name, namespace=ns, target=dict(target))
        self.out[key].sources.append(source)
        return self.out[key]

    def resolve(self, metric: str, external: bool) -> AdapterRule | None:
        return next((r for r in self.rules if r.metric == metric and r.external == external), None) or next(
            (r for r in self.rules if r.metric == metric), None
        )

    def hpa(self, obj: Obj) -> None:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        src = f"HorizontalPodAutoscaler {meta.get('name')}"
        if _owned_by_keda(meta):  # the HPA KEDA made for a ScaledObject: read from that
            self.unknown.append(f"{src}: KEDA's, for a ScaledObject (the ScaledObject is read instead)")
            return
        e = self.entry(meta, spec.get("scaleTargetRef") or {}, src)
        e.scaled_by(src)
        self.hpa_targets[(meta.get("namespace") or "default", meta.get("name", ""))] = (
            spec.get("scaleTargetRef") or {}
        )
        auto = e.autoscaling
        auto.update(
            {
                "policy": "hpa",
                "min_replicas": spec.get("minReplicas", 1),
                "max_replicas": spec.get("maxReplicas", 1),
            }
        )
        beh = _behavior(spec.get("behavior"))
        if beh:
            auto["behavior"] = beh
        used = {s["name"] for s in auto.get("signals", [])}
        for m in spec.get("metrics") or []:
            sig = self._hpa_metric(m, used, e)
            if sig is not None:
                auto.setdefault("signals", []).append(sig)

    def _hpa_metric(self, m: Obj, used: set[str], e: Imported) -> Obj | None:
        kind = m.get("type")
        if kind in ("Resource", "ContainerResource"):
            res = m.get("resource") or m.get("containerResource") or {}
            target = res.get("target") or {}
            if res.get("name") in ("cpu", "memory") and target.get("type") == "Utilization":
                if kind == "ContainerResource":
                    e.left_out.append(
                        f"ContainerResource {res['name']}: read for the whole pod, not container {res.get('container')}"
                    )
                return {"name": _sig_name(res["name"], used), "kind": "utilization", "resource": res["name"],
                        "target": float(target["averageUtilization"]), "target_type": "Utilization"}  # fmt: skip
            e.left_out.append(
                f"{kind} metric {res.get('name')} with target {target.get('type')}: only cpu/memory Utilization"
            )
            return None
        if kind in ("Pods", "External"):
            body = m.get("pods" if kind == "Pods" else "external") or {}
            metric = body.get("metric") or {}
            target = body.get("target") or {}
            name = str(metric.get("name", ""))
            rule = self.resolve(name, kind == "External")
            if rule is not None:
                sig = signal_from_query(_sig_name(name, used), rule.query)
            else:
                sig = {"name": _sig_name(name, used), "kind": "gauge", "metric": name}
                e.left_out.append(
                    f"{kind} metric {name}: no prometheus-adapter rule given; read as the series {name}"
                )
            selector = (metric.get("selector") or {}).get("matchLabels") or {}
            if selector and sig["kind"] != "promql":
                sig["labels"] = {**sig.get("labels", {}), **selector}
            if (metric.get("selector") or {}).get("matchExpressions"):
                e.left_out.append(f"{kind} metric {name}: selector matchExpressions")
            ttype = target.get("type")
            value = target.get("averageValue" if ttype == "AverageValue" else "value")
            if value is None:
                e.left_out.append(f"{kind} metric {name}: target {ttype} has no value")
                return None
            sig["target"] = quantity(value)
            if kind == "Pods":
                sig["target_type"] = "AverageValue"
                if sig["kind"] not in ("promql", "utilization"):
                    sig["per_replica"] = True
            else:
                sig["target_type"] = "AverageValue" if ttype == "AverageValue" else "Value"
            return sig
        e.left_out.append(
            f"{kind} metric: not carried over (swell reads Prometheus series, not {kind} objects)"
        )
        return None

    def scaled_object(self, obj: Obj) -> None:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        e = self.entry(meta, spec.get("scaleTargetRef") or {}, f"ScaledObject {meta.get('name')}")
        e.scaled_by(f"ScaledObject {meta.get('name')}")
        auto = e.autoscaling
        auto.update(
            {
                "policy": "threshold",  # KEDA's own steps (activation, cooldown to zero, fallback) + the HPA rule
                "min_replicas": spec.get("minReplicaCount", 0),
                "max_replicas": spec.get("maxReplicaCount", 100),
            }
        )
        if "pollingInterval" in spec:
            auto["polling_interval_s"] = spec["pollingInterval"]
        if "cooldownPeriod" in spec:
            auto["cooldown_s"] = spec["cooldownPeriod"]
        fb = spec.get("fallback")
        if fb:
            behavior = fb.get("behavior", "static")  # KEDA's default; swell's own is currentReplicasIfHigher
            if behavior == "scalingModifiers":
                e.left_out.append("fallback.behavior scalingModifiers (composite metrics): imported as static")
                behavior = "static"
            auto["fallback"] = {
                "failure_threshold": fb.get("failureThreshold", 3),
                "replicas": fb.get("replicas", 1),
                "behavior": behavior,
            }
        e.left_out += _keda_left_out(meta, spec)
        beh = _behavior(
            ((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("behavior")
        )
        if beh:
            auto["behavior"] = beh
        used = {s["name"] for s in auto.get("signals", [])}
        activation: dict[str, float] = {}  # per prometheus trigger (KEDA's default: 0)
        for t in spec.get("triggers") or []:
            md, ttype = t.get("metadata") or {}, t.get("type")
            if t.get("authenticationRef"):
                e.left_out.append(f"trigger {t.get('name') or ttype}: authenticationRef "
                                  f"{(t['authenticationRef'] or {}).get('name')} ({CREDENTIALS})")  # fmt: skip
            mtype = t.get("metricType") or ("Utilization" if ttype in ("cpu", "memory") else "AverageValue")
            if ttype == "prometheus":
                sig = signal_from_query(
                    _sig_name(t.get("name") or md.get("metricName") or "query", used), md.get("query", "")
                )
                sig |= {
                    "target": quantity(md.get("threshold", 1)),
                    "target_type": "Value" if mtype == "Value" else "AverageValue",
                }
                auto.setdefault("signals", []).append(sig)
                if md.get("serverAddress"):
                    auto["metrics"] = {"source": "prometheus", "prometheus_url": md["serverAddress"]}
                activation[sig["name"]] = quantity(md.get("activationThreshold", 0))
                for key in ("authModes", "customHeaders", "unsafeSsl"):
                    if key in md:
                        e.left_out.append(f"trigger {sig['name']}: {key} ({CREDENTIALS})")
                if str(md.get("ignoreNullValues", "true")).lower() == "true":
                    e.left_out.append(
                        f"trigger {sig['name']}: ignoreNullValues true (no data read as 0); swell never does"
                    )
            elif ttype in ("cpu", "memory") and mtype == "Utilization":
                auto.setdefault("signals", []).append({"name": _sig_name(ttype, used), "kind": "utilization", "resource": ttype,
                                                      "target": quantity(md.get("value", 80)), "target_type": "Utilization"})  # fmt: skip
            elif ttype == "cron":
                e.schedules.append({"name": t.get("name") or f"cron-{len(e.schedules)}", "start": md["start"], "end": md["end"],
                                    "timezone": md.get("timezone", "UTC"), "min_replicas": int(md.get("desiredReplicas", 1))})  # fmt: skip
            else:
                e.left_out.append(f"trigger {ttype} ({mtype}): not carried over")
        if len(set(activation.values())) == 1:  # one for all: the recipe's own
            if (one := next(iter(activation.values()))) > 0:
                auto["activation_threshold"] = one
        else:  # each signal its own (a cpu or memory trigger has none: KEDA activates on them only at 0)
            for sig in auto.get("signals", []):
                if activation.get(sig["name"], 0) > 0:  # 0: the recipe's default, as KEDA's
                    sig["activation_threshold"] = activation[sig["name"]]

    def cronhpa(self, obj: Obj) -> None:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        if ref.get("kind") == "HorizontalPodAutoscaler":  # CronHPA driving an HPA: the HPA's target
            ref = self.hpa_targets.get((meta.get("namespace") or "default", ref.get("name", "")), ref)
        e = self.entry(meta, ref, f"CronHorizontalPodAutoscaler {meta.get('name')}")
        jobs = list(spec.get("jobs") or [])
        tz = ((meta.get("annotations") or {}).get("swell.dev/timezone") or "UTC").split(",")[0]
        if tz == "UTC" and "swell.dev/timezone" not in (meta.get("annotations") or {}):
            e.left_out.append(
                "CronHPA runs schedules in its controller's timezone: imported as UTC; set each window's timezone"
            )
        sizes = [int(j.get("targetSize", 0)) for j in jobs]
        base = min(sizes) if sizes else 0
        if not e.autoscaling.get("signals"):  # schedules only: the floor, raised in each window
            e.autoscaling.update({"policy": "hpa", "min_replicas": base, "max_replicas": base})
        paired: set[int] = set()
        for i, j in enumerate(jobs):
            if i in paired or int(j.get("targetSize", 0)) <= base:
                continue
            end = next(
                (
                    k
                    for k in range(i + 1, len(jobs))
                    if k not in paired and int(jobs[k].get("targetSize", 0)) == base
                ),
                None,
            )
            if end is None:
                e.left_out.append(f"CronHPA job {j.get('name')}: no later job restores {base}; not a window")
                continue
            paired |= {i, end}
            name = re.sub(r"-start$", "", str(j.get("name") or f"window-{i}"))
            window = {"name": name, "start": j["schedule"], "end": jobs[end]["schedule"], "timezone": tz,
                      "min_replicas": int(j["targetSize"])}  # fmt: skip
            if not e.autoscaling.get("signals"):
                window["max_replicas"] = window["min_replicas"]
            e.schedules.append(window)
        for j in jobs:
            if j.get("runOnce"):
                e.left_out.append(f"CronHPA job {j.get('name')}: runOnce (imported as a daily window)")

    def inference_service(self, obj: Obj) -> None:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        pred = spec.get("predictor") or {}
        ref = {
            "apiVersion": obj.get("apiVersion", "serving.kserve.io/v1beta1"),
            "kind": "InferenceService",
            "name": meta.get("name"),
        }
        e = self.entry(meta, ref, f"InferenceService {meta.get('name')}")
        notes = meta.get("annotations") or {}
        lo, hi = pred.get("minReplicas", 1), pred.get("maxReplicas", max(1, pred.get("minReplicas", 1)))
        e.autoscaling.update({"policy": "threshold" if lo == 0 else "hpa", "min_replicas": lo, "max_replicas": hi})
        metric = pred.get("scaleMetric") or notes.get("autoscaling.knative.dev/metric") or "concurrency"
        target = pred.get("scaleTarget") or notes.get("autoscaling.knative.dev/target")
        cls = notes.get(
            "serving.kserve.io/autoscalerClass",
            "hpa" if notes.get("serving.kserve.io/deploymentMode") == "RawDeployment" else "kpa",
        )
        if metric in ("cpu", "memory") and target is not None:
            e.autoscaling["signals"] = [{"name": metric, "kind": "utilization", "resource": metric,
                                         "target": float(target), "target_type": "Utilization"}]  # fmt: skip
        elif metric in KNATIVE_AS_VLLM and _serves_vllm(pred):
            # Knative's own metric, read from the queue-proxy, is no series in Prometheus; vLLM's are
            query, what = KNATIVE_AS_VLLM[metric]
            e.autoscaling["signals"] = [{"name": metric, "kind": "promql", "query": query,
                                         "target": float(target or KNATIVE_TARGETS[metric]), "target_type": "AverageValue"}]  # fmt: skip
            e.left_out.append(f"scaleMetric {metric} ({cls}): Knative's queue-proxy metric, carried as {what}: scope the query to this predictor's series and check the target")
        elif target is not None:
            e.left_out.append(
                f"scaleMetric {metric} (target {target}, {cls}): Knative's own metric; add a Prometheus signal, e.g. the engine's running requests"
            )
        if cls == "external":
            e.left_out.append(
                "autoscalerClass external: KServe left scaling to another autoscaler; now swell's"
            )
        unset = not (pred.get("scaleMetric") or notes.get("autoscaling.knative.dev/metric") or target)
        if "signals" not in e.autoscaling and hi > lo and unset and cls in ("hpa", "external"):
            # no metric given, and no Knative: KServe's own default for the HPA it makes
            e.autoscaling["signals"] = [{"name": "cpu", "kind": "utilization", "resource": "cpu",
                                         "target": KSERVE_CPU_TARGET, "target_type": "Utilization"}]  # fmt: skip
            e.left_out.append(
                f"no scaleMetric ({cls}): scaled on cpu at {KSERVE_CPU_TARGET:g} % utilization, KServe's default "
                "for an HPA; a model server's own series (its queue, its running requests) scale it better"
            )

    def scaling_recipe(self, obj: Obj) -> None:
        """swell's own ScalingRecipe (what `swell render` wrote, or `kubectl get scalingrecipes -o
        yaml` gives back): its recipe as the controller reads it, to simulate or run locally."""
        spec = scalingrecipe.parse(obj)  # RecipeError naming its problems, at their spec paths
        name = spec.recipe.service.name
        e = self.entry({"namespace": spec.namespace}, {"name": name}, f"ScalingRecipe {spec.name}")
        e.target = {"apiVersion": spec.target.api_version, "kind": spec.target.kind, "name": spec.target.name}
        data = spec.recipe.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        e.autoscaling.update(data.pop("autoscaling", {}))
        e.schedules += data.pop("schedules", [])
        e.extra.update({k: v for k, v in data.items() if k not in ("apiVersion", "kind")})
        own = data.get("service", {})
        e.extra["service"] = {"name": name, "engine": spec.recipe.service.engine,
                              **{k: own[k] for k in scalingrecipe.SERVICE_KEYS if k in own}}  # fmt: skip
        if spec.placement.node_selector or spec.placement.tolerations or spec.metric_labels != {"service": spec.target.name}:
            e.left_out.append("placement and metricLabels: where the cluster runs it, not part of a recipe")

    def ray_serve(self, obj: Obj) -> None:
        """A RayService's Serve config, or a Serve config file: one recipe per Serve deployment."""
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "RayService":
            cfg, source = import_ray.serve_config_of(obj), f"RayService {meta.get('name')}"
        else:
            cfg, source = obj, "Serve config"
        for name, auto, extra, left in import_ray.deployments(cfg, source):
            target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
            e = self.entry(meta, target, source)
            e.autoscaling.update(auto)
            e.extra.update(extra)
            e.left_out += left

    def add(self, obj: Obj) -> None:
        kind, api_version = obj.get("kind"), str(obj.get("apiVersion", ""))
        cfg = adapter_config(obj)
        if cfg is not None:
            self.rules += _adapter_rules(cfg)
        elif kind == "HorizontalPodAutoscaler" and api_version in ("autoscaling/v2", "autoscaling/v2beta2"):
            pass  # after the adapter rules: see run()
        elif kind == "HorizontalPodAutoscaler":
            self.unknown.append(
                f"HorizontalPodAutoscaler {api_version}: only autoscaling/v2 and v2beta2 (convert with kubectl-convert)"
            )
        elif kind in ("ScaledObject", "CronHorizontalPodAutoscaler", "InferenceService", "RayService", scalingrecipe.KIND):
            pass
        elif kind is not None:
            self.unknown.append(
                f"{kind} {(obj.get('metadata') or {}).get('name', '')}: not an autoscaler swell reads"
            )


# What the importers read of each kind, and what it must be (the Kubernetes API would refuse
# anything else): `shape_problem` names the first that is not. Paths only: free-form maps (labels,
# a trigger's metadata, a pod spec) are not walked. `[]` is every item of a list.
_M, _L, _N = "a mapping", "a list", "a number"
_BEHAVIOR = {"": _M, ".scaleUp": _M, ".scaleDown": _M, ".scaleUp.policies": _L, ".scaleDown.policies": _L,
             ".scaleUp.policies[]": _M, ".scaleDown.policies[]": _M,
             ".scaleUp.stabilizationWindowSeconds": _N, ".scaleDown.stabilizationWindowSeconds": _N}  # fmt: skip
SHAPES: dict[str, dict[str, str]] = {
    "HorizontalPodAutoscaler": {
        "metadata": _M, "spec": _M, "spec.scaleTargetRef": _M, "spec.minReplicas": _N, "spec.maxReplicas": _N,
        "spec.metrics": _L, "spec.metrics[]": _M,
        **{f"spec.metrics[].{k}": _M for k in ("resource", "containerResource", "pods", "external", "object")},
        **{f"spec.metrics[].{k}.{f}": _M for k in ("resource", "containerResource", "pods", "external", "object")
           for f in ("target", "metric")},
        **{f"spec.metrics[].{k}.target.averageUtilization": _N for k in ("resource", "containerResource")},
        **{f"spec.behavior{k}": v for k, v in _BEHAVIOR.items()},
    },
    "ScaledObject": {
        "metadata": _M, "spec": _M, "spec.scaleTargetRef": _M, "spec.triggers": _L, "spec.triggers[]": _M,
        "spec.triggers[].metadata": _M, "spec.minReplicaCount": _N, "spec.maxReplicaCount": _N,
        "spec.pollingInterval": _N, "spec.cooldownPeriod": _N, "spec.fallback": _M,
        "spec.fallback.failureThreshold": _N, "spec.fallback.replicas": _N, "spec.advanced": _M,
        "spec.advanced.horizontalPodAutoscalerConfig": _M,
        **{f"spec.advanced.horizontalPodAutoscalerConfig.behavior{k}": v for k, v in _BEHAVIOR.items()},
    },
    "CronHorizontalPodAutoscaler": {"metadata": _M, "spec": _M, "spec.scaleTargetRef": _M, "spec.jobs": _L,
                                    "spec.jobs[]": _M},
    "InferenceService": {"metadata": _M, "spec": _M, "spec.predictor": _M, "spec.predictor.minReplicas": _N,
                         "spec.predictor.maxReplicas": _N},
}  # fmt: skip


def _at(value: Any, path: str, where: str = "") -> list[tuple[str, Any]]:
    """The (concrete path, value) pairs `path` names in `value` ('spec.metrics[].pods' gives one per
    metric); a missing step names nothing (defaults are the importers' business)."""
    if not path:
        return [(where, value)]
    step, _, rest = path.partition(".")
    key, each = (step[:-2], True) if step.endswith("[]") else (step, False)
    if not isinstance(value, dict) or value.get(key) is None:
        return []
    here, child = f"{where}.{key}" if where else key, value[key]
    if not each:
        return _at(child, rest, here)
    if not isinstance(child, list):
        return []
    return [pair for i, item in enumerate(child) for pair in _at(item, rest, f"{here}[{i}]")]


def shape_problem(obj: dict[str, Any]) -> tuple[str, str, Any] | None:
    """The first field the importers read of `obj` whose value is of the wrong kind, as (path, what
    it must be, the value): ('spec.metrics[0]', 'a mapping', 42); None if there is none. Every
    object: `kind` text, `metadata` a mapping; a ConfigMap's `data` a mapping of text."""
    kind, meta, data = obj.get("kind"), obj.get("metadata"), obj.get("data")
    if kind is not None and not isinstance(kind, str):
        return "kind", "text", kind
    if meta is not None and not isinstance(meta, dict):
        return "metadata", _M, meta
    if kind == "ConfigMap" and data is not None and not (
        isinstance(data, dict) and all(isinstance(v, str) for v in data.values())
    ):
        return "data", "a mapping of text (a ConfigMap's files)", data
    for path, want in SHAPES.get(str(kind), {}).items():
        for where, v in _at(obj, path):
            ok = (isinstance(v, dict) if want == _M else isinstance(v, list) if want == _L
                  else isinstance(v, int | float) and not isinstance(v, bool))  # fmt: skip
            if not ok:
                return where, want, v
    return None


IMPORTED = ("HorizontalPodAutoscaler", "ScaledObject", "InferenceService", "CronHorizontalPodAutoscaler", "RayService",
            scalingrecipe.KIND, None)  # None: a Serve config file, which has no kind


def _label(o: Obj) -> str:
    if import_ray.is_serve_config(o):
        return "Serve config"
    if "kind" not in o and ("rules" in o or "externalRules" in o):
        return "prometheus-adapter config"
    meta = o.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return f"{o.get('kind') or 'object'} {name or '(unnamed)'}"


def run(objects: Iterable[Obj]) -> tuple[list[Imported], list[str]]:
    """Every object -> recipes (one per scale target) and the objects it could not read at all. A
    manifest with a field of the wrong kind, or a value that does not read (a threshold 'abc'), is an
    errors.RecipeError naming the object (and the field, where known); every one at once."""
    imp = Importer()
    objs = [o for o in objects if isinstance(o, dict)]
    problems = []
    for o in objs:
        wrong = shape_problem(o)
        if wrong is not None:
            where, want, got = wrong
            problems.append(errors.Problem(path=f"{_label(o)}: {where}", value=got, rule=f"must be {want}"))
    if problems:
        raise errors.RecipeError("swell import", problems)
    for o in objs:
        try:
            imp.add(o)
        except errors.RecipeError as exc:  # a prometheus-adapter config with a rule of the wrong kind
            problems += [errors.Problem(path=f"{_label(o)}: {p.path}", value=p.value, rule=p.rule) for p in exc.problems]
    read = {"ScaledObject": imp.scaled_object, "CronHorizontalPodAutoscaler": imp.cronhpa,
            "InferenceService": imp.inference_service, "RayService": imp.ray_serve, None: imp.ray_serve,
            scalingrecipe.KIND: imp.scaling_recipe}  # fmt: skip
    for kind in IMPORTED:  # HPAs first: a CronHPA may drive one
        for o in objs:
            if o.get("kind") != kind or (kind is None and not import_ray.is_serve_config(o)):
                continue
            step = read.get(kind)
            if kind == "HorizontalPodAutoscaler" and str(o.get("apiVersion")) in ("autoscaling/v2", "autoscaling/v2beta2"):
                step = imp.hpa
            if step is None:
                continue
            try:
                step(o)
            except errors.RecipeError as exc:  # problems an importer names itself, at their paths
                problems += [errors.Problem(path=f"{_label(o)}: {p.path}", value=p.value, rule=p.rule) for p in exc.problems]
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                problems.append(errors.Problem(path=_label(o), value=str(exc), rule="a value does not read"))
    if problems:
        raise errors.RecipeError("swell import", problems)
    for e in imp.out.values():
        _needs_prometheus(e)
        _workload_unread(e)
    return list(imp.out.values()), imp.unknown


def _workload_unread(e: Imported) -> None:
    """An autoscaler names its target, and says nothing of what the target runs: the recipe's
    `service` is then only a name, and `swell render` would write a workload of that name (swell's
    default engine and image) over the user's own. Said, with the namespace render needs."""
    if "engine" in e.extra.get("service", {}):  # a ScalingRecipe: its service came with it
        return
    kind = str(e.target.get("kind") or "Deployment")
    e.left_out.append(
        f"the {kind} {e.name} itself (image, command, resources) is not read: `swell render` would write a "
        f"workload named {e.name} from this recipe's `service` and `resources`, so set them first, or apply only "
        f"the autoscaler objects it writes; render with -n {e.namespace}"
    )


def _needs_prometheus(e: Imported) -> None:
    """A raw PromQL signal is only read from a Prometheus server: name one where the manifests did not
    (an HPA reads through prometheus-adapter, whose server address is not in its rules)."""
    auto = e.autoscaling
    raw = [s["name"] for s in auto.get("signals", []) if s.get("kind") == "promql"]
    if not raw or (auto.get("metrics") or {}).get("source") == "prometheus":
        return
    url = workload.Options().prometheus_url
    auto["metrics"] = {"source": "prometheus", "prometheus_url": url}
    e.left_out.append(
        f"signal(s) {', '.join(raw)}: PromQL only a Prometheus server evaluates; metrics.prometheus_url set to "
        f"{url}: point it at the server prometheus-adapter reads"
    )


def documents(texts: Mapping[str, str]) -> list[Obj]:
    """YAML (multi-document) or JSON files -> objects; a `List` is opened."""
    out: list[Obj] = []
    for text in texts.values():
        for doc in yaml.safe_load_all(text):
            if (
                isinstance(doc, dict)
                and str(doc.get("kind", "")).endswith("List")
                and isinstance(doc.get("items"), list)
            ):
                out += [d for d in doc["items"] if isinstance(d, dict)]
            elif isinstance(doc, dict):
                out.append(doc)
    return out


def _keda_left_out(meta: Obj, spec: Obj) -> list[str]:
    """What a ScaledObject sets outside its triggers that a recipe does not carry."""
    out = []
    if spec.get("initialCooldownPeriod"):
        out.append(f"initialCooldownPeriod {spec['initialCooldownPeriod']}: swell starts the cooldown at once")
    if "idleReplicaCount" in spec:
        out.append(f"idleReplicaCount {spec['idleReplicaCount']}: swell goes from min_replicas to 0 only when "
                   "min_replicas is 0")  # fmt: skip
    paused = (meta.get("annotations") or {}).get("autoscaling.keda.sh/paused-replicas")
    if paused is not None:
        out.append(f"annotation autoscaling.keda.sh/paused-replicas {paused}: annotate the "
                   "ScalingRecipe swell.dev/paused: \"true\" and scale the target yourself")  # fmt: skip
    return out


def _serves_vllm(pred: Obj) -> bool:
    """A predictor that serves an LLM with vLLM: KServe's Hugging Face runtime (vLLM by default), a
    vllm model format, or a container running a vLLM image."""
    fmt = str(((pred.get("model") or {}).get("modelFormat") or {}).get("name", "")).lower()
    images = [str(c.get("image", "")) for c in pred.get("containers") or [] if isinstance(c, dict)]
    return fmt in ("huggingface", "vllm") or any("vllm" in i for i in images)
