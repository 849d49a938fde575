"""Bounded text reads (swell.files): what every file named on a command line or in a recipe goes through."""

from __future__ import annotations

import pathlib

import pytest

from swell import files


@pytest.mark.parametrize(
    ("content", "limit", "rule"),
    [
        pytest.param(b"x" * 11, 10, "longer than 10 characters", id="one-character-past-the-limit-is-refused"),
        pytest.param(b"\xff\xfe", 10, "not UTF-8 text: invalid start byte at byte 0", id="bytes-that-are-not-utf8-are-named"),
    ],
)
def test_refused(tmp_path: pathlib.Path, content: bytes, limit: int, rule: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    with pytest.raises(files.Unreadable, match=rule):
        files.read_text(path, limit)


def test_exactly_the_limit_is_read(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "f"
    path.write_text("é" * 10, encoding="utf-8")  # characters, not bytes
    assert files.read_text(path, 10) == "é" * 10


def test_a_device_that_never_ends_stops_at_the_limit() -> None:
    with pytest.raises(files.Unreadable, match="longer than 1,000 characters"):
        files.read_text("/dev/zero", 1000)


def test_a_folder_or_missing_file_says_why(tmp_path: pathlib.Path) -> None:
    with pytest.raises(files.Unreadable, match="cannot read file: Is a directory"):
        files.read_text(tmp_path, 10)
    with pytest.raises(files.Unreadable, match="cannot read file: No such file or directory"):
        files.read_text(tmp_path / "nope", 10)


def test_a_write_that_fails_after_the_open_names_the_path() -> None:
    # /dev/full opens, then refuses every write: Python's error then carries no file name
    with pytest.raises(OSError) as info:
        files.write_text("/dev/full", "x" * 10_000)
    assert info.value.filename == "/dev/full" and info.value.strerror == "No space left on device"


def test_a_write_makes_its_folder(tmp_path: pathlib.Path) -> None:
    files.write_text(tmp_path / "a" / "b.json", "{}")
    assert (tmp_path / "a" / "b.json").read_text() == "{}"
