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

import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import opcodes as op
from . import wrapping
from .module import Instr, Module
from .simd import M64, M128, repeat
from .simd_opcodes import SIGNATURES, SIMD_CODES

if TYPE_CHECKING:
    from .compiler import FunctionCompiler, Operand

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
    if compiler.lane_mode and code in LANE_HANDLERS:
        LANE_HANDLERS[code](compiler, arg)
        return
    stack = compiler.stack
    template = PURE.get(code)
    if template is not None:
        operands = compiler._pop(len(SIGNATURES[code][0]))
        for index, operand in enumerate(operands):
            if template.count(f"{{{index}}}") > 1:
                operands[index] = compiler._atomic(operand)
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
            operands = [compiler._atomic(o) for o in operands]
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


# --- i32x4 lanes: a vector as four Python ints ------------------------------------------------
#
# In a function whose vector arithmetic is all i32x4 (``lane_mode``), an operand may also
# carry its four 32-bit lanes as separate expressions (``Operand.lanes``), and the function's
# v128 locals are each four int locals ``lN_0`` .. ``lN_3`` (``split_local``). Lane-wise
# instructions then work on the lanes -- an add is four small-int adds, a mul four multiplies
# -- and no vector is packed into one int or cut out of it again between them; the packed
# form (``packed``) is made only for what needs the whole v128 (stores, calls, other SIMD
# instructions). Measured on CPython 3.11 (ns, one operation): i32x4.add on the whole int 350,
# as four lanes 160; i32x4.mul 920 and 380; packing four lanes 210, cutting them out 195.
# Every lane is canonical: 0 <= lane < 2**32.

M32 = 0xFFFFFFFF
LANE_ARITHMETIC = frozenset(op.BY_NAME[f"i32x4.{name}"] for name in ("add", "sub", "mul"))
_LANE_BINARY = {
    op.BY_NAME[name]: name.split(".")[1]
    for name in ("i32x4.add", "i32x4.sub", "i32x4.mul", "v128.and", "v128.or", "v128.xor")
} | {op.BY_NAME["v128.andnot"]: "andnot"}
_LANE_FRIENDLY = (
    frozenset(
        op.BY_NAME[name]
        for name in (
            "v128.const",
            "v128.not",
            "i32x4.splat",
            "v128.load32_splat",
            "i32x4.extract_lane",
            "i32x4.replace_lane",
            "i8x16.shuffle",
            "v128.any_true",
            "v128.load",
            "v128.store",
            "v128.load32_zero",
            "v128.load64_zero",
        )
    )
    | _LANE_BINARY.keys()
)
_SIMD = frozenset(SIMD_CODES)


def lane_mode(body: Sequence[Instr]) -> bool:
    """Whether a function body gets i32x4 lanes: it does i32x4 arithmetic, and every SIMD
    instruction in it works on i32 lanes, bits, or memory (other shapes would have to pack
    and cut the lanes at every step)."""
    arithmetic = False
    for instr in body:
        code = instr.op
        if code in _SIMD:
            if code in LANE_ARITHMETIC:
                arithmetic = True
            elif code not in _LANE_FRIENDLY:
                return False
    return arithmetic


def packed(lanes: Sequence[str]) -> str:
    """The v128 of four lane expressions, as one int expression."""
    terms = []
    for k, lane in enumerate(lanes):
        if lane == "0":
            continue
        term = lane if _is_atom(lane) else f"({lane})"
        terms.append(f"{term} << {32 * k}" if k else term)
    return " | ".join(terms) if terms else "0"


def unpacked(vector: str) -> tuple[str, ...]:
    """The lanes of an atomic v128 expression (a name, or a literal)."""
    if vector.isdigit():
        value = int(vector)
        return tuple(str(value >> (32 * k) & M32) for k in range(4))
    return (
        f"{vector} & 0xFFFFFFFF",
        f"{vector} >> 32 & 0xFFFFFFFF",
        f"{vector} >> 64 & 0xFFFFFFFF",
        f"{vector} >> 96",
    )


def _is_atom(expr: str) -> bool:
    return expr.isidentifier() or expr.isdigit()


def _paren(expr: str) -> str:
    return expr if _is_atom(expr) else f"({expr})"


def _constant(expr: str) -> int | None:
    return int(expr) if expr.isdigit() else None


def lane_binary(name: str, a: str, b: str) -> str:
    """One lane of a lane-wise binary instruction (``add``, ``sub``, ``mul``, ``and``, ``or``,
    ``xor``, ``andnot``) of canonical lanes ``a`` and ``b``, folded where either is constant."""
    ca, cb = _constant(a), _constant(b)
    if ca is not None and cb is not None:
        return str(_FOLD[name](ca, cb) & M32)
    if name in ("add", "or", "xor") and ca is not None:  # commutative: constant second
        a, b, ca, cb = b, a, cb, ca
    pa, pb = _paren(a), _paren(b)
    if name == "add":
        return a if cb == 0 else wrapping.add(pa, pb, cb, 32)
    if name == "sub":
        return a if cb == 0 else wrapping.subtract(pa, pb, 32)
    if name == "mul":
        if ca == 0 or cb == 0:
            return "0"
        if ca == 1 or cb == 1:
            return b if ca == 1 else a
        return f"{pa} * {pb} & 0xFFFFFFFF"
    if name == "and":
        if ca == 0 or cb == 0:
            return "0"
        if ca == M32 or cb == M32:
            return b if ca == M32 else a
        return f"{pa} & {pb}"
    if name == "andnot":
        if cb is not None:
            return a if cb == 0 else lane_binary("and", a, str(cb ^ M32))
        return "0" if ca == 0 else f"{pa} & ({pb} ^ 0xFFFFFFFF)"
    if cb == 0:  # or, xor
        return a
    return f"{pa} {'|' if name == 'or' else '^'} {pb}"


_FOLD: dict[str, Callable[[int, int], int]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
    "andnot": lambda a, b: a & ~b,
}


def shuffle_lanes(sources: Sequence[Sequence[str] | str], indices: Sequence[int]) -> list[str]:
    """The i32 lanes of ``i8x16.shuffle`` over two operands, each given as its four atomic
    lanes or as one atomic packed expression: each lane is built from byte runs of the
    sources, each run one shift and one mask."""
    lanes = []
    for target in range(4):
        terms = []
        j = 0
        while j < 4:
            source = indices[4 * target + j]
            operand, byte = source >> 4, source & 15
            run = 1  # bytes that follow on in the same source (and, in lanes, the same lane)
            limit = 4 - byte % 4 if not isinstance(sources[operand], str) else 16 - byte
            while j + run < 4 and run < limit and indices[4 * target + j + run] == source + run:
                run += 1
            term = _bytes_of(sources[operand], byte, run)
            if term != "0":
                terms.append(term if j == 0 else f"({term}) << {8 * j}")
            j += run
        lanes.append(" | ".join(terms) if terms else "0")
    return lanes


def _bytes_of(source: Sequence[str] | str, byte: int, count: int) -> str:
    """Bytes ``byte`` .. ``byte + count - 1`` of a shuffle source, moved down to bit 0."""
    if isinstance(source, str):
        value, offset, width = source, byte, 16
    else:
        value, offset, width = source[byte // 4], byte % 4, 4
    constant = _constant(value)
    mask = (1 << (8 * count)) - 1
    if constant is not None:
        return str(constant >> (8 * offset) & mask)
    shifted = f"{value} >> {8 * offset}" if offset else value
    if offset + count == width:  # the top bytes: nothing above them to mask off
        return shifted
    return f"{shifted} & {mask:#x}"


def _lanes(compiler: FunctionCompiler, operand: Operand) -> tuple[str, ...]:
    """An operand's lanes: its own, or cut out of its packed value."""
    if operand.lanes is not None:
        return operand.lanes
    return unpacked(compiler._atomic(operand).expr)


def _atomic_lanes(compiler: FunctionCompiler, operand: Operand) -> tuple[str, ...]:
    """An operand's lanes as names or numbers (for a shuffle, which may read one twice)."""
    lanes = _lanes(compiler, operand)
    if all(_is_atom(lane) for lane in lanes):
        return lanes
    return compiler._evaluate_lanes(lanes)


def push_lanes(
    compiler: FunctionCompiler,
    lanes: Sequence[str],
    deps: frozenset[int],
    raw: Sequence[str] | None = None,
) -> None:
    """Push a lane-form operand (its lanes evaluated into temporaries when they grow long)."""
    from .compiler import MAX_LAZY_EXPR, Operand

    # A lane is read once wherever the vector goes (shuffles make theirs atomic first).
    if max(map(len, lanes)) > MAX_LAZY_EXPR // 2 and not compiler._next_sets_local():
        lanes, deps, raw = compiler._evaluate_lanes(lanes), _EMPTY, None
    raw_lanes = tuple(raw) if raw is not None else None
    compiler.stack.append(Operand(packed(lanes), deps, lanes=tuple(lanes), raw_lanes=raw_lanes))


_RING = {"add": "+", "sub": "-", "mul": "*"}
"""The lane operations that commute with wrapping: a chain of them wraps once, at its end
(as ``operators.RING`` for scalars): ``(a * b + c) & 0xFFFFFFFF`` rather than a wrap after
each step."""


def _binary(compiler: FunctionCompiler, code: int) -> None:
    a, b = compiler._pop(2)
    name = _LANE_BINARY[code]
    first, second = _lanes(compiler, a), _lanes(compiler, b)
    if name == "and" and a.raw_lanes is not None and all(y.isdigit() for y in second):
        # A constant mask takes the same bits of the raw lane as of the wrapped one (but an
        # all-ones mask folds away, and must keep the wrapped one).
        first = tuple(
            raw if mask != str(M32) else lane
            for raw, lane, mask in zip(a.raw_lanes, first, second, strict=True)
        )
    lanes = [lane_binary(name, x, y) for x, y in zip(first, second, strict=True)]
    sym = _RING.get(name)
    raw = None
    if sym is not None and (a.raw_lanes is not None or b.raw_lanes is not None):
        # A raw input: this lane is the raw chain so far, masked once.
        raw = [
            f"{_paren(x)} {sym} {_paren(y)}"
            for x, y in zip(a.raw_lanes or first, b.raw_lanes or second, strict=True)
        ]
        lanes = [f"({lane}) & 0xFFFFFFFF" for lane in raw]
    elif sym is not None:
        raw = [
            f"{_paren(x)} {sym} {_paren(y)}" if lane != x and lane != y else lane
            for lane, x, y in zip(lanes, first, second, strict=True)
        ]
    push_lanes(compiler, lanes, a.deps | b.deps, raw)


def _const(compiler: FunctionCompiler, arg: int) -> None:
    push_lanes(compiler, unpacked(str(arg)), _EMPTY)


def _not(compiler: FunctionCompiler, arg: object) -> None:
    vector = compiler.stack.pop()
    lanes = [lane_binary("xor", lane, str(M32)) for lane in _lanes(compiler, vector)]
    push_lanes(compiler, lanes, vector.deps)


def _splat(compiler: FunctionCompiler, arg: object) -> None:
    scalar = compiler._atomic(compiler.stack.pop())
    push_lanes(compiler, (scalar.expr,) * 4, scalar.deps)


def _load_splat(compiler: FunctionCompiler, arg: tuple[int, int]) -> None:
    address = compiler._address(compiler.stack.pop(), arg)
    compiler._push_value(_SCALAR_LOADS[32].format(a=address), _EMPTY, may_trap=True)
    _splat(compiler, None)


def _extract(compiler: FunctionCompiler, lane: int) -> None:
    vector = compiler.stack.pop()
    compiler._push_value(_lanes(compiler, vector)[lane], vector.deps)


def _replace(compiler: FunctionCompiler, lane: int) -> None:
    vector, scalar = compiler._pop(2)
    lanes = list(_lanes(compiler, vector))
    lanes[lane] = scalar.expr
    push_lanes(compiler, lanes, vector.deps | scalar.deps)


def _shuffle(compiler: FunctionCompiler, indices: tuple[int, ...]) -> None:
    a, b = compiler._pop(2)
    sources: list[Sequence[str] | str] = []
    for operand in (a, b):
        if operand.lanes is not None:
            sources.append(_atomic_lanes(compiler, operand))
        else:
            sources.append(compiler._atomic(operand).expr)
    deps = _EMPTY.union(*(lane_deps for lane_deps in (a.deps, b.deps)))
    push_lanes(compiler, shuffle_lanes(sources, indices), deps)


def _binary_handler(code: int) -> Callable[[FunctionCompiler, Any], None]:
    return lambda compiler, arg: _binary(compiler, code)


LANE_HANDLERS: dict[int, Callable[[FunctionCompiler, Any], None]] = {
    **{code: _binary_handler(code) for code in _LANE_BINARY},
    V128_CONST: _const,
    op.BY_NAME["v128.not"]: _not,
    op.BY_NAME["i32x4.splat"]: _splat,
    op.BY_NAME["v128.load32_splat"]: _load_splat,
    op.BY_NAME["i32x4.extract_lane"]: _extract,
    op.BY_NAME["i32x4.replace_lane"]: _replace,
    SHUFFLE: _shuffle,
}
"""The instructions that work on lanes in ``lane_mode`` (the others pack their operands)."""
