"""Recipes: what to run and how to scale it, as frozen pydantic models loaded from YAML or JSON.

A recipe is the one input every place (local, sim, Kubernetes) reads. Corrino recipe payloads
(`recipe_node_shape`, `recipe_pod_autoscaling_params`, ...) are accepted as-is and converted by
`swell.recipe_corrino`. Every validation problem is reported at once, each naming the field
path (for a Corrino payload, the key the user wrote), the value and the rule
(`swell.errors.RecipeError`), cross-field rules (min <= max) included. Numbers have sensible
bounds (docs/recipes.md); YAML aliases and nesting are limited before anything is built.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from swell import cron, durations, errors, files, recipe_corrino

# Bounds that turn an absurd number into a problem instead of a hang or an overflow later.
MAX_REPLICAS = 10_000
MAX_NODES = 10_000
MAX_GPUS = 64  # per replica or per node
WEEK_S = 7 * 86400.0  # the longest duration a recipe may set
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.01, 3600.0  # loop and scrape intervals
# Limits on what a recipe file may expand to (alias bombs, deep nesting).
MAX_DEPTH = 64
MAX_NODES_IN_FILE = 100_000
MAX_TEXT = 1_000_000  # characters
MAX_PRICE = 1_000_000.0  # per GPU-hour, in any currency: a cost at max_nodes stays a finite number

# ---------------------------------------------------------------------------------------------
# base


def _numeric(annotation: Any) -> bool:
    """A field that takes a number (int or float, optional or not) and never true/false."""
    if annotation in (int, float):
        return True
    parts = [a for a in typing.get_args(annotation) if a is not type(None)]
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return is_union and bool(parts) and bool not in parts and all(_numeric(a) for a in parts)


class Model(BaseModel):
    """Frozen, strict about unknown keys: a typo in a recipe is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        """true/false is no number (pydantic's lax mode reads it as 1/0: `cpu: true` was 1 core), and a
        duration written as text in a field of seconds is named as one."""
        found: list[FieldProblem] = []
        if isinstance(data, dict):
            for name, f in cls.model_fields.items():
                key = f.alias if f.alias is not None and f.alias in data else name
                got = data.get(key)
                if isinstance(got, bool) and _numeric(f.annotation):
                    whole = f.annotation is int or int in typing.get_args(f.annotation)
                    found.append(FieldProblem(key, got, f"a {'whole ' if whole else ''}number, not true/false"))
                if name.endswith("_s") and isinstance(got, str) and _numeric(f.annotation):
                    secs = durations.with_unit(got)
                    if secs is not None:  # "30s", as Kubernetes and KEDA write durations: the `_s` in the name is the unit
                        found.append(FieldProblem(key, got, f"a number of seconds: write {secs:g}" if math.isfinite(secs)
                                                  else "a finite number of seconds"))  # fmt: skip
        _raise_all(found)
        return data


class FieldProblem(ValueError):
    """Raised by model validators so the error names the field and its value, not the whole section."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        super().__init__(rule)
        self.field, self.value, self.rule = field, value, rule


class FieldProblems(ValueError):
    """Every problem one model validator found: its rules are all checked, so a section with a bad
    cron and a bad timezone names both, not the first."""

    def __init__(self, found: list[FieldProblem]) -> None:
        super().__init__("; ".join(p.rule for p in found))
        self.found = found


def _raise_all(found: list[FieldProblem]) -> None:
    """Raise what a validator found: nothing, its one problem, or all of them."""
    if len(found) == 1:
        raise found[0]
    if found:
        raise FieldProblems(found)


Text = Annotated[str, Field(min_length=1)]  # a name that is given is not empty
Seconds = Annotated[float, Field(ge=0, le=WEEK_S)]
PositiveSeconds = Annotated[float, Field(gt=0, le=WEEK_S)]
Interval = Annotated[float, Field(ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)]


def _whole(value: Any) -> Any:
    """1e20 as a whole number, so that it meets the bound (pydantic stops at 64 bits first); also
    when YAML 1.1 left it as text ('1e20' without a dot is a string to PyYAML). true/false is no
    count (pydantic would read it as 1/0)."""
    if isinstance(value, bool):
        raise ValueError("a whole number, not true/false")
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d*)?[eE]\+?\d+\s*", value):
        value = float(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = BeforeValidator(_whole)
Replicas = Annotated[int, Whole, Field(ge=0, le=MAX_REPLICAS)]
Nodes = Annotated[int, Whole, Field(ge=0, le=MAX_NODES)]

# ---------------------------------------------------------------------------------------------
# service

EngineName = Literal["llama-cpp", "simulated-llm", "sklearn-iris", "vllm", "command", "torchserve"]


class Probe(Model):
    path: str = "/health"
    period_s: PositiveSeconds = 1.0
    timeout_s: PositiveSeconds = 2.0
    failure_threshold: Annotated[int, Field(ge=1)] = 3
    initial_delay_s: Seconds = 0.0

    @field_validator("path")
    @classmethod
    def _path_starts_with_slash(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with '/'")
        return v


class Probes(Model):
    readiness: Probe = Probe()
    liveness: Probe = Probe(period_s=5.0, failure_threshold=3)
    # A Kubernetes startup probe's budget: a replica not ready this long after its start is
    # restarted (with backoff). None: max(300 s, 3 x node_pool.provisioning.model_load_s).
    startup_timeout_s: PositiveSeconds | None = None


class Service(Model):
    """One scaled model: which engine serves it, with what model and arguments."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
    engine: EngineName = "llama-cpp"
    model: Text | None = None  # "" would serve no model: leave it out instead
    args: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    image: Text | None = None
    container_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    probes: Probes = Probes()
    preset: str | None = None  # simulated-llm performance preset

    @model_validator(mode="after")
    def _env_a_process_takes(self) -> Service:
        """Names and values a process environment can hold (the start would fail on them later,
        with the deployment left starting)."""
        found = []
        for key, value in self.env.items():
            if not key or "=" in key or "\0" in key:
                found.append(FieldProblem(f"env.{key}", key, "a variable name: not empty, without '=' or a NUL byte"))
            if "\0" in value:
                found.append(FieldProblem(f"env.{key}", value, "a value without a NUL byte"))
        _raise_all(found)
        return self

    @model_validator(mode="after")
    def _command_engine_needs_argv(self) -> Service:
        if self.engine == "command" and not self.command:
            raise FieldProblem(
                "command",
                self.command,
                "engine 'command' needs `command`: the server's argv as a "
                "list, e.g. ['vllm', 'serve', 'gpt2', '--port', '{port}']",
            )
        if self.engine != "command" and self.command:
            raise FieldProblem(
                "command", self.command, f"only for engine 'command' (engine is {self.engine!r})"
            )
        return self


class Resources(Model):
    gpus: Annotated[int, Field(ge=0, le=MAX_GPUS)] = 0
    cpu: Annotated[float, Field(gt=0, le=1024)] = 1.0
    memory_gib: Annotated[float, Field(gt=0, le=65536)] = 2.0


# ---------------------------------------------------------------------------------------------
# signals

Aggregate = Literal["avg", "sum", "max", "min"]
TargetType = Literal["Value", "AverageValue", "Utilization"]
SignalKind = Literal[
    "gauge", "rate", "ratio", "histogram_fraction", "histogram_quantile", "utilization", "promql"
]


class Signal(Model):
    """A named metric definition with a target; evaluated from scraped windows or as PromQL.

    kinds:
      gauge               aggregate(metric) across replicas (latest sample of each)
      rate                sum of per-second increase of a counter over `window_s`
      ratio               rate(numerator) / rate(denominator) over `window_s` (e.g. _sum/_count)
      histogram_fraction  share of observations above `le` over `window_s`
      histogram_quantile  the `quantile` of a histogram over `window_s`
      utilization         `resource` (gpu, cpu, memory) busy percent averaged over replicas
      promql              a raw PromQL `query` (needs a Prometheus server)
    """

    name: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_:-]*$")]  # NAME:panic is reserved
    kind: SignalKind
    metric: Text | None = None
    numerator: Text | None = None
    denominator: Text | None = None
    le: float | None = None
    quantile: Annotated[float, Field(gt=0, lt=1)] | None = None
    resource: Literal["gpu", "cpu", "memory"] | None = None
    aggregate: Aggregate = "avg"
    labels: dict[str, str] = Field(default_factory=dict)
    window_s: PositiveSeconds = 60.0
    query: Text | None = None
    target: Annotated[float, Field(gt=0)]
    target_type: TargetType = "Value"
    per_replica: bool = False  # reading kept per replica (HPA "Pods" metric rules)
    # above this the service leaves zero (KEDA's per-trigger activationThreshold); None: autoscaling's
    activation_threshold: Annotated[float, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Signal:
        found: list[FieldProblem] = []
        need: dict[str, tuple[str, ...]] = {
            "gauge": ("metric",),
            "rate": ("metric",),
            "ratio": ("numerator", "denominator"),
            "histogram_fraction": ("metric", "le"),
            "histogram_quantile": ("metric", "quantile"),
            "utilization": ("resource",),
            "promql": ("query",),
        }
        missing = [f for f in need[self.kind] if getattr(self, f) is None]
        if missing:
            found.append(FieldProblem(missing[0], None, f"signal kind {self.kind!r} needs {', '.join(missing)}"))
        if self.target_type == "Utilization" and self.kind != "utilization":
            found.append(FieldProblem(
                "target_type", self.target_type, "'Utilization' is only for kind 'utilization'"
            ))
        if self.kind == "utilization" and self.target > 100:
            found.append(FieldProblem("target", self.target, "a utilization target is a percent in (0, 100]"))
        _raise_all(found)
        return self


# ---------------------------------------------------------------------------------------------
# behavior (Kubernetes HPA autoscaling/v2 `behavior`, same meaning and defaults)


class RatePolicy(Model):
    type: Literal["Pods", "Percent"]
    value: Annotated[int, Field(gt=0, le=MAX_REPLICAS * 100)]
    period_s: Annotated[int, Field(gt=0, le=1800)]


SelectPolicy = Literal["Max", "Min", "Disabled"]


def _none_required(schema: dict[str, Any]) -> None:
    schema.pop("required", None)


class ScalingRules(Model):
    """One direction of the HPA `behavior`; keys left out take that direction's HPA default."""

    # `Behavior` fills the keys left out before this model sees them, so its schema (the CRD's)
    # requires none: `scale_down: {stabilization_window_s: 0}` is a whole direction, as in the HPA
    model_config = ConfigDict(**Model.model_config, json_schema_extra=_none_required)

    stabilization_window_s: Annotated[int, Field(ge=0, le=3600)]
    select_policy: SelectPolicy = "Max"
    policies: tuple[RatePolicy, ...]

    @model_validator(mode="after")
    def _at_least_one(self) -> ScalingRules:
        if not self.policies and self.select_policy != "Disabled":
            raise FieldProblem("policies", [], "needs at least one policy (or select_policy: Disabled)")
        return self


def default_scale_up() -> ScalingRules:
    return ScalingRules(
        stabilization_window_s=0,
        select_policy="Max",
        policies=(
            RatePolicy(type="Pods", value=4, period_s=15),
            RatePolicy(type="Percent", value=100, period_s=15),
        ),
    )


def default_scale_down() -> ScalingRules:
    return ScalingRules(
        stabilization_window_s=300,
        select_policy="Max",
        policies=(RatePolicy(type="Percent", value=100, period_s=15),),
    )


class Behavior(Model):
    scale_up: ScalingRules = Field(default_factory=default_scale_up)
    scale_down: ScalingRules = Field(default_factory=default_scale_down)

    @model_validator(mode="before")
    @classmethod
    def _hpa_defaults(cls, data: Any) -> Any:
        """Like the HPA, merge a partial direction with that direction's defaults."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, default in (("scale_up", default_scale_up), ("scale_down", default_scale_down)):
            given = out.get(key)
            if isinstance(given, dict):
                base = default().model_dump()
                out[key] = {**base, **given}
        return out


class Tolerance(Model):
    up: Annotated[float, Field(ge=0, lt=1)] = 0.1
    down: Annotated[float, Field(ge=0, lt=1)] = 0.1


FallbackBehavior = Literal["static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"]


class Fallback(Model):
    """After `failure_threshold` consecutive reads without a value, go to `replicas` as `behavior` says (KEDA)."""

    # KEDA's four behaviors under their KEDA names; swell's default, currentReplicasIfHigher, goes up to
    # `replicas` and never down on missing data (KEDA's own default, static, goes to `replicas` either way)

    failure_threshold: Annotated[int, Field(ge=1)] = 3
    # never 0: no scaling to zero because a metric went missing
    replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS)]
    behavior: FallbackBehavior = "currentReplicasIfHigher"

    def target(self, current: int) -> int:
        """The count the fallback asks for with `current` replicas."""
        return {
            "static": self.replicas,
            "currentReplicas": current,
            "currentReplicasIfHigher": max(current, self.replicas),
            "currentReplicasIfLower": min(current, self.replicas),
        }[self.behavior]


class Panic(Model):
    """Knative KPA stable/panic windows over one concurrency-like signal."""

    signal: str
    stable_window_s: PositiveSeconds = 60.0
    panic_window_s: PositiveSeconds = 6.0
    panic_threshold: Annotated[float, Field(gt=1)] = 2.0
    max_scale_up_rate: Annotated[float, Field(gt=1)] = 1000.0
    max_scale_down_rate: Annotated[float, Field(gt=1)] = 2.0
    # Knative's scale-down-delay: a scale-down applies only once the lower count held this long
    scale_down_delay_s: Annotated[float, Field(ge=0, le=3600)] = 0.0

    @model_validator(mode="after")
    def _panic_shorter(self) -> Panic:
        if self.panic_window_s >= self.stable_window_s:
            raise FieldProblem(
                "panic_window_s",
                self.panic_window_s,
                f"must be shorter than stable_window_s ({self.stable_window_s})",
            )
        return self


class RayServe(Model):
    """Ray Serve's default autoscaling policy over one signal of ongoing requests (queued and
    running, summed over replicas): its target is Ray's `target_ongoing_requests` per replica, its
    window Ray's `look_back_period_s`. A new count applies once it has been asked for this long."""

    signal: str | None = None  # None: the first signal
    upscale_delay_s: Annotated[float, Field(ge=0, le=3600)] = 30.0
    downscale_delay_s: Annotated[float, Field(ge=0, le=86400)] = 600.0
    # 1 -> 0 only; None: downscale_delay_s
    downscale_to_zero_delay_s: Annotated[float, Field(ge=0, le=86400)] | None = None
    # each step moves this share of the way from the running replicas to the need (Ray's smoothing)
    upscaling_factor: Annotated[float, Field(gt=0, le=100)] = 1.0
    downscaling_factor: Annotated[float, Field(gt=0, le=100)] = 1.0


def http_url_problem(value: str) -> str | None:
    """Why `value` is not an http(s) URL with a host and a valid port (None: it is one)."""
    try:
        u = urllib.parse.urlsplit(value)
        u.port  # noqa: B018 (read for its check: 'http://p:abc' or a port over 65535 raise)
    except ValueError as exc:  # 'http://[::1': brackets that hold no address; a port out of range
        return f"not a URL ({exc})" if "port" not in str(exc).lower() else "its port must be a number 0-65535"
    if u.scheme in ("http", "https") and u.hostname:
        return None
    return "an http:// or https:// URL with a host, e.g. http://prometheus.monitoring:9090"


class MetricsSource(Model):
    source: Literal["embedded", "prometheus"] = "embedded"
    prometheus_url: str | None = None
    scrape_interval_s: Interval = 1.0

    @model_validator(mode="after")
    def _url_for_prometheus(self) -> MetricsSource:
        if self.source == "prometheus" and not self.prometheus_url:
            raise FieldProblem(
                "prometheus_url", self.prometheus_url, "source 'prometheus' needs prometheus_url, e.g. http://127.0.0.1:9090"
            )
        if self.prometheus_url and (why := http_url_problem(self.prometheus_url)):
            raise FieldProblem("prometheus_url", self.prometheus_url, why)
        return self


PolicyName = Literal["hpa", "threshold", "panic", "ray", "swell", "reactive", "planner"]  # planner: an earlier name of swell


class Autoscaling(Model):
    min_replicas: Replicas = 1
    max_replicas: Annotated[int, Whole, Field(ge=1, le=MAX_REPLICAS)] = 1
    polling_interval_s: Interval = 15.0
    policy: PolicyName = "swell"
    signals: tuple[Signal, ...] = ()
    tolerance: Tolerance = Tolerance()
    behavior: Behavior = Behavior()
    cooldown_s: Seconds = 300.0  # before scaling to zero (KEDA cooldownPeriod)
    activation_threshold: Annotated[float, Field(ge=0)] = 0.0
    fallback: Fallback | None = None
    panic: Panic | None = None
    ray: RayServe | None = None  # policy ray's settings (None: Ray Serve's defaults)
    metrics: MetricsSource = MetricsSource()
    headroom_nodes: Nodes = 0  # spare nodes kept warm by placeholder pods
    # the planner (policy swell) plans a replica at this share of its full throughput; None: the
    # engine's default (0.7 for an LLM, 1.0 for a classic model). Lower buys headroom for bursts
    target_utilization: Annotated[float, Field(gt=0, le=1)] | None = None
    # the count a service starts with (Knative's initial-scale, Ray Serve's initial_replicas): `swell
    # up`, the API and a rendered Deployment; None: min_replicas
    initial_replicas: Replicas | None = None

    def activation_for(self, signal: str) -> float:
        """The activation threshold of one signal: its own, else the recipe's."""
        own = next((s.activation_threshold for s in self.signals if s.name == signal), None)
        return self.activation_threshold if own is None else own

    @property
    def ray_settings(self) -> RayServe:
        return self.ray if self.ray is not None else RayServe()

    @property
    def start_replicas(self) -> int:
        return self.min_replicas if self.initial_replicas is None else self.initial_replicas

    @model_validator(mode="after")
    def _consistent(self) -> Autoscaling:
        found: list[FieldProblem] = []
        if self.min_replicas > self.max_replicas:
            found.append(FieldProblem(
                "min_replicas", self.min_replicas, f"must not exceed max_replicas ({self.max_replicas})"
            ))
        names = [s.name for s in self.signals]
        reserved = [n for n in names if n.endswith(":panic")]
        if reserved:
            found.append(FieldProblem("signals", reserved, "names ending in ':panic' are reserved for panic windows"))
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            found.append(FieldProblem("signals", dupes, "signal names must be unique"))
        if self.policy == "panic" and self.panic is None:
            found.append(FieldProblem("panic", None, "policy 'panic' needs a `panic` section naming its signal"))
        if self.panic is not None and self.panic.signal not in names:
            found.append(FieldProblem(
                "panic.signal",
                self.panic.signal,
                f"must name one of the signals ({', '.join(names) or 'none'})",
            ))
        if self.ray is not None and self.ray.signal is not None and self.ray.signal not in names:
            found.append(FieldProblem(
                "ray.signal", self.ray.signal, f"must name one of the signals ({', '.join(names) or 'none'})"
            ))
        if self.policy == "ray" and not self.signals:
            found.append(FieldProblem("signals", [], "policy 'ray' needs a signal of ongoing requests"))
        if self.initial_replicas is not None and not self.min_replicas <= self.initial_replicas <= self.max_replicas:
            found.append(FieldProblem(
                "initial_replicas",
                self.initial_replicas,
                f"must lie within [min_replicas, max_replicas] = [{self.min_replicas}, {self.max_replicas}]",
            ))
        if self.fallback is not None and not self.min_replicas <= self.fallback.replicas <= self.max_replicas:
            found.append(FieldProblem(
                "fallback.replicas",
                self.fallback.replicas,
                f"must lie within [min_replicas, max_replicas] = [{self.min_replicas}, {self.max_replicas}]",
            ))
        if self.max_replicas > self.min_replicas and not self.signals:
            found.append(FieldProblem(
                "signals", [],
                "scaling between min and max replicas needs at least one signal, e.g. {name: running, kind: gauge, "
                'metric: "vllm:num_requests_running", aggregate: sum, target: 16, target_type: AverageValue} '
                "(policy swell plans from its own load reads, and keeps these as its safety net; docs/recipes.md)",
            ))  # fmt: skip
        if self.metrics.source == "embedded":
            raw = [s.name for s in self.signals if s.kind == "promql"]
            if raw:
                found.append(FieldProblem(
                    "metrics.source",
                    "embedded",
                    f"signal(s) {', '.join(raw)} use a raw PromQL query, which only a Prometheus server "
                    "can evaluate: set metrics.source: prometheus and metrics.prometheus_url",
                ))
        _raise_all(found)
        return self


# ---------------------------------------------------------------------------------------------
# nodes


class Provisioning(Model):
    """Time from asking for a node to a replica on it serving (defaults: a cloud GPU node)."""

    node_boot_s: Seconds = 300.0
    kubelet_s: Seconds = 60.0
    gpu_driver_s: Seconds = 180.0
    image_size_gb: Annotated[float, Field(ge=0)] = 20.0
    pull_gbps: Annotated[float, Field(gt=0)] = 0.45  # effective, incl. extraction: 20 GB ≈ 6 min
    model_load_s: Seconds = 60.0

    @model_validator(mode="after")
    def _pull_within_a_week(self) -> Provisioning:
        if not self.image_pull_s <= WEEK_S:  # as every other step; 1e308 GB would be an infinite pull
            raise FieldProblem(
                "image_size_gb",
                self.image_size_gb,
                f"its pull (image_size_gb x 8 / pull_gbps {self.pull_gbps:g}) must take at most a week "
                f"({WEEK_S:.0f} s), not {self.image_pull_s:.3g} s",
            )
        return self

    @property
    def image_pull_s(self) -> float:
        return self.image_size_gb * 8.0 / self.pull_gbps

    @property
    def node_ready_s(self) -> float:
        return self.node_boot_s + self.kubelet_s + self.gpu_driver_s

    @property
    def cold_replica_s(self) -> float:
        """Worst case: a new node, a first image pull, then the model load."""
        return self.node_ready_s + self.image_pull_s + self.model_load_s

    @property
    def warm_replica_s(self) -> float:
        """A replica on a node that is up and has the image cached."""
        return self.model_load_s


class NodePool(Model):
    shape: str = "local"
    gpus_per_node: Annotated[int, Field(ge=1, le=MAX_GPUS)] | None = None
    min_nodes: Nodes = 0
    max_nodes: Annotated[int, Whole, Field(ge=1, le=MAX_NODES)] = 1
    price_per_gpu_hour: Annotated[float, Field(ge=0, le=MAX_PRICE)] = 0.0
    provisioning: Provisioning = Provisioning()
    unneeded_time_s: Seconds = 600.0
    max_node_provision_time_s: PositiveSeconds = 900.0

    @model_validator(mode="after")
    def _known_shape(self) -> NodePool:
        found: list[FieldProblem] = []
        if self.min_nodes > self.max_nodes:
            found.append(FieldProblem("min_nodes", self.min_nodes, f"must not exceed max_nodes ({self.max_nodes})"))
        if self.gpus_per_node is None and self.shape not in SHAPE_GPUS:
            found.append(FieldProblem(
                "shape",
                self.shape,
                "unknown node shape: give gpus_per_node, or use a known shape "
                f"({', '.join(sorted(SHAPE_GPUS))})",
            ))
        _raise_all(found)
        return self

    @property
    def gpus(self) -> int:
        """GPUs (or device slots) per node."""
        return self.gpus_per_node if self.gpus_per_node is not None else SHAPE_GPUS[self.shape]


# OCI GPU shapes and their GPU counts ("local" is one machine with one slot by default).
SHAPE_GPUS: dict[str, int] = {
    "local": 1,
    "VM.GPU2.1": 1,
    "VM.GPU3.1": 1,
    "VM.GPU3.2": 2,
    "VM.GPU3.4": 4,
    "BM.GPU2.2": 2,
    "BM.GPU3.8": 8,
    "BM.GPU4.8": 8,
    "BM.GPU.A100-v2.8": 8,
    "VM.GPU.A10.1": 1,
    "VM.GPU.A10.2": 2,
    "BM.GPU.A10.4": 4,
    "BM.GPU.L40S.4": 4,
    "BM.GPU.L40S-NC.4": 4,
    "BM.GPU.H100.8": 8,
    "BM.GPU.H200.8": 8,
    "BM.GPU.B200.8": 8,
    "BM.GPU.GB200.4": 4,
    "BM.GPU.MI300X.8": 8,
    "VM.GPU.A100.40G.1": 1,
    "VM.GPU.A100.80G.1": 1,
}


# ---------------------------------------------------------------------------------------------
# schedules, workers, SLO, local placement


class ScheduleWindow(Model):
    """From each `start` to the next `end` (cron, in `timezone`) the floor and/or cap apply."""

    name: str = ""
    start: str
    end: str
    timezone: str = "UTC"
    min_replicas: Replicas | None = None
    max_replicas: Replicas | None = None

    @model_validator(mode="after")
    def _valid(self) -> ScheduleWindow:
        found: list[FieldProblem] = []
        for key in ("start", "end"):
            problem = cron.problem(getattr(self, key))
            if problem:
                found.append(FieldProblem(key, getattr(self, key), problem))
        if not cron.known_timezone(self.timezone):
            found.append(FieldProblem("timezone", self.timezone, "not an IANA timezone (e.g. Asia/Shanghai)"))
        if self.start.split() == self.end.split():
            found.append(FieldProblem("end", self.end, "differs from start: a window that ends as it starts is never open"))
        if self.min_replicas is None and self.max_replicas is None:
            found.append(FieldProblem(
                "min_replicas", None, "a schedule window sets min_replicas, max_replicas or both"
            ))
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            found.append(FieldProblem(
                "min_replicas", self.min_replicas, f"must not exceed max_replicas ({self.max_replicas})"
            ))
        _raise_all(found)
        return self


class Workers(Model):
    """Workers inside each replica (TorchServe-style), scaled on the queue per replica."""

    min_workers: Annotated[int, Field(ge=1, le=1024)] = 1
    max_workers: Annotated[int, Field(ge=1, le=1024)] = 1
    target_queue_per_worker: Annotated[float, Field(gt=0)] = 1.0
    worker_start_s: Seconds = 5.0  # a new worker process starts and loads the model (simulator)
    scale_down_stabilization_s: Seconds = 30.0  # fewer workers only if no larger ask in this window
    # one worker's memory until it is measured (TorchServe's memoryUsage) and in the simulator:
    # workers beyond what resources.memory_gib holds are not started (None: no bound before a measurement)
    memory_per_worker_mib: Annotated[float, Field(gt=0, le=65536 * 1024)] | None = None

    @model_validator(mode="after")
    def _order(self) -> Workers:
        if self.min_workers > self.max_workers:
            raise FieldProblem(
                "min_workers", self.min_workers, f"must not exceed max_workers ({self.max_workers})"
            )
        return self


class SLO(Model):
    """The service-level objective, and what the gateway does with a request that can no longer
    meet it: `deadline_s` sheds a request with no first token that long after it arrived (503 with
    Retry-After, its work on the replica cancelled) instead of keeping it queued up to the client's
    own timeout, so a burst the replicas cannot absorb costs the requests over capacity, not every
    request behind them. None: never shed."""

    ttft_s: PositiveSeconds | None = None
    e2e_s: PositiveSeconds | None = None
    percentile: Annotated[float, Field(gt=0, le=100)] = 95.0
    deadline_s: PositiveSeconds | None = None

    @model_validator(mode="after")
    def _percent_and_deadline(self) -> SLO:
        found: list[FieldProblem] = []
        if self.percentile < 1:  # a share written as a fraction: 0.99 would hold 1 request in 101
            found.append(FieldProblem("percentile", self.percentile,
                               f"a percent of requests in [1, 100]: write {self.percentile * 100:g} for {self.percentile:g}"))  # fmt: skip
        if self.deadline_s is not None and self.ttft_s is not None and self.deadline_s < self.ttft_s:
            found.append(FieldProblem(
                "deadline_s", self.deadline_s,
                f"must be at least ttft_s ({self.ttft_s:g}): it would shed requests that can still meet the SLO",
            ))  # fmt: skip
        _raise_all(found)
        return self


class Local(Model):
    """One machine: where the gateway listens and which device slots replicas get."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    gpu_ids: tuple[int, ...] = ()  # CUDA_VISIBLE_DEVICES slots; empty: CPU slots
    cpu_slots: Annotated[int, Field(ge=1, le=1024)] = 4
    drain_timeout_s: Seconds = 30.0
    grace_period_s: Seconds = 10.0
    buffer_requests: Annotated[int, Field(ge=0, le=1_000_000)] = 256
    buffer_timeout_s: PositiveSeconds = 60.0
    # at most this many requests in flight at one replica, the rest wait in the gateway's buffer
    # (Knative's containerConcurrency, Ray Serve's max_ongoing_requests); 0: no limit
    max_ongoing_requests: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    max_request_mb: Annotated[float, Field(gt=0, le=1024)] = 4.0  # a larger request body gets a 413
    max_connections: Annotated[int, Field(ge=1, le=1_000_000)] = 1000  # more client connections: 503
    header_timeout_s: PositiveSeconds = 10.0  # request headers not complete by then: 408, closed
    read_timeout_s: PositiveSeconds = 300.0  # a replica silent this long: 504, or the stream cut


# ---------------------------------------------------------------------------------------------
# the recipe


class Recipe(Model):
    api_version: Literal["swell.dev/v1"] = Field(default="swell.dev/v1", alias="apiVersion")  # the one there is
    kind: Literal["Recipe"] = "Recipe"
    service: Service
    resources: Resources = Resources()
    autoscaling: Autoscaling = Autoscaling()
    node_pool: NodePool = NodePool()
    schedules: tuple[ScheduleWindow, ...] = ()
    workers: Workers | None = None
    slo: SLO = SLO()
    local: Local = Local()

    @model_validator(mode="after")
    def _fits_a_node(self) -> Recipe:
        found: list[FieldProblem] = []
        if self.resources.gpus > self.node_pool.gpus:
            found.append(FieldProblem("resources.gpus", self.resources.gpus,
                                      _too_big(self.node_pool.shape, self.node_pool.gpus)))  # fmt: skip
        w = self.workers
        if w is not None and w.memory_per_worker_mib is not None:
            need = w.min_workers * w.memory_per_worker_mib
            if need > self.resources.memory_gib * 1024:
                found.append(FieldProblem(
                    "workers.memory_per_worker_mib",
                    w.memory_per_worker_mib,
                    f"min_workers ({w.min_workers}) at this much must fit in resources.memory_gib "
                    f"({self.resources.memory_gib:g} GiB = {self.resources.memory_gib * 1024:g} MiB)",
                ))
        _raise_all(found)
        return self

    @property
    def drain_s(self) -> float:
        """How long a replica scaled down (or stopped) may take to finish what it has in flight: the
        longer of `local.drain_timeout_s` and the e2e SLO, so a request the SLO lets run that long is
        not cut (a reasoning model's answers run for minutes). The same in every world: `swell up`
        waits this long, the simulator kills what still runs after it, and the rendered Deployment's
        termination grace and vLLM's --shutdown-timeout hold it."""
        return max(self.local.drain_timeout_s, self.slo.e2e_s or 0.0)

    @property
    def startup_timeout_s(self) -> float:
        """How long a replica may take to pass readiness before it is restarted."""
        given = self.service.probes.startup_timeout_s
        return given if given is not None else max(300.0, 3.0 * self.node_pool.provisioning.model_load_s)

    def signal(self, name: str) -> Signal:
        for s in self.autoscaling.signals:
            if s.name == name:
                return s
        raise KeyError(name)


def _too_big(shape: str, node_gpus: float) -> str:
    return f"exceeds the GPUs of one node of shape {shape!r} ({node_gpus:g}): the replica can never be scheduled"


def as_one_machine(rec: Recipe) -> Recipe:
    """The recipe with a `local` node pool that gives no size sized as `swell up` runs it: one node,
    this machine, with `local.cpu_slots` slots for CPU replicas or its `local.gpu_ids` for GPU ones
    (without this the simulator and `swell plan` saw one slot, where the local cluster runs four)."""
    pool = rec.node_pool
    if pool.shape != "local" or pool.gpus_per_node is not None:
        return rec
    slots = rec.local.cpu_slots if rec.resources.gpus == 0 else max(1, len(rec.local.gpu_ids))
    if slots == pool.gpus:
        return rec
    return rec.model_copy(update={"node_pool": pool.model_copy(update={"gpus_per_node": slots})})


# ---------------------------------------------------------------------------------------------
# loading, with every problem reported at once


def problems(exc: ValidationError, prefix: str = "") -> list[errors.Problem]:
    """A pydantic error as swell's problems: each field's path, value and rule (a model validator's
    FieldProblem named by its field, every one of its FieldProblems)."""
    out = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        value = e.get("input")
        cause = (e.get("ctx") or {}).get("error")
        if not isinstance(cause, FieldProblem | FieldProblems):
            out.append(errors.Problem(path=prefix + loc, value=value, rule=msg))
            continue
        for c in cause.found if isinstance(cause, FieldProblems) else [cause]:
            where = ".".join(x for x in (loc, c.field) if x)
            out.append(errors.Problem(path=prefix + where, value=c.value, rule=c.rule))
    return out


def _number(value: Any) -> float | None:
    """A raw value as pydantic would read a number (numbers and numeric text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            return None
        return out if math.isfinite(out) else None
    return None


def _section(data: Any, *keys: str | int) -> dict[str, Any] | None:
    for k in keys:
        if isinstance(k, int):
            data = data[k] if isinstance(data, list | tuple) and 0 <= k < len(data) else None
        else:
            data = data.get(k) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else None


# (where, model, low key, high key): low must not exceed high; a rule that only runs on a valid
# section, so it is checked again here on the raw input when something else failed.
ORDERED: tuple[tuple[tuple[str | int, ...], type[Model], str, str], ...] = (
    (("autoscaling",), Autoscaling, "min_replicas", "max_replicas"),
    (("node_pool",), NodePool, "min_nodes", "max_nodes"),
    (("workers",), Workers, "min_workers", "max_workers"),
)


def _cross_field(data: dict[str, Any], reported: set[str]) -> list[errors.Problem]:
    """The cross-field rules of the model validators, on raw input whose validation failed
    elsewhere (pydantic skips a model's validator once one of its fields is invalid)."""
    out: list[errors.Problem] = []
    places = [(where, model, lo, hi) for where, model, lo, hi in ORDERED]
    schedules = data.get("schedules")
    if isinstance(schedules, list):
        places += [
            (("schedules", i), ScheduleWindow, "min_replicas", "max_replicas") for i in range(len(schedules))
        ]
    for where, model, lo_key, hi_key in places:
        section = _section(data, *where)
        if section is None and where[0] != "autoscaling":
            continue
        section = section or {}
        prefix = ".".join(str(k) for k in where)
        if f"{prefix}.{lo_key}" in reported or f"{prefix}.{hi_key}" in reported:
            continue
        defaults = model.model_fields
        lo = _number(section.get(lo_key, defaults[lo_key].default))
        hi = _number(section.get(hi_key, defaults[hi_key].default))
        if lo is not None and hi is not None and lo > hi:
            out.append(
                errors.Problem(
                    path=f"{prefix}.{lo_key}",
                    value=section.get(lo_key),
                    rule=f"must not exceed {hi_key} ({hi:g})",
                )
            )
    raw_gpus = (_section(data, "resources") or {}).get("gpus", 0)
    gpus = _number(raw_gpus)
    pool = _section(data, "node_pool") or {}
    shape = pool.get("shape", NodePool.model_fields["shape"].default)
    per_node = _number(pool["gpus_per_node"]) if "gpus_per_node" in pool else SHAPE_GPUS.get(str(shape))
    if gpus is not None and per_node is not None and gpus > per_node and "resources.gpus" not in reported:
        out.append(errors.Problem(path="resources.gpus", value=raw_gpus, rule=_too_big(str(shape), per_node)))
    panic = _section(data, "autoscaling", "panic")
    if panic is not None and "autoscaling.panic.panic_window_s" not in reported:
        fields = Panic.model_fields
        short = _number(panic.get("panic_window_s", fields["panic_window_s"].default))
        stable = _number(panic.get("stable_window_s", fields["stable_window_s"].default))
        if short is not None and stable is not None and short >= stable:
            out.append(
                errors.Problem(
                    path="autoscaling.panic.panic_window_s",
                    value=panic.get("panic_window_s"),
                    rule=f"must be shorter than stable_window_s ({stable:g})",
                )
            )
    return out


def changes(old: Any, new: Any, at: str = "") -> list[tuple[str, Any, Any]]:
    """Where two recipes (or payloads, as plain data) differ: (path, old value, new value) each. A key
    only one has counts as a change; lists of one length are compared item by item (`signals[0].target`)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            here = f"{at}.{key}" if at else str(key)
            out += changes(old.get(key), new.get(key), here)
        return out
    if isinstance(old, list | tuple) and isinstance(new, list | tuple) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new, strict=True)) for c in changes(a, b, f"{at}[{i}]")]
    return [] if old == new else [(at or "(recipe)", old, new)]


def said(diffs: list[tuple[str, Any, Any]]) -> list[str]:
    """`changes` as people read them: 'path: old -> new'."""
    return [f"{path}: {a!r} -> {b!r}" for path, a, b in diffs]


def differences(old: Any, new: Any) -> list[str]:
    return said(changes(old, new))


def parse(data: Any, source: str = "<recipe>") -> Recipe:
    """Build a Recipe from a mapping (swell's own form or a Corrino payload)."""
    if data is None:  # an empty file, or one of comments only, or a JSON null
        raise errors.RecipeError(source, [errors.Problem(path="", value="nothing: an empty file or null", rule="a recipe needs at "
                                                          "least `service: {name: ...}` (see examples/)")])  # fmt: skip
    if not isinstance(data, dict):
        kind = {"list": "a list", "str": "a string", "int": "a number", "float": "a number", "bool": "true/false"}
        raise errors.RecipeError(source, [errors.Problem(path="", value=kind.get(type(data).__name__, type(data).__name__),
                                                         rule="a recipe is a mapping of keys to values")])  # fmt: skip
    corrino = recipe_corrino.translate(data) if recipe_corrino.is_corrino(data) else None
    if corrino is not None:
        data = corrino.data
    rec: Recipe | None = None
    found: list[errors.Problem] = []
    try:
        rec = Recipe.model_validate(data)
    except ValidationError as exc:
        found = problems(exc)
        found += _cross_field(data, {p.path for p in found})
    except RecursionError:
        found = [errors.Problem(path="", value="...", rule=f"nested deeper than {MAX_DEPTH} levels")]
    if corrino is not None:  # name the keys the user wrote; a key's own problem comes first
        own = list(corrino.problems)
        taken = {p.path for p in own}
        for p in found:
            path = corrino.user_path(p.path)
            if path not in taken:
                own.append(errors.Problem(path=path, value=p.value, rule=p.rule))
        found = own
    if found or rec is None:
        raise errors.RecipeError(source, found)
    return rec


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key written twice in one mapping is an error (PyYAML keeps the
    last, so a second `service:` would silently replace the first; YAML 1.2 and kubectl refuse it)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` merges, and may override, on purpose
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: construct_mapping says so
            continue
        if first is not None:
            where = f"line {line}" if first == line else f"lines {first} and {line}"
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in one mapping ({where})", key_node.start_mark
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


class DuplicateKey(ValueError):
    """A JSON object with a key given twice."""


def json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object_pairs_hook that refuses a key given twice (the last would win silently)."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKey(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


def _yaml_problem(text: str) -> str | None:
    """Why a YAML text must not be built (too deep, or expanding to too many nodes through
    aliases: a "billion laughs"), else None. Reads the event stream only: no recursion, no copies.
    Flow brackets are counted first: PyYAML's scanner looks ahead quadratically into deep `[[[`."""
    depth = count = 0
    for bracket in re.finditer(r"[][{}]", text):
        if bracket.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
        elif depth:
            depth -= 1
    depth = 0
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, height) of what it names
    stack: list[list[Any]] = []  # [anchor, count at start, height of the deepest child]
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            count += 1
            depth += 1
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            stack.append([event.anchor, count, 0])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start, height = stack.pop()
            depth -= 1
            if anchor:
                anchors[anchor] = (count - start + 1, height + 1)
            if stack:
                stack[-1][2] = max(stack[-1][2], height + 1)
        elif isinstance(event, yaml.ScalarEvent):
            count += 1
            if event.anchor:
                anchors[event.anchor] = (1, 0)
        elif isinstance(event, yaml.AliasEvent):
            nodes, height = anchors.get(event.anchor or "", (1, 0))
            count += nodes
            if depth + height > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels (through the alias *{event.anchor})"
            if stack:
                stack[-1][2] = max(stack[-1][2], height)
        if count > MAX_NODES_IN_FILE:
            return f"expands to more than {MAX_NODES_IN_FILE:,} values (aliases repeated inside aliases?)"
    return None


def _depth(data: Any) -> int:
    """How deeply lists and mappings nest in `data` (iterative: deep input cannot overflow it)."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                todo += [(v, level + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest


def load_text(text: str, source: str) -> Recipe:
    def bad(rule: str) -> errors.RecipeError:
        return errors.RecipeError(source, [errors.Problem(path="", value=source, rule=rule)])

    if len(text) > MAX_TEXT:
        raise bad(f"longer than {MAX_TEXT:,} characters: not a recipe")
    try:
        if source.endswith(".json"):
            data = json.loads(text, object_pairs_hook=json_object)
            if _depth(data) > MAX_DEPTH:
                raise bad(f"nested deeper than {MAX_DEPTH} levels")
        else:
            why = _yaml_problem(text)
            if why:
                raise bad(why)
            data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no object tags
    except RecursionError:
        raise bad(f"nested deeper than {MAX_DEPTH} levels") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise bad(f"not valid YAML/JSON: {exc}") from None
    except ValueError as exc:  # a key twice in a JSON object; an integer past Python's 4,300 digits
        raise bad(f"not valid YAML/JSON: {exc}".split(";")[0]) from None
    return parse(data, source)


def read_text(path: str | Path, limit: int = MAX_TEXT) -> str:
    """A text file's content, or a RecipeError naming the file and why it cannot be read; at most
    `limit` characters are read (a device such as /dev/zero never ends)."""
    try:
        return files.read_text(path, limit)
    except files.Unreadable as exc:
        raise errors.RecipeError(str(path), [errors.Problem(path="", value=str(path), rule=str(exc))]) from None


def load(path: str | Path) -> Recipe:
    return load_text(read_text(path), str(path))


def reachable_max(autoscaling: Autoscaling, signal: Signal, value_bound: float | None) -> float:
    """The most replicas this signal can ask for when its value is at most `value_bound`.

    With AverageValue the HPA computes ceil(value / target) regardless of the replica count, so
    a bounded signal (a 0-1 fraction) can never ask for more than ceil(bound / target).
    """
    if signal.target_type == "AverageValue" and value_bound is not None:
        return float(math.ceil(value_bound / signal.target))
    return float(autoscaling.max_replicas)
