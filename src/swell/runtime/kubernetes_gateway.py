"""swell's gateway on Kubernetes: the local gateway in front of a Service's ready pods.

It is what Knative's activator and KEDA's HTTP add-on are to their autoscalers: requests that
come while no replica is ready (scaled to zero, all starting) wait in its buffer, and its own
series (`swell_gateway_requests_buffered`, `swell_gateway_concurrency_seconds_total`, ...) have a
value at zero, so a recipe's signal on them scales the service from zero. The same routing,
per-replica cap and deadline shedding as `swell up`; the pods come from `clusters.kubernetes.endpoints`.
On SIGTERM it answers new requests 503 and waits for those in flight (up to `drain_timeout_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from swell import errors
from swell.clusters.kubernetes import api, endpoints
from swell.clusters.local import gateway as gateway_mod

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Options:
    service: str
    namespace: str
    service_port: str | None = None  # the Service port by name or number (None: the only one, or `http`)
    host: str = "0.0.0.0"
    port: int = 8080
    buffer_requests: int = 256
    buffer_timeout_s: float = 60.0
    deadline_s: float | None = None
    max_ongoing: int = 0
    protocol: str = "openai"
    drain_timeout_s: float = 30.0


async def target(client: api.Api, opts: Options) -> endpoints.Target:
    svc = await client.get_service(opts.namespace, opts.service)
    if svc is None:
        raise errors.ClusterError(
            f"service {opts.namespace}/{opts.service} not found (the Service in front of the model's pods; "
            "`swell render` writes it)"
        )
    return endpoints.target_of(svc, opts.service_port)


def gateway(opts: Options) -> gateway_mod.Gateway:
    return gateway_mod.Gateway(
        host=opts.host,
        port=opts.port,
        buffer_requests=opts.buffer_requests,
        buffer_timeout_s=opts.buffer_timeout_s,
        deadline_s=opts.deadline_s,
        max_ongoing=opts.max_ongoing,
        protocol=opts.protocol,
        port_hint="(give another --port)",
    )


async def drain(gw: gateway_mod.Gateway, timeout_s: float, poll_s: float = 0.1) -> int:
    """New requests get a 503 from now on; wait for those in flight. Returns how many were still
    in flight when the time ran out (0: all finished)."""
    gw.close_to_new_requests()
    until = time.monotonic() + timeout_s
    while gw.stats().in_flight and time.monotonic() < until:
        await asyncio.sleep(poll_s)
    return gw.stats().in_flight


class Front:
    """The gateway and the pod watch that feeds it: `start`, then `stop` (drain first)."""

    def __init__(self, client: api.Api, opts: Options) -> None:
        self.client, self.opts = client, opts
        self.gateway = gateway(opts)
        self._stop = asyncio.Event()
        self._watching: asyncio.Task[None] | None = None
        self.target: endpoints.Target | None = None

    async def start(self) -> None:
        self.target = await target(self.client, self.opts)  # before listening: a wrong name fails here
        await self.gateway.start()
        self._watching = asyncio.create_task(endpoints.Endpoints(self.client, self.target, self.gateway).run(self._stop))
        log.info("swell gateway on %s in front of %s", self.gateway.url, self.target.describe())

    async def stop(self) -> int:
        """Drain (new requests get a 503, those in flight finish), then stop. Returns how many
        requests were cut off at the drain timeout."""
        left = await drain(self.gateway, self.opts.drain_timeout_s)
        if left:
            log.warning("%d request(s) still in flight after %g s: cut off", left, self.opts.drain_timeout_s)
        self._stop.set()
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watching
        await self.gateway.stop()
        return left


async def run(client: api.Api, opts: Options, stop: asyncio.Event) -> None:
    """Serve until `stop` is set, then drain and stop."""
    front = Front(client, opts)
    await front.start()
    print(f"swell-gateway listening on {front.gateway.url}", flush=True)
    try:
        await stop.wait()
    finally:
        await front.stop()
