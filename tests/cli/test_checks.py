"""The option checks shared by the commands (`swell.cli.checks`): what passes and what is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swell import errors
from swell.cli import checks


@pytest.mark.parametrize(
    ("value", "ok"),
    [("http://prometheus-operated.monitoring.svc:9090", True), ("https://[::1]:9090", True),
     ("http://127.0.0.1:9090/prom", True), ("prometheus:9090", False), ("ftp://x", False),
     ("http://p:abc", False), ("http://p:99999", False), ("http://", False)],
)  # fmt: skip
def test_urls(value: str, ok: bool) -> None:
    assert (checks.url_problems("--prometheus-url", value) == []) == ok


@pytest.mark.parametrize(
    ("value", "bad"),
    [("default", []), ("a,b,", []), ("", []), ("ml, serving", []), ("Bad_NS!", ["Bad_NS!"]),
     ("ok,-no", ["-no"]), ("x" * 64, ["x" * 64])],
)  # fmt: skip
def test_namespaces_as_the_runtime_reads_them(value: str, bad: list[str]) -> None:
    assert [p.value for p in checks.namespace_problems("--namespace", value, many=True)] == bad


def test_output_files(tmp_path: Path) -> None:
    checks.output_file("--report", tmp_path / "new" / "folder" / "r.html")  # the writer makes the folders
    checks.output_file("--report", Path("r.html"))
    checks.output_file("--json", Path("-"), stdout=True)
    file = tmp_path / "f"
    file.write_text("")
    for path, stdout, rule in ((Path("-"), False, "standard output ('-') is not offered here"),
                               (tmp_path, False, "is a directory"),
                               (file / "r.html", False, f"{file} is a file, not a directory")):  # fmt: skip
        with pytest.raises(errors.RecipeError) as info:
            checks.output_file("--report", path, stdout=stdout)
        assert rule in str(info.value)


@pytest.mark.parametrize("check", [checks.output_file, checks.directory], ids=["an output file", "a directory"])
def test_a_folder_that_refuses_new_files_is_named_before_any_work(check: Any) -> None:
    """Permissions say nothing to root, and /proc refuses new folders to everyone: a run of minutes
    was lost at its end on `--json /proc/x/o.json`, and `swell up --run-dir /proc/x` never started."""
    with pytest.raises(errors.RecipeError) as info:
        check("--out", Path("/proc/swell-no-such/x"))
    assert "cannot write in /proc/swell-no-such" in str(info.value)
