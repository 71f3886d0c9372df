"""The official WebAssembly 2.0 spec tests, core/ and simd/, one test item per script.

Each script runs through ``guestproc.spectest`` (the runner ``kindling spec`` uses) in this
process; every assertion must pass and every module must load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guestproc.spectest import ScriptRunner, run_file
from tests.framework.paths import no_spec_suite, spec_suite_dir

FOLDERS = ("core", "simd")
# Thousands of nested calls, unmetered and metered: 5-11 s each, all the others < 0.5 s.
SLOW_SCRIPTS = {"skip-stack-guard-page.wast"}
# The suite's README inventory: files per folder (with 26,716 and 25,514 assert_* commands).
INVENTORY = {"core": 90, "simd": 58}


def _scripts() -> list[Any]:
    params = []
    for folder in FOLDERS:
        found = spec_suite_dir(folder)
        if found is None:
            params.append(
                pytest.param(None, marks=pytest.mark.skip(reason=no_spec_suite(folder)), id=folder)
            )
            continue
        for script in sorted(found.glob("*.wast")):
            marks = [pytest.mark.slow] if script.name in SLOW_SCRIPTS else []
            params.append(pytest.param(script, marks=marks, id=f"{folder}/{script.name}"))
    return params


SCRIPTS = _scripts()


def _assert_all_pass(script: Path, metered: bool) -> None:
    result = run_file(script, metered=metered)
    shown = "\n".join(f"  line {f.line}: {f.command}: {f.message}" for f in result.failures[:20])
    assert result.failed == 0 and result.errors == 0, f"{result.failed} failed:\n{shown}"
    assert result.passed == result.total


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_passes(script: Path) -> None:
    _assert_all_pass(script, metered=False)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_passes_with_fuel_metering(script: Path) -> None:
    """Metered code is a different translation (charges moved across blocks and branches):
    it must keep every semantic of the unmetered one."""
    _assert_all_pass(script, metered=True)


@pytest.mark.parametrize("folder", FOLDERS)
def test_suite_folder_is_complete(folder: str) -> None:
    found = spec_suite_dir(folder)
    if found is None:
        pytest.skip(no_spec_suite(folder))
    assert len(list(found.glob("*.wast"))) == INVENTORY[folder]


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


LANES = b"""
(module
  (func (export "id") (param v128) (result v128) (local.get 0))
  (func (export "div") (param v128 v128) (result v128) (f32x4.div (local.get 0) (local.get 1))))
(assert_return (invoke "id" (v128.const i16x8 1 2 3 4 5 6 7 -1))
               (v128.const i32x4 0x00020001 0x00040003 0x00060005 0xffff0007))
(assert_return (invoke "id" (v128.const i32x4 1 2 3 4)) (v128.const i32x4 1 2 3 5))
(assert_return (invoke "div" (v128.const f32x4 0 1 -1 0) (v128.const f32x4 0 0 0 1))
               (v128.const f32x4 nan:canonical inf -inf 0))
(assert_return (invoke "div" (v128.const f32x4 0 1 -1 0) (v128.const f32x4 0 0 0 1))
               (v128.const f32x4 nan:canonical inf nan:arithmetic 0))
"""


def test_runner_matches_v128_results_lane_by_lane() -> None:
    """v128 constants compare by their bits in any shape; NaN patterns apply per lane."""
    result = ScriptRunner("lanes.wast").run(LANES)
    assert (result.passed, result.failed, result.errors) == (2, 2, 0)
    assert [f.line for f in result.failures] == [7, 10]
