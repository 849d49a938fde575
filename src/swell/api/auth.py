"""The API's bearer token: given by the user, or generated at first start and kept 0600.

Every request but /metrics and /healthz must carry `Authorization: Bearer TOKEN`; none is a 401,
a wrong one a 403. The comparison is constant-time (hmac.compare_digest). The dashboard keeps the
token in the browser (a login form or the URL fragment, which is never sent to the server).
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from swell import errors

FILE_NAME = "api-token"
OPEN_PATHS = frozenset({"/metrics", "/healthz"})  # no token: Prometheus and liveness probes
PUBLIC_PREFIXES = ("/static/", "/vendor/")  # the dashboard's own files (no data in them)
PUBLIC_PAGES = frozenset({"/", "/favicon.ico"})


@dataclass(frozen=True, kw_only=True)
class Token:
    value: str
    path: Path | None  # where it is kept (None: given by the user, not stored)
    created: bool  # generated now: print it once


def load_or_create(directory: Path, given: str | None = None) -> Token:
    """The user's token, else the stored one, else a new one written 0600 (created=True)."""
    if given is not None:
        if len(given) < 16:
            raise errors.SwellError("--token: at least 16 characters (a guessable token protects nothing)")
        return Token(value=given, path=None, created=False)
    path = directory / FILE_NAME
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise errors.SwellError(
                f"{path}: the token file is readable by others (mode {mode:o}); chmod 600 it"
            )
        value = path.read_text(encoding="utf-8").strip()
        if len(value) < 16:
            raise errors.SwellError(f"{path}: the token file holds no usable token; remove it for a new one")
        return Token(value=value, path=path, created=False)
    directory.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return Token(value=value, path=path, created=True)


def needs_token(path: str) -> bool:
    return not (path in OPEN_PATHS or path in PUBLIC_PAGES or path.startswith(PUBLIC_PREFIXES))


def check(header: str | None, token: str) -> int:
    """200 when `header` carries the token, 401 when it carries none, 403 when another."""
    if not header:
        return 401
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return 401
    # a header's bytes that are not UTF-8 come as surrogates: they are no token, not an error
    ok = hmac.compare_digest(value.strip().encode("utf-8", "surrogateescape"), token.encode())
    return 200 if ok else 403
