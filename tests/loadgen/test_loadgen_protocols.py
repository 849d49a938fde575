"""What the wire protocols read from a server's answer: token chunks, reasoning deltas, usage counts."""

from __future__ import annotations

import json

import pytest
import yarl

from swell.loadgen import protocols, records

CHAT = protocols.OpenAI(url=yarl.URL("http://x/v1/chat/completions"), model="m", chat=True)
COMPLETIONS = protocols.OpenAI(url=yarl.URL("http://x/v1/completions"), model="m", chat=False)
U = protocols.Usage


@pytest.mark.parametrize(
    ("wire", "chunk", "expected"),
    [
        (CHAT, {"choices": [{"delta": {"content": "Hi"}}]}, (1, U())),
        (CHAT, {"choices": [{"delta": {"role": "assistant"}}]}, (0, U())),
        (CHAT, {"choices": [{"delta": {"content": ""}}]}, (0, U())),
        (CHAT, {"choices": [{"delta": {"content": None, "reasoning_content": "Let"}}]}, (1, U())),
        (CHAT, {"choices": [{"delta": {"reasoning": "me think"}}]}, (1, U())),
        (CHAT, {"choices": [{"delta": {"reasoning_content": ""}}]}, (0, U())),
        (CHAT, {"choices": [{"delta": None, "finish_reason": "stop"}]}, (0, U())),
        (CHAT, {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city"}}]}}]}, (1, U())),
        (CHAT, {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                                        "function": {"name": "weather"}}]}}]}, (1, U())),
        (CHAT, {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ""}}]}}]}, (0, U())),
        (CHAT, {"choices": [{"delta": {"tool_calls": "junk"}}]}, (0, U())),
        (CHAT, {"choices": [], "usage": {"prompt_tokens": 46, "completion_tokens": 12}}, (0, U(46, 12))),
        (CHAT, {"choices": [{"delta": {"content": "a"}}], "usage": None}, (1, U())),
        (CHAT, {"choices": [], "usage": {"completion_tokens": 3}}, (0, U(None, 3))),
        (CHAT, {"choices": [], "usage": {"prompt_tokens": None, "completion_tokens": "3"}}, (0, U())),
        (CHAT, {"choices": [], "usage": {"prompt_tokens": True, "completion_tokens": -1}}, (0, U())),
        (COMPLETIONS, {"choices": [{"text": " the"}]}, (1, U())),
        (COMPLETIONS, {"choices": [{"text": ""}], "usage": {"prompt_tokens": 16}}, (0, U(16, None))),
    ],
    ids=[
        "content",
        "role only: no token",
        "empty content: no token",
        "reasoning_content (vLLM, llama.cpp)",
        "reasoning (newer vLLM, OpenRouter)",
        "empty reasoning: no token",
        "null delta",
        "a tool call's arguments",
        "a tool call's name",
        "a tool call with nothing yet: no token",
        "tool_calls not a list: no token",
        "usage chunk: prompt and completion tokens",
        "null usage",
        "usage without prompt_tokens",
        "null or string counts are no counts",
        "bool or negative counts are no counts",
        "completions text",
        "completions usage",
    ],
)
def test_a_streamed_event_gives_token_chunks_and_usage(
    wire: protocols.OpenAI, chunk: dict[str, object], expected: tuple[int, protocols.Usage]
) -> None:
    assert wire.event(json.dumps(chunk).encode()) == expected


@pytest.mark.parametrize(
    ("wire", "answer", "expected"),
    [
        (CHAT, {"choices": [], "usage": {"prompt_tokens": 46, "completion_tokens": 5}}, U(46, 5)),
        (CHAT, {"choices": []}, U()),
        (COMPLETIONS, {"choices": [], "usage": {"prompt_tokens": 16, "completion_tokens": 8}}, U(16, 8)),
        (protocols.Template(url=yarl.URL(), template="{}"), {"usage": {"prompt_tokens": 4}}, U(4, None)),
        (protocols.Template(url=yarl.URL(), template="{}"), {"predictions": [1]}, U()),
    ],
    ids=["chat", "chat without usage", "completions", "any JSON with usage", "any JSON without"],
)
def test_a_whole_answer_gives_its_usage(
    wire: protocols.WireProtocol, answer: dict[str, object], expected: protocols.Usage
) -> None:
    assert wire.answer(json.dumps(answer).encode()) == expected


def test_an_error_in_an_answer_or_a_stream_is_a_stream_error() -> None:
    for read in (CHAT.answer, CHAT.event):
        with pytest.raises(records.StreamError, match="out of memory"):
            read(b'{"error": {"message": "out of memory"}}')
