"""What one request measured: timings, tokens, status or the kind of error.

Times are seconds on the run's clock (0 = the start of the run). A record is written once, when
its request ends, so it is a frozen value; error kinds are short stable strings (`http_503`,
`timeout`, `connection`, ...) that summaries count and users can grep, and `error_detail` keeps
the text behind each (the exception's message, or the start of an HTTP error's body).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import aiohttp

TIMEOUT = "timeout"
CONNECTION = "connection"
DISCONNECTED = "disconnected"
PAYLOAD = "payload"
INVALID_RESPONSE = "invalid_response"
STREAM_ERROR = "stream_error"
CLIENT_ERROR = "client_error"
CANCELLED = "cancelled"

# Where a record's input_tokens come from: the server's `usage.prompt_tokens` (what it counted,
# chat template included), or the length swell asked for when the server said nothing (with a
# prompts file: the prompt's word count).
FROM_SERVER = "server"
FROM_REQUEST = "requested"
FROM_WORDS = "words"
DETAIL_CHARS = 300  # an error's text is kept up to this long


class StreamError(Exception):
    """The server reported an error inside a stream that began with 200 OK."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestRecord:
    """One request: when it was due and sent, how long parts of it took, what came back."""

    index: int
    scheduled_s: float | None  # when the workload wanted it sent (None in a closed loop)
    start_s: float
    end_s: float
    ttft_s: float | None  # first content token (streaming only)
    itl_s: tuple[float, ...]  # gaps between content chunks (streaming only)
    input_tokens: int  # the server's count when it gave one (input_tokens_from says which)
    output_tokens: int
    status: int | None  # HTTP status, None when no response came
    error: str | None  # None when the request succeeded
    input_tokens_from: str = FROM_REQUEST  # FROM_SERVER, FROM_REQUEST or FROM_WORDS
    error_detail: str | None = None  # the text behind `error`
    attempts: int = 1  # 2 when it was sent again on a fresh connection (a keep-alive closed under it)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def e2e_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def lag_s(self) -> float | None:
        """How late the request was sent compared with its schedule (client-side overhead)."""
        return None if self.scheduled_s is None else self.start_s - self.scheduled_s

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first: (e2e − TTFT) / (tokens − 1), as vLLM defines it."""
        if self.ttft_s is None or self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)


def classify(exc: BaseException) -> str:
    """The error kind of an exception raised while sending or reading a request."""
    if isinstance(exc, asyncio.CancelledError):
        return CANCELLED
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return CONNECTION
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return DISCONNECTED
    if isinstance(exc, aiohttp.ClientPayloadError):
        return PAYLOAD
    if isinstance(exc, StreamError):
        return STREAM_ERROR
    if isinstance(exc, (json.JSONDecodeError, ValueError, KeyError, TypeError, IndexError)):
        return INVALID_RESPONSE
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"http_{exc.status}"
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return CLIENT_ERROR
    return type(exc).__name__


def http_error(status: int) -> str:
    return f"http_{status}"


def detail(exc: BaseException) -> str:
    """The text of an exception, for a record's error_detail: its type and message, cut short."""
    text = str(exc).strip()
    name = type(exc).__name__
    return (f"{name}: {text}" if text else name)[:DETAIL_CHARS]
