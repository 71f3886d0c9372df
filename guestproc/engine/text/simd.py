"""The text syntax of SIMD immediates: ``v128.const`` shapes, shuffle and lane indices.

::

    v128.const i32x4 1 2 3 4        -> the 128-bit value, lane 0 in the low bits
    i8x16.shuffle 0 1 ... 31         -> exactly 16 lane indices (each 0..255 here; the
                                        validator wants them below 32)
    i8x16.extract_lane_s 15          -> a lane index, 0..255 ("malformed lane index" past it)
    v128.load8_lane offset=1 align=1 3

Lane values keep exact bits like scalar constants do: integers wrap to the lane width
(``-1`` in ``i8x16`` is 0xFF), floats are their IEEE-754 bits, NaN payloads included.
"""

from __future__ import annotations

from . import numbers
from .cursor import Cursor
from .lexer import FLOAT, INT, KEYWORD, NAT

SHAPES: dict[str, tuple[int, int]] = {
    "i8x16": (16, 8),
    "i16x8": (8, 16),
    "i32x4": (4, 32),
    "i64x2": (2, 64),
    "f32x4": (4, 32),
    "f64x2": (2, 64),
}
"""Shape name -> (lane count, lane width in bits)."""


def lane_index(cursor: Cursor) -> int:
    """A lane index: an unsigned literal below 256 (the binary format has one byte for it)."""
    if cursor.kinds[cursor.pos] != NAT:
        raise cursor.unexpected(expected="a lane index")
    try:
        value = numbers.parse_nat(str(cursor.values[cursor.pos]), 32)
    except ValueError:
        value = 256
    if value > 255:
        raise cursor.error("malformed lane index")
    cursor.pos += 1
    return value


def shuffle_lanes(cursor: Cursor) -> tuple[int, ...]:
    """``i8x16.shuffle``'s 16 lane indices ("invalid lane length" for any other count)."""
    lanes = []
    while _at_literal(cursor, cursor.pos):
        if cursor.kinds[cursor.pos] != NAT:
            raise cursor.error("malformed lane index")
        lanes.append(lane_index(cursor))
    if len(lanes) != 16:
        raise cursor.error("invalid lane length")
    return tuple(lanes)


def _at_literal(cursor: Cursor, index: int) -> bool:
    """Whether token ``index`` is a number (``inf``, ``nan`` and NaN patterns included)."""
    kind = cursor.kinds[index]
    if kind == KEYWORD:
        return str(cursor.values[index]).startswith(("inf", "nan"))
    return kind in (NAT, INT, FLOAT)


def check_lane_count(cursor: Cursor, count: int) -> None:
    """Before a ``v128.const``'s lanes are read: exactly ``count`` literals must follow
    ("wrong number of lane literals", which the spec reports before any literal's range)."""
    found = 0
    while _at_literal(cursor, cursor.pos + found):
        found += 1
    if found != count:
        raise cursor.error("wrong number of lane literals")


def v128_literal(cursor: Cursor) -> int:
    """``shape lane*`` after ``v128.const``: the value as an unsigned 128-bit int."""
    shape, count, bits = read_shape(cursor)
    check_lane_count(cursor, count)
    return join_lanes([read_lane(cursor, shape, bits) for _ in range(count)], bits)


def join_lanes(lanes: list[int], bits: int) -> int:
    """Unsigned lane values (lane 0 first) as one 128-bit int."""
    value = 0
    for index, lane in enumerate(lanes):
        value |= lane << (index * bits)
    return value


def read_shape(cursor: Cursor) -> tuple[str, int, int]:
    """The shape keyword of a ``v128.const``: (name, lane count, lane bits)."""
    if cursor.kinds[cursor.pos] == KEYWORD:
        shape = str(cursor.values[cursor.pos])
        found = SHAPES.get(shape)
        if found is not None:
            cursor.pos += 1
            return shape, found[0], found[1]
    raise cursor.unexpected(expected="a vector shape (i8x16, i16x8, i32x4, i64x2, f32x4, f64x2)")


def read_lane(cursor: Cursor, shape: str, bits: int) -> int:
    """One lane literal of ``shape`` as its unsigned bits."""
    if shape[0] == "f":
        return cursor.float_literal(numbers.F32 if bits == 32 else numbers.F64)
    if cursor.kinds[cursor.pos] == KEYWORD:
        raise cursor.unexpected(expected=f"an i{bits} literal")
    return cursor.int_literal(bits)
