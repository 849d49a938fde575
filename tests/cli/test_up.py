"""`swell up` and `swell demo` as a user runs them: a real process, real signals, no orphan left.

Ctrl-C (SIGINT) and SIGTERM stop every replica; SIGKILL of swell itself leaves none either (the
kernel's parent-death signal); the demo ends with a summary and an HTML report.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import rich.console
import yaml

from swell import recipe
from swell.cli import up as up_cmd
from swell.clusters.local import gateway
from swell.clusters.local import replicas as replicas_mod
from swell.control import history
from swell.core import decision, load, snapshot
from swell.runtime import local
from tests.clusters.local import helpers
from tests.clusters.local.helpers import no_replica_left  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def write_recipe(path: Path, **kw: object) -> Path:
    rec = helpers.tiny_recipe(**kw)  # type: ignore[arg-type]
    path.write_text(yaml.safe_dump(rec.model_dump(mode="json", by_alias=True, exclude_defaults=True)))
    return path


class Swell:
    """`python -m swell.cli.main ARGS` with its output collected line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def finish(self, timeout_s: float = 60.0) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout_s)
        await self._reader
        return code


@pytest.fixture
async def swell() -> AsyncIterator[list[Swell]]:
    started: list[Swell] = []
    yield started
    for s in started:  # a failed test must not leave swell (or its replicas) running
        if s.proc.returncode is None:
            for pid in helpers.children(s.proc.pid):
                os.kill(pid, signal.SIGKILL)
            s.proc.kill()
            await s.proc.wait()
        s._reader.cancel()


async def start(started: list[Swell], *args: str) -> Swell:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swell.cli.main", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    s = Swell(proc)
    started.append(s)
    return s


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
async def test_up_serves_then_stops_every_replica(tmp_path: Path, swell: list[Swell], sig: int) -> None:
    recipe_file = write_recipe(tmp_path / "tiny.yaml", autoscaling={"min_replicas": 2, "max_replicas": 2})
    s = await start(swell, "up", str(recipe_file), "--run-dir", str(tmp_path / "run"))
    await helpers.wait_until(lambda: "ready 2" in s.output, "two ready replicas in the status", 60)
    assert "serving on http://127.0.0.1:" in s.output
    replicas = helpers.children(s.proc.pid)
    assert len(replicas) == 2
    s.proc.send_signal(sig)
    assert await s.finish() == 0, s.output
    assert "stopped; no replica left running" in s.output
    assert not [p for p in replicas if helpers.alive(p)]


async def test_up_watch_puts_each_edit_of_the_file_onto_the_running_service(
    tmp_path: Path, swell: list[Swell]
) -> None:
    path = tmp_path / "tiny.yaml"
    write_recipe(path, autoscaling={"min_replicas": 1, "max_replicas": 2})
    s = await start(swell, "up", str(path), "--watch", "--run-dir", str(tmp_path / "run"))
    await helpers.wait_until(lambda: "ready 1" in s.output, "a ready replica", 60)
    first = set(helpers.children(s.proc.pid))

    write_recipe(path, autoscaling={"min_replicas": 1, "max_replicas": 3})
    await helpers.wait_until(lambda: "changed: applied at once: autoscaling.max_replicas: 2 -> 3" in s.output,
                             "the scaling edit applied", 30)  # fmt: skip
    assert set(helpers.children(s.proc.pid)) == first  # no replica restarted for it

    write_recipe(path, autoscaling={"min_replicas": 1, "max_replicas": 3}, extra=("--model", "v2"))
    await helpers.wait_until(lambda: "every replica runs the edited" in s.output, "the service edit rolled", 60)
    assert "rolling its replicas onto it one at a time: service.command" in s.output
    await helpers.wait_until(lambda: not set(helpers.children(s.proc.pid)) & first, "the old replica gone", 30)

    path.write_text("service: {name: tiny}\nautoscaling: {min_replicas: 5, max_replicas: 1}\n")
    await helpers.wait_until(lambda: "changed, not applied (the service runs as it was)" in s.output,
                             "the bad edit refused", 30)  # fmt: skip
    assert "min_replicas" in s.output.split("not applied")[-1]
    s.proc.send_signal(signal.SIGTERM)
    assert await s.finish() == 0, s.output
    assert "Traceback" not in s.output


async def test_no_replica_outlives_a_killed_swell(tmp_path: Path, swell: list[Swell]) -> None:
    recipe_file = write_recipe(tmp_path / "tiny.yaml", autoscaling={"min_replicas": 2, "max_replicas": 2})
    s = await start(swell, "up", str(recipe_file), "--run-dir", str(tmp_path / "run"))
    await helpers.wait_until(lambda: "ready 2" in s.output, "two ready replicas in the status", 60)
    replicas = helpers.children(s.proc.pid)
    assert len(replicas) == 2
    s.proc.kill()  # SIGKILL: no handler, no atexit; only the kernel's parent-death signal is left
    await s.finish()
    await helpers.wait_until(lambda: not [p for p in replicas if helpers.alive(p)], "replicas gone", 10)


async def test_processes_that_left_the_group_die_with_a_killed_swell(
    tmp_path: Path, swell: list[Swell]
) -> None:
    """A server's helper that left its process group (setsid, double fork) is not reached by a
    signal to the group; the replica's guard, a subreaper, still kills it when swell is killed."""
    pids = tmp_path / "escapees"
    recipe_file = write_recipe(tmp_path / "tiny.yaml", extra=("--escapee", str(pids)))
    s = await start(swell, "up", str(recipe_file), "--run-dir", str(tmp_path / "run"))
    await helpers.wait_until(lambda: "ready 1" in s.output, "a ready replica", 60)
    await helpers.wait_until(lambda: pids.exists() and pids.read_text().strip() != "", "the escapee's pid")
    (escapee,) = (int(line) for line in pids.read_text().split())
    assert helpers.alive(escapee) and os.getsid(escapee) != os.getsid(helpers.children(s.proc.pid)[0])
    s.proc.kill()
    await s.finish()
    await helpers.wait_until(lambda: not helpers.alive(escapee), "the escapee gone", 15)


async def test_demo_runs_a_short_black_friday_and_writes_a_report(tmp_path: Path, swell: list[Swell]) -> None:
    recipe_file = write_recipe(tmp_path / "tiny.yaml", delay=0.1)
    report = tmp_path / "demo.html"
    s = await start(
        swell, "demo", "--recipe", str(recipe_file), "--duration", "6", "--base-rps", "2",
        "--port", "0", "--report", str(report),
    )  # fmt: skip
    assert await s.finish(90) == 0, s.output
    assert "demo summary" in s.output and "0 failed" in s.output
    page = report.read_text()
    assert (
        "SLO attainment" in s.output and "scale-ups / downs" in s.output and "machine the limit?" in s.output
    )
    assert "Every decision that changed the replica count" in page and "<img" in page


async def test_up_reports_a_bad_recipe_without_a_traceback(tmp_path: Path, swell: list[Swell]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("service: {name: x, engine: command}\n")
    s = await start(swell, "up", str(bad))
    assert await s.finish() == 1
    assert "command" in s.output and "Traceback" not in s.output


async def test_up_stops_with_why_when_the_first_replica_cannot_start(
    tmp_path: Path, swell: list[Swell]
) -> None:
    """Like sklearn-iris without scikit-learn: the server prints why and exits during start-up."""
    failing = [sys.executable, "-c", "import sys; sys.exit('error: this server needs scikit-learn')"]
    bad = tmp_path / "failing.yaml"
    bad.write_text(yaml.safe_dump({"service": {"name": "iris", "engine": "command", "command": failing},
                                   "local": {"port": 0}}))  # fmt: skip
    s = await start(swell, "up", str(bad), "--run-dir", str(tmp_path / "run"))
    assert await s.finish(60) == 1, s.output
    assert "iris-1 not ready: exited with code 1 before ready" in s.output  # the live status, not a TTY
    assert "failed to start 3 times in a row" in s.output and "needs scikit-learn" in s.output
    assert "Traceback" not in s.output


async def _stream(url: str, started: list[int]) -> str:
    body = {"model": "tiny", "prompt": "hi", "max_tokens": 10, "stream": True}
    async with aiohttp.ClientSession() as s, s.post(url + "/v1/completions", json=body) as r:
        assert r.status == 200
        chunks = [await r.content.readany()]
        started.append(1)  # the stream is under way: the replica is serving it
        async for chunk in r.content.iter_any():
            chunks.append(chunk)
        return b"".join(chunks).decode()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
async def test_stopping_lets_the_streams_in_flight_finish(
    tmp_path: Path, swell: list[Swell], sig: int
) -> None:
    recipe_file = write_recipe(tmp_path / "tiny.yaml", token_delay=0.2)  # 10 tokens: 2 s a stream
    s = await start(swell, "up", str(recipe_file), "--run-dir", str(tmp_path / "run"))
    await helpers.wait_until(lambda: "ready 1" in s.output, "a ready replica", 60)
    port = re.search(r"serving on http://127\.0\.0\.1:(\d+)", s.output)
    assert port is not None
    url = f"http://127.0.0.1:{port.group(1)}"
    started: list[int] = []
    streams = [asyncio.ensure_future(_stream(url, started)) for _ in range(6)]
    await helpers.wait_until(lambda: len(started) == 6, "6 streams under way")
    s.proc.send_signal(sig)
    bodies = await asyncio.wait_for(asyncio.gather(*streams), 30)
    assert all(b.rstrip().endswith("data: [DONE]") and "tok9" in b for b in bodies)  # none cut short
    assert await s.finish() == 0, s.output
    assert "requests in flight finish" in s.output


def test_the_status_shows_the_recipes_signals_and_only_the_planners_reads_that_have_a_value() -> None:
    readings = {
        "concurrency": snapshot.Reading.of(None),
        load.REQUESTS: snapshot.Reading.of(None),  # llama.cpp has no vLLM counters
        load.GATEWAY_REQUESTS: snapshot.Reading.of(0.4),
    }
    assert list(up_cmd.shown(readings)) == ["concurrency", load.GATEWAY_REQUESTS]


@pytest.mark.parametrize(
    ("slo", "expect"),
    [
        pytest.param(
            {"ttft_s": 2.0, "deadline_s": 4.0}, "3 errors (2 shed at the 4 s deadline)", id="with a deadline"
        ),
        pytest.param({"ttft_s": 2.0}, "3 errors, 0 in flight", id="without one: nothing said of shedding"),
    ],
)
def test_the_status_line_says_how_many_requests_were_shed(
    slo: dict[str, float], expect: str, tmp_path: Path
) -> None:
    rec = helpers.tiny_recipe().model_copy(update={"slo": recipe.SLO(**slo)})
    gw = gateway.Stats(
        ready=1, in_flight=0, buffered=0, requests=10, errors=3, shed=2 if "deadline_s" in slo else 0
    )
    st = local.Status(
        endpoint="http://127.0.0.1:1", run_dir=tmp_path, target=1, replicas=(), gateway=gw, last=None
    )
    console = rich.console.Console(width=400, record=True)
    console.print(up_cmd.render_status(rec, st))
    assert expect in console.export_text()


def test_the_status_shows_each_signals_target_and_the_planners_plan(tmp_path: Path) -> None:
    """Under the planner the recipe's signals get no proposal (they are its safety net): their row still
    shows the recipe's target, and the planner's load and forecast come as rows of their own."""
    rec = helpers.tiny_recipe()
    sig = rec.autoscaling.signals[0]
    plan = decision.Decision(t=0.0, policy="swell", current=1, desired=2, bound_by="metrics", reason="r", proposals=(
        decision.Proposal(signal="planner:load", value=1.5, target=0.8, replicas=2, note="vllm counters"),
        decision.Proposal(signal="planner:forecast", value=2.4, target=0.8, replicas=3, note="recent peak"),
    ))  # fmt: skip
    snap = snapshot.Snapshot(now=0.0, current=1, replicas=(), signals={})
    st = local.Status(endpoint="http://127.0.0.1:1", run_dir=tmp_path, target=2, replicas=(),
                      gateway=gateway.Stats(ready=1, in_flight=0, buffered=0, requests=0, errors=0, shed=0),
                      last=history.Entry(decision=plan, snapshot=snap),
                      signals={sig.name: snapshot.Reading.of(0.7)})  # fmt: skip
    console = rich.console.Console(width=400, record=True)
    console.print(up_cmd.render_status(rec, st))
    rows = {line.split()[0]: line.split() for line in console.export_text().splitlines() if line.strip()}
    assert rows[sig.name][1:3] == ["0.7", f"{sig.target:.3g}"]
    assert rows["planner:load"][1:4] == ["1.5", "0.8", "2"] and rows["planner:forecast"][1:4] == ["2.4", "0.8", "3"]


def test_up_names_a_policy_the_recipe_cannot_run() -> None:
    """`swell up --policy panic` on a recipe with no panic section: the option named, no AssertionError."""
    from typer.testing import CliRunner

    from swell.cli import main

    rec = str(Path(__file__).parents[2] / "examples" / "gpt2-vllm-latency-hpa.yaml")  # no panic section
    res = CliRunner().invoke(main.app, ["up", rec, "--policy", "panic"])  # refused before anything starts
    assert res.exit_code == 1 and "AssertionError" not in repr(res.exception)
    assert "--policy: policy 'panic' needs the recipe's autoscaling.panic section" in str(res.exception)


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--watch"], "--watch follows a recipe file: give one"),
     (["RECIPE", "--watch", "--api"], "--watch and --api: PUT the edited recipe to the API instead")],
    ids=["no file to watch", "with the API"],
)  # fmt: skip
def test_up_watch_needs_a_file_and_no_api(tmp_path: Path, args: list[str], says: str) -> None:
    from typer.testing import CliRunner

    from swell.cli import main

    path = write_recipe(tmp_path / "tiny.yaml")
    res = CliRunner().invoke(main.app, ["up", *[str(path) if a == "RECIPE" else a for a in args]])
    assert res.exit_code == 2 and says in res.output


@pytest.mark.parametrize(
    ("state", "reason", "last_error", "said"),
    [
        pytest.param("pending", "no free device slot: 1 GPU a replica, 0 on this machine", "",
                     "r-1 not ready: no free device slot: 1 GPU a replica, 0 on this machine", id="pending-says-why"),
        pytest.param("starting", "restarting in 1.0 s (restart 1): exited with code 1", "exited with code 1",
                     "r-1 not ready: exited with code 1", id="a-restart-says-the-exit-once"),
        pytest.param("starting", "starting: waiting for /health on port 9", "exited with code 1",
                     "r-1 not ready: exited with code 1; starting: waiting for /health on port 9",
                     id="an-old-exit-and-the-state-now"),
        pytest.param("ready", "", "exited with code 1", "", id="a-ready-replica-says-nothing"),
    ],
)  # fmt: skip
def test_the_plain_status_line_says_why_each_replica_is_not_ready(
    state: str, reason: str, last_error: str, said: str, tmp_path: Path
) -> None:
    rep = replicas_mod.ReplicaInfo(name="r-1", state=state, reason=reason, slot="", url=None, pid=None, restarts=0,
                                   created_at=0.0, ready_at=None, last_error=last_error)  # type: ignore[arg-type]  # fmt: skip
    st = local.Status(endpoint="http://127.0.0.1:1", run_dir=tmp_path, target=1, replicas=(rep,),
                      gateway=gateway.Stats(ready=0, in_flight=0, buffered=0, requests=0, errors=0, shed=0), last=None)  # fmt: skip
    line = up_cmd.status_line(st)
    assert (said in line) if said else ("not ready" not in line), line
