"""A template's compiled functions are quickened without running (``guestproc.quickening``):
not one instruction of a body runs, and the code is in its adaptive form afterwards, so
guests forked from the template do not rewrite it (and copy its pages) themselves."""

from __future__ import annotations

import dis
import sys
from collections.abc import Callable
from types import FunctionType
from typing import Any

import pytest

from guestproc.engine import EngineLimits, parse_module, validate_module
from guestproc.engine.instance import CompiledModule
from guestproc.quickening import quicken

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11),
    reason="quickening on the eighth call is CPython 3.11's; 3.12 quickens code when it is made",
)

# One function that counts its runs in memory, and one whose frame is big enough for the
# engine to wrap it in a charging wrapper (``frames.StackCharge``).
MODULE = f"""
(module
  (memory 1)
  (func (export "count") (param i32) (result i32)
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (i32.load (i32.const 0)))
  (func (export "big") (param i32) (result i32) (local {"i64 " * 2000})
    (local.set 1 (i64.const 1))
    (i32.add (local.get 0) (i32.wrap_i64 (local.get 1)))))
"""


def _quickened(function: Callable[..., Any]) -> bool:
    names = [i.opname for i in dis.get_instructions(function, adaptive=True)]
    return "RESUME_QUICK" in names and "RESUME" not in names


def test_a_function_is_quickened_and_not_one_instruction_of_it_runs() -> None:
    ran: list[int] = []

    def body(value: object) -> None:
        ran.append(1)
        raise AssertionError("the body ran")

    assert isinstance(body, FunctionType) and not _quickened(body)
    assert quicken([body]) == 1
    assert ran == []
    assert _quickened(body)
    with pytest.raises(AssertionError, match="the body ran"):
        body(None)  # and it still runs when called for real
    assert ran == [1]


def test_a_trace_function_already_set_is_set_again() -> None:
    def tracer(frame: object, event: str, arg: object) -> None:
        return None

    def body() -> None:
        pass

    assert isinstance(body, FunctionType)
    sys.settrace(tracer)
    try:
        quicken([body])
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)


def test_a_modules_compiled_functions_are_quickened_without_running_them() -> None:
    module = parse_module(MODULE)
    validate_module(module)
    instance = CompiledModule(module).instantiate({}, EngineLimits(frame_bytes=1 << 20))
    instance.compile_all()
    functions = instance.compiled_functions()
    assert sorted(f.__name__ for f in functions) == ["f0", "f1"]
    assert all(isinstance(f, FunctionType) for f in functions)
    assert instance.namespace["f1"].__code__.co_name == "charged"  # unwrapped above

    assert quicken(functions) == 2
    assert all(_quickened(f) for f in functions)
    assert instance.memories[0].data[0] == 0  # "count" never ran
    assert instance.invoke("count", 0) == [1]
    assert instance.invoke("big", 2) == [3]
