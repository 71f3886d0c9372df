"""A position in a token list, with the small readers every part of the text parser shares.

Errors follow the spec test suite's wording: a keyword the format does not know at all is an
"unknown operator <keyword>"; anything else in the wrong place is an "unexpected token".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from .. import opcodes
from ..types import ValType
from . import numbers
from .lexer import (
    EOF,
    FLOAT,
    ID,
    INT,
    KEYWORD,
    LPAREN,
    NAT,
    RPAREN,
    STRING,
    TextDecodeError,
    Tokens,
    utf8_name,
)

VALTYPES = {
    "i32": ValType.I32,
    "i64": ValType.I64,
    "f32": ValType.F32,
    "f64": ValType.F64,
    "v128": ValType.V128,
    "funcref": ValType.FUNCREF,
    "externref": ValType.EXTERNREF,
}
REFTYPES = {"funcref": ValType.FUNCREF, "externref": ValType.EXTERNREF}
HEAPTYPES = {"func": ValType.FUNCREF, "extern": ValType.EXTERNREF}

# Keywords of the format that are not instructions: met in the wrong place they are an
# "unexpected token", while a keyword outside this set and the instruction set is unknown.
_STRUCTURE_WORDS = """
    module type func param result local global table memory elem data import export start
    mut offset item declare then else end funcref externref func extern i32 i64 f32 f64 v128
    binary quote register invoke get assert_return assert_trap assert_exhaustion
    assert_invalid assert_malformed assert_unlinkable assert_uninstantiable script input
    output inf nan nan:canonical nan:arithmetic i8x16 i16x8 i32x4 i64x2 f32x4 f64x2
"""
STRUCTURE_KEYWORDS = frozenset(_STRUCTURE_WORDS.split())
KNOWN_KEYWORDS = STRUCTURE_KEYWORDS | frozenset(opcodes.BY_NAME)


class Cursor:
    """Reads tokens ``tokens[pos:]``; every reader advances ``pos`` past what it read."""

    def __init__(self, tokens: Tokens, pos: int = 0) -> None:
        self.tokens = tokens
        self.kinds = tokens.kinds
        self.values = tokens.values
        self.starts = tokens.starts
        self.closers = tokens.closers
        self.pos = pos

    # --- errors -------------------------------------------------------------------------

    def error(self, message: str, index: int | None = None) -> TextDecodeError:
        """An error located at token ``index`` (default: the current token)."""
        return self.tokens.error(message, self.starts[self.pos if index is None else index])

    def unexpected(self, index: int | None = None, expected: str = "") -> TextDecodeError:
        """The error for a token that does not fit here."""
        i = self.pos if index is None else index
        kind, value = self.kinds[i], self.values[i]
        if kind == KEYWORD and value not in KNOWN_KEYWORDS and not _is_memarg(value):
            return self.error(f"unknown operator {value}", i)
        detail = f", expected {expected}" if expected else ""
        return self.error(f"unexpected token {self.describe(i)}{detail}", i)

    def describe(self, i: int) -> str:
        kind, value = self.kinds[i], self.values[i]
        if kind == LPAREN:
            return "'('"
        if kind == RPAREN:
            return "')'"
        if kind == EOF:
            return "(end of input)"
        if kind == ID:
            return f"${value}"
        if kind == STRING:
            return "(a string)"
        return str(value)

    # --- structure ----------------------------------------------------------------------

    def at_open(self, keyword: str, i: int | None = None) -> bool:
        """Whether the tokens at ``i`` (default: here) are ``(`` followed by ``keyword``."""
        if i is None:
            i = self.pos
        return (
            self.kinds[i] == LPAREN
            and self.kinds[i + 1] == KEYWORD
            and self.values[i + 1] == keyword
        )

    def open(self, keyword: str) -> None:
        if not self.at_open(keyword):
            raise self.unexpected(expected=f"'({keyword}'")
        self.pos += 2

    def close(self) -> None:
        if self.kinds[self.pos] != RPAREN:
            raise self.unexpected(expected="')'")
        self.pos += 1

    def keyword(self, keyword: str) -> None:
        if self.kinds[self.pos] != KEYWORD or self.values[self.pos] != keyword:
            raise self.unexpected(expected=keyword)
        self.pos += 1

    def optional_id(self) -> str | None:
        if self.kinds[self.pos] == ID:
            self.pos += 1
            return str(self.values[self.pos - 1])
        return None

    # --- atoms --------------------------------------------------------------------------

    def string(self) -> bytes:
        if self.kinds[self.pos] != STRING:
            raise self.unexpected(expected="a string")
        self.pos += 1
        return cast(bytes, self.values[self.pos - 1])

    def strings(self) -> bytes:
        """Zero or more strings, concatenated (data segments, binary and quoted modules)."""
        parts = []
        while self.kinds[self.pos] == STRING:
            parts.append(self.values[self.pos])
            self.pos += 1
        return b"".join(parts)  # type: ignore[arg-type]

    def name(self) -> str:
        """A string that must be valid UTF-8 (import and export names)."""
        if self.kinds[self.pos] != STRING:
            raise self.unexpected(expected="a name string")
        self.pos += 1
        return utf8_name(self.tokens, self.pos - 1)

    def nat32(self) -> int:
        """An unsigned 32-bit literal (limits, indices)."""
        if self.kinds[self.pos] != NAT:
            raise self.unexpected(expected="an unsigned integer")
        return self._convert(numbers.parse_nat, 32)

    def index_ref(self) -> int | str:
        """An index: a number (not checked against any space here) or an ``$id``."""
        kind = self.kinds[self.pos]
        if kind == ID:
            self.pos += 1
            return str(self.values[self.pos - 1])
        if kind == NAT:
            return self._convert(numbers.parse_nat, 32)
        raise self.unexpected(expected="an index")

    def at_index(self) -> bool:
        kind = self.kinds[self.pos]
        return kind in (NAT, ID)

    def int_literal(self, bits: int) -> int:
        """An ``i32``/``i64`` constant as its canonical unsigned value."""
        kind = self.kinds[self.pos]
        if kind != NAT and kind != INT:
            raise self.unexpected(expected=f"an i{bits} literal")
        return self._convert(numbers.parse_int, bits)

    def float_literal(self, fmt: numbers.FloatFormat) -> int:
        """An ``f32``/``f64`` constant as its raw bits."""
        kind, value = self.kinds[self.pos], self.values[self.pos]
        if kind == KEYWORD:
            if value in KNOWN_KEYWORDS and value != "inf" and value != "nan":
                raise self.unexpected(expected=f"an {fmt.name} literal")
            if not str(value).startswith(("inf", "nan")):
                raise self.unexpected(expected=f"an {fmt.name} literal")
        elif kind != NAT and kind != INT and kind != FLOAT:
            raise self.unexpected(expected=f"an {fmt.name} literal")
        return self._convert(numbers.parse_float, fmt)

    def _convert(self, convert: Callable[[str, Any], int], arg: object) -> int:
        """Convert the current token with ``convert``; its ValueError becomes a DecodeError."""
        text = str(self.values[self.pos])
        try:
            value = convert(text, arg)
        except ValueError as exc:
            message = str(exc)
            if message == "unexpected token":
                message = f"unknown operator {text}"
            raise self.error(message) from None
        self.pos += 1
        return value

    def valtype(self) -> ValType:
        if self.kinds[self.pos] == KEYWORD:
            valtype = VALTYPES.get(str(self.values[self.pos]))
            if valtype is not None:
                self.pos += 1
                return valtype
        raise self.unexpected(expected="a value type")

    def reftype(self) -> ValType:
        if self.kinds[self.pos] == KEYWORD:
            reftype = REFTYPES.get(str(self.values[self.pos]))
            if reftype is not None:
                self.pos += 1
                return reftype
        raise self.unexpected(expected="a reference type")

    def heaptype(self) -> ValType:
        if self.kinds[self.pos] == KEYWORD:
            reftype = HEAPTYPES.get(str(self.values[self.pos]))
            if reftype is not None:
                self.pos += 1
                return reftype
        raise self.unexpected(expected="func or extern")


def _is_memarg(value: object) -> bool:
    text = str(value)
    return text.startswith(("offset=", "align="))
