"""Replica processes that never outlive swell: a guard per replica, own process group, cleanup.

Each replica's server runs under its guard (`guard.py`: a child subreaper that kills whatever the
server left behind, even processes that left its group) in a new session (its own process group,
so SIGTERM/SIGKILL reach the server's children too). Linux's PR_SET_PDEATHSIG, set before exec,
sends the guard SIGTERM if swell dies, even by SIGKILL: it stops the group on swell's behalf.
Groups still alive at interpreter exit are killed by an atexit hook, so Ctrl-C, SIGTERM and
exceptions leave nothing behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import functools
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from swell import errors

PR_SET_PDEATHSIG = 1
GUARD = Path(__file__).with_name("guard.py")
GUARD_MARGIN_S = 2.0  # swell kills the group itself only if the guard has not finished by grace + this
_live_groups: set[int] = set()


# looked up once here: the child between fork and exec must not dlopen (another thread may hold
# the loader's lock at fork time), only call
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _set_parent_death_signal(parent: int) -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # the guard stops the group, then exits
        # the parent may have died between fork and prctl: then nobody would kill us later
        if os.getppid() != parent:
            os._exit(1)


def guarded(argv: Sequence[str], grace_s: float) -> list[str]:
    """`argv` under its guard; on other systems than Linux (no subreaper, no parent-death signal,
    which the guard needs) `argv` as it is."""
    if _prctl is None:
        return list(argv)
    return [sys.executable, "-I", "-S", str(GUARD), f"{grace_s:g}", str(os.getpid()), "--", *argv]


async def spawn(
    argv: Sequence[str], env: dict[str, str], log_path: Path, grace_s: float
) -> asyncio.subprocess.Process:
    """Start `argv` (no shell) under its guard in its own process group, output appended to
    `log_path`; `grace_s` is how long the guard lets it stop after SIGTERM."""
    if not argv or shutil.which(argv[0], path=env.get("PATH")) is None:
        what = repr(argv[0]) if argv else "an empty command"
        raise errors.EngineError(f"cannot start {what}: not found or not executable")
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log: IO[bytes] = log_path.open("ab")
    except OSError as exc:  # a run directory that cannot be written: the start fails, named
        raise errors.EngineError(f"cannot write its log {log_path}: {exc.strerror or exc}") from None
    try:
        proc = await asyncio.create_subprocess_exec(
            *guarded(argv, grace_s),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=functools.partial(_set_parent_death_signal, os.getpid()),
        )
    except OSError as exc:
        raise errors.EngineError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
    except ValueError as exc:  # an environment the OS cannot take (a NUL byte, '=' in a name)
        raise errors.EngineError(f"cannot start {argv[0]!r}: {exc}") from None
    finally:
        log.close()  # the child holds its own copy of the descriptor
    _live_groups.add(proc.pid)
    return proc


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def terminate(proc: asyncio.subprocess.Process, grace_s: float) -> int | None:
    """SIGTERM the process group; the guard SIGKILLs the server after `grace_s` and sweeps what
    is left; swell SIGKILLs the group only if the guard has not finished shortly after that.
    Returns the exit code."""
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace_s + GUARD_MARGIN_S)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    # children that ignored SIGTERM after their leader exited still share the group
    _signal_group(proc.pid, signal.SIGKILL)
    _live_groups.discard(proc.pid)
    return proc.returncode


def forget(proc: asyncio.subprocess.Process) -> None:
    """The process exited on its own: kill what is left of its group and stop tracking it."""
    _signal_group(proc.pid, signal.SIGKILL)
    _live_groups.discard(proc.pid)


def kill_all() -> None:
    """SIGKILL every replica group still alive (atexit; also safe to call directly)."""
    for pid in list(_live_groups):
        _signal_group(pid, signal.SIGKILL)
        _live_groups.discard(pid)


def live_groups() -> frozenset[int]:
    return frozenset(_live_groups)


def log_tail(path: Path, lines: int = 8) -> str:
    """The last lines of a replica's log, for error messages."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


atexit.register(kill_all)
