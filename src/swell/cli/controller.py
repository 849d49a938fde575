"""`swell controller`: scale the targets of every ScalingRecipe in a Kubernetes cluster.

Runs in a pod (in-cluster config) or outside (kubeconfig). The runtime, and with it the
`kubernetes` client (the optional `[kubernetes]` extra), is imported only when the command runs,
so the rest of the CLI works without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import socket
from typing import Annotated, Any

import typer

from swell import errors
from swell.cli import checks


def _identity() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def _bind(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise errors.ClusterError(
            f"--metrics-bind-address {addr!r}: expected HOST:PORT with a port 0-65535, e.g. 0.0.0.0:8080"
        )
    return host or "0.0.0.0", int(port)


def _runtime() -> Any:
    try:
        return importlib.import_module("swell.runtime.kubernetes")
    except ImportError as exc:
        raise errors.ClusterError(
            f"swell controller needs the Kubernetes client ({exc}): pip install kubernetes cryptography (swell's kubernetes extra)"
        ) from None


async def _run(kubeconfig: str | None, context: str | None, opts: Any, watch_cache: bool = True) -> None:
    runtime = _runtime()
    api = importlib.import_module("swell.clusters.kubernetes.api")
    client = await api.KubeApi.connect(kubeconfig, context)
    stop = asyncio.Event()
    informers = None
    served: Any = client
    if watch_cache:  # pods, nodes and the targets' replicas from watches, not read every tick
        scopes = [n.strip() for n in (opts.namespace or "").split(",") if n.strip()]
        served = importlib.import_module("swell.clusters.kubernetes.cache").CachedApi(client, scopes or None)
        informers = asyncio.create_task(served.run(stop))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.Runtime(served, opts).run(stop)
    finally:
        stop.set()
        if informers is not None:
            informers.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await informers
        await client.close()


def controller(
    kubeconfig: Annotated[
        str | None, typer.Option(help="kubeconfig file (default: in-cluster, $KUBECONFIG, ~/.kube/config)")
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="watch these namespaces, comma-separated (default: all)"),
    ] = None,
    prometheus_url: Annotated[
        str | None, typer.Option(envvar="SWELL_PROMETHEUS_URL", help="Prometheus for recipes that name none")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="decide and publish, patch nothing")] = False,
    identity: Annotated[
        str | None, typer.Option("--id", help="leader-election identity (default: $POD_NAME or host-pid)")
    ] = None,
    leader_elect: Annotated[
        bool, typer.Option("--leader-elect/--no-leader-elect", help="hold a Lease before acting")
    ] = True,
    lease_namespace: Annotated[
        str, typer.Option(envvar="POD_NAMESPACE", help="namespace of the Lease")
    ] = "default",
    lease_name: Annotated[str, typer.Option(help="name of the Lease")] = "swell-controller",
    lease_duration: Annotated[float, typer.Option(help="seconds a Lease lasts without renewal")] = 15.0,
    renew_deadline: Annotated[
        float, typer.Option(help="seconds the leader may fail to renew before it stops")
    ] = 10.0,
    retry_period: Annotated[float, typer.Option(help="seconds between election rounds")] = 2.0,
    resync: Annotated[
        float,
        typer.Option(help="seconds between listings of the ScalingRecipes (a watch notices changes at once)"),
    ] = 30.0,
    allow_prometheus_url: Annotated[
        list[str] | None,
        typer.Option(help="a Prometheus URL recipes may name besides --prometheus-url (repeatable)"),
    ] = None,
    prometheus_header: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VALUE sent to Prometheus with every query, e.g. X-Scope-OrgID=team (repeatable)"),
    ] = None,
    prometheus_bearer_token_file: Annotated[
        str | None,
        typer.Option(envvar="SWELL_PROMETHEUS_BEARER_TOKEN_FILE",
                     help="a file holding the bearer token for Prometheus (re-read every minute)"),
    ] = None,
    prometheus_basic_auth_user: Annotated[
        str | None, typer.Option(envvar="SWELL_PROMETHEUS_BASIC_AUTH_USER", help="basic-auth user for Prometheus")
    ] = None,
    prometheus_basic_auth_password_file: Annotated[
        str | None,
        typer.Option(envvar="SWELL_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE", help="a file holding its password"),
    ] = None,
    prometheus_ca_file: Annotated[
        str | None, typer.Option(envvar="SWELL_PROMETHEUS_CA_FILE", help="CA bundle for Prometheus's TLS certificate")
    ] = None,
    prometheus_insecure_skip_verify: Annotated[
        bool, typer.Option(envvar="SWELL_PROMETHEUS_INSECURE_SKIP_VERIFY", help="do not verify Prometheus's TLS certificate")
    ] = False,
    allow_any_namespace_queries: Annotated[
        bool,
        typer.Option(help="let a recipe's raw `query` read other namespaces (default: its own only)"),
    ] = False,
    metrics_bind_address: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for /metrics and /healthz (port 0: any); default 127.0.0.1:8080, in a pod 0.0.0.0:8443"
        ),
    ] = None,
    metrics_secure: Annotated[
        bool | None,
        typer.Option(
            "--metrics-secure/--no-metrics-secure",
            help="HTTPS, /metrics only for tokens allowed to GET it (TokenReview, SubjectAccessReview); default in a pod",
        ),
    ] = None,
    metrics_cert_dir: Annotated[
        str | None,
        typer.Option(help="directory with tls.crt and tls.key (default: a self-signed certificate)"),
    ] = None,
    capacity_buffers: Annotated[
        str,
        typer.Option(help="headroom as CapacityBuffers: auto (where the cluster serves the API), on, off"),
    ] = "auto",
    headroom_namespace: Annotated[
        str | None, typer.Option(help="namespace of the headroom placeholders (default: the Lease's)")
    ] = None,
    watch_cache: Annotated[
        bool,
        typer.Option(
            "--watch-cache/--no-watch-cache",
            help="pods, nodes and the replicas of Deployments and StatefulSets from watches (default)",
        ),
    ] = True,
    status_heartbeat_ticks: Annotated[
        int,
        typer.Option(
            min=1,
            help="write a recipe's status when it changes, else every N ticks (1: every tick)",
        ),
    ] = 8,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error, critical")] = "info",
) -> None:
    """Scale every ScalingRecipe's target on Prometheus signals; keep GPU headroom; one leader acts."""
    in_pod = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    secure = in_pod if metrics_secure is None else metrics_secure
    host, port = _bind(metrics_bind_address or ("0.0.0.0:8443" if in_pod else "127.0.0.1:8080"))
    problems = checks.positive_problems({"--lease-duration": lease_duration, "--renew-deadline": renew_deadline,
                                         "--retry-period": retry_period, "--resync": resync})  # fmt: skip
    if capacity_buffers not in ("auto", "on", "off"):
        problems.append(errors.Problem(path="--capacity-buffers", value=capacity_buffers, rule="one of auto, on, off"))
    problems += checks.log_level_problems(log_level)
    problems += checks.namespace_problems("--namespace", namespace, many=True)
    problems += checks.namespace_problems("--lease-namespace", lease_namespace)
    problems += checks.namespace_problems("--headroom-namespace", headroom_namespace)
    problems += checks.url_problems("--prometheus-url", prometheus_url)
    for url in allow_prometheus_url or ():
        problems += checks.url_problems("--allow-prometheus-url", url)
    from swell.metrics import prometheus  # aiohttp: only when the command runs

    headers, bad = prometheus.headers_of(prometheus_header or (), "--prometheus-header", "NAME=VALUE")
    problems += bad
    auth = prometheus.Auth(headers=headers, bearer_token_file=prometheus_bearer_token_file,
                           basic_auth_user=prometheus_basic_auth_user,
                           basic_auth_password_file=prometheus_basic_auth_password_file,
                           ca_file=prometheus_ca_file, insecure_skip_verify=prometheus_insecure_skip_verify)  # fmt: skip
    problems += auth.problems()
    checks.raise_problems("swell controller", problems)
    checks.start_logging(log_level)
    runtime = _runtime()
    opts = runtime.Options(
        identity=identity or _identity(),
        namespace=namespace,
        headroom_namespace=headroom_namespace or lease_namespace,
        prometheus_url=prometheus_url,
        dry_run=dry_run,
        leader_elect=leader_elect,
        lease_namespace=lease_namespace,
        lease_name=lease_name,
        lease_duration_s=lease_duration,
        renew_deadline_s=renew_deadline,
        retry_period_s=retry_period,
        resync_s=resync,
        host=host,
        port=port,
        capacity_buffers=capacity_buffers,
        metrics_secure=secure,
        metrics_cert_dir=metrics_cert_dir,
        any_namespace_queries=allow_any_namespace_queries,
        allowed_prometheus_urls=tuple(allow_prometheus_url or ()),
        prometheus_auth=auth,
        status_heartbeat_ticks=status_heartbeat_ticks,
    )
    asyncio.run(_run(kubeconfig, context, opts, watch_cache))


def register(app: typer.Typer) -> None:
    app.command("controller")(controller)
