"""Python expression templates for the numeric instructions.

Each template takes the operand expressions (already parenthesised where needed) and gives
one Python expression in the canonical value form. Names in capitals are helpers bound in
every instance's namespace (see ``instance.HELPERS``). Comparisons give a Python ``bool``
expression (``COND``); the compiler turns it into 0/1 only when the value is stored.

``MAY_TRAP`` marks instructions whose evaluation can raise: the compiler evaluates them at
their position in the instruction stream so traps keep Wasm's order.
"""

from __future__ import annotations

from . import opcodes as op
from .wrapping import SCRATCH

M32 = "0xFFFFFFFF"
M64 = "0xFFFFFFFFFFFFFFFF"

# Comparisons: (template producing a bool)
COND: dict[int, str] = {}
# Other unary/binary operators: template producing a value
VALUE: dict[int, str] = {}
MAY_TRAP: set[int] = set()
RING: dict[int, tuple[int, str]] = {}
"""Integer operations that commute with wrap-around (add, sub, mul, shl): opcode -> (bits,
the template without its mask). An operand that is itself such an operation of the same
width may enter it unmasked, since only the low bits reach the result."""


def _int_ops(prefix: str, bits: int) -> None:
    mask = M32 if bits == 32 else M64
    sign = "0x80000000" if bits == 32 else "0x8000000000000000"
    width = str(bits - 1)
    up = prefix.upper()

    def code(name: str) -> int:
        return op.BY_NAME[f"{prefix}.{name}"]

    COND[code("eqz")] = "{0} == 0"
    for name, sym in (
        ("eq", "=="),
        ("ne", "!="),
        ("lt_u", "<"),
        ("gt_u", ">"),
        ("le_u", "<="),
        ("ge_u", ">="),
    ):
        COND[code(name)] = "{0} " + sym + " {1}"
    for name, sym in (("lt_s", "<"), ("gt_s", ">"), ("le_s", "<="), ("ge_s", ">=")):
        COND[code(name)] = "{S0} " + sym + " {S1}"  # S: operands with the sign bit flipped
    VALUE[code("clz")] = f"{bits} - ({{0}}).bit_length()"
    VALUE[code("ctz")] = f"{up}_CTZ({{0}})"
    VALUE[code("popcnt")] = "({0}).bit_count()"
    VALUE[code("add")] = f"({{0}} + {{1}}) & {mask}"
    VALUE[code("sub")] = f"({{0}} - {{1}}) & {mask}"
    VALUE[code("mul")] = f"({{0}} * {{1}}) & {mask}"
    VALUE[code("div_s")] = f"{up}_DIV_S({{0}}, {{1}})"
    VALUE[code("div_u")] = "{0} // {1}"
    VALUE[code("rem_s")] = f"{up}_REM_S({{0}}, {{1}})"
    VALUE[code("rem_u")] = "{0} % {1}"
    MAY_TRAP.update(code(n) for n in ("div_s", "div_u", "rem_s", "rem_u"))
    VALUE[code("and")] = "{0} & {1}"
    VALUE[code("or")] = "{0} | {1}"
    VALUE[code("xor")] = "{0} ^ {1}"
    VALUE[code("shl")] = f"({{0}} << ({{1}} & {width})) & {mask}"
    RING[code("add")] = (bits, "{0} + {1}")
    RING[code("sub")] = (bits, "{0} - {1}")
    RING[code("mul")] = (bits, "{0} * {1}")
    RING[code("shl")] = (bits, f"{{0}} << ({{1}} & {width})")
    VALUE[code("shr_s")] = f"((({{0}} ^ {sign}) - {sign}) >> ({{1}} & {width})) & {mask}"
    VALUE[code("shr_u")] = f"{{0}} >> ({{1}} & {width})"
    VALUE[code("rotl")] = f"{up}_ROTL({{0}}, {{1}})"
    VALUE[code("rotr")] = f"{up}_ROTR({{0}}, {{1}})"


def _float_ops(prefix: str) -> None:
    single = prefix == "f32"

    def code(name: str) -> int:
        return op.BY_NAME[f"{prefix}.{name}"]

    def rounded(expr: str) -> str:
        return f"F32R({expr})" if single else expr

    for name, sym in (
        ("eq", "=="),
        ("ne", "!="),
        ("lt", "<"),
        ("gt", ">"),
        ("le", "<="),
        ("ge", ">="),
    ):
        COND[code(name)] = "{0} " + sym + " {1}"
    VALUE[code("abs")] = "abs({0})"
    VALUE[code("neg")] = "-{0}"
    VALUE[code("ceil")] = "FCEIL({0})"
    VALUE[code("floor")] = "FFLOOR({0})"
    VALUE[code("trunc")] = "FTRUNC({0})"
    VALUE[code("nearest")] = "FNEAREST({0})"
    VALUE[code("sqrt")] = rounded("FSQRT({0})")
    VALUE[code("add")] = rounded("{0} + {1}")
    VALUE[code("sub")] = rounded("{0} - {1}")
    VALUE[code("mul")] = rounded("{0} * {1}")
    # Python raises on division by zero; IEEE gives inf or NaN.
    VALUE[code("div")] = rounded("({0} / {1} if {1} else FDIV0({0}, {1}))")
    VALUE[code("min")] = "FMIN({0}, {1})"
    VALUE[code("max")] = "FMAX({0}, {1})"
    VALUE[code("copysign")] = "COPYSIGN({0}, {1})"


_int_ops("i32", 32)
_int_ops("i64", 64)
_float_ops("f32")
_float_ops("f64")

# The signed value of an i32/i64 ({0} read twice: the compiler passes a name or a number).
# A comparison, not a sign flip: see ``wrapping`` for why.
_S32 = "({0} if {0} < 0x80000000 else {0} - 0x100000000)"
_S64 = "({0} if {0} < 0x8000000000000000 else {0} - 0x10000000000000000)"

_CONVERSIONS = {
    "i32.wrap_i64": f"{{0}} & {M32}",
    "i32.trunc_f32_s": "TRUNC_I32_S({0})",
    "i32.trunc_f32_u": "TRUNC_I32_U({0})",
    "i32.trunc_f64_s": "TRUNC_I32_S({0})",
    "i32.trunc_f64_u": "TRUNC_I32_U({0})",
    "i64.extend_i32_s": "{0} if {0} < 0x80000000 else {0} + 0xFFFFFFFF00000000",
    "i64.extend_i32_u": "{0}",
    "i64.trunc_f32_s": "TRUNC_I64_S({0})",
    "i64.trunc_f32_u": "TRUNC_I64_U({0})",
    "i64.trunc_f64_s": "TRUNC_I64_S({0})",
    "i64.trunc_f64_u": "TRUNC_I64_U({0})",
    "f32.convert_i32_s": f"F32R(float({_S32}))",
    "f32.convert_i32_u": "F32R(float({0}))",
    "f32.convert_i64_s": f"INT_TO_F32({_S64})",
    "f32.convert_i64_u": "INT_TO_F32({0})",
    "f32.demote_f64": "F32_DEMOTE({0})",
    "f64.convert_i32_s": f"float({_S32})",
    "f64.convert_i32_u": "float({0})",
    "f64.convert_i64_s": f"float({_S64})",
    "f64.convert_i64_u": "float({0})",
    "f64.promote_f32": "F32_PROMOTE({0})",
    "i32.reinterpret_f32": "F32_BITS({0})",
    "i64.reinterpret_f64": "F64_BITS({0})",
    "f32.reinterpret_i32": "F32_FROM_BITS({0})",
    "f64.reinterpret_i64": "F64_FROM_BITS({0})",
    "i32.extend8_s": f"((({{0}} & 0xFF) ^ 0x80) - 0x80) & {M32}",
    "i32.extend16_s": f"((({{0}} & 0xFFFF) ^ 0x8000) - 0x8000) & {M32}",
    "i64.extend8_s": f"((({{0}} & 0xFF) ^ 0x80) - 0x80) & {M64}",
    "i64.extend16_s": f"((({{0}} & 0xFFFF) ^ 0x8000) - 0x8000) & {M64}",
    "i64.extend32_s": f"((({{0}} & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000) & {M64}",
    "i32.trunc_sat_f32_s": "TRUNC_SAT_I32_S({0})",
    "i32.trunc_sat_f32_u": "TRUNC_SAT_I32_U({0})",
    "i32.trunc_sat_f64_s": "TRUNC_SAT_I32_S({0})",
    "i32.trunc_sat_f64_u": "TRUNC_SAT_I32_U({0})",
    "i64.trunc_sat_f32_s": "TRUNC_SAT_I64_S({0})",
    "i64.trunc_sat_f32_u": "TRUNC_SAT_I64_U({0})",
    "i64.trunc_sat_f64_s": "TRUNC_SAT_I64_S({0})",
    "i64.trunc_sat_f64_u": "TRUNC_SAT_I64_U({0})",
}
for _name, _template in _CONVERSIONS.items():
    VALUE[op.BY_NAME[_name]] = _template
    if ".trunc_f" in _name:
        MAY_TRAP.add(op.BY_NAME[_name])


def _sign_extended(load: str, width: int, bits: int) -> str:
    """A load of ``width`` bits, sign-extended to ``bits``: the unsigned value, plus the high
    bits only when its sign bit is set (a mask of a negative value would take CPython's slow
    path; see ``wrapping``)."""
    high = (1 << bits) - (1 << width)
    w = SCRATCH
    return f"{w} if ({w} := {load}) < {1 << (width - 1)} else {w} + {high}"


# Loads: (struct helper, post-processing) -- helpers are ``struct.Struct(...).unpack_from``.
LOADS: dict[int, str] = {
    op.I32_LOAD: "LD_U32(M, {a})[0]",
    op.I64_LOAD: "LD_U64(M, {a})[0]",
    op.F32_LOAD: "LD_F32(M, {a})",
    op.F64_LOAD: "LD_F64(M, {a})[0]",
    op.I32_LOAD8_S: _sign_extended("M[{a}]", 8, 32),
    op.I32_LOAD8_U: "M[{a}]",
    op.I32_LOAD16_S: _sign_extended("LD_U16(M, {a})[0]", 16, 32),
    op.I32_LOAD16_U: "LD_U16(M, {a})[0]",
    op.I64_LOAD8_S: _sign_extended("M[{a}]", 8, 64),
    op.I64_LOAD8_U: "M[{a}]",
    op.I64_LOAD16_S: _sign_extended("LD_U16(M, {a})[0]", 16, 64),
    op.I64_LOAD16_U: "LD_U16(M, {a})[0]",
    op.I64_LOAD32_S: _sign_extended("LD_U32(M, {a})[0]", 32, 64),
    op.I64_LOAD32_U: "LD_U32(M, {a})[0]",
}

# Stores: statements. ``v`` is the value expression, already of the right width where noted.
STORES: dict[int, str] = {
    op.I32_STORE: "ST_U32(M, {a}, {v})",
    op.I64_STORE: "ST_U64(M, {a}, {v})",
    op.F32_STORE: "ST_F32(M, {a}, {v})",
    op.F64_STORE: "ST_F64(M, {a}, {v})",
    op.I32_STORE8: "M[{a}] = {v} & 0xFF",
    op.I32_STORE16: "ST_U16(M, {a}, {v} & 0xFFFF)",
    op.I64_STORE8: "M[{a}] = {v} & 0xFF",
    op.I64_STORE16: "ST_U16(M, {a}, {v} & 0xFFFF)",
    op.I64_STORE32: "ST_U32(M, {a}, {v} & 0xFFFFFFFF)",
}
