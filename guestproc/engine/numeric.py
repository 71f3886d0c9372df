"""Bit-exact numeric semantics that do not fit in an inline Python expression.

Representation (see ``runtime``): i32/i64 are unsigned ints; f64 is a Python float (its bits
are the Wasm bits exactly); f32 is a Python float holding a value exactly representable in
single precision. An f32 NaN is kept as the double NaN with the same sign and its 23-bit
payload in the top payload bits, so the quiet bit stays the quiet bit and ``neg``, ``abs``,
``copysign``, loads, stores and reinterpretation keep every bit, signalling NaNs included
(CPython's ``struct`` 'f' format would quiet them, so f32 NaNs never go through it).

Arithmetic rounds once: an f32 sum, difference, product, quotient or square root computed in
double precision and then rounded to single is correctly rounded (53 >= 2*24 + 2).
"""

from __future__ import annotations

import math
import struct
from array import array

from .errors import Trap, TrapCode

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
INF = math.inf
CANONICAL_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000))[0]

_pack_d = struct.Struct("<d").pack
_unpack_d = struct.Struct("<d").unpack
_pack_q = struct.Struct("<Q").pack
_unpack_q = struct.Struct("<Q").unpack
_pack_f = struct.Struct("<f").pack
_unpack_f = struct.Struct("<f").unpack
_pack_i = struct.Struct("<I").pack
_unpack_i = struct.Struct("<I").unpack
_f32_slot = array("f", [0.0])


def f32_round(x: float) -> float:
    """Round a double to the nearest single (ties to even); overflow gives infinity."""
    _f32_slot[0] = x
    return float(_f32_slot[0])


# --- bits <-> floats -------------------------------------------------------------------------


def f64_from_bits(bits: int) -> float:
    value: float = _unpack_d(_pack_q(bits))[0]
    return value


def f64_to_bits(x: float) -> int:
    bits: int = _unpack_q(_pack_d(x))[0]
    return bits


def f32_from_bits(bits: int) -> float:
    if bits & 0x7F800000 == 0x7F800000 and bits & 0x7FFFFF:
        sign = (bits >> 31) << 63
        return f64_from_bits(sign | 0x7FF0000000000000 | ((bits & 0x7FFFFF) << 29))
    value: float = _unpack_f(_pack_i(bits))[0]
    return value


def f32_to_bits(x: float) -> int:
    if x != x:
        bits = f64_to_bits(x)
        payload = (bits >> 29) & 0x7FFFFF
        if not payload:  # a double NaN whose payload lies below f32 precision
            payload = 0x400000
        return ((bits >> 63) << 31) | 0x7F800000 | payload
    result: int = _unpack_i(_pack_f(x))[0]
    return result


def quiet(x: float) -> float:
    """A NaN with its quiet bit set (what arithmetic on a NaN yields); other values unchanged."""
    if x != x:
        return f64_from_bits(f64_to_bits(x) | 0x0008000000000000)
    return x


# --- loads and stores of f32 (struct would quiet signalling NaNs) ----------------------------

_load_u32 = struct.Struct("<I").unpack_from
_store_u32 = struct.Struct("<I").pack_into


def load_f32(memory: bytearray, addr: int) -> float:
    return f32_from_bits(_load_u32(memory, addr)[0])


def store_f32(memory: bytearray, addr: int, x: float) -> None:
    _store_u32(memory, addr, f32_to_bits(x))


# --- float operations --------------------------------------------------------------------------


def fdiv_by_zero(a: float, b: float) -> float:
    """``a / b`` for ``b == ±0`` (Python raises ZeroDivisionError instead of IEEE results)."""
    if a != a or a == 0.0:
        return CANONICAL_NAN
    negative = (math.copysign(1.0, a) < 0) != (math.copysign(1.0, b) < 0)
    return -INF if negative else INF


def fsqrt(x: float) -> float:
    if x >= 0.0 or x != x:
        return math.sqrt(x)
    return CANONICAL_NAN


def fmin(a: float, b: float) -> float:
    if a != a or b != b:
        return CANONICAL_NAN
    if a == b:  # equal, or zeros of either sign: -0 is the smaller
        return a if math.copysign(1.0, a) < 0 else b
    return a if a < b else b


def fmax(a: float, b: float) -> float:
    if a != a or b != b:
        return CANONICAL_NAN
    if a == b:
        return b if math.copysign(1.0, a) < 0 else a
    return a if a > b else b


def _integral(x: float, rounded: int) -> float:
    result = float(rounded)
    return result if result else math.copysign(0.0, x)


def fceil(x: float) -> float:
    if x != x:
        return quiet(x)
    if x in (INF, -INF) or abs(x) >= 4503599627370496.0:
        return x
    return _integral(x, math.ceil(x))


def ffloor(x: float) -> float:
    if x != x:
        return quiet(x)
    if x in (INF, -INF) or abs(x) >= 4503599627370496.0:
        return x
    return _integral(x, math.floor(x))


def ftrunc(x: float) -> float:
    if x != x:
        return quiet(x)
    if x in (INF, -INF) or abs(x) >= 4503599627370496.0:
        return x
    return _integral(x, math.trunc(x))


def fnearest(x: float) -> float:
    if x != x:
        return quiet(x)
    if x in (INF, -INF) or abs(x) >= 4503599627370496.0:
        return x
    return _integral(x, round(x))  # round() on a float rounds half to even


def f32_promote(x: float) -> float:
    return quiet(x) if x != x else x


def f32_demote(x: float) -> float:
    if x != x:
        return f32_from_bits(f32_to_bits(quiet(x)))
    return f32_round(x)


def int_to_f32(v: int) -> float:
    """Round a (signed) integer to single precision exactly once."""
    if -9007199254740992 <= v <= 9007199254740992:
        return f32_round(float(v))
    magnitude = -v if v < 0 else v
    shift = magnitude.bit_length() - 24
    kept = magnitude >> shift
    rest = magnitude & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    if rest > half or (rest == half and kept & 1):
        kept += 1
    result = float(kept << shift)
    return -result if v < 0 else result


# --- float -> int ------------------------------------------------------------------------------


def _trunc_checked(x: float, low: float, high: float) -> int:
    """Truncate ``x`` toward zero; trap unless ``low < x < high`` (exclusive bounds)."""
    if x != x:
        raise Trap(TrapCode.INVALID_CONVERSION)
    if not low < x < high:
        raise Trap(TrapCode.INTEGER_OVERFLOW)
    return int(x)


def trunc_i32_s(x: float) -> int:
    return _trunc_checked(x, -2147483649.0, 2147483648.0) & M32


def trunc_i32_u(x: float) -> int:
    return _trunc_checked(x, -1.0, 4294967296.0)


def trunc_i64_s(x: float) -> int:
    # -2**63 is representable, -2**63 - 1 is not: test the lower bound inclusively.
    if x == -9223372036854775808.0:
        return 1 << 63
    return _trunc_checked(x, -9223372036854775808.0, 9223372036854775808.0) & M64


def trunc_i64_u(x: float) -> int:
    return _trunc_checked(x, -1.0, 18446744073709551616.0)


def _saturate(x: float, low: int, high: int) -> int:
    if x != x:
        return 0
    if x <= low:
        return low
    if x >= high:
        return high
    return int(x)


def trunc_sat_i32_s(x: float) -> int:
    return _saturate(x, -2147483648, 2147483647) & M32


def trunc_sat_i32_u(x: float) -> int:
    return _saturate(x, 0, 4294967295)


def trunc_sat_i64_s(x: float) -> int:
    return _saturate(x, -9223372036854775808, 9223372036854775807) & M64


def trunc_sat_i64_u(x: float) -> int:
    return _saturate(x, 0, 18446744073709551615)


# --- integer operations that trap --------------------------------------------------------------


def i32_div_s(a: int, b: int) -> int:
    if b == 0:
        raise Trap(TrapCode.INTEGER_DIVIDE_BY_ZERO)
    a = (a ^ 0x80000000) - 0x80000000
    b = (b ^ 0x80000000) - 0x80000000
    if a == -2147483648 and b == -1:
        raise Trap(TrapCode.INTEGER_OVERFLOW)
    q = abs(a) // abs(b)
    return (-q if (a < 0) != (b < 0) else q) & M32


def i32_rem_s(a: int, b: int) -> int:
    if b == 0:
        raise Trap(TrapCode.INTEGER_DIVIDE_BY_ZERO)
    a = (a ^ 0x80000000) - 0x80000000
    b = (b ^ 0x80000000) - 0x80000000
    r = abs(a) % abs(b)
    return (-r if a < 0 else r) & M32


def i64_div_s(a: int, b: int) -> int:
    if b == 0:
        raise Trap(TrapCode.INTEGER_DIVIDE_BY_ZERO)
    a = (a ^ 0x8000000000000000) - 0x8000000000000000
    b = (b ^ 0x8000000000000000) - 0x8000000000000000
    if a == -9223372036854775808 and b == -1:
        raise Trap(TrapCode.INTEGER_OVERFLOW)
    q = abs(a) // abs(b)
    return (-q if (a < 0) != (b < 0) else q) & M64


def i64_rem_s(a: int, b: int) -> int:
    if b == 0:
        raise Trap(TrapCode.INTEGER_DIVIDE_BY_ZERO)
    a = (a ^ 0x8000000000000000) - 0x8000000000000000
    b = (b ^ 0x8000000000000000) - 0x8000000000000000
    r = abs(a) % abs(b)
    return (-r if a < 0 else r) & M64


def i32_ctz(a: int) -> int:
    return (a & -a).bit_length() - 1 if a else 32


def i64_ctz(a: int) -> int:
    return (a & -a).bit_length() - 1 if a else 64


def i32_rotl(a: int, k: int) -> int:
    k &= 31
    return ((a << k) | (a >> (32 - k))) & M32


def i32_rotr(a: int, k: int) -> int:
    k &= 31
    return ((a >> k) | (a << (32 - k))) & M32


def i64_rotl(a: int, k: int) -> int:
    k &= 63
    return ((a << k) | (a >> (64 - k))) & M64


def i64_rotr(a: int, k: int) -> int:
    k &= 63
    return ((a >> k) | (a << (64 - k))) & M64
