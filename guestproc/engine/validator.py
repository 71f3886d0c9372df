"""Validator: checks a decoded ``Module`` against WebAssembly 2.0's typing rules.

::

    Module ──module-level checks──> types, imports, limits, globals, segments, exports, start
       │
       └── each function body ──operand stack + control frames──> ok, or ValidationError

``validate_module`` only reads the module. It raises ``ValidationError(message, offset,
func_index)`` for the first rule broken; ``message`` starts with the spec test suite's
wording ("type mismatch", "unknown local 3", "alignment must not be larger than natural",
...), ``offset`` is the byte offset of the offending instruction (0 for text-built modules)
and ``func_index`` the function's index in the function index space (imports first).

Function bodies follow the spec's validation algorithm (appendix "Validation Algorithm"):
an operand stack of value types, where unreachable code may pop values of unknown type,
and a stack of control frames (block, loop, if, else, the function itself). Types are
plain ints (the binary encoding; 0 means "unknown") so the hot loop compares small ints.

Constant expressions (global initialisers, segment offsets and element expressions) may
use ``*.const``, ``ref.null``, ``ref.func`` and ``global.get`` of an imported immutable
global only, as in Wasm 2.0. ``ref.func`` inside a function needs the function to be
declared outside functions (in an element segment, a global initialiser or an export).

Engine limits (each reported as a ``ValidationError`` that names the limit): a function type
has at most ``MAX_TYPE_ARITY`` parameters and as many results, and the operand stack of one
function holds at most ``MAX_OPERAND_STACK`` values. With them, the work per instruction is
bounded and crafted modules cannot make validation slow or large. SIMD instructions take
their typing and immediate checks from ``simd_opcodes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import opcodes as op
from . import simd_opcodes as simd
from .errors import ValidationError
from .module import Function, Instr, Module, SegmentMode
from .types import MAX_PAGES, ExternKind, Limits, MemoryType, TableType, ValType

MAX_TYPE_ARITY = 1000
"""Engine limit on the parameters, and on the results, of one function type (as in browsers).

A module with a larger type is rejected with a ``ValidationError`` naming the limit; it keeps
the work per instruction bounded.
"""

MAX_OPERAND_STACK = 100_000
"""Engine limit on the operand stack height within one function (values, not bytes)."""

UNKNOWN = 0
I32 = int(ValType.I32)
I64 = int(ValType.I64)
F32 = int(ValType.F32)
F64 = int(ValType.F64)
V128 = int(ValType.V128)
FUNCREF = int(ValType.FUNCREF)
EXTERNREF = int(ValType.EXTERNREF)
_REFS = frozenset({FUNCREF, EXTERNREF})
_TYPE_NAMES = {int(t): t.text for t in ValType}
_TYPE_NAMES[UNKNOWN] = "unknown"

# Instruction categories: the hot loop dispatches on these ints, most frequent first.
(
    _LOCAL_GET,
    _BINARY,
    _CONST,
    _LOCAL_SET,
    _LOCAL_TEE,
    _LOAD,
    _STORE,
    _UNARY,
    _END,
    _BR_IF,
    _BLOCK,
    _LOOP,
    _BR,
    _IF,
    _CALL,
    _GLOBAL_GET,
    _GLOBAL_SET,
    _ELSE,
    _SELECT,
    _DROP,
    _RETURN,
    _BR_TABLE,
    _UNREACHABLE,
    _NOP,
    _CALL_INDIRECT,
    _MEMORY_SIZE,
    _MEMORY_GROW,
    _SELECT_T,
    _REF_NULL,
    _REF_IS_NULL,
    _REF_FUNC,
    _TABLE_GET,
    _TABLE_SET,
    _TABLE_SIZE,
    _TABLE_GROW,
    _TABLE_FILL,
    _TABLE_COPY,
    _TABLE_INIT,
    _ELEM_DROP,
    _MEMORY_INIT,
    _DATA_DROP,
    _MEMORY_COPY,
    _MEMORY_FILL,
    _SIMD,
) = range(44)


def _build_info() -> dict[int, tuple[int, int, int]]:
    """opcode -> (category, a, b); a and b depend on the category (types, alignment)."""
    info: dict[int, tuple[int, int, int]] = {}
    for code, (params, results) in op.NUMERIC_SIGNATURES.items():
        (result,) = results
        if len(params) == 1:
            info[code] = (_UNARY, int(params[0]), int(result))
        else:
            first, second = params
            assert first == second, op.NAMES[code]
            info[code] = (_BINARY, int(first), int(result))
    for code, imm in op.IMMEDIATES.items():
        if imm is op.Imm.MEMARG and code not in simd.SIGNATURES:
            name = op.NAMES[code]
            valtype = int(ValType[name[:3].upper()])
            category = _LOAD if ".load" in name else _STORE
            info[code] = (category, valtype, op.NATURAL_ALIGNMENT[code])
    info[op.I32_CONST] = (_CONST, I32, 0)
    info[op.I64_CONST] = (_CONST, I64, 0)
    info[op.F32_CONST] = (_CONST, F32, 0)
    info[op.F64_CONST] = (_CONST, F64, 0)
    simple = {
        op.LOCAL_GET: _LOCAL_GET,
        op.LOCAL_SET: _LOCAL_SET,
        op.LOCAL_TEE: _LOCAL_TEE,
        op.END: _END,
        op.BR_IF: _BR_IF,
        op.BLOCK: _BLOCK,
        op.LOOP: _LOOP,
        op.BR: _BR,
        op.IF: _IF,
        op.CALL: _CALL,
        op.GLOBAL_GET: _GLOBAL_GET,
        op.GLOBAL_SET: _GLOBAL_SET,
        op.ELSE: _ELSE,
        op.SELECT: _SELECT,
        op.DROP: _DROP,
        op.RETURN: _RETURN,
        op.BR_TABLE: _BR_TABLE,
        op.UNREACHABLE: _UNREACHABLE,
        op.NOP: _NOP,
        op.CALL_INDIRECT: _CALL_INDIRECT,
        op.MEMORY_SIZE: _MEMORY_SIZE,
        op.MEMORY_GROW: _MEMORY_GROW,
        op.SELECT_T: _SELECT_T,
        op.REF_NULL: _REF_NULL,
        op.REF_IS_NULL: _REF_IS_NULL,
        op.REF_FUNC: _REF_FUNC,
        op.TABLE_GET: _TABLE_GET,
        op.TABLE_SET: _TABLE_SET,
        op.TABLE_SIZE: _TABLE_SIZE,
        op.TABLE_GROW: _TABLE_GROW,
        op.TABLE_FILL: _TABLE_FILL,
        op.TABLE_COPY: _TABLE_COPY,
        op.TABLE_INIT: _TABLE_INIT,
        op.ELEM_DROP: _ELEM_DROP,
        op.MEMORY_INIT: _MEMORY_INIT,
        op.DATA_DROP: _DATA_DROP,
        op.MEMORY_COPY: _MEMORY_COPY,
        op.MEMORY_FILL: _MEMORY_FILL,
    }
    for code, category in simple.items():
        info[code] = (category, 0, 0)
    for code in simd.SIGNATURES:
        info[code] = (_SIMD, 0, 0)
    missing = set(op.NAMES) - set(info)
    assert not missing, sorted(op.NAMES[c] for c in missing)
    return info


_INFO = _build_info()
_SIMD_TYPES = {
    code: ([int(t) for t in params], [int(t) for t in results])
    for code, (params, results) in simd.SIGNATURES.items()
}

# Control frame fields (a frame is a small list; ``unreachable`` changes in place).
_KIND, _START, _END_TYPES, _HEIGHT, _UNREACHABLE_FLAG, _LABEL = range(6)


class _Invalid(Exception):
    """Raised inside a function body; turned into ValidationError with the position."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def validate_module(module: Module) -> None:
    """Check ``module`` against the validation rules; raise ``ValidationError`` if invalid."""
    _ModuleValidator(module).validate()


def _name(valtype: int) -> str:
    return _TYPE_NAMES.get(valtype, str(valtype))


def _names(types: Sequence[int]) -> str:
    return "[" + " ".join(_name(t) for t in types) + "]"


def _mismatch(expected: int, actual: int | None) -> _Invalid:
    wanted = "a value" if expected == UNKNOWN else _name(expected)
    if actual is None:
        return _Invalid(f"type mismatch: expected {wanted} but the stack is empty")
    return _Invalid(f"type mismatch: expected {_name(expected)}, found {_name(actual)}")


def _pop(stack: list[int], height: int, unreachable: bool, expected: int) -> int:
    """Pop one operand that must have type ``expected`` (UNKNOWN: any); return its type."""
    if len(stack) == height:
        if unreachable:
            return UNKNOWN
        raise _mismatch(expected, None)
    actual = stack.pop()
    if actual != expected and actual != UNKNOWN and expected != UNKNOWN:
        raise _mismatch(expected, actual)
    return actual


def _pop_all(stack: list[int], height: int, unreachable: bool, expected: list[int]) -> None:
    """Pop operands of the types ``expected`` (the last one is on top).

    Whole slices are compared (C speed per value, also in unreachable code); only a
    mismatch walks the operands one by one, to name the culprit.
    """
    count = len(expected)
    if not count:
        return
    available = len(stack) - height
    if available >= count:
        tail = stack[-count:]
        if tail == expected or _matches(tail, expected):
            del stack[-count:]
            return
    elif unreachable:
        # The operands below the frame's height are polymorphic: they match anything.
        tail = stack[height:]
        wanted = expected[count - available :]
        if tail == wanted or _matches(tail, wanted):
            del stack[height:]
            return
    for valtype in reversed(expected):  # raises at the first mismatch
        _pop(stack, height, unreachable, valtype)


def _matches(tail: list[int], wanted: list[int]) -> bool:
    """Whether ``tail`` equals ``wanted`` once each unknown type in it counts as the wanted one.

    ``tail`` is a fresh slice and is overwritten.
    """
    position = -1
    try:
        while True:
            position = tail.index(UNKNOWN, position + 1)
            tail[position] = wanted[position]
    except ValueError:
        return tail == wanted


def _keep(stack: list[int], height: int, unreachable: bool, expected: list[int]) -> None:
    """Pop operands of the types ``expected`` and push those types back (``br_if``)."""
    count = len(expected)
    if len(stack) - count >= height and stack[len(stack) - count :] == expected:
        return
    _pop_all(stack, height, unreachable, expected)
    stack.extend(expected)


def _check_height(stack: list[int]) -> None:
    if len(stack) > MAX_OPERAND_STACK:
        raise _Invalid(f"operand stack deeper than {MAX_OPERAND_STACK} values (an engine limit)")


class _ModuleValidator:
    def __init__(self, module: Module) -> None:
        self.module = module
        self.types: list[tuple[list[int], list[int]]] = [
            ([int(t) for t in ft.params], [int(t) for t in ft.results]) for ft in module.types
        ]
        self.funcs: list[tuple[list[int], list[int]]] = []
        self.tables: list[int] = []
        self.memory_count = 0
        self.globals: list[tuple[int, bool]] = []
        self.imported_globals = 0
        self.elems: list[int] = [int(seg.elem_type) for seg in module.elements]
        self.data_count = module.data_count if module.data_count is not None else len(module.datas)
        self.refs: set[int] = set()

    def fail(self, message: str, where: Sequence[Instr] | int | None = None) -> ValidationError:
        if isinstance(where, int) or where is None:
            return ValidationError(message, where)
        return ValidationError(message, where[0].offset if where else None)

    def validate(self) -> None:
        module = self.module
        for index, functype in enumerate(module.types):
            if len(functype.params) > MAX_TYPE_ARITY or len(functype.results) > MAX_TYPE_ARITY:
                raise self.fail(
                    f"type {index} has more than {MAX_TYPE_ARITY} parameters or results "
                    "(an engine limit)"
                )
        for imp in module.imports:
            desc = imp.desc
            if imp.kind is ExternKind.FUNC:
                assert isinstance(desc, int)
                self.funcs.append(self.func_type(desc))
            elif imp.kind is ExternKind.TABLE:
                assert isinstance(desc, TableType)
                self.check_table_type(desc)
                self.tables.append(int(desc.elem_type))
            elif imp.kind is ExternKind.MEMORY:
                assert isinstance(desc, MemoryType)
                self.check_memory_type(desc.limits)
                self.memory_count += 1
            else:
                assert not isinstance(desc, int | TableType | MemoryType)
                self.globals.append((int(desc.valtype), desc.mutable))
        self.imported_globals = len(self.globals)
        imported_funcs = len(self.funcs)
        for index, func in enumerate(module.functions):
            try:
                self.funcs.append(self.func_type(func.type_index, func.offset))
            except ValidationError as exc:
                raise ValidationError(exc.message, exc.offset, imported_funcs + index) from None
        for table in module.tables:
            self.check_table_type(table)
            self.tables.append(int(table.elem_type))
        for memory in module.memories:
            self.check_memory_type(memory.limits)
            self.memory_count += 1
        if self.memory_count > 1:
            raise self.fail("multiple memories")

        # Functions referenced outside function bodies may be used by ref.func inside them.
        for glob in module.globals:
            self.collect_refs(glob.init)
        for seg in module.elements:
            for expr in seg.init:
                self.collect_refs(expr)
            if seg.offset is not None:
                self.collect_refs(seg.offset)
        for data in module.datas:
            if data.offset is not None:
                self.collect_refs(data.offset)
        for export in module.exports:
            if export.kind is ExternKind.FUNC:
                self.refs.add(export.index)

        for glob in module.globals:
            self.check_constant(glob.init, int(glob.type.valtype))
            self.globals.append((int(glob.type.valtype), glob.type.mutable))
        for seg in module.elements:
            if seg.mode is SegmentMode.ACTIVE:
                if seg.table >= len(self.tables):
                    raise self.fail(f"unknown table {seg.table}", seg.offset)
                if self.tables[seg.table] != seg.elem_type:
                    raise self.fail(
                        f"type mismatch: element segment of {seg.elem_type.text} for a table "
                        f"of {_name(self.tables[seg.table])}",
                        seg.offset,
                    )
                assert seg.offset is not None
                self.check_constant(seg.offset, I32)
            for expr in seg.init:
                self.check_constant(expr, int(seg.elem_type))
        for data in module.datas:
            if data.mode is SegmentMode.ACTIVE:
                if data.memory >= self.memory_count:
                    raise self.fail(f"unknown memory {data.memory}", data.offset)
                assert data.offset is not None
                self.check_constant(data.offset, I32)

        for index, func in enumerate(module.functions):
            _FunctionValidator(self, imported_funcs + index).validate(func)

        if module.start is not None:
            if module.start >= len(self.funcs):
                raise self.fail(f"unknown function {module.start}")
            params, results = self.funcs[module.start]
            if params or results:
                raise self.fail(
                    f"start function must have type [] -> [], not {_names(params)} -> "
                    f"{_names(results)}"
                )
        self.check_exports()

    def func_type(self, type_index: int, offset: int | None = None) -> tuple[list[int], list[int]]:
        if not 0 <= type_index < len(self.types):
            raise self.fail(f"unknown type {type_index}", offset)
        return self.types[type_index]

    def check_table_type(self, table: TableType) -> None:
        self.check_limits(table.limits, 0xFFFFFFFF, "table size must be at most 2^32-1")

    def check_memory_type(self, limits: Limits) -> None:
        self.check_limits(limits, MAX_PAGES, "memory size must be at most 65536 pages (4GiB)")

    def check_limits(self, limits: Limits, bound: int, message: str) -> None:
        if limits.min > bound or (limits.max is not None and limits.max > bound):
            raise self.fail(message)
        if limits.max is not None and limits.min > limits.max:
            raise self.fail("size minimum must not be greater than maximum")

    def collect_refs(self, expr: list[Instr]) -> None:
        for instr in expr:
            if instr.op == op.REF_FUNC:
                self.refs.add(instr.arg)

    def check_constant(self, expr: list[Instr], expected: int) -> None:
        """A constant expression producing exactly one value of type ``expected``."""
        stack: list[int] = []
        for instr in expr:
            code, arg = instr.op, instr.arg
            if code == op.END:
                break
            if code == op.I32_CONST:
                stack.append(I32)
            elif code == op.I64_CONST:
                stack.append(I64)
            elif code == op.F32_CONST:
                stack.append(F32)
            elif code == op.F64_CONST:
                stack.append(F64)
            elif code == op.V128_CONST:
                stack.append(V128)
            elif code == op.REF_NULL:
                stack.append(int(arg))
            elif code == op.REF_FUNC:
                if not 0 <= arg < len(self.funcs):
                    raise self.fail(f"unknown function {arg}", instr.offset)
                stack.append(FUNCREF)
            elif code == op.GLOBAL_GET:
                # Wasm 2.0: only imported globals are visible to constant expressions.
                if not 0 <= arg < self.imported_globals:
                    raise self.fail(f"unknown global {arg}", instr.offset)
                valtype, mutable = self.globals[arg]
                if mutable:
                    raise self.fail(
                        f"constant expression required: global {arg} is mutable", instr.offset
                    )
                stack.append(valtype)
            else:
                raise self.fail(
                    f"constant expression required: {op.NAMES.get(code, hex(code))} is not "
                    "constant",
                    instr.offset,
                )
        if stack != [expected]:
            raise self.fail(
                f"type mismatch: constant expression must produce [{_name(expected)}], "
                f"not {_names(stack)}",
                expr,
            )

    def check_exports(self) -> None:
        seen: set[str] = set()
        counts = {
            ExternKind.FUNC: (len(self.funcs), "function"),
            ExternKind.TABLE: (len(self.tables), "table"),
            ExternKind.MEMORY: (self.memory_count, "memory"),
            ExternKind.GLOBAL: (len(self.globals), "global"),
        }
        for export in self.module.exports:
            count, what = counts[export.kind]
            if not 0 <= export.index < count:
                raise self.fail(f"unknown {what} {export.index}")
            if export.name in seen:
                raise self.fail(f"duplicate export name {export.name!r}")
            seen.add(export.name)


class _FunctionValidator:
    """Validates one function body; see the module docstring for the algorithm."""

    def __init__(self, context: _ModuleValidator, func_index: int) -> None:
        self.context = context
        self.func_index = func_index

    def validate(self, func: Function) -> None:
        params, results = self.context.funcs[self.func_index]
        body = func.body
        if not body or body[-1].op != op.END:
            raise ValidationError("function body must end with end", func.offset, self.func_index)
        self.run(body, params, results, bytes(func.locals))

    def run(
        self, body: list[Instr], params: list[int], results: list[int], declared: bytes
    ) -> None:
        context = self.context
        info = _INFO
        types = context.types
        funcs = context.funcs
        globals_ = context.globals
        has_memory = context.memory_count > 0
        refs = context.refs
        elems = context.elems
        data_count = context.data_count
        locals_ = bytes(params) + declared  # one byte per local: its type
        local_count = len(locals_)
        pop = _pop
        pop_all = _pop_all

        # One loop over plain locals, dispatching on small ints (most frequent first): a
        # method call per instruction would cost about twice as much.
        last = body[-1]
        stack: list[int] = []
        # A frame: [opcode, start types, end types, height, unreachable, label types].
        frames: list[list[Any]] = [[op.BLOCK, [], results, 0, False, results]]
        height = 0
        unreachable = False
        offset = 0
        try:
            for instr in body:
                code, arg, offset = instr
                entry = info.get(code)
                if entry is None:
                    raise _Invalid(f"unknown opcode {code:#x}")
                category, a, b = entry

                if category == _LOCAL_GET:
                    if arg >= local_count:
                        raise _Invalid(f"unknown local {arg}")
                    stack.append(locals_[arg])
                elif category == _BINARY:
                    if len(stack) - 2 >= height and stack[-1] == a and stack[-2] == a:
                        del stack[-1]
                        stack[-1] = b
                    else:
                        pop(stack, height, unreachable, a)
                        pop(stack, height, unreachable, a)
                        stack.append(b)
                elif category == _CONST:
                    stack.append(a)
                elif category == _LOCAL_SET:
                    if arg >= local_count:
                        raise _Invalid(f"unknown local {arg}")
                    valtype = locals_[arg]
                    if len(stack) > height and stack[-1] == valtype:
                        stack.pop()
                    else:
                        pop(stack, height, unreachable, valtype)
                elif category == _LOCAL_TEE:
                    if arg >= local_count:
                        raise _Invalid(f"unknown local {arg}")
                    valtype = locals_[arg]
                    if not (len(stack) > height and stack[-1] == valtype):
                        pop(stack, height, unreachable, valtype)
                        stack.append(valtype)
                elif category == _LOAD:
                    if not has_memory:
                        raise _Invalid("unknown memory 0")
                    if arg[0] > b:
                        raise _Invalid("alignment must not be larger than natural")
                    if len(stack) > height and stack[-1] == I32:
                        stack[-1] = a
                    else:
                        pop(stack, height, unreachable, I32)
                        stack.append(a)
                elif category == _STORE:
                    if not has_memory:
                        raise _Invalid("unknown memory 0")
                    if arg[0] > b:
                        raise _Invalid("alignment must not be larger than natural")
                    if len(stack) - 2 >= height and stack[-1] == a and stack[-2] == I32:
                        del stack[-2:]
                    else:
                        pop(stack, height, unreachable, a)
                        pop(stack, height, unreachable, I32)
                elif category == _UNARY:
                    if len(stack) > height and stack[-1] == a:
                        stack[-1] = b
                    else:
                        pop(stack, height, unreachable, a)
                        stack.append(b)
                elif category == _END:
                    frame = frames.pop()
                    end_types = frame[_END_TYPES]
                    if not (len(stack) == height + len(end_types) and stack[height:] == end_types):
                        pop_all(stack, height, unreachable, end_types)
                        if len(stack) != height:
                            raise _Invalid(
                                f"type mismatch: {len(stack) - height} value(s) left at the end "
                                "of the block"
                            )
                        if frame[_KIND] == op.IF:
                            del stack[height:]
                    if frame[_KIND] == op.IF and frame[_START] != end_types:
                        # No else: the empty else branch must turn the params into the results.
                        raise _Invalid(
                            f"type mismatch: if without else must have matching params and "
                            f"results, not {_names(frame[_START])} -> {_names(end_types)}"
                        )
                    if not frames:
                        if instr is not last:
                            raise _Invalid("instructions after the end of the function")
                        return
                    del stack[height:]
                    stack.extend(end_types)
                    _check_height(stack)
                    parent = frames[-1]
                    height = parent[_HEIGHT]
                    unreachable = parent[_UNREACHABLE_FLAG]
                elif category == _BR_IF:
                    if arg >= len(frames):
                        raise _Invalid(f"unknown label {arg}")
                    if len(stack) > height and stack[-1] == I32:
                        stack.pop()
                    else:
                        pop(stack, height, unreachable, I32)
                    _keep(stack, height, unreachable, frames[-1 - arg][_LABEL])
                    _check_height(stack)
                elif category in (_BLOCK, _LOOP, _IF):
                    if category == _IF:
                        pop(stack, height, unreachable, I32)
                    start_types, end_types = self.block_type(arg, types)
                    pop_all(stack, height, unreachable, start_types)
                    height = len(stack)
                    unreachable = False
                    label = start_types if category == _LOOP else end_types
                    frames.append([code, start_types, end_types, height, False, label])
                    stack.extend(start_types)
                    _check_height(stack)
                elif category == _BR:
                    if arg >= len(frames):
                        raise _Invalid(f"unknown label {arg}")
                    pop_all(stack, height, unreachable, frames[-1 - arg][_LABEL])
                    del stack[height:]
                    unreachable = frames[-1][_UNREACHABLE_FLAG] = True
                elif category == _CALL:
                    if arg >= len(funcs):
                        raise _Invalid(f"unknown function {arg}")
                    call_params, call_results = funcs[arg]
                    pop_all(stack, height, unreachable, call_params)
                    stack.extend(call_results)
                    _check_height(stack)
                elif category == _GLOBAL_GET:
                    if arg >= len(globals_):
                        raise _Invalid(f"unknown global {arg}")
                    stack.append(globals_[arg][0])
                elif category == _GLOBAL_SET:
                    if arg >= len(globals_):
                        raise _Invalid(f"unknown global {arg}")
                    valtype, mutable = globals_[arg]
                    if not mutable:
                        raise _Invalid(f"global is immutable: global {arg}")
                    pop(stack, height, unreachable, valtype)
                elif category == _ELSE:
                    frame = frames[-1]
                    if frame[_KIND] != op.IF:
                        raise _Invalid("else without a matching if")
                    end_types = frame[_END_TYPES]
                    pop_all(stack, height, unreachable, end_types)
                    if len(stack) != height:
                        raise _Invalid(
                            f"type mismatch: {len(stack) - height} value(s) left at the end of "
                            "the then branch"
                        )
                    frame[_KIND] = op.ELSE
                    unreachable = frame[_UNREACHABLE_FLAG] = False
                    stack.extend(frame[_START])
                    _check_height(stack)
                elif category == _SELECT:
                    pop(stack, height, unreachable, I32)
                    first = pop(stack, height, unreachable, UNKNOWN)
                    second = pop(stack, height, unreachable, UNKNOWN)
                    if first in _REFS or second in _REFS:
                        raise _Invalid(
                            "type mismatch: select without a type needs numeric operands"
                        )
                    if first != second and first != UNKNOWN and second != UNKNOWN:
                        raise _Invalid(
                            f"type mismatch: select operands {_name(second)} and {_name(first)}"
                        )
                    stack.append(first if first != UNKNOWN else second)
                elif category == _DROP:
                    if len(stack) > height:
                        stack.pop()
                    elif not unreachable:
                        raise _Invalid("type mismatch: drop needs a value but the stack is empty")
                elif category == _RETURN:
                    pop_all(stack, height, unreachable, results)
                    del stack[height:]
                    unreachable = frames[-1][_UNREACHABLE_FLAG] = True
                elif category == _BR_TABLE:
                    self.br_table(arg, stack, frames, height, unreachable)
                    del stack[height:]
                    unreachable = frames[-1][_UNREACHABLE_FLAG] = True
                elif category == _UNREACHABLE:
                    del stack[height:]
                    unreachable = frames[-1][_UNREACHABLE_FLAG] = True
                elif category == _NOP:
                    pass
                elif category == _CALL_INDIRECT:
                    type_index, table = arg
                    self.table(table, FUNCREF)
                    if type_index >= len(types):
                        raise _Invalid(f"unknown type {type_index}")
                    pop(stack, height, unreachable, I32)
                    call_params, call_results = types[type_index]
                    pop_all(stack, height, unreachable, call_params)
                    stack.extend(call_results)
                    _check_height(stack)
                elif category == _MEMORY_SIZE:
                    if not has_memory or arg != 0:
                        raise _Invalid(f"unknown memory {arg}")
                    stack.append(I32)
                elif category == _MEMORY_GROW:
                    if not has_memory or arg != 0:
                        raise _Invalid(f"unknown memory {arg}")
                    pop(stack, height, unreachable, I32)
                    stack.append(I32)
                elif category == _SELECT_T:
                    if len(arg) != 1:
                        raise _Invalid(
                            f"invalid result arity: select must have one type, not {len(arg)}"
                        )
                    valtype = int(arg[0])
                    pop(stack, height, unreachable, I32)
                    pop(stack, height, unreachable, valtype)
                    pop(stack, height, unreachable, valtype)
                    stack.append(valtype)
                elif category == _REF_NULL:
                    stack.append(int(arg))
                elif category == _REF_IS_NULL:
                    actual = pop(stack, height, unreachable, UNKNOWN)
                    if actual != UNKNOWN and actual not in _REFS:
                        raise _Invalid(
                            f"type mismatch: ref.is_null needs a reference, found {_name(actual)}"
                        )
                    stack.append(I32)
                elif category == _REF_FUNC:
                    if arg >= len(funcs):
                        raise _Invalid(f"unknown function {arg}")
                    if arg not in refs:
                        raise _Invalid(f"undeclared function reference {arg}")
                    stack.append(FUNCREF)
                elif category == _TABLE_GET:
                    elem_type = self.table(arg)
                    pop(stack, height, unreachable, I32)
                    stack.append(elem_type)
                elif category == _TABLE_SET:
                    elem_type = self.table(arg)
                    pop(stack, height, unreachable, elem_type)
                    pop(stack, height, unreachable, I32)
                elif category == _TABLE_SIZE:
                    self.table(arg)
                    stack.append(I32)
                elif category == _TABLE_GROW:
                    elem_type = self.table(arg)
                    pop(stack, height, unreachable, I32)
                    pop(stack, height, unreachable, elem_type)
                    stack.append(I32)
                elif category == _TABLE_FILL:
                    elem_type = self.table(arg)
                    pop(stack, height, unreachable, I32)
                    pop(stack, height, unreachable, elem_type)
                    pop(stack, height, unreachable, I32)
                elif category == _TABLE_COPY:
                    destination, source = arg
                    destination_type = self.table(destination)
                    source_type = self.table(source)
                    if destination_type != source_type:
                        raise _Invalid(
                            f"type mismatch: table.copy from a table of {_name(source_type)} "
                            f"to a table of {_name(destination_type)}"
                        )
                    pop_all(stack, height, unreachable, [I32, I32, I32])
                elif category == _TABLE_INIT:
                    segment, table = arg
                    table_type = self.table(table)
                    if segment >= len(elems):
                        raise _Invalid(f"unknown elem segment {segment}")
                    if elems[segment] != table_type:
                        raise _Invalid(
                            f"type mismatch: table.init of a segment of {_name(elems[segment])} "
                            f"into a table of {_name(table_type)}"
                        )
                    pop_all(stack, height, unreachable, [I32, I32, I32])
                elif category == _ELEM_DROP:
                    if arg >= len(elems):
                        raise _Invalid(f"unknown elem segment {arg}")
                elif category == _MEMORY_INIT:
                    segment, memory = arg
                    if not has_memory or memory != 0:
                        raise _Invalid(f"unknown memory {memory}")
                    if segment >= data_count:
                        raise _Invalid(f"unknown data segment {segment}")
                    pop_all(stack, height, unreachable, [I32, I32, I32])
                elif category == _DATA_DROP:
                    if arg >= data_count:
                        raise _Invalid(f"unknown data segment {arg}")
                elif category == _MEMORY_COPY:
                    destination, source = arg
                    for memory in (destination, source):
                        if not has_memory or memory != 0:
                            raise _Invalid(f"unknown memory {memory}")
                    pop_all(stack, height, unreachable, [I32, I32, I32])
                elif category == _SIMD:
                    problem = simd.check_immediate(code, arg, has_memory)
                    if problem is not None:
                        raise _Invalid(problem)
                    simd_params, simd_results = _SIMD_TYPES[code]
                    pop_all(stack, height, unreachable, simd_params)
                    stack.extend(simd_results)
                else:  # _MEMORY_FILL
                    if not has_memory or arg != 0:
                        raise _Invalid(f"unknown memory {arg}")
                    pop_all(stack, height, unreachable, [I32, I32, I32])
        except _Invalid as exc:
            raise ValidationError(exc.message, offset, self.func_index) from None

    def block_type(
        self, arg: object, types: list[tuple[list[int], list[int]]]
    ) -> tuple[list[int], list[int]]:
        if arg is None:
            return [], []
        if type(arg) is int:  # a type index (a ValType is an int too, so test exactly)
            if not 0 <= arg < len(types):
                raise _Invalid(f"unknown type {arg}")
            return types[arg]
        return [], [int(arg)]  # type: ignore[call-overload]

    def table(self, index: int, required: int | None = None) -> int:
        tables = self.context.tables
        if not 0 <= index < len(tables):
            raise _Invalid(f"unknown table {index}")
        elem_type = tables[index]
        if required is not None and elem_type != required:
            raise _Invalid(
                f"type mismatch: call_indirect needs a table of funcref, not {_name(elem_type)}"
            )
        return elem_type

    def br_table(
        self,
        arg: tuple[tuple[int, ...], int],
        stack: list[int],
        frames: list[list[Any]],
        height: int,
        unreachable: bool,
    ) -> None:
        labels, default = arg
        _pop(stack, height, unreachable, I32)
        if default >= len(frames):
            raise _Invalid(f"unknown label {default}")
        arity = len(frames[-1 - default][_LABEL])
        for label in sorted(set(labels)):  # each distinct target once
            if label >= len(frames):
                raise _Invalid(f"unknown label {label}")
            label_types = frames[-1 - label][_LABEL]
            if len(label_types) != arity:
                raise _Invalid(
                    f"type mismatch: br_table targets have {arity} and {len(label_types)} values"
                )
            # Check each target against (a copy of) the same operands.
            trial = stack[max(height, len(stack) - arity) :]
            _pop_all(trial, 0, unreachable, label_types)
        _pop_all(stack, height, unreachable, frames[-1 - default][_LABEL])
