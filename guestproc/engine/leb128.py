"""LEB128 integers as the WebAssembly binary format encodes them.

Every reader takes the whole input and a position and returns ``(value, next position)``.
The rules (and the messages) are the binary format's:

- an N-bit integer takes at most ceil(N / 7) bytes; a longer encoding is
  "integer representation too long";
- the unused high bits of the last byte must be zero (unsigned) or copies of the sign bit
  (signed); otherwise "integer too large".

Reading past the end of ``data`` raises ``IndexError`` (plain ``bytes`` indexing); the
decoder turns that into its "unexpected end" error in one place, so these stay small.
"""

from __future__ import annotations

from .errors import DecodeError


def read_unsigned(data: bytes, pos: int, bits: int) -> tuple[int, int]:
    """An unsigned integer of at most ``bits`` bits."""
    result = 0
    shift = 0
    remaining = bits
    while True:
        if remaining <= 0:
            raise DecodeError("integer representation too long", pos)
        byte = data[pos]
        pos += 1
        if remaining < 7 and (byte & 0x7F) >= (1 << remaining):
            raise DecodeError("integer too large", pos - 1)
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        remaining -= 7


def read_signed(data: bytes, pos: int, bits: int) -> tuple[int, int]:
    """A signed (two's complement) integer of at most ``bits`` bits, as a Python int."""
    result = 0
    shift = 0
    remaining = bits
    while True:
        if remaining <= 0:
            raise DecodeError("integer representation too long", pos)
        byte = data[pos]
        pos += 1
        if remaining < 7:
            # The bits beyond the integer's width must all equal its sign bit.
            mask = (-1 << (remaining - 1)) & 0x7F
            if byte & mask not in (0, mask):
                raise DecodeError("integer too large", pos - 1)
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if byte & 0x40:
                result -= 1 << shift
            return result, pos
        remaining -= 7


def read_u32(data: bytes, pos: int) -> tuple[int, int]:
    """A u32 (indices, counts, lengths): 0 <= value < 2**32."""
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    return read_unsigned(data, pos, 32)


def read_s33(data: bytes, pos: int) -> tuple[int, int]:
    """A signed 33-bit integer (block types): -2**32 <= value < 2**32."""
    return read_signed(data, pos, 33)
