"""CPU per planner decision: one day of 5 s ticks on a varying load (the budget is 1 ms).

Builds snapshots like the simulator's (20 replicas on 10 nodes, the planner's load signals) and
times `planner.decide` alone, after a warm-up hour; prints JSON (mean and p99 microseconds).
    python bench/planner_decide.py
"""

from __future__ import annotations

import json
import math
import time

from swell import recipe
from swell.core import capacity, load, snapshot
from swell.core.policies import planner, steps


def main() -> None:
    rec = recipe.parse(
        {
            "service": {"name": "chat"},
            "resources": {"gpus": 1},
            "autoscaling": {
                "policy": "planner",
                "min_replicas": 1,
                "max_replicas": 40,
                "signals": [
                    {"name": "w", "kind": "gauge", "metric": "w", "target": 8, "target_type": "AverageValue"}
                ],
            },
            "node_pool": {"shape": "custom", "gpus_per_node": 2, "max_nodes": 20},
            "slo": {"ttft_s": 2.0},
        }
    )
    prof = capacity.Profile(kind="llm", decode_base_s=0.0063, decode_per_seq_s=0.00028, prefill_per_token_s=4e-5,
                            max_num_seqs=256, kv_cache_tokens=450000, source="bench")  # fmt: skip
    reps = tuple(
        snapshot.Replica(name=f"r{i}", state="ready", node=f"n{i // 2}", scheduled_at=0.0, ready_at=60.0)
        for i in range(20)
    )
    nodes = tuple(
        snapshot.NodeInfo(name=f"n{i}", gpus=2, used_gpus=2, ready=True, requested_at=0.0, ready_at=0.0)
        for i in range(10)
    )
    state, times = steps.State(), []
    for k in range(86400 // 5):
        t = 5.0 * k
        rate = 50.0 + 40.0 * math.sin(2 * math.pi * t / 86400.0) + 10.0 * math.sin(t / 37.0)
        sig = {
            load.REQUESTS: snapshot.Reading.of(rate), load.MIX_REQUESTS: snapshot.Reading.of(rate),
            load.PROMPT: snapshot.Reading.of(rate * 1000), load.GENERATION: snapshot.Reading.of(rate * 250),
            load.WAITING: snapshot.Reading.of(3.0),
        }  # fmt: skip
        snap = snapshot.Snapshot(now=t, current=20, replicas=reps, signals=sig, nodes=nodes, capacity=prof)
        start = time.process_time()
        _, state = planner.decide(rec, snap, state)
        if t >= 3600.0:
            times.append(time.process_time() - start)
    times.sort()
    print(json.dumps({
        "decisions": len(times),
        "mean_us": round(1e6 * sum(times) / len(times), 1),
        "p99_us": round(1e6 * times[int(0.99 * len(times))], 1),
        "state_json_bytes": len(json.dumps(state.to_json())),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
