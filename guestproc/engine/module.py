"""The one module model both front ends (binary, text) produce and every later pass reads.

A ``Module`` is plain data: decoding fills it, validation checks it without changing it, the
compiler reads it. Function bodies and constant expressions are flat lists of ``Instr``; the
structure (block/loop/if ... else ... end) is kept as in the binary format, and every
instruction remembers the byte offset it came from so errors can point at it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .types import ExternKind, FuncType, GlobalType, MemoryType, TableType, ValType


class Instr(NamedTuple):
    """One instruction. ``arg`` is described by ``opcodes.Imm`` for the opcode."""

    op: int
    arg: Any  # the type depends on the opcode: see opcodes.Imm
    offset: int  # byte offset of the opcode in the module (0 when built from text)


@dataclass(slots=True)
class Function:
    type_index: int
    locals: tuple[ValType, ...]  # declared locals only (parameters come from the type)
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

    def table_types(self) -> list[TableType]:
        imported = [imp.desc for imp in self.imported(ExternKind.TABLE)]
        return [*imported, *self.tables]  # type: ignore[list-item]

    def memory_types(self) -> list[MemoryType]:
        imported = [imp.desc for imp in self.imported(ExternKind.MEMORY)]
        return [*imported, *self.memories]  # type: ignore[list-item]

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
