"""Run-time support that compiled code calls: traps, indirect calls, tables, bulk memory.

Every function here checks its bounds first and raises ``Trap``, so a failed bulk operation
changes nothing (the Wasm 2.0 rule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .errors import Trap, TrapCode


def unreachable() -> NoReturn:
    raise Trap(TrapCode.UNREACHABLE)


def call_indirect(elements: list[Any], index: int, sig: int) -> Callable[..., Any]:
    """The callable behind ``elements[index]``, after the checks ``call_indirect`` requires."""
    if index >= len(elements):
        raise Trap(TrapCode.UNDEFINED_ELEMENT)
    func = elements[index]
    if func is None:
        raise Trap(TrapCode.UNINITIALIZED_ELEMENT)
    if func.sig != sig:
        raise Trap(TrapCode.INDIRECT_CALL_TYPE_MISMATCH)
    return func.call  # type: ignore[no-any-return]


def table_get(elements: list[Any], index: int) -> Any:
    if index >= len(elements):
        raise Trap(TrapCode.OUT_OF_BOUNDS_TABLE)
    return elements[index]


def table_set(elements: list[Any], index: int, value: Any) -> None:
    if index >= len(elements):
        raise Trap(TrapCode.OUT_OF_BOUNDS_TABLE)
    elements[index] = value


def table_fill(elements: list[Any], start: int, value: Any, count: int) -> None:
    if start + count > len(elements):
        raise Trap(TrapCode.OUT_OF_BOUNDS_TABLE)
    elements[start : start + count] = [value] * count


def table_copy(dst: list[Any], src: list[Any], dst_start: int, src_start: int, count: int) -> None:
    if src_start + count > len(src) or dst_start + count > len(dst):
        raise Trap(TrapCode.OUT_OF_BOUNDS_TABLE)
    dst[dst_start : dst_start + count] = src[src_start : src_start + count]


def table_init(elements: list[Any], segment: Sequence[Any], dst: int, src: int, count: int) -> None:
    if src + count > len(segment) or dst + count > len(elements):
        raise Trap(TrapCode.OUT_OF_BOUNDS_TABLE)
    elements[dst : dst + count] = segment[src : src + count]


def memory_init(memory: bytearray, segment: bytes, dst: int, src: int, count: int) -> None:
    if src + count > len(segment) or dst + count > len(memory):
        raise Trap(TrapCode.OUT_OF_BOUNDS_MEMORY)
    memory[dst : dst + count] = segment[src : src + count]


def memory_copy(memory: bytearray, dst: int, src: int, count: int) -> None:
    if src + count > len(memory) or dst + count > len(memory):
        raise Trap(TrapCode.OUT_OF_BOUNDS_MEMORY)
    memory[dst : dst + count] = memory[src : src + count]


def memory_fill(memory: bytearray, dst: int, value: int, count: int) -> None:
    if dst + count > len(memory):
        raise Trap(TrapCode.OUT_OF_BOUNDS_MEMORY)
    memory[dst : dst + count] = bytes((value & 0xFF,)) * count
