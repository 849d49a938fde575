"""The built-in TorchServe example model: a handler only, no weights, real CPU work per request.

TorchServe imports this file inside each worker (it is packaged alone into a .mar, so it imports
nothing from swell). Each request's text is hashed SWELL_TS_ROUNDS times (SHA-256 chained, 30,000
by default: about 10 ms of one core on the 2-core test machine; `service.env` sets it) and
labelled by its digest's first byte.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

ROUNDS = max(1, int(os.environ.get("SWELL_TS_ROUNDS", "30000")))


def _text(row: Any) -> bytes:
    """One request's payload as bytes: TorchServe hands a dict with "data" or "body"."""
    value = row.get("data", row.get("body", b"")) if isinstance(row, dict) else row
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return json.dumps(value, sort_keys=True).encode() if not isinstance(value, str) else value.encode()


def digest(payload: bytes, rounds: int = ROUNDS) -> str:
    h = payload
    for _ in range(rounds):
        h = hashlib.sha256(h).digest()
    return h.hex()


def handle(data: list[Any] | None, context: Any) -> list[dict[str, Any]] | None:
    """TorchServe's module-level entry point: one answer per request of the batch."""
    if data is None:  # the worker's warm-up call at load time
        return None
    out = []
    for row in data:
        d = digest(_text(row))
        out.append(
            {"label": "even" if int(d[:2], 16) % 2 == 0 else "odd", "digest": d[:16], "rounds": ROUNDS}
        )
    return out
