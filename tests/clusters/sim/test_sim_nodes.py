"""Node pool: the provisioning pipeline step by step, bin-packing, scale-down, give-up, billing."""

from __future__ import annotations

import pathlib

import pytest

from swell import errors, recipe
from swell.clusters.sim import cluster, events, nodes
from swell.core import signals, windows
from tests.clusters.sim.simhelp import sim_recipe


def make(rec: recipe.Recipe) -> tuple[events.Loop, cluster.Cluster]:
    loop = events.Loop(seed=0)
    sigs = signals.required(rec.autoscaling)
    c = cluster.SimCluster(rec, loop, windows.Store(wanted=signals.metric_names(sigs)), sigs)
    c.start(0.0)
    return loop, c


def scale_at(loop: events.Loop, c: cluster.Cluster, t: float, n: int) -> None:
    loop.at(t, events.CONTROL, lambda now, _: c.set_target(now, n))


def test_one_scale_up_goes_through_every_provisioning_step_in_order() -> None:
    rec = sim_recipe(service={"probes": {"readiness": {"initial_delay_s": 5.0, "period_s": 10.0}}})
    prov = rec.node_pool.provisioning
    assert prov.image_pull_s == pytest.approx(20 * 8 / 0.45)  # the seed's 20 GB image: about 6 min
    loop, c = make(rec)
    scale_at(loop, c, 15.0, 2)
    loop.run(until=2000.0)
    node = c.pool.nodes["node-2"]
    rep = c.replicas["replica-2"]
    # the replica is created by the decision at 15 s and is Pending until a node holds it;
    # the autoscaler notices at its next 10 s scan and requests a node
    assert rep.timeline["created"] == 15.0
    steps = [(k, node.timeline[k]) for k in ("requested", "booted", "kubelet", "ready")]
    assert steps == [("requested", 20.0), ("booted", 320.0), ("kubelet", 380.0), ("ready", 560.0)]
    # bound as soon as the node is ready, then the first image pull, then the model load
    pulled = 560.0 + prov.image_pull_s
    assert rep.timeline["scheduled"] == 560.0
    assert rep.timeline["pulled"] == pytest.approx(pulled)
    assert rep.timeline["loaded"] == pytest.approx(pulled + 60.0)
    # ready at the first readiness probe (every 10 s after a 5 s delay) after the load
    assert rep.timeline["ready"] == pytest.approx(pulled + 5.0 + 60.0)
    assert rep.state == "ready" and rep in c.router.ready
    assert node.image_at == pytest.approx(pulled)
    # billed from the request, not from readiness
    assert c.pool.gpu_seconds(0.0, 1000.0) == pytest.approx(1000.0 + (1000.0 - 20.0))


def test_a_second_replica_on_a_node_with_the_image_only_loads_the_model() -> None:
    rec = sim_recipe(node_pool={"gpus_per_node": 2, "max_nodes": 2})
    loop, c = make(rec)
    scale_at(loop, c, 30.0, 2)
    loop.run(until=200.0)
    rep = c.replicas["replica-2"]
    assert rep.node is not None and rep.node.name == "node-1"
    assert rep.timeline["scheduled"] == rep.timeline["pulled"] == 30.0
    assert rep.timeline["ready"] == pytest.approx(90.0)
    assert len(c.pool.nodes) == 1


def test_bin_packing_fills_the_fullest_node_that_fits() -> None:
    pool = nodes.Pool(recipe.NodePool(shape="x", gpus_per_node=4, max_nodes=3), gpus_per_replica=1)
    a, b = pool.warm(0.0), pool.warm(0.0)
    for name in ("r1", "r2", "r3"):
        assert pool.place(name) is not None
    assert (a.used, b.used) == (3, 0)  # packed onto one node
    pool.release(a, "r1")
    pool.release(a, "r2")
    b_taken = pool.place("r4")
    assert b_taken is a  # a has 2 free, b has 4: the fuller one wins
    two = nodes.Pool(recipe.NodePool(shape="x", gpus_per_node=8, max_nodes=2), gpus_per_replica=3)
    n = two.warm(0.0)
    assert [two.place(f"r{i}") is n for i in range(3)] == [True, True, False]  # 3 GPUs: 2 per 8-GPU node


def test_an_empty_node_is_removed_after_ten_minutes_and_never_below_min_nodes() -> None:
    rec = sim_recipe(node_pool={"min_nodes": 1}, autoscaling={"min_replicas": 1, "max_replicas": 4})
    loop, c = make(rec)
    scale_at(loop, c, 0.0, 3)
    loop.run(until=1200.0)
    assert len(c.pool.nodes) == 3 and c.counts()["ready"] == 3
    scale_at(loop, c, 1205.0, 1)
    loop.run(until=1805.0)
    assert len(c.pool.nodes) == 3  # empty since the 1210 s scan: not yet 600 s
    loop.run(until=1815.0)
    removed = sorted(n.removed_at for n in c.pool.gone if n.removed_at is not None)
    assert removed == [1810.0, 1810.0] and len(c.pool.nodes) == 1
    scale_at(loop, c, 1820.0, 0)
    loop.run(until=4000.0)
    assert len(c.pool.nodes) == 1  # min_nodes holds the last one even when empty


def test_max_nodes_leaves_replicas_pending_and_a_slow_node_is_given_up_after_15_minutes() -> None:
    rec = sim_recipe(node_pool={"max_nodes": 2, "provisioning": {"node_boot_s": 1000.0}})
    loop, c = make(rec)
    scale_at(loop, c, 0.0, 3)
    loop.run(until=905.0)
    assert c.counts()["pending"] == 2
    assert c.counts()["nodes_provisioning"] == 1  # max_nodes 2: one more node only
    assert {r.info().reason for r in c.replicas.values() if r.state == "pending"} == {
        "Unschedulable: Insufficient nvidia.com/gpu"
    }
    assert c.pool.given_up == 1  # asked at 0 s, not ready at the 900 s scan: deleted, asked again
    (again,) = [n for n in c.pool.nodes.values() if not n.ready]
    assert again.requested_at == 900.0
    gone = c.pool.gone[0]
    assert (gone.requested_at, gone.removed_at) == (0.0, 900.0)
    assert c.pool.gpu_seconds(0.0, 905.0) == pytest.approx(905.0 + 900.0 + 5.0)


def test_model_load_times_can_be_sampled_from_a_csv(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "load.csv"
    path.write_text("timestamp_anon,value,container_ip\n1,20000,a\n2,40000,b\n")
    assert nodes.load_latencies(path) == [20.0, 40.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    with pytest.raises(errors.RecipeError, match="value"):
        nodes.load_latencies(bad)


def test_the_controller_sees_when_nodes_were_asked_for_and_became_ready_and_where_replicas_run() -> None:
    rec = sim_recipe(autoscaling={"min_replicas": 1, "max_replicas": 4})
    loop, c = make(rec)
    scale_at(loop, c, 0.0, 2)
    loop.run(until=1500.0)
    infos = {n.name: n for n in c.node_infos()}
    fresh = [
        n for n in infos.values() if n.requested_at is not None and n.ready_at is not None and n.ready_at > 0
    ]
    assert fresh and all(n.ready_at > n.requested_at for n in fresh)  # type: ignore[operator]
    reps = c.replica_infos()
    assert all(r.node in infos and r.ready_at is not None and r.scheduled_at is not None for r in reps)
