"""``kindling spec`` and ``kindling run`` of text modules, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here runs `kindling spec`

DATA = Path(__file__).parent / "data"


def kindling(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from host.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_spec_reports_each_failure_with_its_line_and_fails() -> None:
    result = kindling("spec", str(DATA / "wrong_expectations.wast"))
    assert result.returncode == 1
    assert "wrong_expectations.wast        4        6       10  FAILED" in result.stdout
    assert "wrong_expectations.wast:4: assert_return: got [3]" in result.stdout
    assert (
        "wrong_expectations.wast:7: assert_trap: trapped with integer divide by zero"
        in result.stdout
    )


def test_spec_json_totals_and_files() -> None:
    result = kindling(
        "spec", "--json", str(DATA / "passing.wast"), str(DATA / "wrong_expectations.wast")
    )
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert (data["passed"], data["failed"], data["total"]) == (7, 6, 13)
    assert [(f["file"], f["passed"], f["failed"], f["total"]) for f in data["files"]] == [
        ("passing.wast", 3, 0, 3),
        ("wrong_expectations.wast", 4, 6, 10),
    ]


def test_spec_passes_on_a_passing_script() -> None:
    result = kindling("spec", str(DATA / "passing.wast"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_spec_names_a_missing_path() -> None:
    result = kindling("spec", str(DATA / "no-such.wast"))
    assert result.returncode == 2
    assert "no-such.wast" in result.stderr


def test_run_accepts_a_text_module() -> None:
    result = kindling("run", "--invoke", "add", str(DATA / "add.wat"), "2", "40")
    assert (result.returncode, result.stdout) == (0, "[42]\n")
