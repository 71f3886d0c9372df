"""Every fixed-width SIMD instruction of WebAssembly 2.0: opcode, text name, immediate, typing.

SIMD opcodes are ``0xFD00 | subopcode`` (the binary format writes ``0xFD`` and the subopcode
as a u32 LEB128; every subopcode is below 0x100). Importing ``opcodes`` registers them in its
tables (``NAMES``, ``IMMEDIATES``, ``BY_NAME``, ``NATURAL_ALIGNMENT``), so the text parser and
the decoder find them as they find the others; the typing of each lives here (``SIGNATURES``,
``LANES``) for the validator and the compiler.

Immediates (``Instr.arg``): ``Imm.MEMARG`` (align, offset); ``Imm.MEMARG_LANE`` (align,
offset, lane); ``Imm.LANE`` the lane index; ``Imm.V128`` the constant as an unsigned 128-bit
int (lane 0 in the low bits, as memory holds it); ``Imm.SHUFFLE`` a tuple of 16 lane indices.
"""

from __future__ import annotations

from . import opcodes as op
from .errors import DecodeError
from .leb128 import read_u32
from .types import ValType

Imm = op.Imm
PREFIX = 0xFD

_SHAPES = {"i8x16": 16, "i16x8": 8, "i32x4": 4, "i64x2": 2, "f32x4": 4, "f64x2": 2}
_SCALAR = {"i8x16": "i32", "i16x8": "i32", "i32x4": "i32", "i64x2": "i64", "f32x4": "f32"}
_SCALAR["f64x2"] = "f64"

SIGNATURES: dict[int, tuple[tuple[ValType, ...], tuple[ValType, ...]]] = {}
"""opcode -> (operand types, result types), for every SIMD instruction."""
LANES: dict[int, int] = {}
"""opcode -> how many lanes its lane index may name (lane and lane-memory instructions)."""
SIMD_CODES: list[int] = []


def _types(spec: str) -> tuple[ValType, ...]:
    return tuple(ValType[t.upper()] for t in spec.split())


def _simd(sub: int, name: str, signature: str, imm: Imm = Imm.NONE) -> None:
    code = op._op(0xFD00 | sub, name, imm)
    params, results = signature.split("->")
    SIGNATURES[code] = (_types(params), _types(results))
    SIMD_CODES.append(code)


def _memory(sub: int, name: str, natural: int, signature: str, imm: Imm = Imm.MEMARG) -> None:
    _simd(sub, name, signature, imm)
    code = 0xFD00 | sub
    op.NATURAL_ALIGNMENT[code] = natural
    if imm is Imm.MEMARG_LANE:
        LANES[code] = 16 >> natural


V = "v128"
_UNARY = f"{V} -> {V}"
_BINARY = f"{V} {V} -> {V}"

# --- memory ----------------------------------------------------------------------------------
_memory(0x00, "v128.load", 4, f"i32 -> {V}")
for _i, _name in enumerate(
    ["load8x8_s", "load8x8_u", "load16x4_s", "load16x4_u", "load32x2_s", "load32x2_u"]
):
    _memory(0x01 + _i, f"v128.{_name}", 3, f"i32 -> {V}")
for _i, _bits in enumerate((8, 16, 32, 64)):
    _memory(0x07 + _i, f"v128.load{_bits}_splat", _i, f"i32 -> {V}")
_memory(0x0B, "v128.store", 4, f"i32 {V} ->")
for _i, _bits in enumerate((8, 16, 32, 64)):
    _memory(0x54 + _i, f"v128.load{_bits}_lane", _i, f"i32 {V} -> {V}", Imm.MEMARG_LANE)
    _memory(0x58 + _i, f"v128.store{_bits}_lane", _i, f"i32 {V} ->", Imm.MEMARG_LANE)
_memory(0x5C, "v128.load32_zero", 2, f"i32 -> {V}")
_memory(0x5D, "v128.load64_zero", 3, f"i32 -> {V}")

# --- constants, shuffles, splats and lanes -----------------------------------------------------
_simd(0x0C, "v128.const", f"-> {V}", Imm.V128)
_simd(0x0D, "i8x16.shuffle", _BINARY, Imm.SHUFFLE)
_simd(0x0E, "i8x16.swizzle", _BINARY)
for _i, _shape in enumerate(_SHAPES):
    _simd(0x0F + _i, f"{_shape}.splat", f"{_SCALAR[_shape]} -> {V}")
_sub = 0x15
for _shape, _count in _SHAPES.items():
    _scalar = _SCALAR[_shape]
    _extracts = (
        ("extract_lane_s", "extract_lane_u") if _shape in ("i8x16", "i16x8") else ("extract_lane",)
    )
    for _name in (*_extracts, "replace_lane"):
        _sig = f"{V} -> {_scalar}" if _name != "replace_lane" else f"{V} {_scalar} -> {V}"
        _simd(_sub, f"{_shape}.{_name}", _sig, Imm.LANE)
        LANES[0xFD00 | _sub] = _count
        _sub += 1

# --- comparisons --------------------------------------------------------------------------------
_INT_COMPARE = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
_FLOAT_COMPARE = ["eq", "ne", "lt", "gt", "le", "ge"]
for _first, _shape, _names in (
    (0x23, "i8x16", _INT_COMPARE),
    (0x2D, "i16x8", _INT_COMPARE),
    (0x37, "i32x4", _INT_COMPARE),
    (0x41, "f32x4", _FLOAT_COMPARE),
    (0x47, "f64x2", _FLOAT_COMPARE),
    (0xD6, "i64x2", ["eq", "ne", "lt_s", "gt_s", "le_s", "ge_s"]),
):
    for _i, _name in enumerate(_names):
        _simd(_first + _i, f"{_shape}.{_name}", _BINARY)

# --- bitwise -------------------------------------------------------------------------------------
_simd(0x4D, "v128.not", _UNARY)
for _i, _name in enumerate(("and", "andnot", "or", "xor")):
    _simd(0x4E + _i, f"v128.{_name}", _BINARY)
_simd(0x52, "v128.bitselect", f"{V} {V} {V} -> {V}")
_simd(0x53, "v128.any_true", f"{V} -> i32")

# --- the rest, by subopcode: (name, kind) with kinds u (v128 -> v128), b (v128 v128 -> v128),
# t (v128 -> i32: all_true, bitmask), s (v128 i32 -> v128: shifts) -------------------------------
_REST = """
5e f32x4.demote_f64x2_zero u
5f f64x2.promote_low_f32x4 u
60 i8x16.abs u
61 i8x16.neg u
62 i8x16.popcnt u
63 i8x16.all_true t
64 i8x16.bitmask t
65 i8x16.narrow_i16x8_s b
66 i8x16.narrow_i16x8_u b
67 f32x4.ceil u
68 f32x4.floor u
69 f32x4.trunc u
6a f32x4.nearest u
6b i8x16.shl s
6c i8x16.shr_s s
6d i8x16.shr_u s
6e i8x16.add b
6f i8x16.add_sat_s b
70 i8x16.add_sat_u b
71 i8x16.sub b
72 i8x16.sub_sat_s b
73 i8x16.sub_sat_u b
74 f64x2.ceil u
75 f64x2.floor u
76 i8x16.min_s b
77 i8x16.min_u b
78 i8x16.max_s b
79 i8x16.max_u b
7a f64x2.trunc u
7b i8x16.avgr_u b
7c i16x8.extadd_pairwise_i8x16_s u
7d i16x8.extadd_pairwise_i8x16_u u
7e i32x4.extadd_pairwise_i16x8_s u
7f i32x4.extadd_pairwise_i16x8_u u
80 i16x8.abs u
81 i16x8.neg u
82 i16x8.q15mulr_sat_s b
83 i16x8.all_true t
84 i16x8.bitmask t
85 i16x8.narrow_i32x4_s b
86 i16x8.narrow_i32x4_u b
87 i16x8.extend_low_i8x16_s u
88 i16x8.extend_high_i8x16_s u
89 i16x8.extend_low_i8x16_u u
8a i16x8.extend_high_i8x16_u u
8b i16x8.shl s
8c i16x8.shr_s s
8d i16x8.shr_u s
8e i16x8.add b
8f i16x8.add_sat_s b
90 i16x8.add_sat_u b
91 i16x8.sub b
92 i16x8.sub_sat_s b
93 i16x8.sub_sat_u b
94 f64x2.nearest u
95 i16x8.mul b
96 i16x8.min_s b
97 i16x8.min_u b
98 i16x8.max_s b
99 i16x8.max_u b
9b i16x8.avgr_u b
9c i16x8.extmul_low_i8x16_s b
9d i16x8.extmul_high_i8x16_s b
9e i16x8.extmul_low_i8x16_u b
9f i16x8.extmul_high_i8x16_u b
a0 i32x4.abs u
a1 i32x4.neg u
a3 i32x4.all_true t
a4 i32x4.bitmask t
a7 i32x4.extend_low_i16x8_s u
a8 i32x4.extend_high_i16x8_s u
a9 i32x4.extend_low_i16x8_u u
aa i32x4.extend_high_i16x8_u u
ab i32x4.shl s
ac i32x4.shr_s s
ad i32x4.shr_u s
ae i32x4.add b
b1 i32x4.sub b
b5 i32x4.mul b
b6 i32x4.min_s b
b7 i32x4.min_u b
b8 i32x4.max_s b
b9 i32x4.max_u b
ba i32x4.dot_i16x8_s b
bc i32x4.extmul_low_i16x8_s b
bd i32x4.extmul_high_i16x8_s b
be i32x4.extmul_low_i16x8_u b
bf i32x4.extmul_high_i16x8_u b
c0 i64x2.abs u
c1 i64x2.neg u
c3 i64x2.all_true t
c4 i64x2.bitmask t
c7 i64x2.extend_low_i32x4_s u
c8 i64x2.extend_high_i32x4_s u
c9 i64x2.extend_low_i32x4_u u
ca i64x2.extend_high_i32x4_u u
cb i64x2.shl s
cc i64x2.shr_s s
cd i64x2.shr_u s
ce i64x2.add b
d1 i64x2.sub b
d5 i64x2.mul b
dc i64x2.extmul_low_i32x4_s b
dd i64x2.extmul_high_i32x4_s b
de i64x2.extmul_low_i32x4_u b
df i64x2.extmul_high_i32x4_u b
e0 f32x4.abs u
e1 f32x4.neg u
e3 f32x4.sqrt u
e4 f32x4.add b
e5 f32x4.sub b
e6 f32x4.mul b
e7 f32x4.div b
e8 f32x4.min b
e9 f32x4.max b
ea f32x4.pmin b
eb f32x4.pmax b
ec f64x2.abs u
ed f64x2.neg u
ef f64x2.sqrt u
f0 f64x2.add b
f1 f64x2.sub b
f2 f64x2.mul b
f3 f64x2.div b
f4 f64x2.min b
f5 f64x2.max b
f6 f64x2.pmin b
f7 f64x2.pmax b
f8 i32x4.trunc_sat_f32x4_s u
f9 i32x4.trunc_sat_f32x4_u u
fa f32x4.convert_i32x4_s u
fb f32x4.convert_i32x4_u u
fc i32x4.trunc_sat_f64x2_s_zero u
fd i32x4.trunc_sat_f64x2_u_zero u
fe f64x2.convert_low_i32x4_s u
ff f64x2.convert_low_i32x4_u u
"""
_KIND_SIGNATURES = {"u": _UNARY, "b": _BINARY, "t": f"{V} -> i32", "s": f"{V} i32 -> {V}"}
for _line in _REST.strip().splitlines():
    _hex, _name, _kind = _line.split()
    _simd(int(_hex, 16), _name, _KIND_SIGNATURES[_kind])

SIMD_CODES.sort()


def decode_immediate(data: bytes, pos: int, start: int) -> tuple[int, object, int]:
    """After a ``0xFD`` byte at ``start``: the opcode, its immediate and the position after.

    Raises ``DecodeError`` for an unknown subopcode; reading past the end raises
    ``IndexError`` (the decoder's "unexpected end")."""
    sub, pos = read_u32(data, pos)
    code = 0xFD00 | sub
    imm = op.IMMEDIATES.get(code) if sub < 0x100 else None
    if imm is None:
        raise DecodeError(f"illegal opcode fd {sub:02x}", start)
    arg: object = None
    if imm is Imm.MEMARG or imm is Imm.MEMARG_LANE:
        align, pos = read_u32(data, pos)
        if align >= 0x20:
            raise DecodeError("malformed memop flags", pos - 1)
        offset, pos = read_u32(data, pos)
        if imm is Imm.MEMARG:
            arg = (align, offset)
        else:
            arg = (align, offset, data[pos])
            pos += 1
    elif imm is Imm.LANE:
        arg = data[pos]
        pos += 1
    elif imm is Imm.V128 or imm is Imm.SHUFFLE:
        if pos + 16 > len(data):
            raise IndexError("unexpected end")
        raw = data[pos : pos + 16]
        arg = int.from_bytes(raw, "little") if imm is Imm.V128 else tuple(raw)
        pos += 16
    return code, arg, pos


def check_immediate(code: int, arg: object, has_memory: bool) -> str | None:
    """Why the immediate of SIMD instruction ``code`` is invalid (the spec tests' wording),
    or None: a memory must exist, alignment is at most natural, lane indices are in range."""
    imm = op.IMMEDIATES[code]
    lane: int | None = None
    if imm is Imm.MEMARG or imm is Imm.MEMARG_LANE:
        assert isinstance(arg, tuple)
        if not has_memory:
            return "unknown memory 0"
        if arg[0] > op.NATURAL_ALIGNMENT[code]:
            return "alignment must not be larger than natural"
        if imm is Imm.MEMARG_LANE:
            lane = arg[2]
    elif imm is Imm.LANE:
        assert isinstance(arg, int)
        lane = arg
    elif imm is Imm.SHUFFLE:
        assert isinstance(arg, tuple)
        if any(index >= 32 for index in arg):
            return "invalid lane index"
    if lane is not None and lane >= LANES[code]:
        return "invalid lane index"
    return None
