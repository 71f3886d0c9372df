"""Run-time objects an instance is made of: memories, tables, globals and function values.

Values cross this API in one canonical form: i32/i64/v128 as unsigned Python ints
(``0 <= v < 2**32`` / ``2**64`` / ``2**128``; a v128's lane 0 in the low bits), f32/f64 as
Python floats (an f32 is a float that is exactly representable in single precision), references as ``Function`` (funcref), any Python object
(externref) or ``None`` (null).

Compiled code raises some traps as plain Python exceptions because checking first would
cost more on the hot path: a ``struct.error`` or ``IndexError`` from a memory access, a
``ZeroDivisionError`` from an integer division, a ``RecursionError`` from deep calls, a
``MemoryError`` (or CPython 3.11's ``SystemError`` for a frame it could not allocate) when
the process is out of memory.
``call`` is the one place that turns those into ``Trap``; every entry from the outside into
Wasm code goes through it.
"""

from __future__ import annotations

import mmap
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .errors import EngineError, Trap, TrapCode
from .types import MAX_PAGES, PAGE_SIZE, FuncType, GlobalType, MemoryType, TableType, ValType

Value = Any  # int | float | Function | object | None, in the canonical form above

FRAME_ALLOCATION_FAILED = "error return without exception set"


class LimitExceeded(EngineError):
    """A module needs more of a resource than its limits grant (e.g. initial memory).

    ``resource`` is ``"memory"`` or ``"table"``.
    """

    def __init__(self, resource: str, message: str) -> None:
        self.resource = resource
        super().__init__(message)


class Memory:
    """A linear memory: a ``bytearray`` that only grows, in 64 KiB pages.

    ``limit_pages`` is the budget set from outside (e.g. the guest's memory limit): growth past
    it, or past the declared maximum, makes ``memory.grow`` return -1 as the spec allows. The
    ``bytearray`` object never changes identity, so compiled code may keep a reference to it.
    """

    __slots__ = ("data", "declared_max", "max_pages", "type")

    def __init__(self, memory_type: MemoryType, limit_pages: int | None = None) -> None:
        limits = memory_type.limits
        self.type = memory_type
        self.declared_max = limits.max
        cap = MAX_PAGES if limits.max is None else limits.max
        if limit_pages is not None:
            cap = min(cap, limit_pages)
            if limits.min > limit_pages:
                raise LimitExceeded(
                    "memory",
                    f"the module needs {limits.min} pages ({limits.min * PAGE_SIZE} bytes) of "
                    f"linear memory at start, over the limit of {limit_pages} pages",
                )
        self.max_pages = cap
        self.data = bytearray(limits.min * PAGE_SIZE)

    @property
    def pages(self) -> int:
        return len(self.data) // PAGE_SIZE

    def grow(self, delta: int, pay: Callable[[int], object] | None = None) -> int:
        """Grow by ``delta`` pages; return the old size in pages, or -1 past the limit.

        Metered code passes ``pay`` (``FuelTank.pay_pages``): a growth within the limit pays
        for its new pages before it happens, and the fuel trap it may raise leaves the memory
        as it was."""
        old = len(self.data) // PAGE_SIZE
        if delta == 0:
            return old
        if old + delta > self.max_pages:
            return -1
        if pay is not None:
            pay(delta)
        try:
            # The zeros come from a read-only private mapping: it takes no memory (every page
            # is the kernel's shared zero page) and no RLIMIT_DATA, unlike ``bytes(n)``.
            with mmap.mmap(
                -1, delta * PAGE_SIZE, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ
            ) as zeros:
                self.data.extend(zeros)
        except (MemoryError, OSError):
            return -1
        return old

    def _check(self, addr: int, size: int) -> None:
        if addr < 0 or addr + size > len(self.data):
            raise Trap(TrapCode.OUT_OF_BOUNDS_MEMORY, f"{size} bytes at {addr:#x}")

    def read(self, addr: int, size: int) -> bytes:
        self._check(addr, size)
        return bytes(self.data[addr : addr + size])

    def write(self, addr: int, payload: bytes) -> None:
        self._check(addr, len(payload))
        self.data[addr : addr + len(payload)] = payload

    def read_u32(self, addr: int) -> int:
        self._check(addr, 4)
        return int.from_bytes(self.data[addr : addr + 4], "little")

    def read_u64(self, addr: int) -> int:
        self._check(addr, 8)
        return int.from_bytes(self.data[addr : addr + 8], "little")


class Table:
    """A table of references (``Function`` or externref objects, ``None`` for null)."""

    __slots__ = ("elements", "max_size", "type")

    def __init__(
        self, table_type: TableType, limit_size: int | None = None, init: Value = None
    ) -> None:
        limits = table_type.limits
        self.type = table_type
        cap = 0xFFFFFFFF if limits.max is None else limits.max
        if limit_size is not None:
            cap = min(cap, limit_size)
            if limits.min > limit_size:
                raise LimitExceeded(
                    "table",
                    f"the module needs {limits.min} table elements, over the limit of {limit_size}",
                )
        self.max_size = cap
        self.elements: list[Value] = [init] * limits.min

    @property
    def size(self) -> int:
        return len(self.elements)

    def grow(
        self, delta: int, init: Value = None, pay: Callable[[int], object] | None = None
    ) -> int:
        """Grow by ``delta`` elements set to ``init``; return the old size, or -1 past the limit.

        ``pay`` (``FuelTank.pay_elements``, from metered code) pays for the new elements
        first, as ``Memory.grow`` pays for its pages."""
        old = len(self.elements)
        if old + delta > self.max_size:
            return -1
        if pay is not None:
            pay(delta)
        try:
            self.elements.extend([init] * delta)
        except MemoryError:
            return -1
        return old


class GlobalCell:
    """A global that can be shared between instances (imported or exported)."""

    __slots__ = ("type", "value")

    def __init__(self, global_type: GlobalType, value: Value) -> None:
        self.type = global_type
        self.value = value


_signature_ids: dict[FuncType, int] = {}


def signature_id(func_type: FuncType) -> int:
    """A process-wide small int per distinct function type, so signature checks compare ints."""
    sig = _signature_ids.get(func_type)
    if sig is None:
        sig = _signature_ids[func_type] = len(_signature_ids) + 1
    return sig


class Function:
    """A function value (what a funcref points at): compiled Wasm code or a host function.

    ``call(*args)`` takes and returns canonical values: no result is ``None``, one result is
    the value, several are a tuple. Call it through ``invoke`` from outside Wasm code.
    """

    __slots__ = ("call", "name", "sig", "type")

    def __init__(self, func_type: FuncType, call: Callable[..., Any], name: str = "") -> None:
        self.type = func_type
        self.sig = signature_id(func_type)
        self.call = call
        self.name = name

    def __repr__(self) -> str:
        return f"<Function {self.name or '?'} {self.type}>"


def host_function(func_type: FuncType, fn: Callable[..., Any], name: str = "") -> Function:
    """Wrap a Python callable as a function a module can import.

    ``fn`` receives canonical values and returns canonical values (see ``Function``). It may
    raise ``Trap``; any other exception propagates to whoever invoked the Wasm code.
    """
    return Function(func_type, fn, name or getattr(fn, "__name__", ""))


def results_list(func_type: FuncType, raw: Any) -> list[Value]:
    """Normalise what ``Function.call`` returned into a list of results."""
    count = len(func_type.results)
    if count == 0:
        return []
    if count == 1:
        return [raw]
    return list(raw)


def invoke(func: Function, args: Sequence[Value]) -> list[Value]:
    """Call ``func`` from outside Wasm code; return its results as a list.

    Every trap comes out as ``Trap``; other exceptions raised by host functions propagate.
    """
    if len(args) != len(func.type.params):
        raise TypeError(
            f"{func.name or 'function'} takes {len(func.type.params)} arguments, got {len(args)}"
        )
    try:
        return results_list(func.type, func.call(*args))
    except Trap:
        raise
    except (struct.error, IndexError) as exc:
        raise Trap(TrapCode.OUT_OF_BOUNDS_MEMORY) from exc
    except ZeroDivisionError as exc:
        raise Trap(TrapCode.INTEGER_DIVIDE_BY_ZERO) from exc
    except RecursionError as exc:
        raise Trap(TrapCode.CALL_STACK_EXHAUSTED) from exc
    except MemoryError as exc:
        raise Trap(TrapCode.HOST_MEMORY_EXHAUSTED) from exc
    except SystemError as exc:
        # CPython 3.11 reports a frame it could not allocate (the kernel refused the memory)
        # as this SystemError rather than a MemoryError.
        if str(exc) == FRAME_ALLOCATION_FAILED:
            raise Trap(TrapCode.HOST_MEMORY_EXHAUSTED, "no memory for a call's frame") from exc
        raise


def ensure_recursion_limit(limit: int) -> None:
    """Raise Python's recursion limit so Wasm call depth, not Python's default, is the limit.

    Python-to-Python calls do not grow the C stack in CPython 3.11+, so a high limit is safe.
    """
    if sys.getrecursionlimit() < limit:
        sys.setrecursionlimit(limit)


def canonical(valtype: ValType, value: Value) -> Value:
    """Convert a host-supplied number to the canonical form for ``valtype`` (wrapping ints)."""
    if valtype is ValType.I32:
        return int(value) & 0xFFFFFFFF
    if valtype is ValType.I64:
        return int(value) & 0xFFFFFFFFFFFFFFFF
    if valtype in (ValType.F32, ValType.F64):
        return float(value)
    if valtype is ValType.V128:
        return int(value) & ((1 << 128) - 1)
    return value
