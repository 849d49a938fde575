"""The API's request and response bodies (pydantic: the edge), from which /openapi.json is built.

Requests are checked here (unknown keys, bounds); recipes themselves stay free-form mappings
validated by swell.recipe so that every problem is named in the user's own keys.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from swell import recipe


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProblemOut(Out):
    path: str = Field(description="where, as a dotted path in the keys the user wrote")
    value: Any = Field(default=None, description="what was given")
    rule: str = Field(description="what it must be")


class ErrorOut(Out):
    error: str = Field(description="what is wrong, in a sentence")
    problems: list[ProblemOut] = Field(default_factory=list, description="every problem found")


class Created(Out):
    name: str
    url: str = Field(description="the deployment's gateway: send requests here")
    api: str = Field(description="this deployment in the API")
    notes: list[str] = Field(default_factory=list, description="what swell changed to run it here")


class Replicas(Out):
    target: int
    ready: int
    starting: int
    pending: int
    terminating: int = 0


class ReplicaOut(Out):
    name: str
    state: str
    reason: str
    slot: str
    url: str | None
    restarts: int
    last_error: str = ""


class SignalOut(Out):
    name: str
    value: float | None
    target: float | None
    wants: int | None = Field(default=None, description="replicas this signal alone proposes")
    error: str = ""


class Condition(Out):
    type: Literal["AbleToScale", "ScalingActive", "ScalingLimited", "MetricsAvailable", "Ready"]
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str


class DecisionOut(Out):
    t: float
    current: int
    desired: int
    bound_by: str
    reason: str
    policy: str
    proposals: dict[str, int | None] = Field(default_factory=dict)
    values: dict[str, float | None] = Field(default_factory=dict)


class Rollout(Out):
    """The last recipe put onto the deployment (PUT)."""

    state: Literal["applied", "rolling", "rolled", "rolled back"] = Field(
        description="applied: no replica needed replacing; rolling: replicas being replaced one at a time; "
        "rolled: every replica runs it; rolled back: a new replica could not start, the previous recipe runs"
    )
    changed: list[str] = Field(description="what changed, path by path: 'path: old -> new'")
    old_replicas: int = Field(default=0, description="replicas still on the previous recipe")
    error: str | None = Field(default=None, description="why the roll went back")


class Summary(Out):
    name: str
    engine: str
    url: str
    state: Literal["running", "failed"]
    failure: str | None = None
    replicas: Replicas
    min_replicas: int
    max_replicas: int
    policy: str
    created_at: float
    rollout: Rollout | None = None


class NodeOut(Out):
    name: str = Field(description="this machine")
    slots: int = Field(description="device slots replicas can run in (GPU groups or CPU slots)")
    used: int = Field(description="slots taken by replicas")


class Detail(Summary):
    replica_list: list[ReplicaOut]
    node: NodeOut
    signals: list[SignalOut]
    conditions: list[Condition]
    decisions: list[DecisionOut] = Field(description="the last decisions, oldest first")
    slo: dict[str, float | None]


class DeploymentList(Out):
    deployments: list[Summary]


class DecisionList(Out):
    decisions: list[DecisionOut]


class Sample(Out):
    t: float
    offered_rps: float | None = Field(
        default=None, description="requests arriving at the gateway per second (offered load)"
    )
    rps: float | None = Field(description="requests answered per second by the gateway")
    in_gateway: int = Field(description="requests in flight plus buffered")
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    e2e_p50: float | None = None
    e2e_p95: float | None = None
    target: int
    ready: int
    starting: int
    pending: int
    signals: dict[str, float | None] = Field(default_factory=dict)
    targets: dict[str, float] = Field(default_factory=dict)


class Timeseries(Out):
    name: str
    slo: dict[str, float | None]
    samples: list[Sample]


class In(BaseModel):
    """A request body: unknown keys, NaN and infinity refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic's lax mode reads true/false as 1/0
        raise ValueError("a number, not true/false")
    return value


Count = Annotated[int, recipe.Whole]  # true/false refused, as in a recipe
Number = Annotated[float, BeforeValidator(_no_bool)]


class Behavior(In):
    scale_up_stabilization_s: Count | None = Field(default=None, ge=0, le=3600)
    scale_down_stabilization_s: Count | None = Field(default=None, ge=0, le=3600)


class Patch(In):
    """Live changes: the next decision uses them."""

    min_replicas: Count | None = Field(default=None, ge=0, le=1000)
    max_replicas: Count | None = Field(default=None, ge=1, le=1000)
    targets: dict[str, Number] | None = Field(default=None, description="signal name -> new target")
    windows: Behavior | None = None


class Deleted(Out):
    name: str
    stopped: bool


class Health(Out):
    status: Literal["ok"]
    deployments: int
    failed: int = 0  # deployments whose replicas could not start (GET /deployments/{name} says why)
