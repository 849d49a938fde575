"""SQLite state of the API: deployments (the payload as posted), their decisions and time series.

Standard library sqlite3 in WAL mode, one file under the user's data directory
(`$XDG_DATA_HOME/swell` or `~/.local/share/swell`, or where the user says). The schema carries a
version (`PRAGMA user_version`); a file that is not a swell store, is corrupted, is locked by
another process or has a newer schema is a clear error, never a silent reset.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swell import errors

SCHEMA_VERSION = 1
APP_ID = 0x5357454C  # "SWEL": PRAGMA application_id marks the file as swell's
FILE_NAME = "api.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    name TEXT PRIMARY KEY,
    payload TEXT NOT NULL,        -- the JSON body as posted (swell recipe or Corrino payload)
    patch TEXT NOT NULL DEFAULT '{}',  -- live changes (PATCH) applied over the payload
    port INTEGER,                 -- the gateway port it got, tried again after a restart
    state TEXT NOT NULL,          -- running | deleted
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    name TEXT NOT NULL, t REAL NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_name ON decisions (name, t);
CREATE TABLE IF NOT EXISTS samples (
    name TEXT NOT NULL, t REAL NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_name ON samples (name, t);
"""


class StoreError(errors.SwellError):
    """The state file cannot be used as it is (corrupted, locked, foreign, newer); says which file."""


def default_dir() -> Path:
    """`$XDG_DATA_HOME/swell`, else `~/.local/share/swell`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "swell"


@dataclass(frozen=True, kw_only=True)
class Row:
    name: str
    payload: dict[str, Any]
    patch: dict[str, Any]
    port: int | None
    created_at: float


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # one server per file: a second `swell api` on the same file is refused, not interleaved
        self._lock = open(path.with_name(path.name + ".lock"), "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StoreError(
                f"{path}: the state file is in use by another swell process (`swell api` or "
                "`swell up --api`); stop it or give another --data-dir"
            ) from None
        try:
            self.db = sqlite3.connect(path, timeout=2.0, isolation_level=None, check_same_thread=False)
            os.chmod(path, 0o600)  # payloads may carry environment values: the owner's only
            self._open()
        except StoreError:
            self.close()
            raise
        except sqlite3.OperationalError as exc:
            self.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(f"{path}: the state file is locked by another process ({exc})") from None
            raise StoreError(f"{path}: cannot open the state file: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(
                f"{path}: not a usable swell state file ({exc}); nothing was changed: move it away "
                "to start afresh, or give another --data-dir"
            ) from None

    def _open(self) -> None:
        db = self.db
        db.execute("PRAGMA busy_timeout = 2000")
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check}")
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables and app_id != APP_ID:
            raise sqlite3.DatabaseError("it is an SQLite database of something else")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this swell's ({SCHEMA_VERSION}); "
                "upgrade swell or give another --data-dir"
            )
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL: never corrupt; a power cut may lose the last second
        db.execute("BEGIN IMMEDIATE")
        try:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute(f"PRAGMA application_id = {APP_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
        self._lock.close()

    # ------------------------------------------------------------------ deployments

    def add(self, name: str, payload: dict[str, Any], created_at: float) -> None:
        self.db.execute(
            "INSERT INTO deployments (name, payload, state, created_at) VALUES (?, ?, 'running', ?)",
            (name, json.dumps(payload), created_at),
        )

    def set_port(self, name: str, port: int) -> None:
        self.db.execute("UPDATE deployments SET port = ? WHERE name = ?", (port, name))

    def set_payload(self, name: str, payload: dict[str, Any]) -> None:
        self.db.execute("UPDATE deployments SET payload = ? WHERE name = ?", (json.dumps(payload), name))

    def set_patch(self, name: str, patch: dict[str, Any]) -> None:
        self.db.execute("UPDATE deployments SET patch = ? WHERE name = ?", (json.dumps(patch), name))

    def remove(self, name: str) -> None:
        """Forget a deployment and its history."""
        for table in ("deployments", "decisions", "samples"):
            self.db.execute(f"DELETE FROM {table} WHERE name = ?", (name,))

    def running(self) -> list[Row]:
        rows = self.db.execute(
            "SELECT name, payload, patch, port, created_at FROM deployments "
            "WHERE state = 'running' ORDER BY created_at"
        ).fetchall()
        return [
            Row(name=n, payload=json.loads(p), patch=json.loads(pa), port=port, created_at=c)
            for n, p, pa, port, c in rows
        ]

    # ------------------------------------------------------------------ history

    def add_decision(self, name: str, t: float, body: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO decisions VALUES (?, ?, ?)", (name, t, json.dumps(body)))

    def add_sample(self, name: str, t: float, body: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO samples VALUES (?, ?, ?)", (name, t, json.dumps(body)))

    def decisions(self, name: str, since: float = 0.0, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT body FROM (SELECT t, body FROM decisions WHERE name = ? AND t > ? "
            "ORDER BY t DESC LIMIT ?) ORDER BY t",
            (name, since, limit),
        ).fetchall()
        return [json.loads(b) for (b,) in rows]

    def samples(self, name: str, since: float = 0.0, limit: int = 5000) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT body FROM (SELECT t, body FROM samples WHERE name = ? AND t > ? "
            "ORDER BY t DESC LIMIT ?) ORDER BY t",
            (name, since, limit),
        ).fetchall()
        return [json.loads(b) for (b,) in rows]

    def prune(self, before: float) -> None:
        """Drop history older than `before` (bounded disk for long runs)."""
        for table in ("decisions", "samples"):
            self.db.execute(f"DELETE FROM {table} WHERE t < ?", (before,))
