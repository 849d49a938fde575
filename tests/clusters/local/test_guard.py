"""The per-replica guard run as swell runs it (its own session), with real child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swell import errors
from swell.clusters.local import procs
from tests.clusters.local import helpers

pytestmark = pytest.mark.timeout(60)


def guard(*argv: str, grace_s: float = 5.0) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-I", "-S", str(procs.GUARD), str(grace_s), str(os.getpid()), "--", *argv]
    return subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE)


def finish(p: subprocess.Popen[bytes]) -> tuple[int, str]:
    _, err = p.communicate(timeout=30)
    return p.returncode, err.decode()


@pytest.mark.parametrize(
    ("script", "code"),
    [("exit 3", 3), ("exit 0", 0), ("kill -TERM $$", -signal.SIGTERM), ("kill -KILL $$", -signal.SIGKILL)],
)
def test_the_server_exit_is_the_guard_exit(script: str, code: int) -> None:
    assert finish(guard("sh", "-c", script)) == (code, "")


def test_a_command_that_cannot_start_is_named() -> None:
    code, err = finish(guard("/nonexistent/server"))
    assert code == 127 and "cannot start '/nonexistent/server'" in err


def test_a_server_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    p = guard("sh", "-c", "trap '' TERM; echo up >&2; sleep 30", grace_s=0.5)
    assert p.stderr is not None and p.stderr.readline() == b"up\n"
    os.killpg(p.pid, signal.SIGTERM)  # as swell stops a replica: the whole group
    assert finish(p)[0] == -signal.SIGKILL


def test_sigterm_to_the_guard_alone_from_someone_else_reaches_the_server() -> None:
    p = guard("sh", "-c", "echo up >&2; exec sleep 30")
    assert p.stderr is not None and p.stderr.readline() == b"up\n"
    subprocess.run(["kill", "-TERM", str(p.pid)], check=True)  # not from swell's pid
    assert finish(p)[0] == -signal.SIGTERM  # the server got it at once, not SIGKILL after 5 s


def test_children_that_left_the_group_die_with_the_server(tmp_path: Path) -> None:
    pid_file = tmp_path / "escapee"
    escape = f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 30' & sleep 0.2; exit 4"
    p = guard("sh", "-c", escape)
    assert finish(p)[0] == 4
    escapee = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while helpers.alive(escapee) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not helpers.alive(escapee)


@pytest.mark.parametrize(
    "env", [{"A": "a\0b"}, {"A=B": "x"}], ids=["a NUL byte in a value", "'=' in a name"]
)
async def test_an_environment_the_os_refuses_is_an_engine_error_not_a_hang(env: dict[str, str], tmp_path: Path) -> None:
    """A recipe refuses these; a start from elsewhere (a resumed store) must fail the start, which
    the replica manager reports and retries, not raise what it does not catch."""
    with pytest.raises(errors.EngineError, match="cannot start 'true'"):
        await procs.spawn(["true"], {"PATH": os.environ["PATH"], **env}, tmp_path / "log", 1.0)


async def test_a_log_that_cannot_be_written_fails_the_start_by_name() -> None:
    with pytest.raises(errors.EngineError, match=r"cannot write its log /proc/swell-no-such/r\.log"):
        await procs.spawn(["true"], dict(os.environ), Path("/proc/swell-no-such/r.log"), 1.0)
