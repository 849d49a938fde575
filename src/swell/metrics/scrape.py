"""Scrape a /metrics endpoint and parse Prometheus text into samples (prometheus_client's parser).

A failed, timed-out or unparsable scrape raises MetricsError; callers read that as "no value".
"""

from __future__ import annotations

import re

import aiohttp
from prometheus_client import parser

from swell import errors
from swell.core import windows


def exposed_names(text: str) -> set[str]:
    """The sample names as the text writes them (the first token of every sample line)."""
    return {m.group(1) for m in _SAMPLE_NAME.finditer(text)}


_SAMPLE_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", re.MULTILINE)


def parse(text: str) -> list[windows.Sample]:
    """Samples under the names the server exposes. prometheus_client's parser renames a counter
    without the `_total` suffix (TorchServe's `ts_queue_latency_microseconds`, `Requests2XX`)
    to `NAME_total`; Prometheus keeps `NAME`, so the signals and their PromQL use `NAME` too."""
    try:
        samples = [
            (s.name, windows.labels_of(s.labels), float(s.value))
            for family in parser.text_string_to_metric_families(text)
            for s in family.samples
        ]
    except (ValueError, TypeError) as exc:
        raise errors.MetricsError(f"unparsable metrics text: {exc}") from None
    shown = exposed_names(text)
    return [
        windows.Sample(name=_as_exposed(name, shown), labels=labels, value=value)
        for name, labels, value in samples
    ]


def _as_exposed(name: str, shown: set[str]) -> str:
    if name in shown or not name.endswith("_total"):
        return name
    bare = name.removesuffix("_total")
    return bare if bare in shown else name


async def scrape(session: aiohttp.ClientSession, url: str, timeout_s: float = 2.0) -> list[windows.Sample]:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status != 200:
                raise errors.MetricsError(f"{url}: HTTP {resp.status}")
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise errors.MetricsError(f"{url}: {type(exc).__name__}: {exc}") from None
    return parse(text)
