"""What a TorchServe replica reports of its workers' memory (`memoryUsage` in GET /models/NAME)
and what runs beside them (/proc). No TorchServe needed: the real one is in test_torchserve.py."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from swell.clusters.local import memory
from swell.engines import torchserve


def worker(status: str, usage: float, pid: int) -> dict[str, Any]:
    return {"id": str(9000 + pid), "status": status, "memoryUsage": usage, "pid": pid}


@pytest.mark.parametrize(
    ("listed", "want_memory", "want_pids"),
    [
        ([worker("READY", 200e6, 11), worker("READY", 300e6, 12)], 250e6, (11, 12)),
        ([worker("READY", 0, 11), worker("READY", 0, 12)], None, (11, 12)),
        ([worker("READY", 200e6, 11), worker("READY", 0, 12)], 200e6, (11, 12)),
        ([worker("READY", 200e6, 11), worker("UNLOADING", 900e6, 12)], 200e6, (11, 12)),
        ([worker("WORKER_STARTED", 0, -1)], None, ()),
        ([], None, ()),
    ],
    ids=[
        "the average over the READY workers",
        "0 before TorchServe's first measurement is no measurement",
        "a worker not measured yet is left out of the average",
        "a worker that is not READY is left out",
        "a starting worker has no pid yet",
        "no workers listed",
    ],
)
def test_the_model_status_reads_each_workers_memory(
    listed: list[dict[str, Any]], want_memory: float | None, want_pids: tuple[int, ...]
) -> None:
    model = {"minWorkers": 2, "workers": listed, "jobQueueStatus": {"pendingRequests": 3}}
    got = torchserve.model_status([model])
    assert (got.workers, got.pending) == (2, 3)
    assert got.worker_memory_bytes == want_memory and got.worker_pids == want_pids


def test_an_odd_workers_field_is_unreadable_not_zero() -> None:
    with pytest.raises(ValueError, match="not a TorchServe model description"):
        torchserve.model_status({"minWorkers": 1, "workers": "none"})


def test_the_memory_beside_the_workers_leaves_out_every_child_of_their_parent() -> None:
    # this test process stands in for Java: two children are its "workers", one listed
    kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) for _ in range(2)]
    try:
        me = os.getpid()
        alone = memory.beside_workers(me, [kids[0].pid])
        assert alone is not None and alone == pytest.approx(memory._resident(me), rel=0.1)
        assert alone < memory._resident(me) + min(memory._resident(k.pid) for k in kids)
        assert memory.beside_workers(me, []) is None, "no worker listed: their parent is unknown"
        assert memory.beside_workers(2**22 + 1, [kids[0].pid]) is None, "the replica's guard is gone"
    finally:
        for k in kids:
            k.kill()
            k.wait()
