"""Scoped queries: every signal reads its own service's series (namespace + metricLabels, GPU
utilization by the target's pods), raw queries get the namespace injected, and a recipe naming
a Prometheus server the operator did not allow is refused with a condition."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from swell import clock as clock_mod
from swell import errors, recipe
from swell.clusters.kubernetes import fake, scalingrecipe, scope
from swell.core import snapshot, world
from swell.runtime import kubernetes as rt
from swell.runtime import recipe_loop
from tests.clusters.kubernetes.builders import recipe_cr

NS = ['namespace="a"']


@pytest.mark.parametrize(
    ("query", "scoped"),
    [
        ("up", 'up{namespace="a"}'),
        ('sum(rate(x{job="j"}[5m]))', 'sum(rate(x{namespace="a",job="j"}[5m]))'),
        ("sum by (le) (rate(h_bucket{}[1m]))", 'sum by (le) (rate(h_bucket{namespace="a"}[1m]))'),
        ('{__name__="x", namespace="b"}', '{namespace="a",__name__="x", namespace="b"}'),
        (
            "a / ignoring(pod) group_left(x) b offset 5m",
            'a{namespace="a"} / ignoring(pod) group_left(x) b{namespace="a"} offset 5m',
        ),
        ("max_over_time(x[5m:1m]) > 1e3", 'max_over_time(x{namespace="a"}[5m:1m]) > 1e3'),
        ("count(x) by (pod) or on(pod) vector(0)", 'count(x{namespace="a"}) by (pod) or on(pod) vector(0)'),
        ('x{l="}{"} # sum(y)', 'x{namespace="a",l="}{"} # sum(y)'),
    ],
)
def test_inject_adds_the_namespace_to_every_vector_selector(query: str, scoped: str) -> None:
    assert scope.inject(query, NS) == scoped


def sig(**kw: object) -> recipe.Signal:
    return recipe.Signal.model_validate({"name": "s", "target": 1, **kw})


def test_a_gauge_carries_the_namespace_and_the_metric_labels_the_signal_does_not_set() -> None:
    s = sig(kind="gauge", metric="q", labels={"model_name": "m", "namespace": "other"}, window_s=60)
    q = scope.scoped_query(s, namespace="a", labels={"service": "llm", "model_name": "x"})
    assert q == 'avg(avg_over_time(q{model_name="m",namespace="a",service="llm"}[1m]))'


def test_gpu_utilization_is_scoped_to_the_targets_pods() -> None:
    s = sig(kind="utilization", resource="gpu", window_s=60)
    q = scope.scoped_query(s, namespace="a", labels={"service": "llm"}, pods=["llm-1", "llm-0"])
    assert q == 'avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL{namespace="a",pod=~"llm\\\\-0|llm\\\\-1"}[1m]))'
    assert 'pod=~"^$"' in scope.scoped_query(s, namespace="a", labels={})


def test_a_raw_query_stays_in_its_namespace_unless_the_operator_allows_more() -> None:
    s = sig(kind="promql", query="sum(x)")
    assert scope.scoped_query(s, namespace="a", labels={}) == 'sum(x{namespace="a"})'
    assert scope.scoped_query(s, namespace="a", labels={}, any_namespace=True) == "sum(x)"


def test_metric_labels_default_to_the_targets_service_and_may_not_name_the_namespace() -> None:
    assert scalingrecipe.parse(recipe_cr()).metric_labels == {"service": "web"}
    cr = recipe_cr()
    cr["spec"]["metricLabels"] = {"job": "vllm", "model_name": "m"}
    assert scalingrecipe.parse(cr).metric_labels == {"job": "vllm", "model_name": "m"}
    cr["spec"]["metricLabels"] = {"namespace": "kube-system"}
    with pytest.raises(errors.RecipeError, match=r"spec\.metricLabels\.namespace"):
        scalingrecipe.parse(cr)


class Inner:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def read(
        self, sigs: Sequence[recipe.Signal], now: float, state: object = None
    ) -> dict[str, snapshot.Reading]:
        self.sent += [s.query or "" for s in sigs]
        return {s.name: snapshot.Reading.of(1.0) for s in sigs}


async def test_the_controller_sends_scoped_queries_and_shows_them() -> None:
    spec = scalingrecipe.parse(recipe_cr(namespace="team-a"))
    inner = Inner()
    src = recipe_loop.Scoped(inner, spec, any_namespace=False)  # type: ignore[arg-type]
    state = world.ClusterState(current=1, replicas=(snapshot.Replica(name="web-0", state="ready"),))
    got = await src.read(spec.recipe.autoscaling.signals, 0.0, state)
    assert got["queue"].value == 1.0
    assert inner.sent == ['avg(avg_over_time(q{namespace="team-a",service="web"}[1m]))']
    assert src.last == {"queue": inner.sent[0]}


async def test_a_recipe_naming_a_prometheus_not_allowed_is_refused_with_a_condition() -> None:
    api = fake.FakeApi()
    api.add(recipe_cr())  # names http://127.0.0.1:1
    asked: list[str] = []

    def sources(spec: scalingrecipe.Spec) -> Inner:
        asked.append(spec.name)
        return Inner()

    opts = rt.Options(identity="a", leader_elect=False, port=0, prometheus_url="http://prom:9090")
    r = rt.Runtime(api, opts, clock=clock_mod.ManualClock(1000), sources=sources)
    await r.step()
    assert not r.loops and not asked
    cond, ready = api.recipes[("default", "web")]["status"]["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "PrometheusNotAllowed")
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "ScalingActive",
        "False",
        "PrometheusNotAllowed",
    )
    assert "http://127.0.0.1:1" in cond["message"] and "--allow-prometheus-url" in cond["message"]

    allowed = rt.Options(
        identity="a", leader_elect=False, port=0, allowed_prometheus_urls=("http://127.0.0.1:1/",)
    )
    r = rt.Runtime(api, allowed, clock=clock_mod.ManualClock(1000), sources=sources)
    await r.step()
    assert asked == ["web"]
