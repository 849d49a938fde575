"""Package fixtures for the end-to-end tests: one real control plane (private ports and run dir),
deploy/ applied to it with kubectl, a kubeconfig of the controller's service account, a kubelet
emulator, and one Prometheus scraping the tests' gauges. Everything stops when the package's last
test is done, so the tests after it (real processes timed against the simulator) run without them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import config

from tests.e2e_k8s import env, gauges, kubelet, workloads
from tests.support import prometheus as support_prometheus

SCHEMAS = env.ROOT / "tests" / "fixtures" / "schemas"


@pytest.fixture(scope="package")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[env.ControlPlane]:
    why = env.missing()
    if why:
        pytest.skip(f"no Kubernetes control plane: {why}")
    cp = env.start(tmp_path_factory.mktemp("k8s-run"))
    try:
        yield cp
    finally:
        env.stop(cp)


def established(cp: env.ControlPlane, crd: str) -> None:
    """Wait until a CRD is served (`kubectl wait` fails outright while it has no conditions yet)."""
    path = '{.status.conditions[?(@.type=="Established")].status}'
    env.wait_for(
        f"{crd} established",
        lambda: cp.kubectl("get", "crd", crd, "-o", f"jsonpath={path}", check=False) == "True",
    )


def _crd_for_v1_20(name: str, tmp: Path) -> Path:
    """An upstream CRD as is, but for what v1.20 cannot take: `default: ""` (its CRD validation
    rejects empty-string defaults, `Invalid value: "null"`) and CEL rules (`x-kubernetes-validations`,
    1.25+; KEDA's one rule, min <= max, is checked offline by tests/render)."""
    crd = yaml.safe_load((SCHEMAS / name).read_text())

    def strip(x: object) -> None:
        if isinstance(x, dict):
            if x.get("default", None) == "":
                del x["default"]
            x.pop("x-kubernetes-validations", None)
            for v in x.values():
                strip(v)
        elif isinstance(x, list):
            for v in x:
                strip(v)

    strip(crd)
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(crd))
    return path


@pytest.fixture(scope="package")
def installed(control_plane: env.ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`kubectl apply -k deploy/` (after the Prometheus Operator's ServiceMonitor CRD); returns a
    kubeconfig that authenticates as the controller's service account (a TokenRequest token)."""
    tmp = tmp_path_factory.mktemp("install")
    cp = control_plane
    cp.kubectl(
        "apply", "--server-side", "-f", str(_crd_for_v1_20("monitoring.coreos.com_servicemonitors.yaml", tmp))
    )
    established(cp, "servicemonitors.monitoring.coreos.com")
    cp.kubectl("apply", "-k", str(env.ROOT / "deploy"))
    established(cp, "scalingrecipes.swell.dev")
    env.wait_for(
        "the service account", lambda: "swell-controller" in cp.kubectl("get", "sa", "-n", "swell-system")
    )
    return env.token_kubeconfig(cp, "swell-controller", "swell-system", tmp / "swell-controller.kubeconfig")


@pytest.fixture(scope="package")
def autoscaler_crds(control_plane: env.ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> None:
    """KEDA's ScaledObject and Alibaba's CronHPA CRDs, as v1.20 takes them."""
    tmp = tmp_path_factory.mktemp("crds")
    cp = control_plane
    keda = _crd_for_v1_20("keda.sh_scaledobjects.yaml", tmp)
    cp.kubectl("apply", "--server-side", "-f", str(keda))
    cron = _crd_for_v1_20("autoscaling.alibabacloud.com_cronhorizontalpodautoscalers.v1.22.yaml", tmp)
    cp.kubectl("apply", "--server-side", "-f", str(cron))
    for crd in ("scaledobjects.keda.sh", "cronhorizontalpodautoscalers.autoscaling.alibabacloud.com"):
        established(cp, crd)


@pytest.fixture(scope="package")
def cluster(control_plane: env.ControlPlane) -> Iterator[workloads.Cluster]:
    api = config.new_client_from_config(control_plane.kubeconfig)
    try:
        yield workloads.Cluster(api)
    finally:
        api.close()


@pytest.fixture(scope="package")
def kubelet_emulator(control_plane: env.ControlPlane) -> Iterator[kubelet.Kubelet]:
    k = kubelet.Kubelet(control_plane.kubeconfig)
    k.start()
    try:
        yield k
    finally:
        k.stop()
        k.core.api_client.close()


@pytest.fixture(scope="package")
def metric() -> Iterator[gauges.Gauges]:
    g = gauges.Gauges()
    g.start()
    try:
        yield g
    finally:
        g.stop()


@pytest.fixture(scope="package")
def prometheus(
    metric: gauges.Gauges, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[support_prometheus.Prometheus]:
    """One real Prometheus for the package, scraping the gauges every second."""
    with support_prometheus.running(tmp_path_factory.mktemp("prometheus")) as p:
        p.set_targets({"gauges": f"127.0.0.1:{metric.port}"})
        yield p


@pytest.fixture
def namespace(cluster: workloads.Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test (the emulated kubelet serves e2e-*); deleted afterwards."""
    name = f"{kubelet.PREFIX}{request.node.name.removeprefix('test_')[:30].replace('_', '-')}-{uuid.uuid4().hex[:4]}"
    cluster.namespace(name)
    yield name
    cluster.core.delete_namespace(name)


@pytest.fixture
def nodes(kubelet_emulator: kubelet.Kubelet) -> Iterator[Callable[[str, int, int], list[str]]]:
    """nodes(pool, count, gpus): Ready GPU nodes of a pool of their own; deleted afterwards."""
    made: list[str] = []

    def add(pool: str, count: int, gpus: int) -> list[str]:
        names = [f"{pool}-{len(made) + i}" for i in range(count)]
        for n in names:
            kubelet_emulator.add_node(n, gpus, pool)
        made.extend(names)
        return names

    yield add
    for n in made:
        kubelet_emulator.delete_node(n)


@pytest.fixture
def controllers(
    installed: str, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., workloads.Controller]]:
    """controllers(identity, *flags): `swell controller` processes under the service account.
    At the end each is stopped, and none may have been refused anything (HTTP 403)."""
    started: list[workloads.Controller] = []

    def start(identity: str, *flags: str) -> workloads.Controller:
        c = workloads.Controller(identity, installed, namespace, tmp_path / f"{identity}.log").start(*flags)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()
    for c in started:
        out = c.output()
        assert "HTTP 403" not in out and "Forbidden" not in out, f"{c.identity} was refused:\n{out[-3000:]}"
        assert "Traceback" not in out, f"{c.identity} crashed:\n{out[-3000:]}"
