"""`swell gateway SERVICE`: swell's gateway in front of a Kubernetes Service's ready pods.

Requests wait in its buffer while no pod is ready (scaled to zero, all starting), so a recipe that
scales on the gateway's series wakes the service from zero (Knative's activator, KEDA's HTTP
add-on). `swell render --gateway` writes its Deployment, Service, RBAC and ServiceMonitor. Runs in
a pod (in-cluster config) or outside (kubeconfig); the Kubernetes client is imported only when the
command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import re
import signal
from typing import Annotated, Any

import typer

from swell import errors
from swell.cli import checks

IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
PROTOCOLS = ("openai", "kserve-v1", "http")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _namespace(given: str | None) -> str:
    """--namespace, else the pod's own (in a pod), else `default`, as kubectl picks one."""
    if given:
        return given
    with contextlib.suppress(OSError):
        with open(IN_CLUSTER_NAMESPACE, encoding="utf-8") as f:
            own = f.read().strip()
        if own:
            return own
    return "default"


def _modules() -> tuple[Any, Any]:
    try:
        return (
            importlib.import_module("swell.clusters.kubernetes.api"),
            importlib.import_module("swell.runtime.kubernetes_gateway"),
        )
    except ImportError as exc:
        raise errors.ClusterError(
            f"swell gateway needs the Kubernetes client ({exc}): pip install kubernetes cryptography (swell's kubernetes extra)"
        ) from None


async def _run(kubeconfig: str | None, context: str | None, opts: Any) -> None:
    api, runtime = _modules()
    client = await api.KubeApi.connect(kubeconfig, context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.run(client, opts, stop)
    finally:
        await client.close()


def gateway(
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="the Service in front of the model's pods (its selector picks them)")],
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="namespace of the Service (default: the pod's own, else default)"),
    ] = None,
    service_port: Annotated[
        str | None,
        typer.Option(help="the Service port to send to, by name or number (default: its only one, or `http`)"),
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free one)", min=0, max=65535)] = 8080,
    buffer_requests: Annotated[
        int, typer.Option(help="requests that may wait while no pod is ready (or every pod is at --max-ongoing)", min=0)
    ] = 256,
    buffer_timeout: Annotated[float, typer.Option(help="seconds a request may wait in the buffer")] = 60.0,
    deadline: Annotated[
        float | None, typer.Option(help="shed a request with no first token this many seconds after it came (the recipe's slo.deadline_s)")
    ] = None,
    max_ongoing: Annotated[
        int, typer.Option(help="requests one pod may hold at once; the rest wait in the buffer (0: no limit)", min=0)
    ] = 0,
    protocol: Annotated[str, typer.Option(help="openai | kserve-v1 | http: what metadata answers look like at zero")] = "openai",
    drain_timeout: Annotated[
        float, typer.Option(help="on SIGTERM, seconds to wait for the requests in flight")
    ] = 30.0,
    kubeconfig: Annotated[
        str | None, typer.Option(help="kubeconfig file (default: in-cluster, $KUBECONFIG, ~/.kube/config)")
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error, critical")] = "info",
) -> None:
    """Route requests to a Service's ready pods and buffer them while none is ready (scale from zero)."""
    ns = _namespace(namespace)
    problems = checks.namespace_problems("--namespace", ns)
    if not DNS_1035.match(service) or len(service) > 63:
        problems.append(errors.Problem(path="SERVICE", value=service, rule="a Kubernetes Service name (a DNS-1035 "
                                       "label: lower-case letters, digits and '-', starting with a letter)"))  # fmt: skip
    problems += checks.positive_problems({"--buffer-timeout": buffer_timeout, "--drain-timeout": drain_timeout})
    if deadline is not None:
        problems += checks.positive_problems({"--deadline": deadline})
    if protocol not in PROTOCOLS:
        problems.append(errors.Problem(path="--protocol", value=protocol, rule=f"one of {', '.join(PROTOCOLS)}"))
    problems += checks.log_level_problems(log_level)
    checks.raise_problems("swell gateway", problems)
    checks.host("--host", host)
    checks.start_logging(log_level)
    _, runtime = _modules()
    opts = runtime.Options(
        service=service,
        namespace=ns,
        service_port=service_port,
        host=host,
        port=port,
        buffer_requests=buffer_requests,
        buffer_timeout_s=buffer_timeout,
        deadline_s=deadline,
        max_ongoing=max_ongoing,
        protocol=protocol,
        drain_timeout_s=drain_timeout,
    )
    asyncio.run(_run(kubeconfig, context, opts))


def register(app: typer.Typer) -> None:
    app.command("gateway")(gateway)
