"""Bounded reads of text files named on a command line or in a recipe.

Every read stops at a limit (a device such as /dev/zero, or a file meant as something else, never
ends or fills memory) and every failure is one sentence a caller puts on its field or option."""

from __future__ import annotations

from pathlib import Path


class Unreadable(Exception):
    """Why a file could not be read as text: the message is the rule, without the file's name."""


def read_text(path: str | Path, limit: int, encoding: str = "utf-8") -> str:
    """The file's text, at most `limit` characters; Unreadable when it is longer, not text in
    `encoding`, or cannot be opened."""
    try:
        with Path(path).open(encoding=encoding) as f:
            text = f.read(limit + 1)
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except OSError as exc:
        raise Unreadable(f"cannot read file: {exc.strerror}") from None
    if len(text) > limit:
        raise Unreadable(f"longer than {limit:,} characters")
    return text


def write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path`, its folder made first; an OSError always names the path (a
    write that fails after the open, as on /proc, says only "Input/output error" otherwise)."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror, str(p)) from None
