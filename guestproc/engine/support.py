"""Run-time support that compiled code calls: traps, indirect calls, tables, bulk memory.

Every function here checks its bounds first and raises ``Trap``, so a failed bulk operation
changes nothing (the Wasm 2.0 rule). Metered code passes the bulk functions ``pay`` as well:
the instance's ``FuelTank.pay_bytes`` (``pay_elements`` for tables), called with the length
once the bounds are checked and before anything is written. It raises the fuel trap when the
budget cannot pay, so an operation that is not paid for changes nothing either.

Bulk memory operations longer than ``VIEW_FROM`` bytes go through a ``memoryview`` of the
memory instead of a temporary as long as the operation: a temporary of a MiB or more is a
fresh mapping whose every page faults in. Measured on CPython 3.11 (CPU time per byte, fill /
copy / init): 1.03 / 0.20 / 1.27 ns at 5 MiB with temporaries, 0.065 / 0.046 / 0.24 ns
through views; below 64 KiB the view costs more than it saves. The view is released before
the function returns, so ``memory.grow`` can always resize the ``bytearray`` afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .errors import Trap, TrapCode

Pay = Callable[[int], object]
"""What charges fuel for the length of a bulk operation (see the module docstring)."""


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


def table_fill(
    elements: list[Any], start: int, value: Any, count: int, pay: Pay | None = None
) -> None:
    if start + count > len(elements):
        raise Trap(TrapCode.OUT_OF_BOUNDS_TABLE)
    if pay is not None:
        pay(count)
    elements[start : start + count] = [value] * count


def table_copy(
    dst: list[Any],
    src: list[Any],
    dst_start: int,
    src_start: int,
    count: int,
    pay: Pay | None = None,
) -> None:
    if src_start + count > len(src) or dst_start + count > len(dst):
        raise Trap(TrapCode.OUT_OF_BOUNDS_TABLE)
    if pay is not None:
        pay(count)
    dst[dst_start : dst_start + count] = src[src_start : src_start + count]


def table_init(
    elements: list[Any],
    segment: Sequence[Any],
    dst: int,
    src: int,
    count: int,
    pay: Pay | None = None,
) -> None:
    if src + count > len(segment) or dst + count > len(elements):
        raise Trap(TrapCode.OUT_OF_BOUNDS_TABLE)
    if pay is not None:
        pay(count)
    elements[dst : dst + count] = segment[src : src + count]


VIEW_FROM = 1 << 16
"""Bulk memory operations at least this long use views, not temporaries (see above)."""


def memory_init(
    memory: bytearray, segment: bytes, dst: int, src: int, count: int, pay: Pay | None = None
) -> None:
    if src + count > len(segment) or dst + count > len(memory):
        raise Trap(TrapCode.OUT_OF_BOUNDS_MEMORY)
    if pay is not None:
        pay(count)
    if count < VIEW_FROM:
        memory[dst : dst + count] = segment[src : src + count]
    else:
        memory[dst : dst + count] = memoryview(segment)[src : src + count]


def memory_copy(memory: bytearray, dst: int, src: int, count: int, pay: Pay | None = None) -> None:
    if src + count > len(memory) or dst + count > len(memory):
        raise Trap(TrapCode.OUT_OF_BOUNDS_MEMORY)
    if pay is not None:
        pay(count)
    if count < VIEW_FROM:
        memory[dst : dst + count] = memory[src : src + count]
        return
    # Both sides views: a view assigned to a view of the same buffer is copied with memmove,
    # so overlapping ranges come out right.
    with memoryview(memory) as view:
        view[dst : dst + count] = view[src : src + count]


def memory_fill(
    memory: bytearray, dst: int, value: int, count: int, pay: Pay | None = None
) -> None:
    if dst + count > len(memory):
        raise Trap(TrapCode.OUT_OF_BOUNDS_MEMORY)
    if pay is not None:
        pay(count)
    if count < VIEW_FROM:
        memory[dst : dst + count] = bytes((value & 0xFF,)) * count
        return
    # Fill a first stretch, then keep doubling what is filled by copying it onto what follows.
    done = VIEW_FROM
    memory[dst : dst + done] = bytes((value & 0xFF,)) * done
    with memoryview(memory) as view:
        while done < count:
            step = min(done, count - done)
            view[dst + done : dst + done + step] = view[dst : dst + step]
            done += step
