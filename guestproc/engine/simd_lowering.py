"""How the compiler turns each SIMD instruction into Python (``compiler.DISPATCH`` hook).

A ``v128`` is one unsigned Python int (see ``simd``), so a vector operand is an ordinary
compile-time ``Operand``: constants are int literals, locals and globals hold ints, and the
bitwise instructions, splats, lane moves, lane memory accesses, integer lane add and sub,
``i32x4.mul`` and most constant shuffles (``shuffle_expression``) are inline expressions
with their masks and shifts folded in at compile time. Other lane-wise arithmetic calls the
``V_*`` helpers of ``simd``. Every SIMD instruction is pure except memory accesses, which
are evaluated where they occur (they can trap), as scalar loads and stores are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import opcodes as op
from .module import Instr, Module
from .simd import M64, M128, repeat
from .simd_opcodes import SIGNATURES, SIMD_CODES

if TYPE_CHECKING:
    from .compiler import FunctionCompiler

Imm = op.Imm
_EMPTY: frozenset[int] = frozenset()

_LANE_BITS = {"i8x16": 8, "i16x8": 16, "i32x4": 32, "i64x2": 64, "f32x4": 32, "f64x2": 64}
_REP = {bits: repeat(1, bits) for bits in (8, 16, 32, 64)}


def _helper_name(code: int) -> str:
    return "V_" + op.NAMES[code].upper().replace(".", "_")


# Pure instructions: a template over the operand expressions {0}, {1}, {2}.
PURE: dict[int, str] = {}
for _code in SIMD_CODES:
    if op.IMMEDIATES[_code] is Imm.NONE and op.NAMES[_code] != "v128.any_true":
        _arity = len(SIGNATURES[_code][0])
        PURE[_code] = f"{_helper_name(_code)}({', '.join(f'{{{i}}}' for i in range(_arity))})"


def _set(name: str, template: str) -> None:
    PURE[op.BY_NAME[name]] = template


_set("v128.not", f"{{0}} ^ {M128:#x}")
_set("v128.and", "{0} & {1}")
_set("v128.andnot", "{0} & ~{1}")  # ~b is negative: the & keeps a's (non-negative) range
_set("v128.or", "{0} | {1}")
_set("v128.xor", "{0} ^ {1}")
_set("v128.bitselect", "({0} & {2}) | ({1} & ~{2})")
_set("i8x16.splat", f"({{0}} & 0xFF) * {_REP[8]:#x}")
_set("i16x8.splat", f"({{0}} & 0xFFFF) * {_REP[16]:#x}")
_set("i32x4.splat", f"{{0}} * {_REP[32]:#x}")
_set("i64x2.splat", f"{{0}} * {_REP[64]:#x}")
_set("f32x4.splat", f"F32_BITS({{0}}) * {_REP[32]:#x}")
_set("f64x2.splat", f"F64_BITS({{0}}) * {_REP[64]:#x}")
# Lane-wise wrapping add and subtract on the whole int (as ``simd._swar_add``), inline:
# the call was a fifth of their cost (i32x4.add 290 ns inline, 370 ns by the helper).
for _shape in ("i8x16", "i16x8", "i32x4", "i64x2"):
    _high = repeat(1 << (_LANE_BITS[_shape] - 1), _LANE_BITS[_shape])
    _low = M128 ^ _high
    _set(
        f"{_shape}.add",
        f"(({{0}} & {_low:#x}) + ({{1}} & {_low:#x})) ^ (({{0}} ^ {{1}}) & {_high:#x})",
    )
    _set(
        f"{_shape}.sub",
        f"(({{0}} | {_high:#x}) - ({{1}} & {_low:#x})) ^ (({{0}} ^ ~{{1}}) & {_high:#x})",
    )


def _lane32(operand: str, shift: int) -> str:
    if shift == 96:
        return f"({operand} >> 96)"  # the top lane needs no mask
    return f"({operand} >> {shift} & 0xFFFFFFFF)" if shift else f"({operand} & 0xFFFFFFFF)"


_set(
    "i32x4.mul",  # four lanes cut out with shifts (as ``simd._mul``), inline
    " | ".join(
        f"({_lane32('{0}', shift)} * {_lane32('{1}', shift)} & 0xFFFFFFFF)"
        + (f" << {shift}" if shift else "")
        for shift in (0, 32, 64, 96)
    ),
)
for _shape, _bits in (("f32x4", 32), ("f64x2", 64)):
    _sign = repeat(1 << (_bits - 1), _bits)
    _set(f"{_shape}.abs", f"{{0}} & {M128 ^ _sign:#x}")
    _set(f"{_shape}.neg", f"{{0}} ^ {_sign:#x}")

# Memory: templates over the address {a} (and the vector {v}, lane shift {sh}, {clear}: the
# vector without that lane).
LOADS: dict[int, str] = {op.BY_NAME["v128.load"]: "V_LOAD(M, {a})"}
for _name in ("8x8_s", "8x8_u", "16x4_s", "16x4_u", "32x2_s", "32x2_u"):
    LOADS[op.BY_NAME[f"v128.load{_name}"]] = f"V_LOAD{_name.upper()}(M, {{a}})"
_SCALAR_LOADS = {8: "M[{a}]", 16: "LD_U16(M, {a})[0]", 32: "LD_U32(M, {a})[0]"}
_SCALAR_LOADS[64] = "LD_U64(M, {a})[0]"
for _bits, _load in _SCALAR_LOADS.items():
    LOADS[op.BY_NAME[f"v128.load{_bits}_splat"]] = f"{_load} * {_REP[_bits]:#x}"
LOADS[op.BY_NAME["v128.load32_zero"]] = _SCALAR_LOADS[32]
LOADS[op.BY_NAME["v128.load64_zero"]] = _SCALAR_LOADS[64]
STORES: dict[int, str] = {op.BY_NAME["v128.store"]: "V_STORE(M, {a}, {v})"}
_SCALAR_STORES = {
    8: "M[{a}] = ({v} >> {sh}) & 0xFF",
    16: "ST_U16(M, {a}, ({v} >> {sh}) & 0xFFFF)",
    32: "ST_U32(M, {a}, ({v} >> {sh}) & 0xFFFFFFFF)",
    64: f"ST_U64(M, {{a}}, ({{v}} >> {{sh}}) & {M64:#x})",
}
LANE_LOADS: dict[int, tuple[int, str]] = {}  # opcode -> (lane bits, template)
LANE_STORES: dict[int, tuple[int, str]] = {}
for _bits, _load in _SCALAR_LOADS.items():
    LANE_LOADS[op.BY_NAME[f"v128.load{_bits}_lane"]] = (
        _bits,
        "({v} & {clear}) | (" + _load + " << {sh})",
    )
    LANE_STORES[op.BY_NAME[f"v128.store{_bits}_lane"]] = (_bits, _SCALAR_STORES[_bits])

# Lane moves: templates over {0} (the vector), {1} (the scalar), {sh} and {clear}.
LANE_OPS: dict[int, tuple[int, str]] = {}
for _shape, _bits in _LANE_BITS.items():
    _mask = (1 << _bits) - 1
    if _shape in ("i8x16", "i16x8"):
        _top = 1 << (_bits - 1)
        LANE_OPS[op.BY_NAME[f"{_shape}.extract_lane_u"]] = (
            _bits,
            f"({{0}} >> {{sh}}) & {_mask:#x}",
        )
        LANE_OPS[op.BY_NAME[f"{_shape}.extract_lane_s"]] = (
            _bits,
            f"(((({{0}} >> {{sh}}) & {_mask:#x}) ^ {_top:#x}) - {_top:#x}) & 0xFFFFFFFF",
        )
        _scalar = f"({{1}} & {_mask:#x})"
    elif _shape[0] == "i":
        LANE_OPS[op.BY_NAME[f"{_shape}.extract_lane"]] = (_bits, f"({{0}} >> {{sh}}) & {_mask:#x}")
        _scalar = "{1}"
    else:
        _kind = _shape[:3].upper()
        LANE_OPS[op.BY_NAME[f"{_shape}.extract_lane"]] = (
            _bits,
            f"{_kind}_FROM_BITS(({{0}} >> {{sh}}) & {_mask:#x})",
        )
        _scalar = f"{_kind}_BITS({{1}})"
    LANE_OPS[op.BY_NAME[f"{_shape}.replace_lane"]] = (
        _bits,
        f"({{0}} & {{clear}}) | ({_scalar} << {{sh}})",
    )

V128_CONST = op.BY_NAME["v128.const"]
ANY_TRUE = op.BY_NAME["v128.any_true"]
SHUFFLE = op.BY_NAME["i8x16.shuffle"]


MAX_SHUFFLE_TERMS = 6
"""A constant shuffle that moves its bytes in at most this many (operand, distance) groups
becomes that many masks and shifts inline; others call ``V_I8X16_SHUFFLE``. Measured: a
shuffle that widens four bytes to i32 lanes (5 groups) 310 ns inline, 1,770 ns by the
helper; a one-byte shift across both operands (2 groups) 150 ns."""


def shuffle_groups(lanes: Sequence[int]) -> dict[tuple[int, int], int]:
    """``i8x16.shuffle``'s lanes as groups: (operand, how many bytes up the bytes move) to
    the mask of the source bytes that move so (in the operand, before the move)."""
    groups: dict[tuple[int, int], int] = {}
    for target, source in enumerate(lanes):
        key = (source >> 4, target - (source & 15))
        groups[key] = groups.get(key, 0) | 0xFF << 8 * (source & 15)
    return groups


def shuffle_expression(operands: Sequence[str], lanes: Sequence[int]) -> str | None:
    """The shuffle of ``operands`` (atomic expressions; ``"0"`` a zero vector) as masks and
    shifts, or None when it has more than ``MAX_SHUFFLE_TERMS`` groups."""
    groups = shuffle_groups(lanes)
    if len(groups) > MAX_SHUFFLE_TERMS:
        return None
    terms = []
    for (which, up), mask in groups.items():
        vector = operands[which]
        if vector == "0":
            continue
        if up == 0:
            terms.append(vector if mask == M128 else f"{vector} & {mask:#x}")
        elif up > 0:
            terms.append(f"({vector} & {mask:#x}) << {8 * up}")
        elif mask >> (-8 * up) == M128 >> (-8 * up):
            terms.append(f"{vector} >> {-8 * up}")  # the top bytes: nothing to mask
        else:
            terms.append(f"({vector} >> {-8 * up}) & {mask >> (-8 * up):#x}")
    if not terms:
        return "0"
    return " | ".join(f"({term})" if len(terms) > 1 and " " in term else term for term in terms)


def _lane(bits: int, lane: int) -> dict[str, str]:
    shift = bits * lane
    return {"sh": str(shift), "clear": f"{M128 ^ (((1 << bits) - 1) << shift):#x}"}


def lower(compiler: FunctionCompiler, instr: Instr, targeted: bool, module: Module) -> None:
    """Translate one SIMD instruction (the compiler's handler for every SIMD opcode)."""
    code, arg = instr.op, instr.arg
    stack = compiler.stack
    template = PURE.get(code)
    if template is not None:
        operands = compiler._pop(len(SIGNATURES[code][0]))
        for index, operand in enumerate(operands):
            if template.count(f"{{{index}}}") > 1 and not operand.atomic:
                operands[index] = compiler._evaluate(operand)
        deps = _EMPTY.union(*(o.deps for o in operands))
        compiler._push_value(template.format(*(o.wrapped() for o in operands)), deps)
    elif code == V128_CONST:
        compiler._push_value(str(arg), _EMPTY)
    elif code == ANY_TRUE:
        vector = stack.pop()
        compiler._push_cond(f"{vector.wrapped()} != 0", vector.deps)
    elif code == SHUFFLE:
        operands = compiler._pop(2)
        inline = None
        if len(shuffle_groups(arg)) <= MAX_SHUFFLE_TERMS:
            operands = [compiler._evaluate(o) if not o.atomic else o for o in operands]
            inline = shuffle_expression([o.expr for o in operands], arg)
        first, second = operands
        expr = inline or f"V_I8X16_SHUFFLE({first.expr}, {second.expr}, {arg!r})"
        compiler._push_value(expr, first.deps | second.deps)
    elif code in LANE_OPS:
        bits, lane_template = LANE_OPS[code]
        operands = compiler._pop(len(SIGNATURES[code][0]))
        expr = lane_template.format(*(o.wrapped() for o in operands), **_lane(bits, arg))
        compiler._push_value(expr, _EMPTY.union(*(o.deps for o in operands)))
    elif code in LOADS:
        address = compiler._address(stack.pop(), arg)
        compiler._push_value(LOADS[code].format(a=address), _EMPTY, may_trap=True)
    elif code in LANE_LOADS:
        bits, lane_template = LANE_LOADS[code]
        vector = stack.pop()
        address = compiler._address(stack.pop(), arg)
        expr = lane_template.format(a=address, v=vector.wrapped(), **_lane(bits, arg[2]))
        compiler._push_value(expr, _EMPTY, may_trap=True)
    elif code in STORES:
        vector = stack.pop()
        address = compiler._address(stack.pop(), arg)
        compiler._line(STORES[code].format(a=address, v=vector.wrapped()))
    else:
        bits, lane_template = LANE_STORES[code]
        vector = stack.pop()
        address = compiler._address(stack.pop(), arg)
        compiler._line(lane_template.format(a=address, v=vector.wrapped(), **_lane(bits, arg[2])))
