"""A trap's Wasm backtrace: the functions it went through, innermost first, with names.

::

    Trap.__traceback__ ──▶ frames whose code is "<wasm function N>" (or ", part K")
                       ──▶ [TrapFrame(N, name from the module's "name" section), ...]

The compiler names each function's code by its index, never by a name from the module, so
the traceback gives indices only; names come from the name section (function names,
subsection 1), decoded here when a trap asks for them. A damaged name section gives no
names, never an error. The names are module text: the host escapes them before it shows
them.
"""

from __future__ import annotations

import re
from types import FrameType, TracebackType

from protocol.messages import MAX_BACKTRACE, TrapFrame

from .engine.errors import DecodeError
from .engine.leb128 import read_unsigned
from .engine.module import Module

_WASM_CODE = re.compile(r"<wasm function (\d+)(, part \d+)?>")
_FUNCTION_NAMES = 1  # the name section's subsection of function names
MAX_NAME = 200


def backtrace(exc: BaseException, module: Module | None) -> list[TrapFrame]:
    """The Wasm functions ``exc`` went through, innermost first (at most ``MAX_BACKTRACE``)."""
    calls: list[int] = []
    previous: tuple[int, bool] | None = None
    for frame in _frames(exc):
        found = _WASM_CODE.fullmatch(frame.f_code.co_filename)
        if found:
            index, part = int(found.group(1)), found.group(2) is not None
            # A split function's part runs under its driver: one call, not two.
            if not (part and previous == (index, False)):
                calls.append(index)
            previous = (index, part)
    innermost = calls[::-1][:MAX_BACKTRACE]
    names = function_names(module) if module is not None and innermost else {}
    return [TrapFrame(function=index, name=names.get(index)) for index in innermost]


def _frames(exc: BaseException) -> list[FrameType]:
    """The frames ``exc`` went through, outermost first, through the exceptions it was
    raised ``from``: a trap the engine makes of a Python error where Wasm code was left
    (``RecursionError`` for call_stack_exhausted, ``IndexError`` for out of bounds) has the
    Wasm frames in its cause's traceback, not in its own."""
    frames: list[FrameType] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb: TracebackType | None = current.__traceback__
        # A cause's traceback starts at the frame that caught it, which raised the trap:
        # that frame is already the last one listed.
        if tb is not None and frames and tb.tb_frame is frames[-1]:
            tb = tb.tb_next
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        current = current.__cause__
    return frames


def function_names(module: Module) -> dict[int, str]:
    """Function index -> name, from the module's name section ({} if it has none, or a
    damaged one)."""
    for section_name, payload in module.customs:
        if section_name == "name":
            try:
                return _decode_function_names(payload)
            except (DecodeError, IndexError, UnicodeDecodeError):
                return {}
    return {}


def _decode_function_names(data: bytes) -> dict[int, str]:
    pos = 0
    while pos < len(data):
        kind = data[pos]
        size, pos = read_unsigned(data, pos + 1, 32)
        end = pos + size
        if kind == _FUNCTION_NAMES:
            names: dict[int, str] = {}
            count, pos = read_unsigned(data, pos, 32)
            for _ in range(count):
                index, pos = read_unsigned(data, pos, 32)
                length, pos = read_unsigned(data, pos, 32)
                if pos + length > end:
                    raise IndexError("a name runs past its subsection")
                names[index] = data[pos : pos + length].decode("utf-8")[:MAX_NAME]
                pos += length
            return names
        pos = end
    return {}
