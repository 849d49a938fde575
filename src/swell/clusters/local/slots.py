"""Device slots of one machine: GPU ids handed out per replica, or plain CPU slots.

A replica runs only in a slot; with every slot taken, the next replica waits as Pending and says
why. GPU slots group `resources.gpus` ids per replica (CUDA_VISIBLE_DEVICES); CPU slots are a
count (`local.cpu_slots`). The pool is a plain object: no processes, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from swell import errors, recipe


@dataclass(frozen=True, kw_only=True)
class Slot:
    """One place a replica can run: an index and the GPU ids it owns (empty: a CPU slot)."""

    index: int
    gpu_ids: tuple[int, ...] = ()

    @property
    def cuda_visible_devices(self) -> str:
        """The value for CUDA_VISIBLE_DEVICES: the ids, or "" so a CPU replica sees no GPU."""
        return ",".join(str(g) for g in self.gpu_ids)

    @property
    def label(self) -> str:
        return f"gpu {self.cuda_visible_devices}" if self.gpu_ids else f"cpu slot {self.index}"


def layout(rec: recipe.Recipe) -> tuple[Slot, ...]:
    """The slots the recipe's `local` section and `resources.gpus` give on this machine."""
    gpus, ids = rec.resources.gpus, rec.local.gpu_ids
    if gpus == 0:
        return tuple(Slot(index=i) for i in range(rec.local.cpu_slots))
    if not ids:
        return ()
    if len(set(ids)) != len(ids):
        raise errors.RecipeError(
            "<recipe>",
            [errors.Problem(path="local.gpu_ids", value=list(ids), rule="GPU ids must be unique")],
        )
    n = len(ids) // gpus
    return tuple(Slot(index=i, gpu_ids=tuple(ids[i * gpus : (i + 1) * gpus])) for i in range(n))


def no_slot_reason(rec: recipe.Recipe, capacity: int) -> str:
    """Why a replica beyond the capacity stays Pending, in words a person can act on."""
    gpus, ids = rec.resources.gpus, rec.local.gpu_ids
    if gpus == 0:
        return f"no free device slot: all {capacity} CPU slots are taken (local.cpu_slots)"
    if not ids:
        return f"no GPU slot: the replica needs {gpus} GPU(s) and local.gpu_ids is empty"
    if capacity == 0:
        return f"no GPU slot: the replica needs {gpus} GPU(s), local.gpu_ids has only {len(ids)}"
    return (
        f"no free device slot: all {capacity} slots of {gpus} GPU(s) are taken (local.gpu_ids = {list(ids)})"
    )


class SlotPool:
    """Hands out slots lowest index first and takes them back."""

    def __init__(self, slots: tuple[Slot, ...]) -> None:
        self._slots = slots
        self._free = list(slots)

    @staticmethod
    def for_recipe(rec: recipe.Recipe) -> SlotPool:
        return SlotPool(layout(rec))

    @property
    def capacity(self) -> int:
        return len(self._slots)

    @property
    def free(self) -> int:
        return len(self._free)

    def acquire(self) -> Slot | None:
        """The lowest free slot, or None when every slot is taken."""
        if not self._free:
            return None
        self._free.sort(key=lambda s: s.index)
        return self._free.pop(0)

    def release(self, slot: Slot) -> None:
        if slot not in self._slots:
            raise ValueError(f"{slot} does not belong to this pool")
        if slot in self._free:
            raise ValueError(f"{slot} is already free")
        self._free.append(slot)
