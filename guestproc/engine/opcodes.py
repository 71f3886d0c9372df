"""Every WebAssembly 2.0 instruction: opcode, text name, immediate kind.

Opcodes are ints: one-byte instructions keep their byte, ``0xFC``-prefixed ones are
``0xFC00 | subopcode`` (SIMD's ``0xFD00 | subopcode``, registered by ``simd_opcodes``, which
also holds their typing). The decoder, the text parser, the validator and the compiler all read
these tables, so an instruction is spelt in exactly one place.

``NUMERIC_SIGNATURES`` gives the operand and result types of every instruction whose typing
is fixed (numeric, comparison, conversion), so the validator and the compiler agree on them.
"""

from __future__ import annotations

import enum

from .types import ValType


class Imm(enum.Enum):
    """What follows an opcode in the binary format (and what ``Instr.arg`` holds)."""

    NONE = "none"  # arg None
    BLOCKTYPE = "blocktype"  # arg None (empty) | ValType (one result) | int (type index)
    LABEL = "label"  # arg int: relative label depth
    BR_TABLE = "br_table"  # arg (tuple[int, ...] labels, int default)
    FUNC = "func"  # arg int: function index
    CALL_INDIRECT = "call_indirect"  # arg (type index, table index)
    LOCAL = "local"  # arg int
    GLOBAL = "global"  # arg int
    TABLE = "table"  # arg int: table index
    MEMARG = "memarg"  # arg (align exponent, offset)
    MEMORY = "memory"  # arg int: memory index (always 0 in Wasm 2.0)
    I32 = "i32"  # arg int, canonical unsigned (0 <= v < 2**32)
    I64 = "i64"  # arg int, canonical unsigned (0 <= v < 2**64)
    F32 = "f32"  # arg int: the raw IEEE-754 bits (NaN payloads kept exactly)
    F64 = "f64"  # arg int: the raw IEEE-754 bits
    SELECT_T = "select_t"  # arg tuple[ValType, ...]
    REFTYPE = "reftype"  # arg ValType
    ELEM = "elem"  # arg int: element segment index
    DATA = "data"  # arg int: data segment index
    MEMORY_INIT = "memory_init"  # arg (data index, memory index)
    MEMORY_COPY = "memory_copy"  # arg (destination memory, source memory)
    TABLE_INIT = "table_init"  # arg (elem index, table index)
    TABLE_COPY = "table_copy"  # arg (destination table, source table)
    MEMARG_LANE = "memarg_lane"  # arg (align exponent, offset, lane index): SIMD lane memory
    LANE = "lane"  # arg int: a SIMD lane index
    V128 = "v128"  # arg int, canonical unsigned (0 <= v < 2**128), lane 0 in the low bits
    SHUFFLE = "shuffle"  # arg tuple of 16 lane indices


NAMES: dict[int, str] = {}
IMMEDIATES: dict[int, Imm] = {}
BY_NAME: dict[str, int] = {}


def _op(code: int, name: str, imm: Imm = Imm.NONE) -> int:
    NAMES[code] = name
    IMMEDIATES[code] = imm
    BY_NAME[name] = code
    return code


UNREACHABLE = _op(0x00, "unreachable")
NOP = _op(0x01, "nop")
BLOCK = _op(0x02, "block", Imm.BLOCKTYPE)
LOOP = _op(0x03, "loop", Imm.BLOCKTYPE)
IF = _op(0x04, "if", Imm.BLOCKTYPE)
ELSE = _op(0x05, "else")
END = _op(0x0B, "end")
BR = _op(0x0C, "br", Imm.LABEL)
BR_IF = _op(0x0D, "br_if", Imm.LABEL)
BR_TABLE = _op(0x0E, "br_table", Imm.BR_TABLE)
RETURN = _op(0x0F, "return")
CALL = _op(0x10, "call", Imm.FUNC)
CALL_INDIRECT = _op(0x11, "call_indirect", Imm.CALL_INDIRECT)
DROP = _op(0x1A, "drop")
SELECT = _op(0x1B, "select")
SELECT_T = _op(0x1C, "select", Imm.SELECT_T)  # typed select shares the text name
LOCAL_GET = _op(0x20, "local.get", Imm.LOCAL)
LOCAL_SET = _op(0x21, "local.set", Imm.LOCAL)
LOCAL_TEE = _op(0x22, "local.tee", Imm.LOCAL)
GLOBAL_GET = _op(0x23, "global.get", Imm.GLOBAL)
GLOBAL_SET = _op(0x24, "global.set", Imm.GLOBAL)
TABLE_GET = _op(0x25, "table.get", Imm.TABLE)
TABLE_SET = _op(0x26, "table.set", Imm.TABLE)
BY_NAME["select"] = SELECT

I32_LOAD = _op(0x28, "i32.load", Imm.MEMARG)
I64_LOAD = _op(0x29, "i64.load", Imm.MEMARG)
F32_LOAD = _op(0x2A, "f32.load", Imm.MEMARG)
F64_LOAD = _op(0x2B, "f64.load", Imm.MEMARG)
I32_LOAD8_S = _op(0x2C, "i32.load8_s", Imm.MEMARG)
I32_LOAD8_U = _op(0x2D, "i32.load8_u", Imm.MEMARG)
I32_LOAD16_S = _op(0x2E, "i32.load16_s", Imm.MEMARG)
I32_LOAD16_U = _op(0x2F, "i32.load16_u", Imm.MEMARG)
I64_LOAD8_S = _op(0x30, "i64.load8_s", Imm.MEMARG)
I64_LOAD8_U = _op(0x31, "i64.load8_u", Imm.MEMARG)
I64_LOAD16_S = _op(0x32, "i64.load16_s", Imm.MEMARG)
I64_LOAD16_U = _op(0x33, "i64.load16_u", Imm.MEMARG)
I64_LOAD32_S = _op(0x34, "i64.load32_s", Imm.MEMARG)
I64_LOAD32_U = _op(0x35, "i64.load32_u", Imm.MEMARG)
I32_STORE = _op(0x36, "i32.store", Imm.MEMARG)
I64_STORE = _op(0x37, "i64.store", Imm.MEMARG)
F32_STORE = _op(0x38, "f32.store", Imm.MEMARG)
F64_STORE = _op(0x39, "f64.store", Imm.MEMARG)
I32_STORE8 = _op(0x3A, "i32.store8", Imm.MEMARG)
I32_STORE16 = _op(0x3B, "i32.store16", Imm.MEMARG)
I64_STORE8 = _op(0x3C, "i64.store8", Imm.MEMARG)
I64_STORE16 = _op(0x3D, "i64.store16", Imm.MEMARG)
I64_STORE32 = _op(0x3E, "i64.store32", Imm.MEMARG)
MEMORY_SIZE = _op(0x3F, "memory.size", Imm.MEMORY)
MEMORY_GROW = _op(0x40, "memory.grow", Imm.MEMORY)

I32_CONST = _op(0x41, "i32.const", Imm.I32)
I64_CONST = _op(0x42, "i64.const", Imm.I64)
F32_CONST = _op(0x43, "f32.const", Imm.F32)
F64_CONST = _op(0x44, "f64.const", Imm.F64)

# Numeric instructions come in regular runs; (first opcode, prefix, suffixes).
_NUMERIC_RUNS: list[tuple[int, str, str]] = [
    (0x45, "i32.", "eqz eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u"),
    (0x50, "i64.", "eqz eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u"),
    (0x5B, "f32.", "eq ne lt gt le ge"),
    (0x61, "f64.", "eq ne lt gt le ge"),
    (
        0x67,
        "i32.",
        "clz ctz popcnt add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr",
    ),
    (
        0x79,
        "i64.",
        "clz ctz popcnt add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr",
    ),
    (0x8B, "f32.", "abs neg ceil floor trunc nearest sqrt add sub mul div min max copysign"),
    (0x99, "f64.", "abs neg ceil floor trunc nearest sqrt add sub mul div min max copysign"),
]
_CONVERSIONS = (
    "i32.wrap_i64 i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u "
    "i64.extend_i32_s i64.extend_i32_u i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s "
    "i64.trunc_f64_u f32.convert_i32_s f32.convert_i32_u f32.convert_i64_s f32.convert_i64_u "
    "f32.demote_f64 f64.convert_i32_s f64.convert_i32_u f64.convert_i64_s f64.convert_i64_u "
    "f64.promote_f32 i32.reinterpret_f32 i64.reinterpret_f64 f32.reinterpret_i32 "
    "f64.reinterpret_i64 i32.extend8_s i32.extend16_s i64.extend8_s i64.extend16_s "
    "i64.extend32_s"
)
_SATURATING = (
    "i32.trunc_sat_f32_s i32.trunc_sat_f32_u i32.trunc_sat_f64_s i32.trunc_sat_f64_u "
    "i64.trunc_sat_f32_s i64.trunc_sat_f32_u i64.trunc_sat_f64_s i64.trunc_sat_f64_u"
)

for _first, _prefix, _suffixes in _NUMERIC_RUNS:
    for _i, _suffix in enumerate(_suffixes.split()):
        _op(_first + _i, _prefix + _suffix)
for _i, _name in enumerate(_CONVERSIONS.split()):
    _op(0xA7 + _i, _name)
for _i, _name in enumerate(_SATURATING.split()):
    _op(0xFC00 + _i, _name)

REF_NULL = _op(0xD0, "ref.null", Imm.REFTYPE)
REF_IS_NULL = _op(0xD1, "ref.is_null")
REF_FUNC = _op(0xD2, "ref.func", Imm.FUNC)

MEMORY_INIT = _op(0xFC08, "memory.init", Imm.MEMORY_INIT)
DATA_DROP = _op(0xFC09, "data.drop", Imm.DATA)
MEMORY_COPY = _op(0xFC0A, "memory.copy", Imm.MEMORY_COPY)
MEMORY_FILL = _op(0xFC0B, "memory.fill", Imm.MEMORY)
TABLE_INIT = _op(0xFC0C, "table.init", Imm.TABLE_INIT)
ELEM_DROP = _op(0xFC0D, "elem.drop", Imm.ELEM)
TABLE_COPY = _op(0xFC0E, "table.copy", Imm.TABLE_COPY)
TABLE_GROW = _op(0xFC0F, "table.grow", Imm.TABLE)
TABLE_SIZE = _op(0xFC10, "table.size", Imm.TABLE)
TABLE_FILL = _op(0xFC11, "table.fill", Imm.TABLE)

# Natural alignment (as a power of two) of every load and store: the largest `align` allowed.
NATURAL_ALIGNMENT: dict[int, int] = {}
for _code, _name in NAMES.items():
    if IMMEDIATES[_code] is Imm.MEMARG:
        _width = 32 if _name[1:3] == "32" else 64
        for _bits in ("8", "16", "32"):
            if _name.endswith(("load" + _bits + "_s", "load" + _bits + "_u", "store" + _bits)):
                _width = int(_bits)
        NATURAL_ALIGNMENT[_code] = {8: 0, 16: 1, 32: 2, 64: 3}[_width]


def _types(spec: str) -> tuple[ValType, ...]:
    return tuple(ValType[t.upper()] for t in spec.split())


def _build_signatures() -> dict[int, tuple[tuple[ValType, ...], tuple[ValType, ...]]]:
    sigs: dict[int, tuple[tuple[ValType, ...], tuple[ValType, ...]]] = {}
    for code, name in NAMES.items():
        if IMMEDIATES[code] is not Imm.NONE or "." not in name:
            continue
        prefix, op = name.split(".", 1)
        if prefix not in ("i32", "i64", "f32", "f64"):
            continue
        own = prefix
        if op == "eqz":
            sig = (own, "i32")
        elif op in ("eq", "ne", "lt", "gt", "le", "ge") or op[:3] in ("lt_", "gt_", "le_", "ge_"):
            sig = (f"{own} {own}", "i32")
        elif op in (
            "clz",
            "ctz",
            "popcnt",
            "abs",
            "neg",
            "ceil",
            "floor",
            "trunc",
            "nearest",
            "sqrt",
        ) or op.startswith(("extend8_s", "extend16_s", "extend32_s")):
            sig = (own, own)
        elif any(p in ("i32", "i64", "f32", "f64") for p in op.split("_")):
            # conversions: <result>.<op>_<operand>[_s|_u], e.g. i32.trunc_sat_f64_u
            operand = next(p for p in op.split("_") if p in ("i32", "i64", "f32", "f64"))
            sig = (operand, own)
        else:
            sig = (f"{own} {own}", own)
        sigs[code] = (_types(sig[0]), _types(sig[1]))
    return sigs


NUMERIC_SIGNATURES = _build_signatures()


V128_CONST = 0xFD0C  # the one SIMD instruction allowed in constant expressions

# SIMD registers itself here, once the tables above are complete (it imports this module).
from . import simd_opcodes as _simd_opcodes  # noqa: E402, F401
