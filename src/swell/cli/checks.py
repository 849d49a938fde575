"""Checks of command-line options shared by several commands, as errors.RecipeError naming the
option, the value and the rule (so the CLI prints a message, never a traceback)."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
import sys
import tempfile
import typing
from pathlib import Path

from swell import errors, recipe

POLICY_NAMES: tuple[str, ...] = typing.get_args(recipe.PolicyName)


def policy(name: str | None, rec: recipe.Recipe | None = None) -> str | None:
    """`name` if it is a policy a recipe may name (or None: the recipe's own), and, given the
    recipe, one it can run (the checks the recipe's validator makes of its own `policy`)."""
    rule = ""
    if name is not None and name not in POLICY_NAMES:
        rule = f"one of {', '.join(POLICY_NAMES)}"
    elif name == "panic" and rec is not None and rec.autoscaling.panic is None:
        rule = "policy 'panic' needs the recipe's autoscaling.panic section (the signal its windows read)"
    if rule:
        raise errors.RecipeError("--policy", [errors.Problem(path="--policy", value=name, rule=rule)])
    return name


def output_file(option: str, path: Path | None, *, stdout: bool = False) -> None:
    """Refuse, before any work, an output file that cannot be written: a directory, a path under a
    file, or a folder that cannot be written to (a missing folder is fine: the writers make it).
    `stdout`: '-' means standard output (else it is refused, not written as a file named '-')."""
    if path is None:
        return
    rule = ""
    if str(path) == "-":
        rule = "" if stdout else "standard output ('-') is not offered here: give a file name"
    elif path.is_dir():
        rule = "is a directory: give a file name"
    else:
        above = _above(path)
        if not above.is_dir():
            rule = f"{above} is a file, not a directory"
        elif not os.access(above, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            rule = "cannot be written here (permissions)"
        elif not path.exists():
            rule = _try_folder(path.parent)
    if rule:
        raise_problems(option, [errors.Problem(path=option, value=str(path), rule=rule)])


def _try_folder(folder: Path) -> str:
    """'' if a file can be made in `folder` (made now if missing), else why not: permissions say
    nothing to root, and a folder such as /proc refuses new files to everyone."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"cannot write in {folder}: {exc.strerror or exc}"
    return ""


def _above(path: Path) -> Path:
    """The nearest folder above `path` that exists (or the working directory): where the writer
    makes the rest, unless it is a file."""
    return next((p for p in path.parents if p.exists()), Path("."))


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # a Kubernetes namespace (RFC 1123 label)


def namespace_problems(option: str, value: str | None, *, many: bool = False) -> list[errors.Problem]:
    """A namespace (or, `many`, a comma-separated list of them) that Kubernetes would refuse."""
    if value is None:
        return []
    names = [n.strip() for n in value.split(",") if n.strip()] if many else [value]  # '' or 'a,': as the runtime reads it
    rule = ("a Kubernetes namespace: lower-case letters, digits and '-', starting and ending with a letter "
            "or digit, at most 63 characters")  # fmt: skip
    return [errors.Problem(path=option, value=n, rule=rule) for n in names if len(n) > 63 or not DNS_LABEL.match(n)]


def url_problems(option: str, value: str | None) -> list[errors.Problem]:
    """An HTTP(S) URL with a host, e.g. http://prometheus.monitoring:9090 (None passes)."""
    if value is None:
        return []
    why = recipe.http_url_problem(value)
    return [] if why is None else [errors.Problem(path=option, value=value, rule=why)]


def positive_problems(values: dict[str, float]) -> list[errors.Problem]:
    """Each option that is not a finite number > 0."""
    return [
        errors.Problem(path=name, value=v, rule="must be a number > 0")
        for name, v in values.items()
        if not (v > 0 and math.isfinite(v))
    ]


def raise_problems(source: str, problems: list[errors.Problem]) -> None:
    if problems:
        raise errors.RecipeError(source, problems)


def directory(option: str, path: Path | None) -> None:
    """A directory option that can be used: one that exists, or one that can be made (not a file,
    nor inside one)."""
    if path is None:
        return
    rule = ""
    if path.exists() and not path.is_dir():
        rule = "is a file: give a directory"
    elif not (above := _above(path)).is_dir():
        rule = f"{above} is a file, not a directory"
    else:
        rule = _try_folder(path)
    if rule:
        raise_problems(option, [errors.Problem(path=option, value=str(path), rule=rule)])


HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*\.?$")


def host(option: str, value: str) -> None:
    """An address to listen on: an IP address or a host name (RFC 1123)."""
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    if not HOSTNAME.match(value):
        raise_problems(option, [errors.Problem(path=option, value=value,
                                               rule="an IP address or a host name, e.g. 127.0.0.1 or ::1")])  # fmt: skip


LOG_LEVELS = ("debug", "info", "warning", "warn", "error", "critical")  # the logging module's names


def log_level_problems(value: str) -> list[errors.Problem]:
    if value.lower() in LOG_LEVELS:
        return []
    return [errors.Problem(path="--log-level", value=value, rule=f"one of {', '.join(LOG_LEVELS)}")]


def start_logging(level: str) -> None:
    """One line per record, with time, level and module (a long-running command's log)."""
    logging.basicConfig(level=getattr(logging, level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def stdin_text(option: str, limit: int = recipe.MAX_TEXT) -> str:
    """Standard input (the file `-`) as UTF-8 text of at most `limit` bytes, or a RecipeError as
    for a file that is not (never one problem per line of undecodable bytes)."""
    raw = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else None
    data = raw.read(limit + 1) if raw is not None else sys.stdin.read(limit + 1).encode("utf-8", "surrogateescape")
    if len(data) > limit:
        raise errors.RecipeError("-", [errors.Problem(path=option, value="-", rule=f"longer than {limit:,} bytes")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        raise errors.RecipeError("-", [errors.Problem(path=option, value="-", rule=why)]) from None
