"""The options of a load run, the same for `swell bench` and the Python API, and their checks.

Exactly one way to make load: `concurrency` (closed loop), `rate` (+`burstiness`; inf sends every
request at once, as `vllm bench serve --request-rate inf`), `pattern` (the workload grammar of
swell.workload.spec), `trace` (a file or a named trace, with `speedup`), or a ready-made `workload`
object. Every run is bounded by `duration_s` and/or `requests`; `warmup` requests go first, unmeasured.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from swell import errors
from swell.loadgen import dataset, protocols, summary
from swell.workload import arrivals, patterns, rates, shapes, spec

DEFAULT_DURATION_S = 60.0
Load = patterns.ClosedLoop | arrivals.Workload


MAX_WARMUP = 100_000  # warmup requests: more is a benchmark of its own, and their results are held in memory


@dataclass(frozen=True, kw_only=True)
class Options:
    """Everything one run needs. Defaults match `swell bench`'s."""

    url: str
    protocol: str = "openai-chat"
    model: str | None = None  # None: ask the server (/v1/models), else "default"
    stream: bool = True
    concurrency: int | None = None
    rate: float | None = None
    burstiness: float = 1.0
    pattern: str | None = None
    trace: str | None = None
    speedup: float = 1.0
    workload: Load | None = None
    duration_s: float | None = None
    requests: int | None = None
    shape: shapes.Shape | None = None  # None: the pattern's own (a trace's lengths, else 550±150 / 150±80)
    seed: int = 0
    timeout_s: float = 300.0
    max_in_flight: int | None = None
    slo: summary.Slo | None = None
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    ignore_eos: bool = False
    warmup: int = 0  # requests sent and awaited before the run, in no statistic
    prompts: str | None = None  # a prompts file (swell.loadgen.dataset); None: synthetic prompts
    shuffle_prompts: bool = False  # the file's entries in an order drawn from `seed`


@dataclass(frozen=True, kw_only=True)
class AllAtOnce:
    """Every request at t = 0 (`rate` inf): the run's request count bounds it."""

    shape: shapes.Shape = field(default_factory=shapes.Shape)
    batch: int = 1024

    @property
    def description(self) -> str:
        return f"all at once (rate inf); {self.shape.description}"

    @property
    def natural_duration_s(self) -> float | None:
        return None

    def batches(self, rng: np.random.Generator, horizon_s: float) -> Iterator[arrivals.Arrivals]:
        while horizon_s > 0:  # endless: the sender stops at its count
            yield shapes.attach(np.zeros(self.batch), self.shape, rng)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What the options resolve to: the load, how long, how many."""

    load: Load
    horizon_s: float  # stop sending after this many seconds (inf: only the count bounds it)
    max_requests: int | None
    prompts: dataset.Prompts | None = None  # None: synthetic prompts of the load's lengths

    @property
    def description(self) -> str:
        if self.prompts is None:
            return self.load.description
        return f"{self.load.description}; {self.prompts.description}"


def _trace_spec(trace: str, speedup: float) -> str:
    kind = trace.partition(":")[0].lower()
    if kind in ("azure-conv", "azure-code", "long-conv", "servegen", "trace"):
        text = trace
    else:
        text = f"trace:{pathlib.Path(trace)}"
    if speedup == 1:
        return text
    return f"{text}{',' if ':' in text else ':'}speedup={speedup:g}"


def plan(options: Options) -> Plan:
    """Check `options` and resolve them; every problem is reported at once (errors.RecipeError)."""
    problems: list[errors.Problem] = []
    chosen = [
        name
        for name in ("concurrency", "rate", "pattern", "trace", "workload")
        if getattr(options, name) is not None
    ]
    if len(chosen) > 1:
        problems.append(
            errors.Problem(
                path="load", value=chosen, rule="choose one of --concurrency, --rate, --pattern, --trace"
            )
        )
    positive = "must be > 0"
    for name, value, minimum, rule in (
        ("concurrency", options.concurrency, 1, "must be >= 1"),
        ("rate", options.rate, 0, "must be > 0 requests per second, or inf (all at once)"),
        ("duration", options.duration_s, 0, "must be > 0 seconds"),
        ("requests", options.requests, 1, "must be >= 1"),
        ("max-in-flight", options.max_in_flight, 1, "must be >= 1"),
        ("timeout", options.timeout_s, 0, "must be > 0 seconds"),
        ("speedup", options.speedup, 0, positive),
        ("burstiness", options.burstiness, patterns.MIN_BURSTINESS,
         f"must be >= {patterns.MIN_BURSTINESS:g} (1 = Poisson, smaller is burstier) or inf"),
    ):  # fmt: skip
        if value is None:
            continue
        ok = value >= minimum if minimum else value > 0
        if not ok or math.isnan(value) or (name not in ("burstiness", "rate") and math.isinf(value)):
            problems.append(errors.Problem(path=name, value=value, rule=rule))
    if not 0 <= options.warmup <= MAX_WARMUP:
        problems.append(errors.Problem(path="warmup", value=options.warmup,
                                       rule=f"must be 0 to {MAX_WARMUP:,} requests (each is kept until the run starts)"))  # fmt: skip
    if options.rate == math.inf and options.requests is None:
        problems.append(
            errors.Problem(path="rate", value=options.rate,
                           rule="inf sends every request at once: give --requests to say how many")
        )  # fmt: skip
    if options.rate == math.inf and options.burstiness != 1:
        problems.append(
            errors.Problem(path="burstiness", value=options.burstiness, rule="applies to a finite --rate")
        )
    for name, value, most, unit in (  # more would not fit in memory (nor any server)
        ("concurrency", options.concurrency, patterns.MAX_USERS, " users"),
        ("rate", options.rate, rates.MAX_RPS, " requests per second"),
    ):
        if value is not None and math.isfinite(value) and value > most:
            problems.append(errors.Problem(path=name, value=value, rule=f"must be at most {most:g}{unit}"))
    if (why := protocols.url_problem(options.url)) is not None:
        problems.append(errors.Problem(path="url", value=options.url, rule=why))
    problems += protocols.model_problems(options.protocol, options.url, options.model)
    problems += protocols.body_problems(options.protocol, options.body)
    if options.seed < 0:
        problems.append(errors.Problem(path="seed", value=options.seed, rule="must be >= 0"))
    if options.speedup != 1 and options.trace is None:
        problems.append(errors.Problem(path="speedup", value=options.speedup, rule="applies to --trace only"))
    if options.burstiness != 1 and options.rate is None:
        problems.append(
            errors.Problem(path="burstiness", value=options.burstiness, rule="applies to --rate only")
        )
    if problems:
        raise errors.RecipeError("bench options", problems)
    load = _load(options)
    if isinstance(load, patterns.ClosedLoop) and options.max_in_flight is not None:
        rule = (
            "--max-in-flight applies to an open loop (--rate, --pattern, --trace); in a closed loop "
            "(--concurrency N, a closed:users=N pattern, or one user when no load is chosen) the N users "
            "already cap the requests in flight"
        )
        raise errors.RecipeError(
            "bench options", [errors.Problem(path="max-in-flight", value=options.max_in_flight, rule=rule)]
        )
    horizon = options.duration_s
    if horizon is None:
        natural = load.natural_duration_s
        horizon = math.inf if options.requests is not None else (natural or DEFAULT_DURATION_S)
    source = dataset.load(options.prompts) if options.prompts is not None else None
    if source is not None and options.shuffle_prompts:
        source = source.shuffled(options.seed)
    return Plan(load=load, horizon_s=horizon, max_requests=options.requests, prompts=source)


def _load(options: Options) -> Load:
    shape = options.shape
    if options.workload is not None:
        return options.workload
    if options.rate == math.inf:
        return AllAtOnce(shape=shape or shapes.Shape())
    if options.rate is not None:
        return patterns.OpenLoop(
            schedule=rates.Constant(rps=options.rate),
            burstiness=options.burstiness,
            shape=shape or shapes.Shape(),
        )
    if options.pattern is not None:
        return spec.parse(options.pattern, shape=shape)
    if options.trace is not None:
        return spec.parse(_trace_spec(options.trace, options.speedup), shape=shape)
    return patterns.ClosedLoop(users=options.concurrency or 1, shape=shape or shapes.Shape())
