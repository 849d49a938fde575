"""Ray Serve's default autoscaling policy (`ray`): the need from ongoing requests, the scaling
factors, the bounds, the delays, the cold start, and swell's safety net around them.

Inputs apart from expectations; case ids read as specifications. A row's `before` ticks run first,
on the same recipe, each carrying its state to the next; only the row's own tick is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import pytest

from swell import errors, recipe
from swell.core import decision, snapshot
from swell.core.policies import presets, ray, steps
from tests.conftest import make_recipe
from tests.core.ticks import Read, Tick, observe


def ray_recipe(**settings: Any) -> recipe.Recipe:
    """2 ongoing requests a replica (Ray's default), 0 to 20 replicas; `settings` go to autoscaling.ray
    (`min`, `max` to the bounds)."""
    ongoing = {"name": "ongoing", "kind": "rate", "metric": "c", "target": 2, "target_type": "AverageValue"}
    lo, hi = settings.pop("min", 0), settings.pop("max", 20)
    return make_recipe(policy="ray", min_replicas=lo, max_replicas=hi, signals=[ongoing], ray=settings or None)


@dataclass(frozen=True)
class Case:
    id: str
    _: KW_ONLY
    now: float
    current: int
    ongoing: Read
    want: int
    bound: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    ready: int | None = None
    before: tuple[Tick, ...] = ()


def at(t: float, current: int, ongoing: Read, ready: int | None = None) -> Tick:
    return Tick(t, current, {"ongoing": ongoing}, ready=ready)


NO_DELAY = {"upscale_delay_s": 0, "downscale_delay_s": 0}

CASES = [
    Case("the need is the ongoing requests over the target per replica", now=0, current=4, ongoing=20,
         want=10, bound="metrics", settings=NO_DELAY),
    Case("a fractional need rounds up", now=0, current=4, ongoing=9, want=5, bound="metrics", settings=NO_DELAY),
    Case("at the need: no change and no wait", now=0, current=5, ongoing=10, want=5, bound="metrics"),
    # upscale_delay_s: 30 s of asking, without a break
    Case("a scale-up waits for the upscale delay", now=0, current=4, ongoing=20, want=4, bound="stabilization"),
    Case("a scale-up asked for the whole upscale delay applies", now=30, current=4, ongoing=20, want=10,
         bound="metrics", before=(at(0, 4, 20), at(15, 4, 16))),
    Case("the need may change within the wait: the last one applies", now=30, current=4, ongoing=12, want=6,
         bound="metrics", before=(at(0, 4, 40), at(15, 4, 20))),
    Case("a tick at the need breaks the wait: it starts again", now=30, current=4, ongoing=20, want=4,
         bound="stabilization", before=(at(0, 4, 20), at(15, 4, 8))),
    Case("a tick asking down breaks a scale-up's wait", now=30, current=4, ongoing=20, want=4,
         bound="stabilization", before=(at(0, 4, 20), at(15, 4, 2))),
    Case("after a move the next one waits a whole delay again", now=40, current=10, ongoing=40, want=10,
         bound="stabilization", before=(at(0, 4, 20), at(30, 4, 20))),
    # downscale_delay_s: 600 s
    Case("a scale-down waits for the downscale delay", now=300, current=10, ongoing=4, want=10,
         bound="stabilization", before=(at(0, 10, 4),)),
    Case("a scale-down asked for 600 s applies", now=600, current=10, ongoing=4, want=2, bound="metrics",
         before=(at(0, 10, 4), at(300, 10, 6))),
    Case("a scale-down stops at one: to zero is a step of its own", now=600, current=10, ongoing=0, want=1,
         bound="metrics", before=(at(0, 10, 0),)),
    Case("one to zero after the downscale delay", now=600, current=1, ongoing=0, want=0, bound="metrics",
         before=(at(0, 1, 0),)),
    Case("one to zero after its own delay when set", now=60, current=1, ongoing=0, want=0, bound="metrics",
         settings={"downscale_to_zero_delay_s": 60}, before=(at(0, 1, 0),)),
    Case("its own delay is for one to zero only", now=60, current=3, ongoing=0, want=3, bound="stabilization",
         settings={"downscale_to_zero_delay_s": 60}, before=(at(0, 3, 0),)),
    # the scaling factors move a share of the way from the running replicas
    Case("an upscaling factor of 0.5 goes half way up", now=0, current=4, ongoing=40, want=12, bound="metrics",
         settings=NO_DELAY | {"upscaling_factor": 0.5}),
    Case("a downscaling factor of 0.5 goes half way down", now=0, current=10, ongoing=4, want=6, bound="metrics",
         settings=NO_DELAY | {"downscaling_factor": 0.5}),
    Case("a downscaling factor too small to move still takes one replica", now=0, current=10, ongoing=18, want=9,
         bound="metrics", settings=NO_DELAY | {"downscaling_factor": 0.1}),
    Case("the factor counts from the running replicas, not those asked for", now=0, current=8, ongoing=40,
         ready=4, want=12, bound="metrics", settings=NO_DELAY | {"upscaling_factor": 0.5}),
    # bounds
    Case("the cap bounds the need", now=0, current=4, ongoing=100, want=8, bound="max",
         settings=NO_DELAY | {"max": 8}),
    Case("the floor bounds the need", now=0, current=4, ongoing=0, want=3, bound="min",
         settings=NO_DELAY | {"min": 3}),
    # cold start: no replica running
    Case("a request at zero starts one at once, without the delay", now=0, current=0, ongoing=0.5, want=1,
         bound="activation"),
    Case("an upscaling factor of 3 starts three at zero", now=0, current=0, ongoing=0.5, want=3,
         bound="activation", settings={"upscaling_factor": 3}),
    Case("nothing ongoing at zero: stay at zero", now=0, current=0, ongoing=0, want=0, bound="metrics"),
    Case("replicas asked for but none running yet: wait for them", now=0, current=3, ongoing=30, ready=0,
         want=3, bound="metrics"),
    # swell's safety net
    Case("a signal without value holds", now=0, current=4, ongoing=None, want=4, bound="no_data",
         settings=NO_DELAY),
    Case("a partial reading never scales down", now=0, current=10, ready=10, want=10, bound="metrics",
         ongoing=snapshot.Reading(value=2.0, partial=True, error="1 of 10 replicas unreadable"),
         settings=NO_DELAY),
    Case("a partial reading may scale up", now=0, current=4, want=10, bound="metrics",
         ongoing=snapshot.Reading(value=20.0, partial=True, error="1 of 4 replicas unreadable"), settings=NO_DELAY),
]  # fmt: skip


def _run(case: Case) -> decision.Decision:
    rec = ray_recipe(**dict(case.settings))
    state = steps.State()
    for tick in case.before:
        _, state = ray.decide(rec, observe(tick), state)
    d, _ = ray.decide(rec, observe(at(case.now, case.current, case.ongoing, case.ready)), state)
    return d


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ray_serve_policy(case: Case) -> None:
    d = _run(case)
    assert (d.desired, d.bound_by) == (case.want, case.bound), d.reason


def test_the_wait_survives_a_restart_of_the_controller() -> None:
    """The state goes through JSON (the API's store, a controller's status) without losing the wait."""
    rec = ray_recipe()
    _, state = ray.decide(rec, observe(at(0, 4, 20)), steps.State())
    assert state.trend == (1, 0.0)
    state = steps.State.from_json(state.to_json())
    d, _ = ray.decide(rec, observe(at(30, 4, 20)), state)
    assert (d.desired, d.bound_by) == (10, "metrics")


def test_the_reason_says_how_long_the_delay_still_holds() -> None:
    rec = ray_recipe()
    _, state = ray.decide(rec, observe(at(0, 10, 4)), steps.State())
    d, _ = ray.decide(rec, observe(at(100, 10, 4)), state)
    assert d.reason == "asks for 2; held at 10 for 500 s more (Ray's delay)"
    assert d.proposals[0].note == "4 ongoing / 2 per replica = 2.00"


@pytest.mark.parametrize(
    ("ray_section", "signals", "says"),
    [
        ({"signal": "nope"}, None, "autoscaling.ray.signal"),
        ({"upscaling_factor": 0}, None, "autoscaling.ray.upscaling_factor"),
        ({"downscale_delay_s": -1}, None, "autoscaling.ray.downscale_delay_s"),
        (None, [], "policy 'ray' needs a signal of ongoing requests"),
    ],
    ids=["an unknown signal", "a factor of zero", "a negative delay", "no signal at all"],
)
def test_a_bad_ray_section_is_named(ray_section: dict[str, Any] | None, signals: list[Any] | None, says: str) -> None:
    auto: dict[str, Any] = {"policy": "ray", "min_replicas": 1, "max_replicas": 1 if signals == [] else 4}
    if ray_section is not None:
        auto["ray"] = ray_section
    if signals is not None:
        auto["signals"] = signals
    with pytest.raises(errors.RecipeError) as exc:
        make_recipe(**auto)
    assert says in str(exc.value)


def test_the_preset_is_ray_serves_defaults_on_the_gateways_ongoing_requests() -> None:
    rec = presets.apply("ray-serve", make_recipe())
    auto = rec.autoscaling
    (sig,) = auto.signals
    assert (auto.policy, sig.metric, sig.kind, sig.window_s, sig.target) == (
        "ray", "swell_gateway_concurrency_seconds_total", "rate", 30.0, 2.0
    )
    cfg = auto.ray_settings
    assert (cfg.upscale_delay_s, cfg.downscale_delay_s, cfg.upscaling_factor, cfg.downscaling_factor) == (30, 600, 1, 1)
    assert presets.apply("ray-serve:target=16", make_recipe()).autoscaling.signals[0].target == 16
