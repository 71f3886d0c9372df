"""Compiled modules and their instances.

::

    bytes ──decode_module──▶ Module ──validate_module──▶ (checked) ──compile_module──▶ CompiledModule
                                                                                         │ instantiate(imports, limits)
                                                                                         ▼
                                                                                      Instance ── exports

A ``CompiledModule`` turns each defined function into Python source (``compiler``) and a code
object the first time the function is needed, and keeps the code objects: it is immutable
apart from that cache and can be instantiated many times (a template instantiates once, then
forks). ``compile_all`` does the whole module up front, e.g. before a template forks.

An ``Instance`` owns a namespace dict in which the code objects are executed: memory, tables,
globals and every function are names in it, so compiled code reaches them with one global
lookup. Until a function is first called its name is bound to a stub that compiles it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import CellType, CodeType, FunctionType
from typing import Any

from . import numeric, simd, support
from . import opcodes as op
from .compiler import COMPILED_FILENAME, FUEL_MAKER, ModuleInfo
from .errors import CompileError, LinkError
from .frames import CHARGED_FILENAME, CHARGED_FRAME, StackCharge, frame_size
from .fuel import FuelTank
from .lowering import compile_function, function_code
from .module import Instr, Module, SegmentMode
from .runtime import (
    Function,
    GlobalCell,
    Memory,
    Table,
    ensure_recursion_limit,
    invoke,
    signature_id,
)
from .types import ExternKind, Limits, MemoryType, TableType

Extern = Function | Table | Memory | GlobalCell


@dataclass(frozen=True, slots=True)
class EngineLimits:
    """Limits enforced inside the engine.

    - ``memory_pages``: cap on every linear memory; ``memory.grow`` past it returns -1, and a
      module whose initial memory is larger fails to instantiate with ``LimitExceeded``.
    - ``table_elements``: the same for tables (``table.grow`` returns -1).
    - ``call_depth``: nested calls past this trap with "call stack exhausted" (it is Python's
      recursion limit in the process, which host code shares).
    - ``frame_bytes``: the most bytes the frames of functions with big frames (over
      ``frames.CHARGED_FRAME``) may take on the call stack at once; a call past it traps with
      "host memory exhausted" (``limit(memory)`` for a guest), at the same depth every time.
      None (the default): only the call depth limits the call stack.
    - ``fuel``: when set, execution traps with "all fuel consumed" once about this many
      instructions have run (one unit per Wasm instruction, charged per basic block, checked
      at loop heads and function entries, so a run may overshoot by one loop-free stretch
      of code). Bulk operations also pay for their length, before they act, and one that
      the rest of the budget cannot pay traps without acting (see ``fuel``). Needs a
      module compiled with ``fuel=True``.
    """

    memory_pages: int | None = None
    table_elements: int | None = 10_000_000
    call_depth: int = 20_000
    fuel: int | None = None
    frame_bytes: int | None = None


DEFAULT_LIMITS = EngineLimits()
UNLIMITED_FUEL = 1 << 62


def _struct(fmt: str) -> struct.Struct:
    return struct.Struct(fmt)


HELPERS: dict[str, Any] = {
    "LD_U32": _struct("<I").unpack_from,
    "LD_U64": _struct("<Q").unpack_from,
    "LD_F32": numeric.load_f32,
    "LD_F64": _struct("<d").unpack_from,
    "LD_U16": _struct("<H").unpack_from,
    "ST_U32": _struct("<I").pack_into,
    "ST_U64": _struct("<Q").pack_into,
    "ST_F32": numeric.store_f32,
    "ST_F64": _struct("<d").pack_into,
    "ST_U16": _struct("<H").pack_into,
    "I32_CTZ": numeric.i32_ctz,
    "I64_CTZ": numeric.i64_ctz,
    "I32_DIV_S": numeric.i32_div_s,
    "I32_REM_S": numeric.i32_rem_s,
    "I64_DIV_S": numeric.i64_div_s,
    "I64_REM_S": numeric.i64_rem_s,
    "I32_ROTL": numeric.i32_rotl,
    "I32_ROTR": numeric.i32_rotr,
    "I64_ROTL": numeric.i64_rotl,
    "I64_ROTR": numeric.i64_rotr,
    "F32R": numeric.f32_round,
    "FCEIL": numeric.fceil,
    "FFLOOR": numeric.ffloor,
    "FTRUNC": numeric.ftrunc,
    "FNEAREST": numeric.fnearest,
    "FSQRT": numeric.fsqrt,
    "FDIV0": numeric.fdiv_by_zero,
    "FMIN": numeric.fmin,
    "FMAX": numeric.fmax,
    "COPYSIGN": math.copysign,
    "TRUNC_I32_S": numeric.trunc_i32_s,
    "TRUNC_I32_U": numeric.trunc_i32_u,
    "TRUNC_I64_S": numeric.trunc_i64_s,
    "TRUNC_I64_U": numeric.trunc_i64_u,
    "TRUNC_SAT_I32_S": numeric.trunc_sat_i32_s,
    "TRUNC_SAT_I32_U": numeric.trunc_sat_i32_u,
    "TRUNC_SAT_I64_S": numeric.trunc_sat_i64_s,
    "TRUNC_SAT_I64_U": numeric.trunc_sat_i64_u,
    "INT_TO_F32": numeric.int_to_f32,
    "F32_DEMOTE": numeric.f32_demote,
    "F32_PROMOTE": numeric.f32_promote,
    "F32_BITS": numeric.f32_to_bits,
    "F64_BITS": numeric.f64_to_bits,
    "F32_FROM_BITS": numeric.f32_from_bits,
    "F64_FROM_BITS": numeric.f64_from_bits,
    "UNREACHABLE": support.unreachable,
    "CALL_INDIRECT": support.call_indirect,
    "TABLE_GET": support.table_get,
    "TABLE_SET": support.table_set,
    "TABLE_FILL": support.table_fill,
    "TABLE_COPY": support.table_copy,
    "TABLE_INIT": support.table_init,
    "MEMORY_INIT": support.memory_init,
    "MEMORY_COPY": support.memory_copy,
    "MEMORY_FILL": support.memory_fill,
    **simd.HELPERS,
}


class CompiledModule:
    """A validated module plus the compiled code of its functions (filled on demand)."""

    def __init__(self, module: Module, fuel: bool = False, fuel_shortcuts: bool = True) -> None:
        self.module = module
        self.fuel = fuel
        self.fuel_shortcuts = fuel_shortcuts  # False: the plain reference scheme (tests)
        self.info = ModuleInfo(module)
        self.imported_functions = len(self.info.func_types) - len(module.functions)
        self._code: dict[int, CodeType] = {}
        self.from_cache = False

    @classmethod
    def from_code(cls, module: Module, fuel: bool, codes: list[CodeType]) -> CompiledModule:
        """A module whose functions were compiled earlier (``cache.unpack``): ``codes`` holds
        the code of every defined function in order; the bodies in ``module`` may be empty."""
        compiled = cls(module, fuel)
        compiled._code = dict(zip(compiled.defined_indices(), codes, strict=True))
        compiled.from_cache = True
        return compiled

    def defined_indices(self) -> range:
        """The function indices of the module's own (not imported) functions."""
        return range(self.imported_functions, len(self.info.func_types))

    def source(self, func_index: int) -> str:
        """The generated Python source of a defined function (for debugging and tests)."""
        if self.from_cache:
            raise CompileError("the module came from the code cache: it has no bodies to show")
        return compile_function(self.info, func_index, self.fuel, self.fuel_shortcuts)

    def function_code(self, func_index: int) -> CodeType:
        code = self._code.get(func_index)
        if code is None:
            code = function_code(self.info, func_index, self.fuel, self.fuel_shortcuts)
            self._code[func_index] = code
        return code

    def compile_all(self) -> None:
        """Compile every defined function now instead of on first call."""
        for index in self.defined_indices():
            self.function_code(index)

    def instantiate(
        self,
        imports: Mapping[tuple[str, str], Extern],
        limits: EngineLimits = DEFAULT_LIMITS,
        *,
        release_data: bool = False,
        run_start: bool = True,
    ) -> Instance:
        """Link, allocate, initialise segments and run the start function (unless
        ``run_start`` is False: the caller installs what it left instead, ``snapshot``).

        Raises ``LinkError`` for a missing or mismatched import, ``LimitExceeded`` when the
        module needs more memory or table than ``limits`` grant, and ``Trap`` when a segment
        is out of bounds or the start function traps. ``release_data``: the module lets go of
        each active data segment once it is copied into linear memory (it is not kept twice;
        the module cannot be instantiated again).
        """
        return Instance(self, imports, limits, release_data, run_start)


def with_cell(made: FunctionType, cell: CellType) -> FunctionType:
    """A function from a fuel maker, its closure the instance's fuel cell instead."""
    return FunctionType(made.__code__, made.__globals__, made.__name__, made.__defaults__, (cell,))


def compile_module(module: Module, fuel: bool = False) -> CompiledModule:
    """Prepare a validated module for instantiation (functions compile on first use).

    With ``fuel`` the code meters itself (about one unit per instruction executed, and bulk
    operations by their length); its instances then need ``EngineLimits.fuel``. Without it
    the code has no metering at all.
    """
    return CompiledModule(module, fuel)


def _limits_match(actual: Limits, actual_max: int | None, wanted: Limits) -> bool:
    if actual.min < wanted.min:
        return False
    if wanted.max is None:
        return True
    return actual_max is not None and actual_max <= wanted.max


def _resolve_import(
    module_name: str,
    name: str,
    kind: ExternKind,
    desc: object,
    provided: object,
    compiled: CompiledModule,
) -> Extern:
    where = f"{module_name}.{name}"
    if kind is ExternKind.FUNC:
        if not isinstance(provided, Function):
            raise LinkError(f"incompatible import type for {where}: expected a function")
        assert isinstance(desc, int)
        wanted = compiled.module.types[desc]
        if provided.type != wanted:
            raise LinkError(
                f"incompatible import type for {where}: expected {wanted}, got {provided.type}"
            )
        return provided
    if kind is ExternKind.TABLE:
        assert isinstance(desc, TableType)
        if not isinstance(provided, Table) or provided.type.elem_type != desc.elem_type:
            raise LinkError(
                f"incompatible import type for {where}: expected a {desc.elem_type.text} table"
            )
        actual = Limits(provided.size, provided.type.limits.max)
        if not _limits_match(actual, provided.type.limits.max, desc.limits):
            raise LinkError(f"incompatible import type for {where}: table limits do not match")
        return provided
    if kind is ExternKind.MEMORY:
        assert isinstance(desc, MemoryType)
        if not isinstance(provided, Memory):
            raise LinkError(f"incompatible import type for {where}: expected a memory")
        actual = Limits(provided.pages, provided.declared_max)
        if not _limits_match(actual, provided.declared_max, desc.limits):
            raise LinkError(f"incompatible import type for {where}: memory limits do not match")
        return provided
    if not isinstance(provided, GlobalCell) or provided.type != desc:
        raise LinkError(f"incompatible import type for {where}: expected global {desc}")
    return provided


class Instance:
    """An instantiated module. ``exports`` maps export names to externs."""

    def __init__(
        self,
        compiled: CompiledModule,
        imports: Mapping[tuple[str, str], Extern],
        limits: EngineLimits,
        release_data: bool = False,
        run_start: bool = True,
    ) -> None:
        module = compiled.module
        self.compiled = compiled
        self.limits = limits
        ensure_recursion_limit(limits.call_depth)
        ns: dict[str, Any] = dict(HELPERS)
        self.namespace = ns
        if limits.fuel is not None and not compiled.fuel:
            raise ValueError("a fuel limit needs a module compiled with fuel=True")
        # The fuel counter is a cell that every compiled function of this instance closes over.
        self.fuel = FuelTank(limits.fuel if limits.fuel is not None else UNLIMITED_FUEL)
        ns["REFUEL"] = self.fuel.refuel
        # Metered instances: what host functions (WASI's) call to pay for the bytes they move.
        self.pay_bytes: Callable[[int], None] | None = None
        if compiled.fuel:
            ns["PAY_BYTES"] = self.pay_bytes = self.fuel.pay_bytes
            ns["PAY_ELEMENTS"] = self.fuel.pay_elements
            ns["PAY_PAGES"] = self.fuel.pay_pages
        # A function compiled in pieces (``split``) gives each piece the cell itself.
        ns["FUEL_CELL"] = self.fuel.cell
        ns["WITH_CELL"] = with_cell
        self.stack = StackCharge(limits.frame_bytes)
        self._ready: set[int] = set()

        functions: list[Function] = []
        memories: list[Memory] = []
        tables: list[Table] = []
        cells: dict[int, GlobalCell] = {}
        global_values: list[Any] = []
        for imp in module.imports:
            provided = imports.get((imp.module, imp.name))
            if provided is None:
                raise LinkError(
                    f"unknown import: {imp.module}.{imp.name} ({imp.kind.text}) is not provided"
                )
            extern = _resolve_import(imp.module, imp.name, imp.kind, imp.desc, provided, compiled)
            if isinstance(extern, Function):
                functions.append(extern)
            elif isinstance(extern, Table):
                tables.append(extern)
            elif isinstance(extern, Memory):
                memories.append(extern)
            else:
                cells[len(global_values)] = extern
                global_values.append(extern.value)

        for memory_type in module.memories:
            memories.append(Memory(memory_type, limits.memory_pages))
        for table_type in module.tables:
            tables.append(Table(table_type, limits.table_elements))

        info = compiled.info
        for offset, func in enumerate(module.functions):
            index = compiled.imported_functions + offset
            functions.append(
                Function(module.types[func.type_index], self._stub(index), f"function {index}")
            )
        self.functions = functions
        ns["FN"] = functions
        for index, function in enumerate(functions):
            ns[f"f{index}"] = function.call

        for g in module.globals:
            value = self._constant(g.init, global_values, functions)
            index = len(global_values)
            global_values.append(value)
            if info.global_in_cell[index]:
                cells[index] = GlobalCell(g.type, value)
        for index, value in enumerate(global_values):
            if index in cells:
                ns[f"G{index}"] = cells[index]
            else:
                ns[f"g{index}"] = value

        if memories:
            ns["M"] = memories[0].data
            ns["MEMORY_GROW"] = memories[0].grow
        for index, table in enumerate(tables):
            ns[f"E{index}"] = table.elements
            ns[f"TB{index}"] = table
        for index, functype in enumerate(module.types):
            ns[f"SIG{index}"] = signature_id(functype)

        self.memories = memories
        self.tables = tables
        self.exports: dict[str, Extern] = {}
        for export in module.exports:
            if export.kind is ExternKind.FUNC:
                self.exports[export.name] = functions[export.index]
            elif export.kind is ExternKind.TABLE:
                self.exports[export.name] = tables[export.index]
            elif export.kind is ExternKind.MEMORY:
                self.exports[export.name] = memories[export.index]
            else:
                self.exports[export.name] = cells[export.index]

        # Segments are applied in order; a trap leaves earlier ones applied (Wasm 2.0).
        elem_segments: list[Any] = [
            tuple(self._constant(expr, global_values, functions) for expr in seg.init)
            for seg in module.elements
        ]
        data_segments: list[bytes] = [seg.data for seg in module.datas]
        ns["ES"] = elem_segments
        ns["DS"] = data_segments
        for index, seg in enumerate(module.elements):
            if seg.mode is SegmentMode.ACTIVE:
                assert seg.offset is not None
                start = self._constant(seg.offset, global_values, functions)
                support.table_init(
                    tables[seg.table].elements, elem_segments[index], start, 0, len(seg.init)
                )
            if seg.mode is not SegmentMode.PASSIVE:
                elem_segments[index] = ()
        for index, data in enumerate(module.datas):
            if data.mode is SegmentMode.ACTIVE:
                assert data.offset is not None
                start = self._constant(data.offset, global_values, functions)
                support.memory_init(
                    memories[data.memory].data, data_segments[index], start, 0, len(data.data)
                )
                data_segments[index] = b""
                if release_data:
                    data.data = b""

        if module.start is not None and run_start:
            invoke(functions[module.start], [])

    def _stub(self, index: int) -> Callable[..., Any]:
        def compile_on_first_call(*args: Any) -> Any:
            return self._materialise(index)(*args)

        return compile_on_first_call

    def _materialise(self, index: int) -> Callable[..., Any]:
        ns = self.namespace
        exec(self.compiled.function_code(index), ns)
        if self.compiled.fuel:
            ns[f"f{index}"] = with_cell(ns.pop(f"{FUEL_MAKER}{index}")(), self.fuel.cell)
        self._ready.add(index)
        real: Callable[..., Any] = ns[f"f{index}"]
        if self.stack.limit is not None:
            params = len(self.functions[index].type.params)
            declared = self.compiled.module.functions[index - self.compiled.imported_functions]
            size = frame_size(real.__code__, params + len(declared.locals))
            if size > CHARGED_FRAME:
                real = ns[f"f{index}"] = self.stack.charged(real, params, size)
        self.functions[index].call = real
        return real

    def compile_all(self) -> None:
        """Compile and bind every function now (e.g. in a template, before forking)."""
        for index in range(self.compiled.imported_functions, len(self.functions)):
            if index not in self._ready:
                self._materialise(index)

    def compiled_functions(self) -> list[FunctionType]:
        """The Python function of each of the module's functions compiled so far, without
        the engine's wrapper that charges a big frame (``frames.StackCharge``)."""
        found = []
        for value in self.namespace.values():
            if isinstance(value, FunctionType):
                if value.__code__.co_filename == CHARGED_FILENAME:
                    value = value.__globals__["CALL"]
                if value.__code__.co_filename.startswith(COMPILED_FILENAME):
                    found.append(value)
        return found

    @staticmethod
    def _constant(expr: list[Instr], global_values: list[Any], functions: list[Function]) -> Any:
        value: Any = None
        for instr in expr:
            code = instr.op
            if code in (op.I32_CONST, op.I64_CONST):
                value = instr.arg
            elif code == op.F32_CONST:
                value = numeric.f32_from_bits(instr.arg)
            elif code == op.F64_CONST:
                value = numeric.f64_from_bits(instr.arg)
            elif code == op.V128_CONST:
                value = instr.arg
            elif code == op.REF_NULL:
                value = None
            elif code == op.REF_FUNC:
                value = functions[instr.arg]
            elif code == op.GLOBAL_GET:
                value = global_values[instr.arg]
        return value

    def invoke(self, name: str, *args: Any) -> list[Any]:
        """Call an exported function with canonical values; see ``runtime.invoke``."""
        func = self.exports.get(name)
        if not isinstance(func, Function):
            raise KeyError(f"no exported function named {name!r}")
        return invoke(func, args)

    @property
    def fuel_used(self) -> int:
        """Fuel spent so far (exact at returns to the host; 0 without metering)."""
        return self.fuel.used if self.compiled.fuel else 0
