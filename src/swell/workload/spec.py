"""The one string form of a workload, shared by `swell bench --pattern` and the simulator.

`KIND[:ARG,KEY=VALUE,...]`, e.g. black-friday, poisson:rate=5, gamma:5,burstiness=0.5,
azure-conv:speedup=10, trace:reqs.csv, servegen:m-small,scale=0.01; a bare path to a trace file
means trace:PATH. GRAMMAR lists every kind and key. Bad input raises errors.RecipeError naming
each wrong key and why.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
from collections.abc import Callable
from typing import Any

from swell import durations, errors
from swell.workload import patterns, rates, servegen, shapes, traces

Spec = patterns.OpenLoop | patterns.ClosedLoop | traces.Replay | servegen.ServeGenReplay

GRAMMAR = """\
  poisson:rate=R                         Poisson arrivals at R req/s (also poisson:R)
  gamma:rate=R,burstiness=B              gamma gaps; B<1 burstier, B=1 Poisson (vllm --burstiness)
  constant:rate=R                        evenly spaced arrivals
  steps:rates=2/5/10,every=60s           rate steps (or at=0/60/120 instead of every)
  ramp:from=1,to=20,over=5m[,delay=,hold=]  linear ramp, then hold
  diurnal:mean=5[,amplitude=0.8,period=1d,peak=12h]   day-shaped cosine
  black-friday[:base=2,surge=10,start=2m,ramp=2m,plateau=5m,decay=3m]   steady, ×10 surge, plateau, decay
  closed:users=N[,think=0]               N users in a closed loop
  azure-conv | azure-code[:speedup=K,scale=X,start=S,input-scale=F]   Azure LLM 2023 trace replay
  long-conv[:speedup=K,scale=X,start=S,input-scale=8]   azure-conv with prompts x8 (up to ~112k tokens)
  trace:PATH[,speedup=K,...] or just PATH  CSV/JSONL: t,input_tokens,output_tokens; Azure; BurstGPT; Mooncake
  servegen[:m-small,speedup=K,scale=X,start=S]  ServeGen per-client windows, clients merged
  any kind: input=MEAN[/STD],output=MEAN[/STD] (token shape); rate kinds: burstiness=B"""

_RATE_KINDS = ("poisson", "gamma", "constant", "steps", "ramp", "diurnal", "black-friday")
_TRACE_KEYS = ("speedup", "scale", "start", "input-scale")
_TRACE_SUFFIXES = (".csv", ".jsonl", ".json", ".gz")
LONG_CONV_INPUT_SCALE = 8.0  # Azure conversation prompts x8: median 8k, p99 33k, max 112k tokens
_SHAPE_KEYS = ("input", "output")


def _number(text: str) -> float:
    value = float(text)
    if math.isnan(value):
        raise ValueError(text)
    return value


def _numbers(text: str) -> tuple[float, ...]:
    return tuple(_number(part) for part in text.split("/"))


def _durations(text: str) -> tuple[float, ...]:
    return tuple(durations.parse(part) for part in text.split("/"))


_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "rate": (_number, "a number of requests per second"),
    "burstiness": (_number, "a number > 0 (1 = Poisson) or inf"),
    "rates": (_numbers, "rates separated by '/', e.g. 2/5/10"),
    "at": (_durations, "start times separated by '/', e.g. 0/60/120"),
    "users": (int, "a whole number of users"),
    "input": (_numbers, "MEAN or MEAN/STDDEV tokens"),
    "output": (_numbers, "MEAN or MEAN/STDDEV tokens"),
    "from": (_number, "a rate in req/s"),
    "to": (_number, "a rate in req/s"),
    "mean": (_number, "a rate in req/s"),
    "base": (_number, "a rate in req/s"),
    "amplitude": (_number, "a number within [0, 1]"),
    "surge": (_number, "a multiplier > 0"),
    "speedup": (_number, "a time compression factor > 0"),
    "scale": (_number, "a rate multiplier > 0"),
    "input-scale": (_number, "a prompt-length multiplier > 0"),
}
_KEYS: dict[str, tuple[str, ...]] = {
    "poisson": ("rate",),
    "gamma": ("rate", "burstiness"),
    "constant": ("rate",),
    "steps": ("rates", "every", "at", "burstiness"),
    "ramp": ("from", "to", "over", "delay", "hold", "burstiness"),
    "diurnal": ("mean", "amplitude", "period", "peak", "burstiness"),
    "black-friday": ("base", "surge", "start", "ramp", "plateau", "decay", "burstiness"),
    "closed": ("users", "think"),
    "azure-conv": _TRACE_KEYS,
    "azure-code": _TRACE_KEYS,
    "long-conv": _TRACE_KEYS,
    "trace": ("path", *_TRACE_KEYS),
    "servegen": ("name", *_TRACE_KEYS),
}
_POSITIONAL = {"poisson": "rate", "gamma": "rate", "constant": "rate", "diurnal": "mean"}
_POSITIONAL |= {"closed": "users", "trace": "path", "servegen": "name", "steps": "rates"}
KINDS = tuple(_KEYS)


def parse(text: str, *, shape: shapes.Shape | None = None) -> Spec:
    """The workload `text` describes. `shape` sets the token shape unless the text has input=/output=."""
    source = f"workload {text!r}"
    if _is_bare_path(text):
        text = "trace:" + text.strip()
    written, _, rest = text.strip().partition(":")
    kind = written.strip().lower()
    if kind not in _KEYS:
        rule = (
            "unknown workload kind; one of: " + ", ".join(KINDS) + ", or a path to a trace file "
            f"({', '.join(_TRACE_SUFFIXES)})"
        )
        raise errors.RecipeError(source, [errors.Problem(path="kind", value=written.strip(), rule=rule)])
    problems: list[errors.Problem] = []
    args = _split(kind, rest, problems)
    values: dict[str, Any] = {}
    for key, raw in args.items():
        parser, rule = _PARSERS.get(key, (durations.parse, durations.EXAMPLES))
        if key in ("path", "name"):
            parser = str
        try:
            values[key] = parser(raw)
        except (ValueError, TypeError):
            problems.append(errors.Problem(path=key, value=raw, rule=f"must be {rule}"))
    if not problems:
        try:
            return _build(kind, values, shape)
        except ValueError as exc:
            problems.append(_named(kind, rest, args, re.sub(r",? got .*$", "", str(exc))))  # the Problem shows the value
        except errors.RecipeError as exc:
            problems.extend(exc.problems)
    raise errors.RecipeError(source, problems)


def _named(kind: str, rest: str, args: dict[str, str], rule: str) -> errors.Problem:
    """A model's complaint about one of the keys given ('burstiness must be > 0', 'input_mean must be
    >= 1') as a problem of that key with the value written for it; else of the whole workload."""
    word = rule.split(" ", 1)[0]
    key = word.split("_", 1)[0] if word.startswith(("input_", "output_")) else word
    if key not in args or " " not in rule:
        return errors.Problem(path=kind, value=rest, rule=rule)
    part = word.split("_", 1)[1] if key != word else ""
    return errors.Problem(path=key, value=args[key], rule=(f"its {part} " if part else "") + rule.split(" ", 1)[1])


def _is_bare_path(text: str) -> bool:
    """A trace file written without `trace:`: an existing file, or a name ending like a trace."""
    head = text.strip().split(",")[0].strip()
    if head.partition(":")[0].strip().lower() in _KEYS:
        return False
    return traces.is_file(pathlib.Path(head)) or head.lower().endswith(_TRACE_SUFFIXES)


def _split(kind: str, rest: str, problems: list[errors.Problem]) -> dict[str, str]:
    allowed = (*_KEYS[kind], *_SHAPE_KEYS)
    args: dict[str, str] = {}
    for item in (part.strip() for part in rest.split(",") if part.strip()):  # 'poisson:1,' is 'poisson:1'
        key, eq, value = item.partition("=")
        if not eq:
            key, value = _POSITIONAL.get(kind, ""), item
            if not key:
                problems.append(
                    errors.Problem(path=item, value=item, rule=f"'{kind}' takes only KEY=VALUE arguments")
                )
                continue
        key = key.strip().lower()
        if key not in allowed:
            problems.append(
                errors.Problem(
                    path=key, value=value, rule=f"unknown key for '{kind}'; known: {', '.join(allowed)}"
                )
            )
        elif key in args:
            problems.append(errors.Problem(path=key, value=value, rule="given twice"))
        else:
            args[key] = value.strip()
    return args


def _shape(values: dict[str, Any], base: shapes.Shape | None) -> shapes.Shape | None:
    if "input" not in values and "output" not in values:
        return base
    fields: dict[str, Any] = {}
    for key in _SHAPE_KEYS:
        if key in values:
            mean_std = values[key]
            if len(mean_std) > 2:
                raise ValueError(f"{key} must be MEAN or MEAN/STDDEV")
            fields[f"{key}_mean"] = mean_std[0]
            fields[f"{key}_stddev"] = mean_std[1] if len(mean_std) > 1 else 0.0
    return dataclasses.replace(base or shapes.Shape(), **fields)


def _schedule(kind: str, v: dict[str, Any]) -> rates.RateSchedule:
    if kind in ("poisson", "gamma", "constant"):
        if "rate" not in v:
            raise ValueError("needs rate=R (requests per second)")
        return rates.Constant(rps=v["rate"])
    if kind == "steps":
        if "rates" not in v:
            raise ValueError("needs rates=R1/R2/...")
        every = v.get("every", 60.0)
        starts = v.get("at", tuple(i * every for i in range(len(v["rates"]))))
        return rates.Steps(starts=tuple(starts), rates=v["rates"], last_s=every)
    if kind == "ramp":
        if "from" not in v or "to" not in v:
            raise ValueError("needs from=R and to=R")
        extra = {k: v[n] for k, n in (("delay_s", "delay"), ("hold_s", "hold")) if n in v}
        return rates.Ramp(start_rps=v["from"], end_rps=v["to"], over_s=v.get("over", 300.0), **extra)
    if kind == "diurnal":
        if "mean" not in v:
            raise ValueError("needs mean=R")
        period = v.get("period", 86400.0)
        return rates.Diurnal(
            mean_rps=v["mean"],
            amplitude=v.get("amplitude", 0.8),
            period_s=period,
            peak_s=v.get("peak", period / 2),
        )
    names = {"base": "base_rps", "surge": "surge", "start": "start_s", "ramp": "ramp_s"}
    names |= {"plateau": "plateau_s", "decay": "decay_s"}
    return rates.BlackFriday(**{field: v[key] for key, field in names.items() if key in v})


def _build(kind: str, v: dict[str, Any], shape: shapes.Shape | None) -> Spec:
    chosen = _shape(v, shape)
    if kind in _RATE_KINDS:
        burstiness = {"poisson": 1.0, "constant": math.inf}.get(kind, v.get("burstiness", 1.0))
        return patterns.OpenLoop(
            schedule=_schedule(kind, v), burstiness=burstiness, shape=chosen or shapes.Shape()
        )
    if kind == "closed":
        if "users" not in v:
            raise ValueError("needs users=N")
        return patterns.ClosedLoop(
            users=v["users"], think_s=v.get("think", 0.0), shape=chosen or shapes.Shape()
        )
    replay = {"speedup": v.get("speedup", 1.0), "scale": v.get("scale", 1.0), "start_s": v.get("start", 0.0)}
    if kind == "servegen":
        if "input-scale" in v:
            raise ValueError("input-scale applies to per-request traces, not to ServeGen's rate windows")
        directory = servegen.resolve(v.get("name", "m-small"))
        servegen.load(directory)  # fail now, with the path, rather than mid-run
        return servegen.ServeGenReplay(directory=directory, shape=chosen or shapes.Shape(), **replay)
    if kind == "trace" and "path" not in v:
        raise ValueError("needs a file: trace:PATH")
    named = "azure-conv" if kind == "long-conv" else kind
    path = pathlib.Path(v["path"]) if kind == "trace" else traces.named_path(named)
    if not traces.is_file(path):
        rule = traces.not_a_file(path) if kind == "trace" else traces.missing_named(named)
        raise errors.RecipeError("trace", [errors.Problem(path="file", value=str(path), rule=rule)])
    scale_in = v.get("input-scale", LONG_CONV_INPUT_SCALE if kind == "long-conv" else 1.0)
    return traces.Replay(path=path, shape=chosen, input_scale=scale_in, **replay)
