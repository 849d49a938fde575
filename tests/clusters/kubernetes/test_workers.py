"""TorchServe workers on Kubernetes, on the fake API with a stand-in management API on 127.0.0.1:
workers read and set through each pod's IP and management port, the pod `resize` subresource
found by discovery (memory resized around the worker change) or absent (workers capped by the
pod's memory limit, and the status says so), the drain before fewer workers, dry-run and standby."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from swell import clock as clock_mod
from swell import errors, recipe
from swell.clusters.kubernetes import fake, scalingrecipe
from swell.clusters.kubernetes import workers as ts
from swell.core import snapshot
from swell.engines import torchserve
from swell.runtime import kubernetes as rt
from tests.clusters.kubernetes.builders import node, pod, recipe_cr, target
from tests.support import torchserve_management

MIB = 2**20
PER = torchserve_management.MEMORY  # bytes one stand-in worker reports


class NoSignals:
    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: object = None
    ) -> Mapping[str, snapshot.Reading]:
        return {s.name: snapshot.Reading.missing("none in this test") for s in sigs}


@pytest.fixture
def stub(api: fake.FakeApi) -> Iterator[torchserve_management.Management]:
    with torchserve_management.Management("web", journal=api.calls) as m:
        yield m


def ts_pod(name: str, port: int, memory: str = "1Gi", **kw: Any) -> dict[str, Any]:
    p = pod(name, node="n1", phase="Running", ready=True, **kw)
    c = p["spec"]["containers"][0]
    c["name"] = "torchserve"
    c["ports"] = [{"name": "http", "containerPort": 8000}, {"name": "management", "containerPort": port}]
    c["resources"] = {"requests": {"memory": memory}, "limits": {"memory": memory}}
    p["status"]["podIP"] = "127.0.0.1"
    return p


def ts_cr(**workers: Any) -> dict[str, Any]:
    cr = recipe_cr()
    cr["spec"]["resources"] = {"gpus": 0, "memory_gib": 8}
    cr["spec"]["workers"] = {
        "min_workers": 1,
        "max_workers": 4,
        "target_queue_per_worker": 1,
        "scale_down_stabilization_s": 0,
    } | workers
    return cr


def setup(api: fake.FakeApi, port: int, memory: str = "1Gi") -> None:
    api.add(ts_cr())
    api.add_target(target(), replicas=1, selector="app=web")
    api.add(ts_pod("web-0", port, memory))
    api.add(node("n1", 0))


def runtime(api: fake.FakeApi, clock: clock_mod.ManualClock, **opts: Any) -> rt.Runtime:
    o = rt.Options(
        identity="a",
        leader_elect=False,
        port=0,
        prometheus_url="http://127.0.0.1:1",
        status_heartbeat_ticks=1,
        **opts,
    )
    return rt.Runtime(api, o, clock=clock, sources=lambda spec: NoSignals())


def status(api: fake.FakeApi) -> dict[str, Any]:
    return api.recipes[("default", "web")]["status"]


def condition(st: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in st["conditions"] if c["type"] == kind)


def ops(api: fake.FakeApi) -> list[Any]:
    """The resizes and the management API's PUTs, in the order they happened."""
    return [c if c[0] == "PUT" else (c[0], c[1][2]) for c in api.calls if c[0] in ("PUT", "patch_pod_resize")]


def memory(api: fake.FakeApi) -> dict[str, Any]:
    return api.pods[("default", "web-0")]["spec"]["containers"][0]["resources"]


def resize(mib: int) -> dict[str, Any]:
    mem = f"{mib}Mi"
    res = {"requests": {"memory": mem}, "limits": {"memory": mem}}
    return {"spec": {"containers": [{"name": "torchserve", "resources": res}]}}


async def test_without_the_resize_subresource_workers_are_capped_by_the_pods_memory_limit_and_the_status_says_so(
    api: fake.FakeApi, stub: torchserve_management.Management
) -> None:
    setup(api, stub.port, memory="1Gi")  # (1024 - 512) MiB holds two workers of 220.7 MiB
    stub.pending = 6  # 6 waiting at 1 per worker: the policy asks for 3 (at most 2 more a tick)
    clock = clock_mod.ManualClock(1000)
    r = runtime(api, clock)
    await r.step()
    assert [(p["min_worker"], p["max_worker"], p["synchronous"]) for p in stub.puts] == [("2", "2", "false")]
    assert ("serves", ("v1", "pods/resize")) in api.calls
    assert not any(op == "patch_pod_resize" for op, _ in api.calls)
    st = status(api)
    c = condition(st, "InPlaceResize")
    assert (c["status"], c["reason"]) == ("False", "NoResizeSubresource")
    assert "the API server has no pods/resize (Kubernetes < 1.33)" in c["message"]
    assert "workers are capped at what the pod's memory limit allows" in c["message"]
    assert "replicas scale instead" in c["message"]
    assert st["workers"] == {
        "model": "web",
        "inPlaceResize": False,
        "desired": 3,
        "pods": [{"pod": "web-0", "workers": 2, "memory": "1024Mi", "maxWorkers": 2}],
    }
    clock.advance(1)
    await r.step()  # still asks for more, but the pod holds no more: nothing is PUT again
    assert len(stub.puts) == 1 and stub.workers == 2


async def test_with_the_resize_subresource_memory_grows_before_workers_start_and_shrinks_after_they_stop(
    api: fake.FakeApi, stub: torchserve_management.Management
) -> None:
    api.served.add(("v1", "pods/resize"))
    setup(api, stub.port, memory="4Gi")
    stub.pending = 3
    clock = clock_mod.ManualClock(1000)
    r = runtime(api, clock)
    await r.step()
    three = 512 + -(-3 * PER // MIB)  # the frontend's 512 MiB and three measured workers, rounded up
    assert ops(api) == [("patch_pod_resize", resize(three)), ("PUT", 3)]
    assert memory(api)["limits"]["memory"] == memory(api)["requests"]["memory"] == f"{three}Mi"
    st = status(api)
    c = condition(st, "InPlaceResize")
    assert (c["status"], c["reason"]) == ("True", "ResizeSubresource")
    assert st["workers"]["pods"] == [{"pod": "web-0", "workers": 3, "memory": f"{three}Mi"}]
    stub.pending = 0
    clock.advance(1)
    await r.step()
    one = 512 + -(-PER // MIB)
    assert ops(api)[2:] == [("PUT", 1), ("patch_pod_resize", resize(one))]
    assert stub.puts[-1]["synchronous"] == "true"


async def test_fewer_workers_wait_for_the_models_queue_to_empty(
    api: fake.FakeApi, stub: torchserve_management.Management
) -> None:
    api.add(ts_pod("web-0", stub.port))
    spec = scalingrecipe.parse(ts_cr())
    stub.workers = 2
    w = ts.TorchServe(api, spec, dry_run=False, may_act=lambda: True)
    (seen,) = await w.observe(api.pods.values())
    assert (seen.replica, seen.workers, seen.queue, seen.worker_memory_bytes) == ("web-0", 2, 0.0, PER)
    stub.pending, stub.drains_per_get = 2, 1  # two requests waiting, one finishing per look
    await w.set_workers("web-0", 1)
    assert stub.puts == [{"min_worker": "1", "max_worker": "1", "synchronous": "true", "pending": 0}]


async def test_dry_run_and_a_standby_set_nothing(
    api: fake.FakeApi, stub: torchserve_management.Management
) -> None:
    api.served.add(("v1", "pods/resize"))
    api.add(ts_pod("web-0", stub.port))
    spec = scalingrecipe.parse(ts_cr())
    dry = ts.TorchServe(api, spec, dry_run=True, may_act=lambda: True)
    await dry.observe(api.pods.values())
    await dry.set_workers("web-0", 3)
    standby = ts.TorchServe(api, spec, dry_run=False, may_act=lambda: False)
    await standby.observe(api.pods.values())
    with pytest.raises(errors.ClusterError, match="not the leader"):
        await standby.set_workers("web-0", 3)
    assert stub.puts == [] and not any(op == "patch_pod_resize" for op, _ in api.calls)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_pods_without_an_answer_a_port_or_readiness_are_left_out_and_the_status_says_why(
    api: fake.FakeApi, stub: torchserve_management.Management
) -> None:
    dead = closed_port()
    api.add(ts_pod("web-0", stub.port))
    api.add(ts_pod("web-1", dead))
    no_port = ts_pod("web-2", stub.port)
    no_port["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8000}]
    api.add(no_port)
    starting = ts_pod("web-3", stub.port)
    starting["status"]["conditions"] = []
    api.add(starting)
    w = ts.TorchServe(api, scalingrecipe.parse(ts_cr()), dry_run=False, may_act=lambda: True)
    assert [o.replica for o in await w.observe(api.pods.values())] == ["web-0"]
    pods = w.to_json()["pods"]
    assert [p["pod"] for p in pods] == ["web-0", "web-1"]
    assert pods[1]["error"].startswith(f"GET http://127.0.0.1:{dead}/models/web: ")
    assert "workers" not in pods[1]


async def test_a_failed_discovery_is_unknown_and_asked_again(api: fake.FakeApi) -> None:
    w = ts.TorchServe(api, scalingrecipe.parse(ts_cr()), dry_run=False, may_act=lambda: True)
    api.fail("serves", 503)
    assert await w.discover() is None
    c = w.condition()
    assert (c.status, c.reason) == ("Unknown", "DiscoveryFailed")
    api.served.add(("v1", "pods/resize"))
    assert await w.discover() is True and w.condition().status == "True"


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("4Gi", 4 * 2**30), ("1500Mi", 1500 * MIB), ("2G", 2 * 10**9), ("1e9", 10**9), ("128974848", 128974848),
     ("0.5Gi", 2**29), ("12x", None), ("", None)],
)  # fmt: skip
def test_memory_quantities(quantity: str, expected: int | None) -> None:
    assert ts.memory_bytes(quantity) == expected


@pytest.mark.parametrize("answer", [[], {}, [{"workers": []}], [{"minWorkers": "x"}], "text"])
def test_an_answer_that_is_not_a_model_description_is_refused(answer: object) -> None:
    with pytest.raises(ValueError, match="not a TorchServe model description"):
        torchserve.model_status(answer)


def test_a_scalingrecipe_with_workers_is_a_torchserve_recipe_and_only_torchserve_renders_them() -> None:
    spec = scalingrecipe.parse(ts_cr())
    assert spec.recipe.service.engine == "torchserve" and spec.recipe.workers is not None
    assert scalingrecipe.parse(recipe_cr()).recipe.workers is None
    ts_rec = recipe.parse({"service": {"name": "m", "engine": "torchserve"}, "workers": {"max_workers": 3}})
    assert scalingrecipe.spec_of(ts_rec, {"name": "m"})["workers"]["max_workers"] == 3
    sim = recipe.parse({"service": {"name": "m", "engine": "simulated-llm"}, "workers": {"max_workers": 3}})
    assert "workers" not in scalingrecipe.spec_of(sim, {"name": "m"})
