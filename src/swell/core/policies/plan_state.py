"""What the planner remembers between decisions: its load history, learned lead times and the
online correction of the capacity model. A value that serialises to JSON (Kubernetes keeps it in
the ScalingRecipe's status with the rest of the policy state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swell.core import capacity, forecast, leadtime


@dataclass(frozen=True, kw_only=True)
class PlanState:
    lead: leadtime.LeadTimes
    history: forecast.History = field(default_factory=forecast.History)
    factor: float = 1.0  # online correction of the modelled per-replica capacity
    recent_plans: tuple[tuple[float, int], ...] = ()  # (t, replicas planned): those that bound a scale-down
    last_queue: tuple[float, float] | None = None  # (t, requests queued) at the last decision
    spare_asks: tuple[tuple[float, int], ...] = ()  # (t, spare nodes the plan asked), recent ones
    unsettled_until: float | None = None  # the capacity model is not lowered before this time
    last_ready: int | None = None  # ready replicas at the last decision
    mix: capacity.Mix | None = None  # the request mix last read while the replicas were not saturated
    saturated_since: float | None = None  # when the replicas' standing queue began (None: not saturated)
    silence: tuple[float, int] | None = None  # (since, replicas held): the load stopped at once (None: it did not)

    def to_json(self) -> dict[str, Any]:
        return {
            "lead": self.lead.to_json(),
            "history": self.history.to_json(),
            "factor": self.factor,
            "recent_plans": [list(p) for p in self.recent_plans],
            "last_queue": None if self.last_queue is None else list(self.last_queue),
            "spare_asks": [list(a) for a in self.spare_asks],
            "unsettled_until": self.unsettled_until,
            "last_ready": self.last_ready,
            "mix": None if self.mix is None else [self.mix.input_tokens, self.mix.output_tokens],
            "saturated_since": self.saturated_since,
            "silence": None if self.silence is None else list(self.silence),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> PlanState:
        return PlanState(
            lead=leadtime.LeadTimes.from_json(data["lead"]),
            history=forecast.History.from_json(data.get("history") or {}),
            factor=float(data.get("factor", 1.0)),
            recent_plans=tuple((float(t), int(n)) for t, n in data.get("recent_plans") or ()),
            last_queue=None
            if data.get("last_queue") is None
            else (float(data["last_queue"][0]), float(data["last_queue"][1])),
            spare_asks=tuple((float(t), int(n)) for t, n in data.get("spare_asks") or ()),
            unsettled_until=data.get("unsettled_until"),
            last_ready=data.get("last_ready"),
            mix=None
            if data.get("mix") is None
            else capacity.Mix(input_tokens=float(data["mix"][0]), output_tokens=float(data["mix"][1])),
            saturated_since=data.get("saturated_since"),
            silence=None if not data.get("silence") else (float(data["silence"][0]), int(data["silence"][1])),
        )
