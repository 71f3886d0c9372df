"""WebAssembly types: value types, function types, limits and the types of externs.

A leaf module: everything else in the engine imports it, it imports nothing of the engine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

PAGE_SIZE = 65536
MAX_PAGES = 65536  # 4 GiB of 32-bit address space


class ValType(enum.IntEnum):
    """A value type, numbered by its binary encoding."""

    I32 = 0x7F
    I64 = 0x7E
    F32 = 0x7D
    F64 = 0x7C
    V128 = 0x7B
    FUNCREF = 0x70
    EXTERNREF = 0x6F

    @property
    def is_ref(self) -> bool:
        return self in (ValType.FUNCREF, ValType.EXTERNREF)

    @property
    def is_num(self) -> bool:
        return self in (ValType.I32, ValType.I64, ValType.F32, ValType.F64)

    @property
    def text(self) -> str:
        """The name the text format uses (``i32``, ``funcref``, ...)."""
        return _TEXT_NAMES[self]


_TEXT_NAMES = {
    ValType.I32: "i32",
    ValType.I64: "i64",
    ValType.F32: "f32",
    ValType.F64: "f64",
    ValType.V128: "v128",
    ValType.FUNCREF: "funcref",
    ValType.EXTERNREF: "externref",
}


@dataclass(frozen=True, slots=True)
class FuncType:
    params: tuple[ValType, ...]
    results: tuple[ValType, ...]

    def __str__(self) -> str:
        params = " ".join(p.text for p in self.params)
        results = " ".join(r.text for r in self.results)
        return f"[{params}] -> [{results}]"


@dataclass(frozen=True, slots=True)
class Limits:
    min: int
    max: int | None = None


@dataclass(frozen=True, slots=True)
class TableType:
    elem_type: ValType
    limits: Limits


@dataclass(frozen=True, slots=True)
class MemoryType:
    limits: Limits


@dataclass(frozen=True, slots=True)
class GlobalType:
    valtype: ValType
    mutable: bool


class ExternKind(enum.IntEnum):
    """The kind of an import or export, numbered by its binary encoding."""

    FUNC = 0
    TABLE = 1
    MEMORY = 2
    GLOBAL = 3

    @property
    def text(self) -> str:
        return ("func", "table", "memory", "global")[self]
