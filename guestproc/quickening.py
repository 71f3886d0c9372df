"""A template's compiled functions quickened before it forks, without running them.

CPython 3.11 counts the calls of a function in its code object and, on the eighth,
rewrites the function's whole bytecode in place with its adaptive form ("quickening"). A
module's functions never run in a template (module code runs only in guests), so every
guest forked from it quickened each function it called for itself, and copied every page
of those code objects: measured on ``shout.wasm`` served in command mode, about 20 of a
request's 570 page faults, two functions of the C library's ``printf`` family alone.

Here each function is called eight times under a trace function that stops it before its
first instruction: CPython counts the call (the ``RESUME`` that opens every function),
then asks the trace function about the first instruction of the body, which raises. So no
instruction of the module's code runs, the arguments are never looked at, and the code
objects are quickened where every guest shares them. Python 3.12 quickens code when it is
created, and this does nothing there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from types import FrameType, FunctionType
from typing import Any

WARM_UP_CALLS = 8
"""Calls after which CPython 3.11 quickens a function (its ``QUICKENING_WARMUP_DELAY``)."""
NEEDED = sys.version_info[:2] == (3, 11)


class _Stopped(BaseException):
    """Raised by the trace function before a body's first instruction."""


def _on_call(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
    frame.f_trace_opcodes = True  # the next event is the body's first instruction
    return _on_instruction


def _on_instruction(frame: FrameType, event: str, arg: Any) -> Any:
    raise _Stopped


def quicken(functions: Sequence[FunctionType]) -> int:
    """Quicken ``functions`` without running their bodies; how many were (0 where CPython
    does not need it, or where a function of our own shows that the trace function does
    not stop a body before its first instruction)."""
    if not NEEDED:
        return 0
    previous = sys.gettrace()
    try:
        if not _stops_before_the_body():
            return 0
        for function in functions:
            arguments = (None,) * function.__code__.co_argcount
            for _ in range(WARM_UP_CALLS):
                _call_stopped(function, arguments)
        return len(functions)
    finally:
        sys.settrace(previous)


def _call_stopped(function: Callable[..., Any], arguments: tuple[None, ...]) -> None:
    # A trace function that raises is removed: it is set again for every call.
    sys.settrace(_on_call)
    try:
        function(*arguments)
    except _Stopped:
        return
    finally:
        sys.settrace(None)
    raise RuntimeError(f"{function.__name__} ran past its trace function")


def _stops_before_the_body() -> bool:
    ran: list[object] = []

    def canary(value: object) -> None:
        ran.append(value)

    try:
        _call_stopped(canary, (None,))
    except RuntimeError:
        return False
    return not ran
