"""The guard: one small process per replica that makes sure nothing the server started outlives it.

`python -I -S guard.py GRACE_S SWELL_PID -- ARGV...` (standard library only, so it starts in a few
tens of milliseconds and loads nothing of swell). It becomes a child subreaper, starts ARGV as its
only child (same process group; parent-death signal SIGKILL), and waits:

- the server exits: every process left below the guard is killed, and the guard exits the same
  way (same code, or the same signal), so swell sees the server's own exit;
- SIGTERM from swell: swell has signalled the whole group already; the guard gives the server
  GRACE_S seconds, then kills it, then everything below it; SIGTERM from anyone else (to the
  guard alone): the guard passes it on to the group first;
- SIGTERM because swell died (the parent-death signal, even after SIGKILL of swell): the guard
  SIGTERMs the group on swell's behalf and does the same.

Processes that left the group (setsid, double fork: TorchServe's Java frontend and its workers,
vLLM's engine processes...) are reparented to the guard, not to init, when their parent dies, so
"everything below the guard" is found by walking /proc from the guard's pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
WATCHED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
SWEEP_S = 3.0  # how long to keep killing and reaping what is left below the guard


def _prctl(option: int, arg: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)


def descendants(root: int) -> list[int]:
    """Every live process below `root` (from /proc; zombies included, they are reaped after)."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            parent_of[int(entry)] = int(fields[1])
    below: list[int] = []
    frontier = [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        below += kids
        frontier += kids
    return below


def reap() -> list[tuple[int, int]]:
    """Collect every exited child (the server, and orphans reparented to the guard)."""
    done: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))


def sweep() -> None:
    """SIGKILL everything below the guard until nothing is left (bounded)."""
    end = time.monotonic() + SWEEP_S
    while time.monotonic() < end:
        left = descendants(os.getpid())
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
        reap()


def stop_group(server: int) -> None:
    """SIGTERM the guard's process group, or only the server if the guard leads no group of its
    own (started by hand: the group is then its caller's)."""
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGTERM)
    else:
        os.kill(server, signal.SIGTERM)


def start(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:  # the server: default signal mask, killed if the guard dies
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, WATCHED)
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(2, f"swell guard: cannot start {argv[0]!r}: {exc.strerror or exc}\n".encode())
        os._exit(127)
    return pid


def run(grace_s: float, swell_pid: int, argv: list[str]) -> int:
    """Returns the server's wait status once it and everything below the guard are gone."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    server = start(argv)
    deadline: float | None = None
    while True:
        timeout = 1.0 if deadline is None else max(0.02, deadline - time.monotonic())
        got = signal.sigtimedwait(WATCHED, timeout)
        for pid, status in reap():
            if pid == server:
                sweep()
                return status
        orphaned = os.getppid() != swell_pid
        stop = got is not None and got.si_signo != signal.SIGCHLD
        if deadline is None and (stop or orphaned):
            deadline = time.monotonic() + grace_s
            # swell signals the whole group itself; a second SIGTERM would make some servers
            # (uvicorn, vLLM) skip their graceful shutdown. Anyone else (or swell's death, which
            # leaves the guard orphaned) told only the guard: pass it on to the group.
            if orphaned or (got is not None and got.si_pid != swell_pid):
                stop_group(server)
        elif deadline is not None and time.monotonic() >= deadline:
            os.kill(server, signal.SIGKILL)


def exit_like(status: int) -> None:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def main(args: list[str]) -> None:
    if len(args) < 4 or args[2] != "--":
        sys.exit("usage: guard.py GRACE_S SWELL_PID -- ARGV...")
    exit_like(run(float(args[0]), int(args[1]), args[3:]))


if __name__ == "__main__":
    main(sys.argv[1:])
