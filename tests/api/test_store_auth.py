"""The state file refuses what it cannot use (never a silent reset); the token file is 0600."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from swell import errors
from swell.api import auth, sampler, store


def test_store_round_trip_and_schema_version(tmp_path: Path) -> None:
    s = store.Store(tmp_path / "api.sqlite3")
    s.add("a", {"service": {"name": "a"}}, 1.0)
    s.set_patch("a", {"max_replicas": 2})
    s.add_decision("a", 2.0, {"t": 2.0})
    s.close()
    s = store.Store(tmp_path / "api.sqlite3")
    [row] = s.running()
    assert row.name == "a" and row.patch == {"max_replicas": 2}
    assert s.decisions("a") == [{"t": 2.0}]
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    s.close()


def test_corrupted_file_is_an_error_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "api.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(store.StoreError, match="not a usable swell state file"):
        store.Store(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_foreign_and_newer_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(store.StoreError, match="something else"):
        store.Store(other)
    newer = tmp_path / "newer.sqlite3"
    store.Store(newer).close()
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(store.StoreError, match="newer"):
        store.Store(newer)


def test_file_in_use_is_refused(tmp_path: Path) -> None:
    first = store.Store(tmp_path / "api.sqlite3")
    with pytest.raises(store.StoreError, match="in use"):
        store.Store(tmp_path / "api.sqlite3")
    first.close()
    store.Store(tmp_path / "api.sqlite3").close()


def test_token_generated_once_0600_and_checked(tmp_path: Path) -> None:
    tok = auth.load_or_create(tmp_path)
    assert tok.created and (tmp_path / auth.FILE_NAME).stat().st_mode & 0o777 == 0o600
    again = auth.load_or_create(tmp_path)
    assert not again.created and again.value == tok.value
    assert auth.check(None, tok.value) == 401
    assert auth.check("Basic abc", tok.value) == 401
    assert auth.check("Bearer nope", tok.value) == 403
    assert auth.check(f"Bearer {tok.value}", tok.value) == 200
    (tmp_path / auth.FILE_NAME).chmod(0o644)
    with pytest.raises(errors.SwellError, match="readable by others"):
        auth.load_or_create(tmp_path)
    with pytest.raises(errors.SwellError, match="16 characters"):
        auth.load_or_create(tmp_path, "short")


def test_quantile_between_snapshots() -> None:
    before = ((0.1, 0.0), (1.0, 10.0), (float("inf"), 10.0))
    now = ((0.1, 0.0), (1.0, 20.0), (float("inf"), 30.0))
    # 20 new: 10 in (0.1, 1], 10 above 1
    assert sampler.quantile(0.25, now, before) == pytest.approx(0.1 + 0.9 * 0.5)
    assert sampler.quantile(0.95, now, before) == 1.0  # beyond the last finite bound: that bound
    assert sampler.quantile(0.5, before, before) is None  # nothing observed: no value, not zero
