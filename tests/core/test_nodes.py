"""Node pool sizing: Corrino's worked examples, nodes to add, nodes to remove."""

from __future__ import annotations

import pytest

from swell import recipe
from swell.core import nodes, snapshot


@pytest.mark.parametrize(
    ("gpus", "per_node", "max_nodes", "want_per_node", "want_total"),
    [
        (2, 8, 1, 4, 4),  # a 2-GPU replica on an 8-GPU node -> 4 per node
        (2, 8, 2, 4, 8),  # ... with max_nodes 2 -> 8
        (1, 2, 4, 2, 8),  # 1 GPU on a 2-GPU node, max_nodes 4 -> 8
        (3, 8, 1, 2, 2),  # 3 does not divide 8: 2 per node, 2 GPUs idle
    ],
)
def test_corrino_worked_examples(
    gpus: int, per_node: int, max_nodes: int, want_per_node: int, want_total: int
) -> None:
    pool = recipe.NodePool(shape="x", gpus_per_node=per_node, max_nodes=max_nodes)
    assert nodes.per_node(gpus, per_node) == want_per_node
    assert nodes.capacity(pool, gpus) == want_total


def node(name: str, used: int, gpus: int = 4, ready: bool = True) -> snapshot.NodeInfo:
    return snapshot.NodeInfo(name=name, gpus=gpus, used_gpus=used, ready=ready)


POOL = recipe.NodePool(shape="BM.GPU.A10.4", min_nodes=1, max_nodes=3, unneeded_time_s=600)


def test_adds_nodes_for_replicas_that_fit_nowhere_up_to_max_nodes() -> None:
    p = nodes.plan(POOL, 2, [node("a", 4)], pending=7, provisioning=0, empty_since={}, now=0)
    # 7 pending 2-GPU replicas, 2 per node, room for 2 more nodes -> 4 placed, 3 stay Pending
    assert (p.add, p.fits, p.unfit) == (2, 0, 3)
    assert "max_nodes 3 reached" in p.reason


def test_counts_free_gpus_and_provisioning_nodes_before_adding() -> None:
    p = nodes.plan(POOL, 2, [node("a", 2)], pending=3, provisioning=1, empty_since={}, now=0)
    assert (p.fits, p.add, p.unfit) == (1, 0, 0)  # 1 on a's free half, 2 on the coming node


def test_removes_a_node_only_after_it_was_empty_for_the_unneeded_time_and_never_below_min() -> None:
    busy, empty1, empty2 = node("a", 4), node("b", 0), node("c", 0)
    p = nodes.plan(POOL, 2, [busy, empty1, empty2], pending=0, provisioning=0, empty_since={}, now=100)
    assert p.remove == () and set(p.empty_since) == {"b", "c"}
    p = nodes.plan(
        POOL, 2, [busy, empty1, empty2], pending=0, provisioning=0, empty_since=p.empty_since, now=699
    )
    assert p.remove == ()
    p = nodes.plan(
        POOL, 2, [busy, empty1, empty2], pending=0, provisioning=0, empty_since=p.empty_since, now=700
    )
    assert set(p.remove) == {"b", "c"}
    p = nodes.plan(
        POOL, 2, [empty1, empty2], pending=0, provisioning=0, empty_since={"b": 0, "c": 0}, now=700
    )
    assert len(p.remove) == 1  # min_nodes 1


def test_keeps_spare_nodes_for_headroom() -> None:
    p = nodes.plan(POOL, 2, [node("a", 4)], pending=0, provisioning=0, empty_since={}, now=0, spare_nodes=1)
    assert p.add == 1
    p = nodes.plan(
        POOL,
        2,
        [node("a", 4), node("b", 0)],
        pending=0,
        provisioning=0,
        empty_since={"b": 0},
        now=10_000,
        spare_nodes=1,
    )
    assert (p.add, p.remove) == (0, ())


def _on(*layout: str) -> tuple[snapshot.Replica, ...]:
    """'ready@a' / 'terminating@b' / 'pending' -> replicas r0, r1, ..."""
    out = []
    for i, spec in enumerate(layout):
        state, _, where = spec.partition("@")
        out.append(snapshot.Replica(name=f"r{i}", state=state, node=where or None))  # type: ignore[arg-type]
    return tuple(out)


@pytest.mark.parametrize(
    ("nodes_", "replicas", "gpus_per_replica", "expect"),
    [
        pytest.param((node("a", 1), node("b", 2)), _on("ready@a", "ready@b", "starting@b"), 1, 5,
                     id="the free GPUs of nodes running a replica of ours: 3 + 2"),
        pytest.param((node("a", 4), node("b", 0, ready=False)), _on(*["ready@a"] * 4), 1, 0,
                     id="full nodes, and one not Ready, have none to fill"),
        pytest.param((node("a", 1), node("b", 0)), _on("ready@a"), 1, 0,
                     id="none while a Ready node is empty: a new replica may land there, not in the free GPUs"),
        pytest.param((node("a", 1), node("b", 1)), _on("ready@a", "terminating@b"), 1, 0,
                     id="none while a node holds only a replica on its way out: it is being given back"),
        pytest.param((node("a", 1), node("b", 1)), _on("ready@a"), 1, 3,
                     id="a node busy with pods not ours is kept, but not ours to fill"),
        pytest.param((node("a", 2, gpus=8),), _on("ready@a"), 2, 3, id="2-GPU replicas: 6 free GPUs hold 3"),
        pytest.param((node("a", 3),), _on("ready@a"), 2, 0, id="one free GPU holds no 2-GPU replica"),
        pytest.param((node("a", 1),), _on("ready@a"), 0, 0, id="CPU-only replicas take no GPU"),
    ],
)  # fmt: skip
def test_unfilled_counts_replicas_for_the_free_gpus_of_nodes_in_use(
    nodes_: tuple[snapshot.NodeInfo, ...], replicas: tuple[snapshot.Replica, ...], gpus_per_replica: int, expect: int
) -> None:
    assert nodes.unfilled(nodes_, replicas, gpus_per_replica) == expect
