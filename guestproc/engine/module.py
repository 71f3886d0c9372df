"""The one module model both front ends (binary, text) produce and every later pass reads.

A ``Module`` is plain data: decoding fills it, validation checks it without changing it, the
compiler reads it. Function bodies and constant expressions are flat lists of ``Instr``; the
structure (block/loop/if ... else ... end) is kept as in the binary format, and every
instruction remembers the byte offset it came from so errors can point at it.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple, overload

from .types import ExternKind, FuncType, GlobalType, MemoryType, TableType, ValType


class Instr(NamedTuple):
    """One instruction. ``arg`` is described by ``opcodes.Imm`` for the opcode."""

    op: int
    arg: Any  # the type depends on the opcode: see opcodes.Imm
    offset: int  # byte offset of the opcode in the module (0 when built from text)


class LocalTypes(Sequence[ValType]):
    """The types of a function's declared locals, kept as runs of one type (``(count, type)``,
    as the binary format declares them).

    A few bytes of module may declare 50,000 locals of a type, so nothing here costs time
    or memory per local: the length, and the type of one local (a bisection over the runs),
    are what the passes use. Iterating it does visit every local.
    """

    __slots__ = ("_ends", "_runs")

    def __init__(self, runs: Iterable[tuple[int, ValType]] = ()) -> None:
        merged: list[tuple[int, ValType]] = []
        for count, valtype in runs:
            if not count:
                continue
            if merged and merged[-1][1] == valtype:
                merged[-1] = (merged[-1][0] + count, valtype)
            else:
                merged.append((count, valtype))
        self._runs = tuple(merged)
        ends: list[int] = []
        for count, _ in merged:
            ends.append(count + (ends[-1] if ends else 0))
        self._ends = tuple(ends)

    @classmethod
    def of(cls, types: Iterable[ValType]) -> LocalTypes:
        """The locals of ``types``, one by one (the text format lists them so)."""
        return cls((1, valtype) for valtype in types)

    @property
    def runs(self) -> tuple[tuple[int, ValType], ...]:
        """``(count, type)`` pairs, adjacent runs of one type merged and empty ones left out."""
        return self._runs

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> ValType: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ValType]: ...

    def __getitem__(self, index: int | slice) -> ValType | Sequence[ValType]:
        if isinstance(index, slice):
            return tuple(self)[index]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(f"local {index} out of range")
        return self._runs[bisect_right(self._ends, position)][1]

    def __iter__(self) -> Iterator[ValType]:
        for count, valtype in self._runs:
            yield from repeat(valtype, count)

    def __bytes__(self) -> bytes:
        """One byte per local, its type's binary encoding."""
        return b"".join(bytes((valtype,)) * count for count, valtype in self._runs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LocalTypes):
            return self._runs == other._runs
        if isinstance(other, tuple):
            return len(other) == len(self) and tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._runs)

    def __repr__(self) -> str:
        return f"LocalTypes({list(self._runs)!r})"


@dataclass(slots=True)
class Function:
    type_index: int
    locals: LocalTypes  # declared locals only (parameters come from the type)
    body: list[Instr]  # ends with the function's own END
    offset: int = 0  # byte offset of the body


@dataclass(frozen=True, slots=True)
class Import:
    module: str
    name: str
    kind: ExternKind
    desc: int | TableType | MemoryType | GlobalType  # FUNC: type index


@dataclass(frozen=True, slots=True)
class Export:
    name: str
    kind: ExternKind
    index: int


@dataclass(slots=True)
class Global:
    type: GlobalType
    init: list[Instr]  # constant expression, ends with END


class SegmentMode(enum.Enum):
    ACTIVE = "active"
    PASSIVE = "passive"
    DECLARATIVE = "declarative"  # element segments only


@dataclass(slots=True)
class ElementSegment:
    mode: SegmentMode
    elem_type: ValType
    init: list[list[Instr]]  # one constant expression per element
    table: int = 0
    offset: list[Instr] | None = None  # ACTIVE only


@dataclass(slots=True)
class DataSegment:
    mode: SegmentMode
    data: bytes
    memory: int = 0
    offset: list[Instr] | None = None  # ACTIVE only


@dataclass(slots=True)
class Module:
    types: list[FuncType] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)  # defined (not imported) only
    tables: list[TableType] = field(default_factory=list)  # defined only
    memories: list[MemoryType] = field(default_factory=list)  # defined only
    globals: list[Global] = field(default_factory=list)  # defined only
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    elements: list[ElementSegment] = field(default_factory=list)
    datas: list[DataSegment] = field(default_factory=list)
    data_count: int | None = None
    customs: list[tuple[str, bytes]] = field(default_factory=list)
    code_bytes: int = 0  # the code section's size; a text module's number of instructions

    def code_size(self) -> int:
        """What the module's code weighs for the guest's memory bound (``protocol.limits``):
        ``code_bytes`` plus one per declared local."""
        return self.code_bytes + sum(len(function.locals) for function in self.functions)

    # Index spaces put imports first, then definitions.
    def imported(self, kind: ExternKind) -> list[Import]:
        return [imp for imp in self.imports if imp.kind is kind]

    def func_types(self) -> list[FuncType]:
        """The type of every function in the function index space (imports first).

        Raises IndexError for a type index out of range; callers validate first.
        """
        imported = [self.types[imp.desc] for imp in self.imported(ExternKind.FUNC)]  # type: ignore[index]
        return imported + [self.types[f.type_index] for f in self.functions]

    def global_types(self) -> list[GlobalType]:
        imported = [imp.desc for imp in self.imported(ExternKind.GLOBAL)]
        return [*imported, *(g.type for g in self.globals)]  # type: ignore[list-item]

    def block_type(self, arg: object) -> FuncType:
        """The function type of a block/loop/if immediate (see ``opcodes.Imm.BLOCKTYPE``)."""
        if arg is None:
            return FuncType((), ())
        if isinstance(arg, ValType):
            return FuncType((), (arg,))
        assert isinstance(arg, int)
        return self.types[arg]
