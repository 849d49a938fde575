"""Prompts from a file (`swell bench --prompts FILE`): JSON lines or a ShareGPT JSON file.

JSON lines, one request a line: `{"prompt": "..."}` (sent as the completion prompt, or as one user
message in chat) or `{"messages": [{"role": ..., "content": "..."}, ...]}` (sent as is in chat;
their contents joined by newlines as a completion prompt), with optional `"max_tokens"` or
`"output_tokens"` for that request. Blank lines are skipped.

ShareGPT (a JSON list: a file starting with `[` whose first line is not JSON alone, or that is
one line): a list of `{"conversations": [{"from": "human",
"value": ...}, {"from": "gpt", "value": ...}, ...]}`; the first human turn is the prompt and the
first gpt turn's length in words the output length (as `vllm bench serve --dataset-name sharegpt`
uses it, counting words rather than tokens). Conversations without both turns are skipped.

Request i uses entry i mod N: the file in order, again from its start when the run sends more;
`shuffled(seed)` draws the order from the run's seed instead (what vLLM's bench does by default).
A bad file raises errors.RecipeError naming the file, the line (JSONL) or entry (ShareGPT), and
the rule.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from swell import errors, files

JSONL, SHAREGPT = "jsonl", "sharegpt"
MAX_CHARS = 1_000_000_000  # a prompts file (ShareGPT's is 0.7 GB): a device such as /dev/zero stops here
MAX_PROBLEMS = 20  # a file wrong on every line: report the first ones


@dataclass(frozen=True, kw_only=True, slots=True)
class Entry:
    """One request's prompt: its text (or chat messages) and output length, where the file gives it."""

    text: str  # the prompt (for messages: their contents joined by newlines)
    messages: tuple[dict[str, str], ...] | None = None
    output_tokens: int | None = None

    @property
    def words(self) -> int:
        """The input length recorded when the server gives no count: the prompt's words."""
        return len(self.text.split())


@dataclass(frozen=True, kw_only=True)
class Prompts:
    path: str
    format: str  # JSONL or SHAREGPT
    entries: tuple[Entry, ...]
    skipped: int = 0  # ShareGPT conversations without a human and a gpt turn
    order: str = "in order"

    def entry(self, index: int) -> Entry:
        return self.entries[index % len(self.entries)]

    def shuffled(self, seed: int) -> Prompts:
        """The same entries in an order drawn from `seed` (the same seed, the same order)."""
        perm = np.random.default_rng(seed).permutation(len(self.entries))
        return replace(self, entries=tuple(self.entries[i] for i in perm), order=f"shuffled with seed {seed}")

    @property
    def description(self) -> str:
        return f"prompts from {self.path} ({self.format}, {len(self.entries)} {self.order})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": "file",
            "path": self.path,
            "format": self.format,
            "entries": len(self.entries),
            "skipped": self.skipped,
            "order": f"{self.order}, cycling",
        }


SYNTHETIC = {"source": "synthetic"}  # what the JSON says when no file was given


def _length(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _messages(value: object) -> tuple[dict[str, str], ...] | None:
    if not isinstance(value, list) or not value:
        return None
    out = []
    for m in value:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            return None
        out.append({"role": m["role"], "content": m["content"]})
    return tuple(out)


def _jsonl_entry(obj: object) -> Entry | str:
    """An Entry, or the rule the line breaks."""
    if not isinstance(obj, dict):
        return f"wrong type: each line must be a JSON object, not {type(obj).__name__}"
    has_prompt, has_messages = "prompt" in obj, "messages" in obj
    if not has_prompt and not has_messages:
        return 'missing prompt: give "prompt" (text) or "messages" (a list of chat messages)'
    if has_prompt and has_messages:
        return 'give "prompt" or "messages", not both'
    lengths = [k for k in ("max_tokens", "output_tokens") if k in obj]
    if len(lengths) > 1:
        return 'give "max_tokens" or "output_tokens", not both'
    out = obj[lengths[0]] if lengths else None
    if out is not None and not _length(out):
        return f'wrong type: "{lengths[0]}" must be an integer >= 1'
    if has_prompt:
        prompt = obj["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            return 'wrong type: "prompt" must be a non-empty string'
        return Entry(text=prompt, output_tokens=out)
    messages = _messages(obj["messages"])
    if messages is None:
        return 'wrong type: "messages" must be a non-empty list of {"role": text, "content": text}'
    return Entry(text="\n".join(m["content"] for m in messages), messages=messages, output_tokens=out)


def _jsonl(name: str, text: str) -> Prompts:
    entries, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            got: Entry | str = _jsonl_entry(json.loads(line))
        except ValueError as exc:
            got = f"not JSON ({exc})"
        except RecursionError:
            got = "nested too deeply to be a prompt"
        if isinstance(got, str):
            problems.append(errors.Problem(path=f"line {number}", value=line.strip(), rule=got))
            if len(problems) >= MAX_PROBLEMS:
                break
        else:
            entries.append(got)
    if problems:
        raise errors.RecipeError(f"prompts file {name}", problems)
    return Prompts(path=name, format=JSONL, entries=tuple(entries))


def _turn(conversation: list[Any], who: str) -> str | None:
    for turn in conversation:
        if isinstance(turn, dict) and turn.get("from") == who and isinstance(turn.get("value"), str):
            return str(turn["value"])
    return None


def _sharegpt(name: str, text: str) -> Prompts:
    try:
        data = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        where = f"line {line}" if line else "file"
        raise errors.RecipeError(
            f"prompts file {name}", [errors.Problem(path=where, value=text[:80], rule=f"not JSON ({exc})")]
        ) from None
    if not isinstance(data, list):  # (a file starting with '[' that parses is a list)
        raise errors.RecipeError(
            f"prompts file {name}",
            [errors.Problem(path="file", value=type(data).__name__, rule="wrong type: must be a JSON list")],
        )
    entries, problems, skipped = [], [], 0
    for number, item in enumerate(data, start=1):
        conversation = item.get("conversations") if isinstance(item, dict) else None
        if not isinstance(conversation, list):
            rule = 'wrong type: each entry must be an object with a "conversations" list'
            problems.append(errors.Problem(path=f"entry {number}", value=item, rule=rule))
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        human, gpt = _turn(conversation, "human"), _turn(conversation, "gpt")
        if human is None or gpt is None or not human.strip():
            skipped += 1
            continue
        entries.append(Entry(text=human, output_tokens=max(1, len(gpt.split()))))
    if problems:
        raise errors.RecipeError(f"prompts file {name}", problems)
    if not entries:
        rule = 'empty file: no conversation has a "human" and a "gpt" turn'
        raise errors.RecipeError(
            f"prompts file {name}", [errors.Problem(path="file", value=len(data), rule=rule)]
        )
    return Prompts(path=name, format=SHAREGPT, entries=tuple(entries), skipped=skipped)


def load(path: str | pathlib.Path) -> Prompts:
    """The prompts of the file at `path` (JSON lines, or ShareGPT JSON when it starts with '[')."""
    name = str(path)
    try:  # a byte-order mark, as some editors write, is no prompt
        text = files.read_text(path, MAX_CHARS, encoding="utf-8-sig")
    except files.Unreadable as exc:
        raise errors.RecipeError(f"prompts file {name}", [errors.Problem(path="file", value=name, rule=str(exc))]) from None
    if not text.strip():
        problem = errors.Problem(path="file", value=name, rule="empty file: no requests")
        raise errors.RecipeError(f"prompts file {name}", [problem])
    return _sharegpt(name, text) if _is_sharegpt(text) else _jsonl(name, text)


def _is_sharegpt(text: str) -> bool:
    """A JSON list: the file starts with '[' and is one line, or its first line is no JSON alone
    (a JSON lines file whose first line is a list is JSON lines, with that line wrong)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines[0].lstrip().startswith("["):
        return False
    if len(lines) == 1:
        return True
    try:
        json.loads(lines[0])
    except ValueError:
        return True
    return False
