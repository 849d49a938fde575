"""The option checks shared by the commands (`swell.cli.checks`): what passes and what is named."""

from __future__ import annotations

from pathlib import Path

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
