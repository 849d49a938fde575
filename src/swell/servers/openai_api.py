"""The slice of the OpenAI HTTP API the simulated LLM server speaks: parsing and response shapes.

Input tokens are estimated from text (~4 characters a token, plus a few per chat message for
the template) because the simulated server must not download a tokenizer. Output text is a
deterministic stream of short words, one word a token.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web

CHARS_PER_TOKEN = 4
CHAT_TOKENS_PER_MESSAGE = 4  # role markers of a chat template
COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # OpenAI's documented default for /v1/completions
_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "at",
    "this",
    "from",
    "are",
    "or",
    "an",
    "which",
    "one",
    "can",
    "has",
    "more",
    "time",
    "will",
    "model",
    "data",
    "token",
    "batch",
    "queue",
    "cache",
    "scale",
    "load",
    "node",
    "pod",
    "graph",
    "value",
    "state",
    "request",
]


class ApiError(Exception):
    """A request the API refuses; becomes an OpenAI-shaped JSON error."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param

    def response(self) -> web.Response:
        kind = {400: "BadRequestError", 404: "NotFoundError"}.get(self.status, "InternalServerError")
        body = {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.status}}
        return web.json_response(body, status=self.status)


@dataclass(frozen=True, kw_only=True)
class Parsed:
    prompt_tokens: int
    max_tokens: int
    stream: bool
    include_usage: bool


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _chat_tokens(messages: Any) -> int:
    if not isinstance(messages, list) or not messages:
        raise ApiError("messages: expected a non-empty list of {role, content} objects", param="messages")
    total = 0
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ApiError(f"messages[{i}]: expected an object with a string 'role'", param="messages")
        content = m.get("content")
        if isinstance(content, list):  # content parts: count the text ones
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        elif content is not None and not isinstance(content, str):
            raise ApiError(f"messages[{i}].content: expected a string or a list of parts", param="messages")
        total += CHAT_TOKENS_PER_MESSAGE + (estimate_tokens(content) if content else 0)
    return total


def _prompt_tokens(prompt: Any) -> int:
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        return estimate_tokens(prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return len(prompt)  # token ids
    raise ApiError(
        "prompt: expected a string, a list of token ids, or a list of one of those", param="prompt"
    )


def parse(body: Any, *, chat: bool, model: str, max_model_len: int, default_max_tokens: int) -> Parsed:
    """Validate a (chat) completion request; ApiError names the first offending field."""
    if not isinstance(body, dict):
        raise ApiError("request body must be a JSON object")
    asked = body.get("model")
    if asked is not None and asked != model:
        raise ApiError(f"The model `{asked}` does not exist.", status=404, param="model")
    prompt_tokens = _chat_tokens(body.get("messages")) if chat else _prompt_tokens(body.get("prompt"))
    if body.get("n", 1) != 1:
        raise ApiError("n: only n=1 is supported", param="n")
    key = "max_completion_tokens" if chat and body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = body.get(key)
    if max_tokens is None:
        default = default_max_tokens if chat else COMPLETIONS_DEFAULT_MAX_TOKENS
        max_tokens = max(1, min(default, max_model_len - prompt_tokens))
    elif not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ApiError(f"{key}: expected an integer >= 1, got {max_tokens!r}", param=key)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(f"stream: expected true or false, got {stream!r}", param="stream")
    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    return Parsed(
        prompt_tokens=prompt_tokens, max_tokens=max_tokens, stream=stream, include_usage=include_usage
    )


def models_body(model: str, max_model_len: int, created: int = 0) -> dict[str, Any]:
    card = {"id": model, "object": "model", "created": created, "owned_by": "swell", "root": model,
            "max_model_len": max_model_len}  # fmt: skip
    return {"object": "list", "data": [card]}


class Writer:
    """Builds the JSON bodies and SSE chunks of one response."""

    def __init__(self, rid: str, model: str, *, chat: bool, created: int) -> None:
        self.rid, self.model, self.chat, self.created = rid, model, chat, created
        self._offset = sum(map(ord, rid))  # each request its own (deterministic) text

    def token_text(self, i: int) -> str:
        return " " + _WORDS[(self._offset + i * 7) % len(_WORDS)]

    def _head(self, chunk: bool) -> dict[str, Any]:
        kind = ("chat.completion" if self.chat else "text_completion") + (
            ".chunk" if chunk and self.chat else ""
        )
        return {"id": self.rid, "object": kind, "created": self.created, "model": self.model}

    @staticmethod
    def usage(completion: int, prompt: int) -> dict[str, int]:
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def full(self, completion: int, prompt: int) -> dict[str, Any]:
        text = "".join(self.token_text(i) for i in range(completion))
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                      "finish_reason": "length"}  # fmt: skip
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}
        return {**self._head(False), "choices": [choice], "usage": self.usage(completion, prompt)}

    def role_chunk(self) -> dict[str, Any]:
        delta = {"role": "assistant", "content": ""}
        return {
            **self._head(True),
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
        }

    def token_chunk(self, i: int, finish: str | None) -> dict[str, Any]:
        text = self.token_text(i)
        if self.chat:
            choice = {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return {**self._head(True), "choices": [choice]}

    def usage_chunk(self, completion: int, prompt: int) -> dict[str, Any]:
        return {**self._head(True), "choices": [], "usage": self.usage(completion, prompt)}

    @staticmethod
    def sse(obj: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
