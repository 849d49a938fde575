"""The API server as one object: state file, token, deployments manager and the aiohttp site.

`async with Server(...)`: opens the store (a clear error if it is corrupted or in use), loads or
creates the token, resumes the deployments the store holds, then serves. Leaving stops every
deployment (draining) and the site, and keeps the store so that the next start resumes them.
"""

from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

from swell import errors
from swell.api import app as app_mod
from swell.api import auth, deployments
from swell.api import store as store_mod
from swell.clusters.local import cluster as cluster_mod


class CannotListen(errors.ClusterError):
    """The API's address is taken (or not this machine's)."""


class Server(cluster_mod.StartStop):
    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        token: str | None = None,
        allow_command: bool = False,
        sample_s: float = 1.0,
    ) -> None:
        self.data_dir = data_dir or store_mod.default_dir()
        self.host, self.port = host, port
        self.given_token = token
        self.allow_command = allow_command
        self.sample_s = sample_s
        self.store: store_mod.Store | None = None
        self.manager: deployments.Manager | None = None
        self.runner: web.AppRunner | None = None
        self.token: auth.Token | None = None
        self.resume_problems: list[str] = []

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address in a URL (RFC 3986)
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self.store = store_mod.Store(self.data_dir / store_mod.FILE_NAME)
        self.token = auth.load_or_create(self.data_dir, self.given_token)
        self.manager = deployments.Manager(
            self.store,
            run_root=self.data_dir / "runs",
            allow_command=self.allow_command,
            sample_s=self.sample_s,
            host=self.host,
        )
        self.resume_problems = await self.manager.resume()
        app = app_mod.make_app(self.manager, self.token.value)
        try:
            self.runner, self.port = await app_mod.serve(app, self.host, self.port)
        except OSError as exc:  # the resumed deployments stop (drained) with it: nothing is left running
            await self.stop()
            why = os.strerror(exc.errno) if exc.errno else str(exc)  # aiohttp's strerror repeats the address
            raise CannotListen(f"cannot listen on {self.url}: {why}") from None

    async def stop(self) -> None:
        try:
            if self.runner is not None:
                await self.runner.cleanup()
                self.runner = None
            if self.manager is not None:
                await self.manager.close()
        finally:
            if self.store is not None:
                self.store.close()
                self.store = None
