"""Scrape a /metrics endpoint and parse Prometheus text into samples (prometheus_client's parser).

A failed, timed-out or unparsable scrape raises MetricsError; callers read that as "no value".
"""

from __future__ import annotations

import aiohttp
from prometheus_client import parser

from swell import errors
from swell.core import windows


def parse(text: str) -> list[windows.Sample]:
    try:
        return [
            windows.Sample(name=s.name, labels=windows.labels_of(s.labels), value=float(s.value))
            for family in parser.text_string_to_metric_families(text)
            for s in family.samples
        ]
    except (ValueError, TypeError) as exc:
        raise errors.MetricsError(f"unparsable metrics text: {exc}") from None


async def scrape(session: aiohttp.ClientSession, url: str, timeout_s: float = 2.0) -> list[windows.Sample]:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status != 200:
                raise errors.MetricsError(f"{url}: HTTP {resp.status}")
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise errors.MetricsError(f"{url}: {type(exc).__name__}: {exc}") from None
    return parse(text)
