"""Wire protocols: how to turn a prompt into an HTTP request and a response into tokens.

OpenAI chat and completions (streaming SSE or not), KServe v1 `:predict`, and any JSON POST from
a body template with `{{prompt}}`, `{{input_tokens}}`, `{{output_tokens}}`, `{{model}}`, `{{index}}`
placeholders. Bodies are built with plain string work: at thousands of requests per second the
client must stay cheap.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import yarl

from swell import errors
from swell.loadgen import records

NAMES = ("openai-chat", "openai-completions", "kserve", "http")
Messages = tuple[dict[str, str], ...]  # chat messages from a prompts file, sent as they are


class Usage(NamedTuple):
    """The token counts a server reported in `usage`, None for each it did not give."""

    prompt: int | None = None
    completion: int | None = None


NO_USAGE = Usage()


class WireProtocol(Protocol):
    """One request format."""

    @property
    def url(self) -> yarl.URL: ...

    @property
    def model(self) -> str:
        """The model the requests name ("" when the body has no model)."""
        ...

    @property
    def streaming(self) -> bool: ...

    @property
    def needs_prompt(self) -> bool: ...

    def body(
        self, index: int, prompt: str, input_tokens: int, output_tokens: int, messages: Messages | None = None
    ) -> bytes: ...

    def answer(self, payload: bytes) -> Usage:
        """The token counts of a whole (non-streamed) response, where it says."""
        ...

    def event(self, data: bytes) -> tuple[int, Usage]:
        """One streamed SSE data payload → (token chunks in it: 0 or 1, the usage it carries)."""
        ...


def _count(usage: dict[str, Any], key: str) -> int | None:
    value = usage.get(key)
    # bool is an int; a null or a string count is no count (fall back), not an invalid response
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _usage_tokens(obj: dict[str, Any]) -> Usage:
    """`usage.prompt_tokens` and `usage.completion_tokens` of an OpenAI-style response or chunk."""
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return NO_USAGE
    return Usage(prompt=_count(usage, "prompt_tokens"), completion=_count(usage, "completion_tokens"))


# What a chat delta carries that is generated text: the answer, and a reasoning model's thinking
# (vLLM and llama.cpp: `reasoning_content`; newer vLLM, OpenRouter: `reasoning`). vLLM's bench
# counts both as output tokens, so TTFT is the first token of either.
DELTA_TEXT = ("content", "reasoning_content", "reasoning")


def _generates(delta: dict[str, Any]) -> bool:
    """Whether a chat delta carries generated output: text, thinking, or a tool call's name or
    arguments (a function-calling answer streams its JSON arguments in `tool_calls`)."""
    if any(delta.get(key) for key in DELTA_TEXT):
        return True
    calls = delta.get("tool_calls")
    return isinstance(calls, list) and any(
        isinstance(c, dict) and isinstance(c.get("function"), dict)
        and bool(c["function"].get("arguments") or c["function"].get("name"))
        for c in calls
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class OpenAI:
    """OpenAI-compatible chat or completions (vLLM, llama.cpp server, SGLang, TGI, OpenAI)."""

    url: yarl.URL
    model: str
    chat: bool = True
    streaming: bool = True
    ignore_eos: bool = False
    needs_prompt: bool = True

    def body(
        self, index: int, prompt: str, input_tokens: int, output_tokens: int, messages: Messages | None = None
    ) -> bytes:
        payload: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max(1, output_tokens),
            "stream": self.streaming,
        }
        if self.chat:
            payload["messages"] = list(messages) if messages else [{"role": "user", "content": prompt}]
        else:
            payload["prompt"] = prompt
        if self.streaming:
            payload["stream_options"] = {"include_usage": True}
        if self.ignore_eos:
            payload["ignore_eos"] = True
        return json.dumps(payload).encode()

    def answer(self, payload: bytes) -> Usage:
        obj = json.loads(payload)
        if "error" in obj:
            raise records.StreamError(str(obj["error"])[:200])
        return _usage_tokens(obj)

    def event(self, data: bytes) -> tuple[int, Usage]:
        obj = json.loads(data)
        if "error" in obj:
            raise records.StreamError(str(obj["error"])[:200])
        choices = obj.get("choices") or ()
        content = 0
        for choice in choices:
            if self.chat:
                if _generates(choice.get("delta") or {}):
                    content = 1
            elif choice.get("text"):
                content = 1
        return content, _usage_tokens(obj) if "usage" in obj else NO_USAGE


_PLACEHOLDER = re.compile(r'"\{\{(prompt|model)\}\}"|\{\{(input_tokens|output_tokens|index)\}\}')


@dataclass(frozen=True, kw_only=True)
class Template:
    """Any JSON POST: `template` with placeholders; KServe v1 is this with `{"instances": [...]}`."""

    url: yarl.URL
    template: str
    model: str = ""
    streaming: bool = False

    @property
    def needs_prompt(self) -> bool:
        return '"{{prompt}}"' in self.template

    def body(
        self, index: int, prompt: str, input_tokens: int, output_tokens: int, messages: Messages | None = None
    ) -> bytes:
        values = {"prompt": prompt, "model": self.model}
        numbers = {"input_tokens": input_tokens, "output_tokens": output_tokens, "index": index}

        def fill(match: re.Match[str]) -> str:
            quoted, bare = match.group(1), match.group(2)
            return json.dumps(values[quoted]) if quoted else str(numbers[bare])

        return _PLACEHOLDER.sub(fill, self.template).encode()

    def answer(self, payload: bytes) -> Usage:
        if b'"usage"' not in payload:  # most JSON APIs have no token counts; don't parse for nothing
            return NO_USAGE
        obj = json.loads(payload)
        return _usage_tokens(obj) if isinstance(obj, dict) else NO_USAGE

    def event(self, data: bytes) -> tuple[int, Usage]:
        return 1, NO_USAGE


def _endpoint(base: str, default_path: str) -> yarl.URL:
    url = yarl.URL(base)
    if url.path in ("", "/"):
        return url.with_path(default_path)
    if url.path.rstrip("/") == "/v1" and default_path.startswith("/v1/"):
        return url.with_path(default_path)
    return url


def url_problem(url: str) -> str | None:
    """Why `url` cannot be loaded (not http(s), no host, a bad port or IPv6 address), else None."""
    try:
        parsed = yarl.URL(url)
        parsed.port  # noqa: B018 (read for its check)
    except ValueError as exc:  # 'http://[::1', 'http://h:99999', 'http://h:abc'
        return f"must be an http:// or https:// URL ({exc})"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "must be an http:// or https:// URL"
    return None


def model_problems(name: str, url: str, model: str | None) -> list[errors.Problem]:
    """A protocol that names its model in the URL needs one: KServe's v1 path is /v1/models/NAME:predict."""
    if name == "kserve" and not model and ":predict" not in url:
        return [errors.Problem(path="model", value=model, rule="kserve needs --model (or a URL ending in :predict)")]
    return []


def body_problems(name: str, body: str | None) -> list[errors.Problem]:
    """What is wrong with a --body template for protocol `name`: not JSON once filled, or given to
    an OpenAI protocol, which builds its own body (it would be ignored, unsaid)."""
    if body is None:
        return []
    problems = []
    try:
        json.loads(Template(url=yarl.URL(), template=body).body(0, "p", 1, 1))
    except ValueError as exc:
        rule = f"must be JSON once placeholders are filled ({exc})"
        problems.append(errors.Problem(path="body", value=body, rule=rule))
    if name in ("openai-chat", "openai-completions"):
        rule = f"applies to --protocol kserve or http ({name} builds its own: prompt, max_tokens, stream)"
        problems.append(errors.Problem(path="body", value=body, rule=rule))
    return problems


def make(
    name: str,
    url: str,
    *,
    model: str | None = None,
    stream: bool = True,
    body: str | None = None,
    ignore_eos: bool = False,
) -> WireProtocol:
    """The protocol `name` aimed at `url` (a base URL gets the protocol's usual path)."""
    problems = []
    if (why := url_problem(url)) is not None:
        raise errors.RecipeError("bench options", [errors.Problem(path="url", value=url, rule=why)])
    parsed = yarl.URL(url)
    if name not in NAMES:
        problems.append(errors.Problem(path="protocol", value=name, rule="one of " + ", ".join(NAMES)))
    problems += model_problems(name, url, model)
    problems += body_problems(name, body)
    if problems:
        raise errors.RecipeError("bench options", problems)
    if name in ("openai-chat", "openai-completions"):
        chat = name == "openai-chat"
        endpoint = _endpoint(url, "/v1/chat/completions" if chat else "/v1/completions")
        return OpenAI(
            url=endpoint, model=model or "default", chat=chat, streaming=stream, ignore_eos=ignore_eos
        )
    if name == "kserve":
        endpoint = parsed if ":predict" in url else _endpoint(url, f"/v1/models/{model}:predict")
        return Template(url=endpoint, template=body or '{"instances": ["{{prompt}}"]}', model=model or "")
    return Template(
        url=parsed,
        template=body or '{"prompt": "{{prompt}}", "max_tokens": {{output_tokens}}}',
        model=model or "",
    )
