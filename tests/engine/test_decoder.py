"""The binary decoder: the module model it builds, its errors, and its behaviour on hostile input.

Malformed cases are hand-built byte strings, so each names exactly one broken rule. Valid
cases come from ``data/features.wat`` (built with ``wat2wasm``, committed with its source).
The spec test suite's own binary modules are checked at the end of this file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guestproc.engine import opcodes as op
from guestproc.engine.decoder import MAX_LOCALS, decode_module
from guestproc.engine.errors import DecodeError, ValidationError
from guestproc.engine.leb128 import read_s33, read_u32, read_unsigned
from guestproc.engine.module import Instr, Module, SegmentMode
from guestproc.engine.types import ExternKind, FuncType, GlobalType, Limits, TableType, ValType
from guestproc.engine.validator import validate_module
from tests.framework.binary import name, section, uleb, vec
from tests.framework.paths import spec_suite_dir

DATA_DIR = Path(__file__).parent / "data"
REPO_ROOT = Path(__file__).resolve().parents[2]
HEADER = b"\x00asm\x01\x00\x00\x00"
I32, I64, F32, F64 = ValType.I32, ValType.I64, ValType.F32, ValType.F64


VOID_TYPE = section(1, vec(b"\x60\x00\x00"))
ONE_FUNC = section(3, vec(b"\x00"))
ONE_MEMORY = section(5, vec(b"\x00\x01"))


def code(*bodies: bytes) -> bytes:
    """A code section; each body is locals + instructions (its size is added here)."""
    return section(10, vec(*(uleb(len(body)) + body for body in bodies)))


def one_function(body: bytes, *, memory: bool = False) -> bytes:
    """A module with one [] -> [] function whose body (after "no locals") is ``body``."""
    memories = ONE_MEMORY if memory else b""
    return HEADER + VOID_TYPE + ONE_FUNC + memories + code(b"\x00" + body)


def malformed(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_module(data)
    return info.value


def features() -> Module:
    return decode_module((DATA_DIR / "features.wasm").read_bytes())


# -- LEB128 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "value"),
    [
        (b"\x00", 0),
        (b"\x7f", 127),
        (b"\x80\x01", 128),
        (b"\xff\xff\xff\xff\x0f", 0xFFFFFFFF),
        (b"\x80\x80\x80\x80\x00", 0),  # padded zero: allowed up to 5 bytes
    ],
)
def test_u32_values(encoded: bytes, value: int) -> None:
    assert read_u32(encoded + b"\xaa", 0) == (value, len(encoded))


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        (b"\xff\xff\xff\xff\x10", "integer too large"),  # bit 32 set
        (b"\x80\x80\x80\x80\x80\x00", "integer representation too long"),
    ],
)
def test_u32_limits(encoded: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        read_u32(encoded, 0)


def const_arg(const: bytes) -> int:
    """The immediate of ``const`` (an i32.const or i64.const, then drop) as decoded."""
    arg: int = decode_module(one_function(const + b"\x1a\x0b")).functions[0].body[0].arg
    return arg


@pytest.mark.parametrize(
    ("encoded", "value"),
    [
        (b"\x7f", 0xFFFFFFFF),  # -1
        (b"\x3f", 63),
        (b"\x40", 0xFFFFFFC0),  # -64
        (b"\x80\x80\x80\x80\x78", 0x80000000),  # INT32_MIN
        (b"\xff\xff\xff\xff\x07", 0x7FFFFFFF),
    ],
)
def test_i32_const_is_decoded_canonical_unsigned(encoded: bytes, value: int) -> None:
    assert const_arg(b"\x41" + encoded) == value


def test_signed_unused_bits_must_copy_the_sign() -> None:
    with pytest.raises(DecodeError, match="integer too large"):
        const_arg(b"\x41\xff\xff\xff\xff\x0f")  # positive, but bit 3 of the last byte is set
    with pytest.raises(DecodeError, match="integer too large"):
        const_arg(b"\x41\x80\x80\x80\x80\x70")  # negative, but bit 3 is clear
    assert const_arg(b"\x42" + b"\x80" * 9 + b"\x7f") == 1 << 63  # i64.const INT64_MIN
    with pytest.raises(DecodeError, match="integer too large"):
        const_arg(b"\x42" + b"\x80" * 9 + b"\x01")
    assert read_s33(b"\xff\xff\xff\xff\x0f", 0) == (0xFFFFFFFF, 5)
    assert read_s33(b"\x40", 0) == (-64, 1)


def test_one_bit_flag() -> None:
    assert read_unsigned(b"\x01", 0, 1) == (1, 1)
    with pytest.raises(DecodeError, match="integer too large"):
        read_unsigned(b"\x02", 0, 1)
    with pytest.raises(DecodeError, match="integer representation too long"):
        read_unsigned(b"\x81\x00", 0, 1)


# -- header and sections ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unexpected end"),
        (b"\x00as", "unexpected end"),
        (b"\x00asm\x01\x00", "unexpected end"),
        (b"\x01", "unexpected end"),  # the magic is read whole before it is compared
        (b"wasm\x01\x00\x00\x00", "magic header not detected"),
        (b"\xef\xbb\xbf\x00asm\x01\x00\x00\x00", "magic header not detected"),
        (b"\x00asm\x02\x00\x00\x00", "unknown binary version"),
    ],
)
def test_header(data: bytes, message: str) -> None:
    assert malformed(data).message.startswith(message)


def test_empty_module() -> None:
    assert decode_module(HEADER) == Module()


def test_section_errors() -> None:
    error = malformed(HEADER + b"\x0d\x00")
    assert (error.message, error.offset) == ("malformed section id", 8)
    assert malformed(HEADER + ONE_FUNC + VOID_TYPE).message == (
        "unexpected content after last section"
    )
    assert malformed(HEADER + VOID_TYPE + VOID_TYPE).message == (
        "unexpected content after last section"
    )
    # declared size 5, but the content (a count and one empty type) takes 4 bytes
    error = malformed(HEADER + b"\x01\x05\x01\x60\x00\x00\x00")
    assert (error.message, error.offset) == ("section size mismatch", 10)
    # declared size larger than what is left
    assert malformed(HEADER + b"\x01\x09\x01\x60\x00\x00").message == "length out of bounds"


def test_data_count_section_orders_before_code() -> None:
    data_count = section(12, b"\x00")
    module = decode_module(HEADER + data_count + section(10, b"\x00"))
    assert module.data_count == 0
    assert malformed(HEADER + section(10, b"\x00") + data_count).message == (
        "unexpected content after last section"
    )


def test_custom_sections_anywhere_keep_name_and_payload() -> None:
    custom = section(0, name("meta") + b"\x01\x02")
    module = decode_module(HEADER + custom + VOID_TYPE + section(0, name("") + b"") + custom)
    assert module.customs == [("meta", b"\x01\x02"), ("", b""), ("meta", b"\x01\x02")]
    assert module.types == [FuncType((), ())]


def test_custom_section_name_must_be_utf8_and_fit() -> None:
    assert malformed(HEADER + section(0, b"\x02\xc0\x80")).message == "malformed UTF-8 encoding"
    assert malformed(HEADER + section(0, b"\x02\xed\xa0")).message.startswith(
        "malformed UTF-8 encoding"
    )
    # section size 1: the name's length byte alone already fills it, the name runs past
    assert malformed(HEADER + b"\x00\x01\x05abcde").message.startswith("unexpected end")


def test_function_and_code_counts_must_agree() -> None:
    message = "function and code section have inconsistent lengths"
    assert malformed(HEADER + VOID_TYPE + ONE_FUNC).message == message
    assert malformed(HEADER + VOID_TYPE + code(b"\x00\x0b")).message == message


def test_data_count_must_match_and_is_required_by_memory_init() -> None:
    datas = section(11, vec(b"\x01\x00"))  # one passive, empty segment
    assert malformed(HEADER + section(12, b"\x02") + datas).message == (
        "data count and data section have inconsistent lengths"
    )
    memory_init = b"\x41\x00\x41\x00\x41\x00\xfc\x08\x00\x00\x0b"
    data_drop = b"\xfc\x09\x00\x0b"
    for body in (memory_init, data_drop):
        error = malformed(one_function(body, memory=True) + datas)
        assert error.message == "data count section required"
    with_count = HEADER + VOID_TYPE + ONE_FUNC + ONE_MEMORY + section(12, b"\x01")
    decoded = decode_module(with_count + code(b"\x00" + memory_init) + datas).functions[0].body
    assert (decoded[3].op, decoded[3].arg) == (op.MEMORY_INIT, (0, 0))


# -- types, imports, exports ------------------------------------------------------------


def test_types_and_imports() -> None:
    types = section(1, vec(b"\x60\x02\x7f\x7e\x02\x7d\x7c", b"\x60\x00\x01\x70"))
    imports = section(
        2,
        vec(
            name("env") + name("f") + b"\x00\x01",
            name("env") + name("t") + b"\x01\x6f\x01\x02\x09",
            name("env") + name("m") + b"\x02\x00\x03",
            name("env") + name("g") + b"\x03\x7c\x01",
        ),
    )
    module = decode_module(HEADER + types + imports)
    assert module.types == [FuncType((I32, I64), (F32, F64)), FuncType((), (ValType.FUNCREF,))]
    assert [(i.module, i.name, i.kind) for i in module.imports] == [
        ("env", "f", ExternKind.FUNC),
        ("env", "t", ExternKind.TABLE),
        ("env", "m", ExternKind.MEMORY),
        ("env", "g", ExternKind.GLOBAL),
    ]
    assert module.imports[0].desc == 1
    assert module.imports[1].desc == TableType(ValType.EXTERNREF, Limits(2, 9))
    assert module.imports[2].desc.limits == Limits(3, None)  # type: ignore[union-attr]
    assert module.imports[3].desc == GlobalType(F64, True)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (vec(name("a") + name("b") + b"\x04"), "malformed import kind"),
        (vec(name("a") + name("b") + b"\x03\x7f\x02"), "malformed mutability"),
        (vec(name("a") + name("b") + b"\x03\x40\x00"), "malformed value type"),
        (vec(name("a") + name("b") + b"\x01\x7f\x00\x00"), "malformed reference type"),
        (vec(name("a") + name("b") + b"\x02\x02\x00"), "integer too large"),  # limits flag
        (vec(name("a") + b"\x03\xed\xa0\x80" + b"\x00\x00"), "malformed UTF-8"),  # a surrogate
    ],
)
def test_malformed_imports(payload: bytes, message: str) -> None:
    assert malformed(HEADER + section(2, payload)).message.startswith(message)


def test_malformed_export_kind_and_function_type() -> None:
    exports = section(7, vec(name("x") + b"\x04\x00"))
    assert malformed(HEADER + exports).message == "malformed export kind"
    assert malformed(HEADER + section(1, vec(b"\x61\x00\x00"))).message == (
        "malformed function type"
    )


# -- code -----------------------------------------------------------------------------------


def test_locals_are_expanded_in_order() -> None:
    body = b"\x03\x02\x7f\x00\x7e\x01\x7c\x0b"  # 2 x i32, 0 x i64, 1 x f64
    module = decode_module(HEADER + VOID_TYPE + ONE_FUNC + code(body))
    assert module.functions[0].locals == (I32, I32, F64)


def test_too_many_locals() -> None:
    # more than the format allows in total (2**32 - 1 + 2)
    body = b"\x02\xff\xff\xff\xff\x0f\x7f\x02\x7e\x0b"
    assert malformed(HEADER + VOID_TYPE + ONE_FUNC + code(body)).message == "too many locals"
    # the engine's cap, documented on MAX_LOCALS
    at_cap = b"\x01" + uleb(MAX_LOCALS) + b"\x7f\x0b"
    module = decode_module(HEADER + VOID_TYPE + ONE_FUNC + code(at_cap))
    assert module.functions[0].locals == (I32,) * MAX_LOCALS
    over = b"\x01" + uleb(MAX_LOCALS + 1) + b"\x7f\x0b"
    assert malformed(HEADER + VOID_TYPE + ONE_FUNC + code(over)).message == "too many locals"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x41\x01\x1a", "unexpected end"),  # no end at all
        (b"\x02\x40\x05\x0b\x0b", "END opcode expected"),  # else inside a block
        (b"\x04\x40\x05\x05\x0b\x0b", "END opcode expected"),  # second else
        (b"\x3f\x01\x1a\x0b", "zero byte expected"),  # memory.size 1
        (b"\x41\x00\x40\x80\x00\x1a\x0b", "zero byte expected"),  # long zero
        (b"\x06\x0b", "illegal opcode 06"),
        (b"\xfd\x9a\x01\x0b", "illegal opcode fd 9a"),  # a SIMD subopcode nothing has
        (b"\xfc\x12\x0b", "illegal opcode fc 12"),
        (b"\x41\x00\x28\x20\x00\x1a\x0b", "malformed memop flags"),  # align 2**32
        (b"\x02\x60\x0b\x0b", "malformed block type"),
        (b"\xd0\x7f\x1a\x0b", "malformed reference type"),
        (b"\x1c\x01\x40\x0b", "malformed value type"),
        (b"\x44\x00\x00", "unexpected end"),  # f64.const cut short
    ],
)
def test_malformed_code(body: bytes, message: str) -> None:
    assert malformed(one_function(body, memory=True)).message.startswith(message)


def test_body_size_is_checked_after_decoding() -> None:
    # the body says 3 bytes but "end" comes after 2: the size is wrong
    data = HEADER + VOID_TYPE + ONE_FUNC + section(10, b"\x01\x03\x00\x0b\x01")
    error = malformed(data)
    body_start = data.index(b"\x03\x00\x0b") + 1
    assert (error.message, error.offset) == ("section size mismatch", body_start)


def test_instruction_offsets_are_opcode_positions() -> None:
    body = b"\x00\x41\xff\x00\x1a\x0b"  # no locals; i32.const 127; drop; end
    data = HEADER + VOID_TYPE + ONE_FUNC + code(body)
    function = decode_module(data).functions[0]
    start = data.index(body)
    assert function.offset == start
    assert function.body == [
        Instr(op.I32_CONST, 127, start + 1),
        Instr(op.DROP, None, start + 4),
        Instr(op.END, None, start + 5),
    ]


def instructions(module: Module, function: int) -> list[Instr]:
    return module.functions[function].body


def first(module: Module, function: int, code: int) -> Any:
    return next(i.arg for i in instructions(module, function) if i.op == code)


def test_immediates_follow_the_opcode_table() -> None:
    module = features()
    control, memory, tables = 4, 5, 6  # $control, $memory, $tables (defined functions)
    assert first(module, control, op.I64_CONST) == 1 << 63  # -2**63, canonical unsigned
    assert first(module, control, op.F64_CONST) == struct.unpack("<Q", struct.pack("<d", -12.0))[0]
    assert first(module, control, op.F32_CONST) == 0x7FA00001  # NaN payload kept exactly
    assert first(module, control, op.SELECT_T) == (I64,)
    assert first(module, control, op.SELECT) is None
    assert first(module, control, op.BR_TABLE) == ((2, 1), 0)
    assert first(module, control, op.BR_IF) == 1
    assert first(module, control, op.CALL_INDIRECT) == (0, 0)  # (type $binop, table 0)
    assert first(module, control, op.IF) is I32
    assert first(module, control, op.BLOCK) is None
    pair = module.functions[3].body
    assert type(pair[1].arg) is int  # block (param i32) (result i32 i64): a type index
    assert module.types[pair[1].arg] == FuncType((I32,), (I32, I64))
    assert first(module, memory, op.I32_STORE) == (1, 8)  # align=2 is exponent 1
    assert first(module, memory, op.I32_LOAD8_U) == (0, 3)
    assert first(module, memory, op.I64_LOAD) == (3, 0)  # natural alignment by default
    assert first(module, memory, op.MEMORY_SIZE) == 0
    assert first(module, memory, op.MEMORY_INIT) == (1, 0)  # (data $bytes, memory 0)
    assert first(module, memory, op.MEMORY_COPY) == (0, 0)
    assert first(module, memory, op.MEMORY_FILL) == 0
    assert first(module, memory, op.DATA_DROP) == 1
    assert first(module, memory, op.BY_NAME["i32.trunc_sat_f64_s"]) is None
    assert first(module, tables, op.TABLE_INIT) == (1, 0)  # (elem $passive, table 0)
    assert first(module, tables, op.TABLE_COPY) == (0, 0)
    assert first(module, tables, op.TABLE_GROW) == 1
    assert first(module, tables, op.REF_NULL) is ValType.EXTERNREF
    assert first(module, tables, op.REF_FUNC) == 4
    assert first(module, tables, op.GLOBAL_SET) == 2
    assert all(body[-1].op == op.END for body in (f.body for f in module.functions))


def test_module_parts() -> None:
    module = features()
    assert [i.kind for i in module.imports] == [
        ExternKind.FUNC,
        ExternKind.TABLE,
        ExternKind.MEMORY,
        ExternKind.GLOBAL,
        ExternKind.GLOBAL,
    ]
    assert module.tables == [
        TableType(ValType.EXTERNREF, Limits(2, None)),
        TableType(ValType.FUNCREF, Limits(4, None)),
    ]
    assert [g.type for g in module.globals] == [
        GlobalType(F32, True),
        GlobalType(ValType.FUNCREF, False),
        GlobalType(I32, False),
    ]
    assert [(i.op, i.arg) for i in module.globals[2].init] == [(op.GLOBAL_GET, 0), (op.END, None)]
    assert {(e.name, e.kind, e.index) for e in module.exports} == {
        ("add", ExternKind.FUNC, 2),
        ("memory", ExternKind.MEMORY, 0),
        ("scale", ExternKind.GLOBAL, 2),
        ("refs", ExternKind.TABLE, 1),
    }
    assert module.start == 1
    assert module.data_count == 2
    assert [(d.mode, d.data, d.memory) for d in module.datas] == [
        (SegmentMode.ACTIVE, b"hello", 0),
        (SegmentMode.PASSIVE, b"\x00\x01\x02\xff", 0),
    ]
    assert [(i.op, i.arg) for i in module.datas[0].offset or []] == [
        (op.I32_CONST, 16),
        (op.END, None),
    ]


def test_element_segments_of_every_encoding() -> None:
    def items(init: list[list[Instr]]) -> list[tuple[int, Any]]:
        assert all(expr[-1].op == op.END and len(expr) == 2 for expr in init)
        return [(expr[0].op, expr[0].arg) for expr in init]

    active, passive, declarative = SegmentMode.ACTIVE, SegmentMode.PASSIVE, SegmentMode.DECLARATIVE
    funcref, externref = ValType.FUNCREF, ValType.EXTERNREF
    null_func = (op.REF_NULL, funcref)
    expected = [
        (active, funcref, 0, [(op.REF_FUNC, 2)]),
        (passive, funcref, 0, [(op.REF_FUNC, 2), (op.REF_FUNC, 3)]),
        (active, funcref, 2, [(op.REF_FUNC, 3)]),
        (declarative, funcref, 0, [(op.REF_FUNC, 4)]),
        (active, funcref, 0, [(op.REF_FUNC, 2), null_func]),
        (passive, funcref, 0, [(op.REF_FUNC, 3), null_func]),
        (active, externref, 1, [(op.REF_NULL, externref)]),
        (declarative, funcref, 0, [null_func, (op.REF_FUNC, 1)]),
    ]
    segments = features().elements
    assert [(s.mode, s.elem_type, s.table, items(s.init)) for s in segments] == expected
    assert [s.offset is not None for s in segments] == [s[0] is active for s in expected]


def test_element_and_data_segment_kinds_out_of_range() -> None:
    table = section(4, vec(b"\x70\x00\x01"))
    assert malformed(HEADER + table + section(9, vec(b"\x08"))).message == (
        "malformed elements segment kind"
    )
    assert malformed(HEADER + table + section(9, vec(b"\x01\x01\x00"))).message == (
        "malformed element kind"
    )
    assert malformed(HEADER + ONE_MEMORY + section(11, vec(b"\x03"))).message == (
        "malformed data segment kind"
    )


def test_decoded_offsets_match_wasm_objdump() -> None:
    if shutil.which("wasm-objdump") is None:
        pytest.skip("wasm-objdump (wabt) is not installed")
    path = DATA_DIR / "features.wasm"
    listing = subprocess.run(
        ["wasm-objdump", "-d", str(path)], capture_output=True, text=True, check=True
    ).stdout
    expected = [
        (int(m.group(1), 16), m.group(2))
        for m in re.finditer(r"^ ([0-9a-f]+): [0-9a-f ]+\|[ ]*(\S+)", listing, re.M)
        if not m.group(2).startswith("local[")
    ]
    decoded = [(i.offset, op.NAMES[i.op]) for f in features().functions for i in f.body]
    assert decoded == expected


# -- hostile input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        HEADER + b"\x01\x06" + uleb(0xFFFFFFFF) + b"\x60",  # 4 billion types
        HEADER + b"\x0b\x07\x01\x01" + uleb(0xFFFFFFFF),  # a 4 GiB data segment
        one_function(b"\x0e" + uleb(0xFFFFFFFF) + b"\x00\x0b"),  # a br_table of 4 billion
        HEADER + VOID_TYPE + ONE_FUNC + code(b"\x01" + uleb(0xFFFFFFFF) + b"\x7f\x0b"),  # locals
        HEADER + section(0, uleb(0xFFFFFFFF)),  # a 4 GiB custom section name
    ],
)
def test_huge_counts_fail_fast_without_allocating(data: bytes) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        malformed(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 0.5
    assert peak < 1 << 20


def decode_and_validate(data: bytes) -> None:
    """Only the engine's two input errors may come out, whatever the bytes."""
    with contextlib.suppress(DecodeError, ValidationError):
        validate_module(decode_module(data))


@settings(max_examples=400, deadline=None, database=None)
@given(st.binary(max_size=256))
def test_fuzz_random_bytes(data: bytes) -> None:
    decode_and_validate(data)
    decode_and_validate(HEADER + data)


_FEATURES = (DATA_DIR / "features.wasm").read_bytes()


@pytest.mark.slow
@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["set", "insert", "delete"]),
            st.integers(min_value=0, max_value=len(_FEATURES) - 1),
            st.integers(min_value=0, max_value=255),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fuzz_mutations_of_a_valid_module(edits: list[tuple[str, int, int]]) -> None:
    data = bytearray(_FEATURES)
    for action, position, byte in edits:
        position %= len(data) or 1
        if action == "set" and data:
            data[position] = byte
        elif action == "insert":
            data.insert(position, byte)
        elif data:
            del data[position]
    decode_and_validate(bytes(data))


# -- real programs ------------------------------------------------------------------------------


def bench_modules() -> list[Path]:
    configured = os.environ.get("KINDLING_BENCH")
    bench = Path(configured) if configured else REPO_ROOT.parent / "shared" / "bench"
    return sorted((bench / "wasm").glob("*.wasm"))


@pytest.mark.parametrize("path", bench_modules() or [None], ids=lambda p: p.name if p else "none")
def test_benchmark_programs_decode_and_validate(path: Path | None) -> None:
    if path is None:
        pytest.skip("the shared benchmark programs (shared/bench) are not on this machine")
    module = decode_module(path.read_bytes())
    validate_module(module)
    assert module.functions


def test_decode_and_validate_speed_on_a_clang_module() -> None:
    paths = [p for p in bench_modules() if p.name == "nbody.wasm"]
    if not paths:
        pytest.skip("the shared benchmark programs (shared/bench) are not on this machine")
    data = paths[0].read_bytes()
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        validate_module(decode_module(data))
        timings.append(time.perf_counter() - started)
    assert sorted(timings)[len(timings) // 2] < 0.060


# -- the spec test suite's binary modules ------------------------------------------------------


spec_suite_core = spec_suite_dir


_WAST_TOKEN = re.compile(r'\(;|;;[^\n]*|"(?:[^"\\]|\\.)*"|\(|\)|[^\s()";]+', re.S)
_BLOCK_COMMENT = re.compile(r"\(;|;\)")
_ESCAPES = {"n": 10, "t": 9, "r": 13, '"': 34, "'": 39, "\\": 92}


def wast_string(body: str) -> bytes:
    """The bytes of a .wast string literal's body: UTF-8 text with ``\\hh`` and ``\\u{...}``."""
    out = bytearray()
    i = 0
    while i < len(body):
        j = body.find("\\", i)
        if j < 0:
            out += body[i:].encode()
            break
        out += body[i:j].encode()
        escape = body[j + 1]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            i = j + 2
        elif escape == "u":
            close = body.index("}", j)
            out += chr(int(body[j + 3 : close], 16)).encode()
            i = close + 1
        else:
            out.append(int(body[j + 1 : j + 3], 16))
            i = j + 3
    return bytes(out)


def wast_forms(text: str) -> list[Any]:
    """Top-level s-expressions: nested lists of atoms (str) and string literals (bytes)."""
    stack: list[list[Any]] = [[]]
    pos = 0
    while (match := _WAST_TOKEN.search(text, pos)) is not None:
        token, pos = match.group(), match.end()
        if token == "(;":
            depth = 1
            while depth:
                found = _BLOCK_COMMENT.search(text, pos)
                assert found is not None, "unterminated block comment"
                depth += 1 if found.group() == "(;" else -1
                pos = found.end()
        elif token.startswith(";;"):
            continue
        elif token == "(":
            stack.append([])
        elif token == ")":
            done = stack.pop()
            stack[-1].append(done)
        elif token.startswith('"'):
            stack[-1].append(wast_string(token[1:-1]))
        else:
            stack[-1].append(token)
    return stack[0]


def binary_module(form: Any) -> bytes | None:
    """The bytes of ``(module $name? binary "..."*)``, or None for any other form."""
    if not (isinstance(form, list) and form and form[0] == "module"):
        return None
    rest = form[1:]
    if rest and isinstance(rest[0], str) and rest[0].startswith("$"):
        rest = rest[1:]
    if not rest or rest[0] != "binary":
        return None
    return b"".join(rest[1:])


def spec_binary_cases() -> Iterator[Any]:
    core = spec_suite_core()
    if core is None:
        yield pytest.param(
            None,
            None,
            None,
            marks=pytest.mark.skip(
                reason="the WebAssembly spec test suite is not on this machine "
                "(../shared/wasm-testsuite or $KINDLING_WASM_TESTSUITE)"
            ),
            id="no-testsuite",
        )
        return
    has_binary = re.compile(r"\(module\s+(\$\S+\s+)?binary")
    for path in sorted(core.glob("*.wast")):
        text = path.read_text(encoding="utf-8")
        if not has_binary.search(text):
            continue
        for index, form in enumerate(wast_forms(text)):
            data = binary_module(form)
            command, expected = "module", None
            if data is None and isinstance(form, list) and len(form) > 1:
                data = binary_module(form[1])
                command = form[0]
                expected = form[-1].decode() if isinstance(form[-1], bytes) else None
            if data is not None:
                yield pytest.param(command, data, expected, id=f"{path.name}:{index}:{command}")


@pytest.mark.parametrize(("command", "data", "expected"), list(spec_binary_cases()))
def test_spec_binary_module(command: str, data: bytes, expected: str | None) -> None:
    """Every binary module of the spec suite: malformed ones fail to decode with the
    suite's message, invalid ones fail validation with its message, the rest are accepted."""
    if command == "assert_malformed":
        assert expected is not None
        error = malformed(data)
        assert error.message.startswith(expected), error.message
    elif command == "assert_invalid":
        assert expected is not None
        module = decode_module(data)
        with pytest.raises(ValidationError) as info:
            validate_module(module)
        assert info.value.message.startswith(expected), info.value.message
    else:
        validate_module(decode_module(data))
