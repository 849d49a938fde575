"""CLI start-up: how long `swell --help` (and other quick invocations) take as a whole process.

Runs each command N times after one warm-up and prints JSON: every run's wall time, the median,
min and max, and the modules the command imported that make start-up slow (matplotlib, aiohttp,
numpy, kubernetes), if any.
    python bench/cli_start.py [--runs 10] [--args=--help --args="validate --help"]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from typing import Any

HEAVY = ("matplotlib", "aiohttp", "numpy", "kubernetes", "rich.console")
PROBE = (
    "import runpy, sys; sys.argv = ['swell', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('swell.cli.main', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "print('\\nHEAVY ' + ' '.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
)


def time_once(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "swell.cli.main", *args], capture_output=True, check=False)
    return time.perf_counter() - t0


def heavy_imports(args: list[str]) -> list[str]:
    code = PROBE.format(heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    line = [x for x in out.stderr.splitlines() if x.startswith("HEAVY")]
    return line[-1].split()[1:] if line else ["(probe failed)"]


def measure(args: list[str], runs: int) -> dict[str, Any]:
    time_once(args)  # warm-up: file system caches, .pyc files
    walls = [time_once(args) for _ in range(runs)]
    return {
        "command": "swell " + shlex.join(args),
        "runs": runs,
        "wall_s": {
            "median": round(statistics.median(walls), 3),
            "min": round(min(walls), 3),
            "max": round(max(walls), 3),
        },
        "each_s": [round(w, 3) for w in walls],
        "heavy_modules_imported": heavy_imports(args),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument(
        "--args", action="append", help="arguments after `swell`, one string per command (repeatable)"
    )
    opts = p.parse_args()
    commands = opts.args or ["--help", "--version"]
    print(
        json.dumps(
            {
                "python": platform.python_version(),
                "cpus": len(os.sched_getaffinity(0)),
                "results": [measure(shlex.split(c), opts.runs) for c in commands],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
