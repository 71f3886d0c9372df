"""Numeric literals of the text format: integers and floats in every spelling, exactly.

Integers: decimal or ``0x`` hex digits with single underscores between digits, an optional
sign. Floats additionally: a fraction and/or exponent (``e`` for decimal, ``p`` for hex, the
exponent always decimal), ``inf``, ``nan`` and ``nan:0x<payload>``, each with an optional sign.

A float literal names an exact rational number; it is rounded once, to nearest with ties to
even, to the target format. A value that rounds beyond the largest finite number is "constant
out of range" (the text format does not round to infinity). Results are the raw IEEE-754 bits,
so NaN payloads and the sign of zero are exact.

Every function raises ``ValueError`` with the spec's wording for a literal that is out of range
or not a literal of the asked kind; the parser turns that into a ``DecodeError`` at the token.
"""

from __future__ import annotations

import re
import struct

_DEC = r"[0-9](?:_?[0-9])*"
_HEX = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"

INT_RE = re.compile(rf"[+-]?(?:{_DEC}|0x{_HEX})")
FLOAT_RE = re.compile(
    rf"[+-]?(?:{_DEC}(?:\.(?:{_DEC})?)?(?:[eE][+-]?{_DEC})?"
    rf"|0x{_HEX}(?:\.(?:{_HEX})?)?(?:[pP][+-]?{_DEC})?"
    rf"|inf|nan|nan:0x{_HEX})"
)


class FloatFormat:
    """An IEEE-754 binary format: ``fraction_bits`` stored mantissa bits, ``exponent_bits``."""

    __slots__ = ("bias", "exponent_bits", "fraction_bits", "max_biased", "name")

    def __init__(self, name: str, fraction_bits: int, exponent_bits: int) -> None:
        self.name = name
        self.fraction_bits = fraction_bits
        self.exponent_bits = exponent_bits
        self.bias = (1 << (exponent_bits - 1)) - 1
        self.max_biased = (1 << exponent_bits) - 1  # the all-ones exponent: inf and NaN


_DOUBLE_BITS = struct.Struct("<d")
_DOUBLE = struct.Struct("<Q")

F32 = FloatFormat("f32", 23, 8)
F64 = FloatFormat("f64", 52, 11)


def parse_int(text: str, bits: int) -> int:
    """An ``iN`` literal as its canonical unsigned value (``0 <= v < 2**bits``).

    Accepts ``-2**(bits-1) .. 2**bits - 1``: negative values wrap to two's complement.
    """
    if not INT_RE.fullmatch(text):
        raise ValueError("unexpected token")
    value = _int_value(text)
    if value < -(1 << (bits - 1)) or value >= (1 << bits):
        raise ValueError("constant out of range")
    return value & ((1 << bits) - 1)


def parse_nat(text: str, bits: int = 32) -> int:
    """An unsigned literal (an index, a limit, an offset): no sign, at most ``2**bits - 1``."""
    if text[0] in "+-" or not INT_RE.fullmatch(text):
        raise ValueError("unexpected token")
    value = _int_value(text)
    if value >= (1 << bits):
        raise ValueError(f"i{bits} constant out of range")
    return value


def _int_value(text: str) -> int:
    negative = text[0] == "-"
    digits = text.lstrip("+-").replace("_", "")
    if len(digits.lstrip("0x")) > _LONGEST_INTEGER:
        raise ValueError("constant out of range")  # beyond any 64-bit value, in any base
    value = int(digits[2:], 16) if digits[:2] == "0x" else int(digits)
    return -value if negative else value


_LONGEST_INTEGER = 40  # digits; 2**64 has 20 decimal digits


def _decimal_digits(digits: str) -> int:
    """``int(digits)`` for any length (CPython caps one conversion at 4300 digits)."""
    value = 0
    for start in range(0, len(digits), 4000):
        chunk = digits[start : start + 4000]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _exponent(text: str) -> int | None:
    """A decimal exponent, or None when it is so large that only its sign matters."""
    if len(text.lstrip("+-0")) > 9:
        return None
    return int(text or "0")


def parse_float(text: str, fmt: FloatFormat) -> int:
    """A float literal (an integer literal is one too) as the raw bits of ``fmt``."""
    if not FLOAT_RE.fullmatch(text):
        raise ValueError("unexpected token")
    sign = 1 if text[0] == "-" else 0
    body = text.lstrip("+-").replace("_", "")
    sign_bit = sign << (fmt.fraction_bits + fmt.exponent_bits)
    exponent_mask = fmt.max_biased << fmt.fraction_bits
    if body == "inf":
        return sign_bit | exponent_mask
    if body == "nan":  # the canonical NaN: only the quiet bit set
        return sign_bit | exponent_mask | (1 << (fmt.fraction_bits - 1))
    if body.startswith("nan:"):
        payload = int(body[6:], 16)
        if payload == 0 or payload >= (1 << fmt.fraction_bits):
            raise ValueError("constant out of range")
        return sign_bit | exponent_mask | payload
    if body[:2] == "0x":
        numerator, denominator = _hex_rational(body[2:])
    else:
        if fmt is F64:
            return sign_bit | _f64_decimal_bits(body)
        numerator, denominator = _decimal_rational(body)
    return sign_bit | round_rational(numerator, denominator, fmt)


def _f64_decimal_bits(body: str) -> int:
    # CPython's float() rounds a decimal string correctly (ties to even) in one step.
    value = float(body)
    if value == float("inf"):
        raise ValueError("constant out of range")
    bits: int = _DOUBLE.unpack(_DOUBLE_BITS.pack(value))[0]
    return bits


# Beyond these magnitudes (powers of 10 or of 2) every format overflows or rounds to zero,
# so huge exponents are settled without building enormous integers.
_DECIMAL_EXPONENT_LIMIT = 400
_BINARY_EXPONENT_LIMIT = 1200


def _decimal_rational(body: str) -> tuple[int, int]:
    mantissa, _, exponent_text = body.replace("E", "e").partition("e")
    whole, _, fraction = mantissa.partition(".")
    significant = (whole + fraction).lstrip("0")
    if not significant:
        return 0, 1
    written_exponent = _exponent(exponent_text)
    if written_exponent is None:
        return _extreme(exponent_text)
    digits = _decimal_digits(significant)
    exponent = written_exponent - len(fraction)
    magnitude = len(significant) + exponent
    if magnitude > _DECIMAL_EXPONENT_LIMIT:
        raise ValueError("constant out of range")
    if magnitude < -_DECIMAL_EXPONENT_LIMIT:
        return 0, 1
    if exponent >= 0:
        return digits * 10**exponent, 1
    return digits, 10**-exponent


def _hex_rational(body: str) -> tuple[int, int]:
    mantissa, _, exponent_text = body.replace("P", "p").partition("p")
    whole, _, fraction = mantissa.partition(".")
    digits = int(whole + fraction, 16)
    if digits == 0:
        return 0, 1
    written_exponent = _exponent(exponent_text)
    if written_exponent is None:
        return _extreme(exponent_text)
    exponent = written_exponent - 4 * len(fraction)
    magnitude = digits.bit_length() + exponent
    if magnitude > _BINARY_EXPONENT_LIMIT:
        raise ValueError("constant out of range")
    if magnitude < -_BINARY_EXPONENT_LIMIT:
        return 0, 1
    if exponent >= 0:
        return digits << exponent, 1
    return digits, 1 << -exponent


def _extreme(exponent_text: str) -> tuple[int, int]:
    """A non-zero mantissa with an exponent of more than nine digits: overflow or zero."""
    if exponent_text.startswith("-"):
        return 0, 1
    raise ValueError("constant out of range")


def round_rational(numerator: int, denominator: int, fmt: FloatFormat) -> int:
    """The bits (sign clear) of ``numerator / denominator`` rounded to ``fmt``, ties to even.

    Raises ``ValueError("constant out of range")`` when the rounded value is not finite.
    """
    if numerator == 0:
        return 0
    precision = fmt.fraction_bits
    min_exponent = 1 - fmt.bias  # exponent of the smallest normal number
    # e = floor(log2(numerator / denominator))
    e = numerator.bit_length() - denominator.bit_length()
    if (numerator << max(0, -e)) < (denominator << max(0, e)):
        e -= 1
    lsb = max(e, min_exponent) - precision  # weight of the last mantissa bit kept
    if lsb >= 0:
        quotient, remainder = divmod(numerator, denominator << lsb)
        twice_remainder, divisor = remainder << 1, denominator << lsb
    else:
        quotient, remainder = divmod(numerator << -lsb, denominator)
        twice_remainder, divisor = remainder << 1, denominator
    if twice_remainder > divisor or (twice_remainder == divisor and quotient & 1):
        quotient += 1
    if quotient >> (precision + 1):  # rounding carried into a new bit
        quotient >>= 1
        lsb += 1
    if quotient >> precision == 0:  # subnormal (or rounded to zero): exponent field 0
        return quotient
    biased = lsb + precision + fmt.bias
    if biased >= fmt.max_biased:
        raise ValueError("constant out of range")
    return (biased << precision) | (quotient & ((1 << precision) - 1))
