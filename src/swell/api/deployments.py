"""The deployments manager: one LocalRuntime per deployment, all in one asyncio loop, kept in a Store.

`create` checks a posted payload (swell recipe or Corrino payload) for what this machine can run,
starts it and records it; `patch` changes min/max, targets and stabilization windows of the live
controller; `replace` puts a whole new recipe onto it (a changed service rolled onto the replicas
one at a time, stored once every replica runs it); `delete` drains and stops; `resume` starts again
what the store says was running.
Each deployment's decisions and a sample of its series every `sample_s` go to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swell import errors, recipe
from swell.api import sampler as sampler_mod
from swell.api import schemas
from swell.api import store as store_mod
from swell.control import history as history_mod
from swell.control import profile
from swell.runtime import local

log = logging.getLogger(__name__)
START_ATTEMPTS = 3  # as `swell up`: a replica failing to start this often, none ever ready: failed
KEEP_HISTORY_S = 7 * 24 * 3600.0
SOURCE = "request body"


class NotFound(errors.SwellError):
    pass


class Conflict(errors.SwellError):
    pass


@dataclass(kw_only=True)
class Deployment:
    name: str
    payload: dict[str, Any]
    patch: dict[str, Any]
    rt: local.LocalRuntime
    sampler: sampler_mod.Sampler
    created_at: float
    notes: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    signal_errors: int = 0
    rollout: schemas.Rollout | None = None
    rolling: asyncio.Task[None] | None = None  # waits for a roll, then stores or reverts

    @property
    def recipe(self) -> recipe.Recipe:
        return self.rt.controller.recipe


def _problem(path: str, value: object, rule: str) -> errors.RecipeError:
    return errors.RecipeError(SOURCE, [errors.Problem(path=path, value=value, rule=rule)])


def pretends_gpus(rec: recipe.Recipe) -> bool:
    """simulated-llm with GPUs and no local.gpu_ids: the API gives it pretend GPU ids, as many as
    max_replicas need (it uses none)."""
    return rec.service.engine == "simulated-llm" and rec.resources.gpus > 0 and not rec.local.gpu_ids


def check_slots(rec: recipe.Recipe, ids: tuple[int, ...]) -> None:
    """max_replicas within the pretend GPU ids a running deployment started with (RecipeError)."""
    fit = len(ids) // rec.resources.gpus
    if rec.autoscaling.max_replicas > fit:
        raise _problem(
            "autoscaling.max_replicas",
            rec.autoscaling.max_replicas,
            f"at most {fit}: this deployment started with {len(ids)} pretend GPU(s) for simulated-llm "
            f"({fit} replica(s) of {rec.resources.gpus}), and a running service keeps its slots; "
            "DELETE it and POST it again for more",
        )


def apply_patch(rec: recipe.Recipe, patch: dict[str, Any]) -> recipe.Recipe:
    """The recipe with a PATCH body's changes, validated as a whole (every problem at once)."""
    p = schemas.Patch.model_validate(patch)
    data = rec.model_dump(mode="json", by_alias=True)
    a = data["autoscaling"]
    if p.min_replicas is not None:
        a["min_replicas"] = p.min_replicas
    if p.max_replicas is not None:
        a["max_replicas"] = p.max_replicas
    problems = []
    for name, target in (p.targets or {}).items():
        sig = next((s for s in a["signals"] if s["name"] == name), None)
        if sig is None:
            known = ", ".join(s["name"] for s in a["signals"])
            rule = f"no such signal; known: {known}" if known else "no such signal: this deployment scales on none"
            problems.append(errors.Problem(path=f"targets.{name}", value=target, rule=rule))
        else:
            sig["target"] = target
    if problems:
        raise errors.RecipeError(SOURCE, problems)
    if p.windows is not None:
        if p.windows.scale_up_stabilization_s is not None:
            a["behavior"]["scale_up"]["stabilization_window_s"] = p.windows.scale_up_stabilization_s
        if p.windows.scale_down_stabilization_s is not None:
            a["behavior"]["scale_down"]["stabilization_window_s"] = p.windows.scale_down_stabilization_s
    return recipe.parse(data, SOURCE)


def merge_patches(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = {**old, **{k: v for k, v in new.items() if v is not None}}
    for key in ("targets", "windows"):
        if isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
            out[key] = {**old[key], **{k: v for k, v in new[key].items() if v is not None}}
    return out


class Manager:
    def __init__(
        self,
        store: store_mod.Store,
        *,
        run_root: Path,
        allow_command: bool = False,
        sample_s: float = 1.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.store = store
        self.run_root = run_root
        self.allow_command = allow_command
        self.sample_s = sample_s
        self.host = host
        self.deployments: dict[str, Deployment] = {}
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ building

    def build(
        self, payload: Any, patch: dict[str, Any] | None = None, slots: tuple[int, ...] = ()
    ) -> tuple[recipe.Recipe, list[str]]:
        """The recipe to run here and notes on what was adapted; RecipeError with every problem.
        `slots`: the GPU ids a running deployment pretends for simulated-llm (kept: they cannot
        change while it runs)."""
        rec = recipe.parse(payload, SOURCE)
        profile.check(rec, SOURCE)  # a preset no engine model has fails here, not minutes later at a start
        notes: list[str] = []
        svc = rec.service
        if svc.engine == "command" and not self.allow_command:
            raise _problem(
                "service.engine",
                "command",
                "the command engine is switched off for the API (it runs any program); start the API "
                "with --allow-command to allow it, or name a built-in engine",
            )
        if svc.engine == "vllm" and (shutil.which("vllm") is None or not rec.local.gpu_ids):
            missing = "no `vllm` executable" if shutil.which("vllm") is None else "no GPU in local.gpu_ids"
            raise _problem(
                "service.engine",
                "vllm",
                f"vLLM cannot run on this machine ({missing}); to run the same autoscaling here, name a "
                'local engine beside the payload\'s keys: "service": {"engine": "simulated-llm"}',
            )
        if patch:
            rec = apply_patch(rec, patch)
        if pretends_gpus(rec):
            ids = slots or tuple(range(rec.resources.gpus * rec.autoscaling.max_replicas))
            check_slots(rec, ids)
            rec = rec.model_copy(update={"local": rec.local.model_copy(update={"gpu_ids": ids})})
            notes.append(
                f"simulated-llm uses no GPU: local.gpu_ids set to {ids[0]}..{ids[-1]} so that "
                f"{len(ids) // rec.resources.gpus} replica(s) of {rec.resources.gpus} GPU(s) fit"
            )
        return rec, notes

    def _port(self, payload: dict[str, Any], stored: int | None) -> int:
        local_sec = payload.get("local")
        if isinstance(local_sec, dict) and isinstance(local_sec.get("port"), int):
            return int(local_sec["port"])
        return stored or 0

    # ------------------------------------------------------------------ lifecycle

    async def _start(
        self, name: str, payload: dict[str, Any], patch: dict[str, Any], rec: recipe.Recipe, *,
        port: int, created_at: float, notes: list[str],
    ) -> Deployment:  # fmt: skip
        run_dir = self.run_root / name
        run_dir.mkdir(parents=True, exist_ok=True)
        rt = local.LocalRuntime(rec, port=port, run_dir=run_dir, give_up_after=START_ATTEMPTS)
        dep = Deployment(
            name=name, payload=payload, patch=patch, rt=rt, sampler=sampler_mod.Sampler(rt),
            created_at=created_at, notes=notes,
        )  # fmt: skip

        def on_decision(e: history_mod.Entry) -> None:
            dep.signal_errors += sum(1 for r in e.snapshot.signals.values() if r.error)
            self.store.add_decision(name, e.decision.t, decision_json(e))

        rt.history.listen(on_decision)
        try:
            await rt.start()
        except BaseException:
            await rt.stop()  # what did start (the gateway, a replica) stops again
            raise
        dep.task = asyncio.get_running_loop().create_task(self._sample_loop(dep), name=f"sample {name}")
        return dep

    async def create(self, payload: Any) -> Deployment:
        async with self._lock:
            rec, notes = self.build(payload)
            name = rec.service.name
            if name in self.deployments:
                raise Conflict(f"a deployment named {name!r} exists; DELETE it first or choose another name")
            now = time.time()
            port = self._port(payload, None)
            try:
                dep = await self._start(name, payload, {}, rec, port=port, created_at=now, notes=notes)
            except OSError as exc:  # the payload's local.port taken, the run directory not writable
                raise errors.ClusterError(f"cannot start {name!r} on this machine: {exc}") from None
            self.store.add(name, payload, now)
            self.store.set_port(name, dep.rt.cluster.gateway.port)
            self.deployments[name] = dep
            return dep

    async def resume(self) -> list[str]:
        """Start what the store says was running; what cannot start again is said, not dropped."""
        problems = []
        for row in self.store.running():
            try:
                rec, notes = self.build(row.payload, row.patch)
                port = self._port(row.payload, row.port)
                chosen = self._port(row.payload, None) != 0  # the payload's own local.port: no other
                try:
                    dep = await self._start(
                        row.name,
                        row.payload,
                        row.patch,
                        rec,
                        port=port,
                        created_at=row.created_at,
                        notes=notes,
                    )
                except (OSError, errors.ClusterError) as exc:
                    if chosen or port == 0:
                        raise errors.ClusterError(str(exc)) from None
                    log.warning("%s: port %d is taken now: another one", row.name, port)
                    dep = await self._start(
                        row.name, row.payload, row.patch, rec, port=0, created_at=row.created_at, notes=notes
                    )
                    self.store.set_port(row.name, dep.rt.cluster.gateway.port)
                self.deployments[row.name] = dep
            except errors.SwellError as exc:
                problems.append(f"{row.name}: not resumed: {exc}")
        return problems

    def get(self, name: str) -> Deployment:
        dep = self.deployments.get(name)
        if dep is None:
            raise NotFound(f"no deployment named {errors.cut(name)!r}")
        return dep

    def patch(self, name: str, body: dict[str, Any]) -> Deployment:
        dep = self.get(name)
        merged = merge_patches(dep.patch, body)
        rec = apply_patch(dep.recipe, body)
        if pretends_gpus(recipe.parse(dep.payload, SOURCE)):
            check_slots(rec, rec.local.gpu_ids)
        dep.rt.apply_recipe(rec)  # the runtime's recipe too: a PUT rolled back returns to this one
        dep.patch = merged
        self.store.set_patch(name, merged)
        return dep

    async def replace(self, name: str, payload: Any) -> Deployment:
        """Put a whole recipe onto a running deployment (PUT): what the controller and the gateway
        read applies at once; a changed service is rolled onto the replicas one at a time, and the
        payload is stored once every replica runs it (a roll that fails goes back, and the previous
        payload stays). A PATCH made before is cleared: the new payload is the whole recipe."""
        async with self._lock:
            dep = self.get(name)
            running = dep.recipe.local.gpu_ids if pretends_gpus(recipe.parse(dep.payload, SOURCE)) else ()
            rec, notes = self.build(payload, slots=running)
            if rec.service.name != name:
                raise _problem("service.name", rec.service.name, f"must stay {name!r}: the URL names the deployment")
            applied = dep.rt.apply_recipe(rec)
            before = (dep.patch, dep.notes)  # what a roll that fails goes back to, with the recipe
            dep.patch, dep.notes = {}, notes
            self.store.set_patch(name, {})
            dep.rollout = schemas.Rollout(state="rolling" if applied.rolled else "applied", changed=list(applied.changed))
            if not applied.rolled:
                self._stored(dep, payload)
                return dep
            if dep.rolling is not None and not dep.rolling.done():
                dep.rolling.cancel()  # the roll now goes on to the newer recipe: that one is awaited
            dep.rolling = asyncio.get_running_loop().create_task(
                self._await_roll(dep, payload, before), name=f"roll {name}"
            )
            return dep

    def _stored(self, dep: Deployment, payload: Any) -> None:
        dep.payload = payload
        self.store.set_payload(dep.name, payload)

    async def _await_roll(self, dep: Deployment, payload: Any, before: tuple[dict[str, Any], list[str]]) -> None:
        error = await dep.rt.rolled()
        assert dep.rollout is not None
        if error is None:
            self._stored(dep, payload)
            dep.rollout = dep.rollout.model_copy(update={"state": "rolled"})
        else:  # the runtime is back on the recipe it ran before, a PATCH of it included
            dep.patch, dep.notes = before
            self.store.set_patch(dep.name, dep.patch)
            dep.rollout = dep.rollout.model_copy(update={"state": "rolled back", "error": error})
            log.warning("%s: %s; rolled back to the previous recipe", dep.name, error)

    async def delete(self, name: str) -> None:
        async with self._lock:
            dep = self.get(name)
            await self._stop(dep)
            del self.deployments[name]
            self.store.remove(name)

    async def _stop(self, dep: Deployment) -> None:
        if dep.rolling is not None:
            dep.rolling.cancel()
        if dep.task is not None:
            dep.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dep.task
        await dep.rt.stop()  # drains: requests in flight finish first

    async def close(self) -> None:
        """Stop every runtime; the store keeps them so the next start resumes them."""
        for dep in list(self.deployments.values()):
            try:
                await self._stop(dep)
            except Exception:
                log.exception("stopping %s failed", dep.name)
        self.deployments.clear()

    async def _sample_loop(self, dep: Deployment) -> None:
        pruned = 0.0
        while True:
            now = time.time()
            try:
                self.store.add_sample(dep.name, now, dep.sampler.sample(now))
                if now - pruned > 3600:
                    self.store.prune(now - KEEP_HISTORY_S)
                    pruned = now
            except Exception:  # a failed sample is a gap in the plot, never a stopped deployment
                log.exception("sampling %s failed", dep.name)
            await asyncio.sleep(self.sample_s)


def decision_json(e: history_mod.Entry) -> dict[str, Any]:
    d = e.decision.to_json()
    return {
        k: d[k] for k in ("t", "current", "desired", "bound_by", "reason", "policy", "proposals", "values")
    }
