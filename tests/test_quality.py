"""The project's own checks as tests: layer contracts, ruff, mypy --strict over the whole package.

Each is a gate that fails, never skips: the tools are dev dependencies."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_imports_point_down_the_layers() -> None:
    exe = shutil.which("lint-imports")
    assert exe is not None, "import-linter is a dev dependency: pip install -e .[dev]"
    res = run(exe)
    assert res.returncode == 0, res.stdout[-3000:]


def test_ruff_is_clean() -> None:
    res = run(sys.executable, "-m", "ruff", "check", "src", "tests", "bench")
    assert res.returncode == 0, res.stdout[-3000:]


def test_mypy_is_clean() -> None:
    res = run(sys.executable, "-m", "mypy")
    assert res.returncode == 0, res.stdout[-3000:]
