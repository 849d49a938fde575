"""What a real TorchServe needs here, for the tests that start one to skip with the reason."""

from __future__ import annotations

import importlib.util
import shutil

INSTALL = "pip install torch==2.13.0 && pip install -e '.[torchserve]' (and a Java 17 runtime)"


def missing(*extra_modules: str) -> list[str]:
    """The parts of a TorchServe install this Python and PATH lack (empty: all there), plus any
    `extra_modules` a test needs beside it."""
    needed = [
        ("torchserve", shutil.which("torchserve")),
        ("torch-model-archiver", shutil.which("torch-model-archiver")),
        ("java", shutil.which("java")),
        ("pyyaml", importlib.util.find_spec("yaml")),
        ("the torchserve package in this Python", importlib.util.find_spec("ts")),
        *((m, importlib.util.find_spec(m)) for m in extra_modules),
    ]
    return [what for what, found in needed if not found]
