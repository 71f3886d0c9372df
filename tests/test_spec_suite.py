"""The official WebAssembly 2.0 core spec tests, one test item per script.

Each script runs through ``guestproc.spectest`` (the runner ``kindling spec`` uses) in this
process; every assertion must pass and every module must load.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from guestproc.spectest import ScriptRunner, run_file
from tests.framework.paths import NO_SPEC_SUITE, spec_suite_dir

CORE = spec_suite_dir()
# Thousands of nested calls, unmetered and metered: 5-11 s each, all the others < 0.5 s.
SLOW_SCRIPTS = {"skip-stack-guard-page.wast"}
SCRIPTS = [
    pytest.param(script, marks=[pytest.mark.slow] if script.name in SLOW_SCRIPTS else [])
    for script in (sorted(CORE.glob("*.wast")) if CORE else [])
]


@pytest.mark.parametrize(
    "script",
    SCRIPTS or [pytest.param(None, marks=pytest.mark.skip(reason=NO_SPEC_SUITE))],
    ids=lambda p: p.name if isinstance(p, Path) else "suite",
)
def test_core_script_passes(script: Path) -> None:
    result = run_file(script)
    shown = "\n".join(f"  line {f.line}: {f.command}: {f.message}" for f in result.failures[:20])
    assert result.failed == 0 and result.errors == 0, f"{result.failed} failed:\n{shown}"
    assert result.passed == result.total


@pytest.mark.parametrize(
    "script",
    SCRIPTS or [pytest.param(None, marks=pytest.mark.skip(reason=NO_SPEC_SUITE))],
    ids=lambda p: p.name if isinstance(p, Path) else "suite",
)
def test_core_script_passes_with_fuel_metering(script: Path) -> None:
    """Metered code is a different translation (charges moved across blocks and branches):
    it must keep every semantic of the unmetered one."""
    result = run_file(script, metered=True)
    shown = "\n".join(f"  line {f.line}: {f.command}: {f.message}" for f in result.failures[:20])
    assert result.failed == 0 and result.errors == 0, f"{result.failed} failed:\n{shown}"
    assert result.passed == result.total


def test_core_suite_counts_every_assertion() -> None:
    if CORE is None:
        pytest.skip(NO_SPEC_SUITE)
    # The suite's README inventory: 90 files, 26,716 assert_* commands.
    assert len(SCRIPTS) == 90


WRONG = b"""
(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
        (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1))))
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3))
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 4))
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_trap (invoke "div" (i32.const 1) (i32.const 1)) "integer divide by zero")
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer overflow")
(assert_invalid (module (func (result i32) (i64.const 0))) "type mismatch")
(assert_invalid (module (func (result i32) (i32.const 0))) "type mismatch")
(assert_malformed (module quote "(func (i32.const x))") "unknown operator")
(assert_malformed (module quote "(func (i32.const 1) drop)") "unknown operator")
(assert_return (invoke "add" (i32.const 1) (i32.const -1)) (f32.const nan:canonical))
(assert_return (invoke "missing"))
"""


def test_runner_reports_each_wrong_expectation_with_its_line() -> None:
    result = ScriptRunner("wrong.wast").run(WRONG)
    assert (result.passed, result.failed, result.errors) == (4, 7, 0)
    assert [f.line for f in result.failures] == [5, 7, 8, 10, 12, 13, 14]
    assert "got [3]" in result.failures[0].message
