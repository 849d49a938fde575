"""What swell reads of TorchServe's management API: `GET /models/{m}` answers a list with one
model description (its workers with status, pid and `memoryUsage`, and its job queue). One parser
for the local cluster (a replica's management port on loopback) and Kubernetes (a pod's)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ModelStatus:
    workers: int  # minWorkers: the count set
    pending: int  # jobQueueStatus.pendingRequests
    worker_memory_bytes: float | None  # memoryUsage averaged over READY workers; None: not measured
    worker_pids: tuple[int, ...] = ()  # every listed worker's pid


def model_status(answer: object) -> ModelStatus:
    """The status of the model an answer describes (the list TorchServe returns, or its one
    element). TorchServe's system metrics collector fills each worker's `memoryUsage` (resident
    bytes) every `metric_time_interval`; before its first run it is 0, which is no measurement,
    not zero memory. Raises ValueError naming what is not a model description."""
    try:
        model = answer[0] if isinstance(answer, list) else answer
        if not isinstance(model, dict):
            raise TypeError(f"a {type(model).__name__}, not an object")
        listed, queue = model.get("workers") or [], model.get("jobQueueStatus") or {}
        if not isinstance(listed, list) or not isinstance(queue, dict):
            raise TypeError(f"workers {listed!r:.80}, jobQueueStatus {queue!r:.80}")
        ready = [
            float(w["memoryUsage"]) for w in listed if w.get("status") == "READY" and w.get("memoryUsage")
        ]
        return ModelStatus(
            workers=int(model["minWorkers"]),
            pending=int(queue.get("pendingRequests", 0)),
            worker_memory_bytes=sum(ready) / len(ready) if ready else None,
            worker_pids=tuple(int(w["pid"]) for w in listed if int(w.get("pid") or -1) > 0),
        )
    except (LookupError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"not a TorchServe model description: {exc!r}") from None
