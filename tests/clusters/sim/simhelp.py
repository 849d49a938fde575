"""Recipes and runs shared by the simulator's tests."""

from __future__ import annotations

from typing import Any

from swell import recipe


def sim_recipe(**over: Any) -> recipe.Recipe:
    """A small LLM service on 1-GPU nodes (tiny engine preset: fast to simulate)."""
    data: dict[str, Any] = {
        "service": {"name": "chat", "engine": "simulated-llm", "preset": "tiny-cpu"},
        "resources": {"gpus": 1},
        "autoscaling": {
            "min_replicas": 1,
            "max_replicas": 4,
            "polling_interval_s": 15.0,
            "signals": [
                {"name": "waiting", "kind": "gauge", "metric": "vllm:num_requests_waiting",
                 "aggregate": "sum", "target": 2, "target_type": "AverageValue", "window_s": 30},
            ],
        },
        "node_pool": {"shape": "x", "gpus_per_node": 1, "max_nodes": 8, "price_per_gpu_hour": 2.0},
        "slo": {"ttft_s": 1.0, "e2e_s": 10.0, "percentile": 95},
    }  # fmt: skip
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return recipe.parse(data)


FAST_NODES = {
    "shape": "x",
    "gpus_per_node": 1,
    "max_nodes": 8,
    "price_per_gpu_hour": 2.0,
    "provisioning": {"node_boot_s": 20.0, "kubelet_s": 5.0, "gpu_driver_s": 10.0, "image_size_gb": 2.0,
                     "pull_gbps": 1.0, "model_load_s": 10.0},
}  # fmt: skip
SURGE = "black-friday:base=2,surge=6,start=60s,ramp=120s,plateau=180s,decay=60s,input=200,output=200"


def surge_recipe(max_replicas: int = 6, **over: Any) -> recipe.Recipe:
    """The tiny engine on 1-GPU nodes that come up in about a minute: a short, fast surge test."""
    auto = {"min_replicas": 1, "max_replicas": max_replicas}
    return sim_recipe(node_pool=FAST_NODES, autoscaling=auto, slo={"ttft_s": 2.0, "e2e_s": 20.0}, **over)


def classic_recipe(max_workers: int = 4, **over: Any) -> recipe.Recipe:
    """One replica of a classic model (12 ms a request on one worker: ~80 req/s) with 1..max workers."""
    workers = {"min_workers": 1, "max_workers": max_workers, "target_queue_per_worker": 2}
    return sim_recipe(
        service={"preset": "resnet50-t4"},
        workers=workers | over.pop("workers", {}),
        autoscaling={"min_replicas": 1, "max_replicas": 1, "signals": []},
        slo={"ttft_s": 0.5, "e2e_s": 0.5},
        **over,
    )


def scheduled_peak_recipe() -> recipe.Recipe:
    """The planner with a floor of 4 replicas from minute 5 on 2-GPU nodes that take ~35 s."""
    return sim_recipe(
        node_pool=FAST_NODES | {"gpus_per_node": 2},
        autoscaling={"min_replicas": 1, "max_replicas": 6, "policy": "planner"},
        slo={"ttft_s": 2.0, "e2e_s": 20.0},
        schedules=[{"name": "peak", "start": "5 0 * * *", "end": "10 0 * * *", "min_replicas": 4}],
    )
