"""The validator: typing of function bodies and the module-level rules.

Most cases are hand-assembled modules (no decoder involved), each breaking one rule; the
expected messages are the spec test suite's wording, matched as a prefix as the suite does.
At the end, every ``assert_invalid`` module of the spec suite (text modules converted with
wabt's ``wast2json``) must be rejected with the suite's message and every valid module of
the suite accepted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from guestproc.engine import opcodes as op
from guestproc.engine.decoder import decode_module
from guestproc.engine.errors import DecodeError, ValidationError
from guestproc.engine.module import (
    DataSegment,
    ElementSegment,
    Export,
    Function,
    Global,
    Import,
    Instr,
    LocalTypes,
    Module,
    SegmentMode,
)
from guestproc.engine.types import (
    ExternKind,
    FuncType,
    GlobalType,
    Limits,
    MemoryType,
    TableType,
    ValType,
)
from guestproc.engine.validator import MAX_OPERAND_STACK, MAX_TYPE_ARITY, validate_module
from tests.engine.test_decoder import spec_suite_core

DATA_DIR = Path(__file__).parent / "data"
I32, I64, F32, F64 = ValType.I32, ValType.I64, ValType.F32, ValType.F64
FUNCREF, EXTERNREF = ValType.FUNCREF, ValType.EXTERNREF
FIRST_OFFSET = 100  # assembled instruction i sits at byte offset FIRST_OFFSET + i


def assemble(*items: Any) -> list[Instr]:
    """Instructions from ``"name"`` or ``("name", immediate)``; offsets count up from 100."""
    out = []
    for index, item in enumerate(items):
        name, arg = item if isinstance(item, tuple) else (item, None)
        code = op.SELECT_T if name == "select" and arg is not None else op.BY_NAME[name]
        out.append(Instr(code, arg, FIRST_OFFSET + index))
    return out


def const(name: str, value: Any) -> list[Instr]:
    return [Instr(op.BY_NAME[name], value, 0), Instr(op.END, None, 0)]


def module_with(
    *items: Any,
    params: tuple[ValType, ...] = (),
    results: tuple[ValType, ...] = (),
    local_types: tuple[ValType, ...] = (),
    memory: bool = False,
    types: tuple[FuncType, ...] = (),
    **parts: Any,
) -> Module:
    """A module whose function 0 has the given body; ``parts`` set other Module fields."""
    module = Module(
        types=[FuncType(params, results), *types],
        functions=[Function(0, LocalTypes.of(local_types), assemble(*items))],
        memories=[MemoryType(Limits(1))] if memory else [],
    )
    for key, value in parts.items():
        setattr(module, key, value)
    return module


def invalid(module: Module) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validate_module(module)
    return info.value


# -- valid bodies -------------------------------------------------------------------------

VALID: dict[str, Module] = {
    "empty": module_with("end"),
    "result": module_with(("i32.const", 1), "end", results=(I32,)),
    "multi-value function": module_with(
        ("i32.const", 1), ("i64.const", 2), "end", results=(I32, I64)
    ),
    "block with params and results": module_with(
        ("i32.const", 1),
        ("block", 1),
        ("i64.const", 2),
        "end",
        "drop",
        "drop",
        "end",
        types=(FuncType((I32,), (I32, I64)),),
    ),
    "loop label takes the params": module_with(
        ("i32.const", 3),
        ("loop", 1),
        ("i32.const", 1),
        "i32.sub",
        ("local.tee", 0),
        ("local.get", 0),
        ("br_if", 0),
        "end",
        "end",
        local_types=(I32,),
        results=(I32,),
        types=(FuncType((I32,), (I32,)),),
    ),
    "if else with results": module_with(
        ("local.get", 0),
        ("if", I32),
        ("i32.const", 1),
        "else",
        ("i32.const", 2),
        "end",
        "end",
        params=(I32,),
        results=(I32,),
    ),
    "if without else, params equal results": module_with(
        ("i32.const", 5),
        ("i32.const", 1),
        ("if", 1),
        "end",
        "end",
        results=(I32,),
        types=(FuncType((I32,), (I32,)),),
    ),
    "br_if leaves the label's values": module_with(
        ("block", I32),
        ("i32.const", 1),
        ("i32.const", 0),
        ("br_if", 0),
        "end",
        "end",
        results=(I32,),
    ),
    "unreachable makes operands unknown": module_with(
        "unreachable", "i64.add", "i32.wrap_i64", "select", "end", results=(I32,)
    ),
    "br makes the rest of the block polymorphic": module_with(
        ("block", F32),
        ("f32.const", 0),
        ("br", 0),
        "i32.add",
        "f32.convert_i32_s",
        "end",
        "drop",
        "end",
    ),
    "br_table to labels of equal arity": module_with(
        ("block", I32),
        ("block", I32),
        ("i32.const", 7),
        ("local.get", 0),
        ("br_table", ((0,), 1)),
        "end",
        "end",
        "end",
        params=(I32,),
        results=(I32,),
    ),
    "br_table in unreachable code with different types": module_with(
        ("block", F32),
        ("block", I64),
        "unreachable",
        ("br_table", ((0,), 1)),
        "end",
        "drop",
        ("f32.const", 0),
        "end",
        "drop",
        "end",
    ),
    "return in the middle": module_with(
        ("i32.const", 1), "return", "i32.eqz", "end", results=(I32,)
    ),
    "typed select of references": module_with(
        ("ref.null", FUNCREF),
        ("ref.null", FUNCREF),
        ("i32.const", 1),
        ("select", (FUNCREF,)),
        "ref.is_null",
        "end",
        results=(I32,),
    ),
    "select of floats": module_with(
        ("f64.const", 0), ("f64.const", 0), ("i32.const", 1), "select", "drop", "end"
    ),
    "ref.func of an exported function": module_with(
        ("ref.func", 0),
        "drop",
        "end",
        exports=[Export("f", ExternKind.FUNC, 0)],
    ),
    "memory instructions": module_with(
        ("i32.const", 0),
        ("i64.load32_u", (2, 8)),
        ("i64.const", 0),
        "i64.add",
        "drop",
        ("i32.const", 0),
        ("f64.const", 0),
        ("f64.store", (3, 0)),
        ("memory.size", 0),
        ("memory.grow", 0),
        "drop",
        "end",
        memory=True,
    ),
}


@pytest.mark.parametrize("module", list(VALID.values()), ids=list(VALID))
def test_valid_body(module: Module) -> None:
    validate_module(module)


def test_valid_module_with_every_feature() -> None:
    validate_module(decode_module((DATA_DIR / "features.wasm").read_bytes()))


# -- invalid bodies ---------------------------------------------------------------------------

# name -> (module, message prefix, index of the blamed instruction)
INVALID: dict[str, tuple[Module, str, int]] = {
    "operand of the wrong type": (
        module_with(("i32.const", 1), ("i64.const", 2), "i32.add", "drop", "end"),
        "type mismatch",
        2,
    ),
    "missing operand": (module_with(("i32.const", 1), "i32.add", "end"), "type mismatch", 1),
    "missing result": (module_with("end", results=(I32,)), "type mismatch", 0),
    "extra value at the end": (
        module_with(("i32.const", 1), "end"),
        "type mismatch",
        1,
    ),
    "block result of the wrong type": (
        module_with(("block", I32), ("i64.const", 0), "end", "drop", "end"),
        "type mismatch",
        2,
    ),
    "block cannot see the operands outside it": (
        module_with(("i32.const", 1), ("block", I32), "end", "drop", "drop", "end"),
        "type mismatch",
        2,
    ),
    "if without else changing the types": (
        module_with(("i32.const", 1), ("if", I32), ("i32.const", 1), "end", "drop", "end"),
        "type mismatch",
        3,
    ),
    "if condition must be i32": (
        module_with(("i64.const", 1), ("if", None), "end", "end"),
        "type mismatch",
        1,
    ),
    "br value of the wrong type": (
        module_with(("block", I32), ("f32.const", 0), ("br", 0), "end", "drop", "end"),
        "type mismatch",
        2,
    ),
    "br_table targets of different arity": (
        module_with(
            ("block", I32),
            ("block", None),
            ("i32.const", 0),
            ("i32.const", 0),
            ("br_table", ((0,), 1)),
            "end",
            ("i32.const", 0),
            "end",
            "drop",
            "end",
        ),
        "type mismatch",
        4,
    ),
    "untyped select of references": (
        module_with(
            ("ref.null", FUNCREF),
            ("ref.null", FUNCREF),
            ("i32.const", 1),
            "select",
            "drop",
            "end",
        ),
        "type mismatch",
        3,
    ),
    "untyped select of different types": (
        module_with(("i32.const", 0), ("i64.const", 0), ("i32.const", 1), "select", "end"),
        "type mismatch",
        3,
    ),
    "typed select with two types": (
        module_with(("select", (I32, I32)), "end"),
        "invalid result arity",
        0,
    ),
    "ref.is_null of a number": (
        module_with(("i32.const", 0), "ref.is_null", "drop", "end"),
        "type mismatch",
        1,
    ),
    "unknown local": (
        module_with(("local.get", 1), "drop", "end", params=(I32,)),
        "unknown local",
        0,
    ),
    "unknown global": (module_with(("global.get", 0), "drop", "end"), "unknown global", 0),
    "immutable global": (
        module_with(
            ("i32.const", 0),
            ("global.set", 0),
            "end",
            globals=[Global(GlobalType(I32, False), const("i32.const", 0))],
        ),
        "global is immutable",
        1,
    ),
    "unknown function": (module_with(("call", 1), "end"), "unknown function", 0),
    "unknown label": (module_with(("block", None), ("br", 2), "end", "end"), "unknown label", 1),
    "unknown type in a block": (module_with(("block", 5), "end", "end"), "unknown type", 0),
    "unknown table": (
        module_with(("i32.const", 0), ("call_indirect", (0, 0)), "end"),
        "unknown table",
        1,
    ),
    "unknown type in call_indirect": (
        module_with(
            ("i32.const", 0),
            ("call_indirect", (3, 0)),
            "end",
            tables=[TableType(FUNCREF, Limits(1))],
        ),
        "unknown type",
        1,
    ),
    "unknown memory": (
        module_with(("i32.const", 0), ("i32.load", (2, 0)), "drop", "end"),
        "unknown memory",
        1,
    ),
    "alignment larger than natural": (
        module_with(("i32.const", 0), ("i32.load16_u", (2, 0)), "drop", "end", memory=True),
        "alignment must not be larger than natural",
        1,
    ),
    "unknown data segment": (
        module_with(("data.drop", 0), "end", memory=True, data_count=0),
        "unknown data segment",
        0,
    ),
    "memory.init of an unknown segment": (
        module_with(
            ("i32.const", 0),
            ("i32.const", 0),
            ("i32.const", 0),
            ("memory.init", (1, 0)),
            "end",
            memory=True,
            datas=[DataSegment(SegmentMode.PASSIVE, b"")],
            data_count=1,
        ),
        "unknown data segment 1",
        3,
    ),
    "unknown elem segment": (
        module_with(("elem.drop", 4), "end"),
        "unknown elem segment 4",
        0,
    ),
    "table.init of a mismatched segment": (
        module_with(
            ("i32.const", 0),
            ("i32.const", 0),
            ("i32.const", 0),
            ("table.init", (0, 0)),
            "end",
            tables=[TableType(EXTERNREF, Limits(1))],
            elements=[ElementSegment(SegmentMode.PASSIVE, FUNCREF, [])],
        ),
        "type mismatch",
        3,
    ),
    "table.copy between tables of different types": (
        module_with(
            ("i32.const", 0),
            ("i32.const", 0),
            ("i32.const", 0),
            ("table.copy", (0, 1)),
            "end",
            tables=[TableType(EXTERNREF, Limits(1)), TableType(FUNCREF, Limits(1))],
        ),
        "type mismatch",
        3,
    ),
    "table.set of the wrong reference type": (
        module_with(
            ("i32.const", 0),
            ("ref.null", FUNCREF),
            ("table.set", 0),
            "end",
            tables=[TableType(EXTERNREF, Limits(1))],
        ),
        "type mismatch",
        2,
    ),
    "undeclared function reference": (
        module_with(("ref.func", 0), "drop", "end"),
        "undeclared function reference",
        0,
    ),
}


@pytest.mark.parametrize(("module", "message", "blamed"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_body(module: Module, message: str, blamed: int) -> None:
    error = invalid(module)
    assert error.message.startswith(message), error.message
    assert error.offset == FIRST_OFFSET + blamed
    assert error.func_index == 0


def test_error_names_function_index_and_byte_offset() -> None:
    module = decode_module((DATA_DIR / "invalid_call.wasm").read_bytes())
    call = next(i for i in module.functions[1].body if i.op == op.CALL)
    error = invalid(module)
    assert error.message.startswith("type mismatch")
    assert (error.func_index, error.offset) == (2, call.offset)  # one import before it
    assert "in function 2" in str(error)


def test_unknown_function_type_index() -> None:
    module = Module(types=[], functions=[Function(3, LocalTypes(), assemble("end"))])
    error = invalid(module)
    assert (error.message, error.func_index) == ("unknown type 3", 0)


def test_body_must_end_with_end() -> None:
    assert invalid(module_with("nop")).message.startswith("function body must end with end")
    assert invalid(module_with("end", "end")).message.startswith("instructions after the end")


# -- engine limits and crafted input ----------------------------------------------------------


def test_function_type_arity_limit() -> None:
    at_limit = FuncType((I32,) * MAX_TYPE_ARITY, (I64,) * MAX_TYPE_ARITY)
    validate_module(Module(types=[at_limit]))
    error = invalid(Module(types=[FuncType((I32,) * (MAX_TYPE_ARITY + 1), ())]))
    assert "engine limit" in error.message


def test_operand_stack_limit() -> None:
    wide = FuncType((), (I32,) * MAX_TYPE_ARITY)
    calls = [("call", 1)] * (MAX_OPERAND_STACK // MAX_TYPE_ARITY + 1)
    module = Module(
        types=[FuncType((), ()), wide],
        functions=[
            Function(0, LocalTypes(), assemble(*calls, "end")),
            Function(1, LocalTypes(), assemble("unreachable", "end")),
        ],
    )
    error = invalid(module)
    assert error.message.startswith("operand stack deeper than")
    assert error.func_index == 0


def test_crafted_unreachable_code_stays_fast() -> None:
    # Each select pushes an operand of unknown type that the next wide call must accept.
    wide = FuncType((I32,) * MAX_TYPE_ARITY, (I32,) * MAX_TYPE_ARITY)
    body = assemble("unreachable", *(["select", ("call", 1)] * 20_000), "end")
    module = Module(
        types=[FuncType((), ()), wide],
        functions=[
            Function(0, LocalTypes(), body),
            Function(1, LocalTypes(), assemble("unreachable", "end")),
        ],
    )
    started = time.perf_counter()
    error = invalid(module)
    assert error.message.startswith("type mismatch")  # the values left at the end
    assert time.perf_counter() - started < 2.0


# -- module-level rules ------------------------------------------------------------------------


def func_import(type_index: int = 0) -> Import:
    return Import("env", "f", ExternKind.FUNC, type_index)


MODULE_RULES: dict[str, tuple[Module, str]] = {
    "import of an unknown type": (Module(imports=[func_import(0)]), "unknown type"),
    "two memories": (
        Module(
            imports=[Import("env", "m", ExternKind.MEMORY, MemoryType(Limits(1)))],
            memories=[MemoryType(Limits(1))],
        ),
        "multiple memories",
    ),
    "memory too large": (
        Module(memories=[MemoryType(Limits(65537))]),
        "memory size must be at most 65536 pages (4GiB)",
    ),
    "memory maximum too large": (
        Module(memories=[MemoryType(Limits(0, 65537))]),
        "memory size must be at most 65536 pages (4GiB)",
    ),
    "memory minimum above maximum": (
        Module(memories=[MemoryType(Limits(2, 1))]),
        "size minimum must not be greater than maximum",
    ),
    "table minimum above maximum": (
        Module(tables=[TableType(FUNCREF, Limits(3, 2))]),
        "size minimum must not be greater than maximum",
    ),
    "global initialiser of the wrong type": (
        Module(globals=[Global(GlobalType(I32, False), const("i64.const", 0))]),
        "type mismatch",
    ),
    "global initialiser that is not constant": (
        Module(
            globals=[
                Global(
                    GlobalType(I32, False),
                    [
                        Instr(op.BY_NAME["i32.const"], 1, 0),
                        Instr(op.BY_NAME["i32.eqz"], None, 0),
                        Instr(op.END, None, 0),
                    ],
                )
            ]
        ),
        "constant expression required",
    ),
    "global initialiser reading a defined global": (
        Module(
            globals=[
                Global(GlobalType(I32, False), const("i32.const", 0)),
                Global(GlobalType(I32, False), const("global.get", 0)),
            ]
        ),
        "unknown global",
    ),
    "constant expression reading a mutable import": (
        Module(
            imports=[Import("env", "g", ExternKind.GLOBAL, GlobalType(I32, True))],
            globals=[Global(GlobalType(I32, False), const("global.get", 0))],
        ),
        "constant expression required",
    ),
    "empty constant expression": (
        Module(globals=[Global(GlobalType(I32, False), [Instr(op.END, None, 0)])]),
        "type mismatch",
    ),
    "ref.func of an unknown function in a global": (
        Module(globals=[Global(GlobalType(FUNCREF, False), const("ref.func", 0))]),
        "unknown function",
    ),
    "element segment for an unknown table": (
        Module(
            elements=[ElementSegment(SegmentMode.ACTIVE, FUNCREF, [], 0, const("i32.const", 0))]
        ),
        "unknown table 0",
    ),
    "element segment of the wrong type for its table": (
        Module(
            tables=[TableType(EXTERNREF, Limits(1))],
            elements=[ElementSegment(SegmentMode.ACTIVE, FUNCREF, [], 0, const("i32.const", 0))],
        ),
        "type mismatch",
    ),
    "element offset of the wrong type": (
        Module(
            tables=[TableType(FUNCREF, Limits(1))],
            elements=[ElementSegment(SegmentMode.ACTIVE, FUNCREF, [], 0, const("i64.const", 0))],
        ),
        "type mismatch",
    ),
    "element of the wrong type": (
        Module(
            elements=[ElementSegment(SegmentMode.PASSIVE, FUNCREF, [const("ref.null", EXTERNREF)])]
        ),
        "type mismatch",
    ),
    "data segment for an unknown memory": (
        Module(datas=[DataSegment(SegmentMode.ACTIVE, b"", 1, const("i32.const", 0))]),
        "unknown memory 1",
    ),
    "duplicate export name": (
        Module(
            memories=[MemoryType(Limits(1))],
            exports=[Export("x", ExternKind.MEMORY, 0), Export("x", ExternKind.MEMORY, 0)],
        ),
        "duplicate export name",
    ),
    "export of an unknown global": (
        Module(exports=[Export("g", ExternKind.GLOBAL, 0)]),
        "unknown global 0",
    ),
    "start function with parameters": (
        Module(
            types=[FuncType((I32,), ())],
            functions=[Function(0, LocalTypes(), assemble("end"))],
            start=0,
        ),
        "start function",
    ),
    "unknown start function": (Module(start=0), "unknown function"),
}


@pytest.mark.parametrize(("module", "message"), list(MODULE_RULES.values()), ids=list(MODULE_RULES))
def test_module_rule(module: Module, message: str) -> None:
    error = invalid(module)
    assert error.message.startswith(message), error.message
    assert error.func_index is None


def test_constant_expressions_may_read_imported_immutable_globals() -> None:
    module = Module(
        imports=[Import("env", "g", ExternKind.GLOBAL, GlobalType(I32, False))],
        globals=[Global(GlobalType(I32, False), const("global.get", 0))],
        memories=[MemoryType(Limits(1))],
        datas=[DataSegment(SegmentMode.ACTIVE, b"x", 0, const("global.get", 0))],
    )
    validate_module(module)


def test_validation_does_not_change_the_module() -> None:
    data = (DATA_DIR / "features.wasm").read_bytes()
    module = decode_module(data)
    validate_module(module)
    assert module == decode_module(data)


# -- the spec test suite ------------------------------------------------------------------------

# Where wabt 1.0.32's encoding of a text module differs from the module the suite means.
WABT_ENCODING_DIFFERENCES = {
    # No data segments, so wabt writes no data count section; the binary then uses
    # memory.init / data.drop without one, which the binary format rejects.
    "data count section required",
}
WABT_ENCODES_EMPTY_TYPED_SELECT_AS_SELECT = ("select.wast", "invalid result arity")


def spec_files() -> list[Any]:
    core = spec_suite_core()
    if core is None:
        return [
            pytest.param(
                None,
                marks=pytest.mark.skip(
                    reason="the WebAssembly spec test suite is not on this machine "
                    "(../shared/wasm-testsuite or $KINDLING_WASM_TESTSUITE)"
                ),
                id="no-testsuite",
            )
        ]
    return [pytest.param(path, id=path.name) for path in sorted(core.glob("*.wast"))]


@pytest.mark.parametrize("wast", spec_files())
def test_spec_suite_modules(wast: Path, tmp_path: Path) -> None:
    """Text modules of one .wast file, converted by wast2json without wabt's own checks:
    valid ones validate, ``assert_invalid`` ones fail with the suite's message."""
    if shutil.which("wast2json") is None:
        pytest.skip("wast2json (wabt) is not installed")
    converted = subprocess.run(
        ["wast2json", "--no-check", str(wast), "-o", str(tmp_path / "spec.json")],
        capture_output=True,
        text=True,
    )
    if converted.returncode != 0:
        pytest.skip(f"wast2json (wabt 1.0.32) cannot parse {wast.name}: needs a newer wabt")
    commands = json.loads((tmp_path / "spec.json").read_text())["commands"]
    checked = 0
    for command in commands:
        kind, filename = command["type"], command.get("filename", "")
        if not filename.endswith(".wasm") or kind == "assert_malformed":
            continue  # malformed binaries are checked in test_decoder.py, text ones elsewhere
        data = (tmp_path / filename).read_bytes()
        where = f"{wast.name}:{command['line']}"
        if kind != "assert_invalid":  # module, assert_unlinkable, assert_uninstantiable
            validate_module(decode_module(data))
        else:
            expected = command["text"]
            try:
                validate_module(decode_module(data))
            except DecodeError as exc:
                assert exc.message in WABT_ENCODING_DIFFERENCES, f"{where}: {exc}"
            except ValidationError as exc:
                accepted = [expected]
                if (wast.name, expected) == WABT_ENCODES_EMPTY_TYPED_SELECT_AS_SELECT:
                    accepted.append("type mismatch")  # `select (result)` became plain select
                assert exc.message.startswith(tuple(accepted)), f"{where}: {exc.message!r}"
            else:
                pytest.fail(f"{where}: invalid module accepted (expected {expected!r})")
        checked += 1
    assert checked or not any(c["type"] == "module" for c in commands)
