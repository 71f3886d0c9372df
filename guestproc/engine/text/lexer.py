"""The lexer of the WebAssembly text format (and of ``.wast`` scripts), on bytes.

::

    source bytes --tokenize--> Tokens: parallel lists (kind, value, start), plus for every
                               "(" the index of its ")" so a parser can skip a whole form

A token is a parenthesis, a keyword (starts with ``a``-``z``), an identifier (``$`` and at
least one id character), a string, or a number. Tokens that are not parentheses must be
separated by whitespace, parentheses or comments: a run such as ``0drop`` or ``$l"a"`` is a
reserved token, and reserved tokens are errors ("unknown operator", as the spec suite says).

The lexer works on bytes because comments may hold any bytes (NUL, non-UTF-8). String
literals are decoded here (every escape, ``\\u{...}`` included) to ``bytes``; whether a string
must be UTF-8 is the parser's decision (names must, data need not).

Numbers are classified but not converted: the same token is an ``i32`` in one place and an
``f64`` in another, so the parser converts it with ``numbers`` where it knows the type.
"""

from __future__ import annotations

import bisect
import re
from typing import cast

from ..errors import DecodeError
from . import numbers

LPAREN = 0
RPAREN = 1
KEYWORD = 2  # value: str
ID = 3  # value: str, without the "$"
STRING = 4  # value: bytes, escapes decoded
NAT = 5  # value: str; an unsigned integer literal (no sign)
INT = 6  # value: str; a signed integer literal ("+1", "-0x10")
FLOAT = 7  # value: str; any other float literal ("1.5", "-inf", "0x1p3")
EOF = 8


_IDCHARS = rb"0-9A-Za-z!#$%&'*+\-./:<=>?@\\^_`|~"
_DELIMITED = rb"(?=[ \t\n\r();]|\Z)"
_SCAN = re.compile(
    rb"(?P<ws>[ \t\n\r]+)"
    rb"|(?P<lp>\((?!;))"
    rb"|(?P<rp>\))"
    rb"|(?P<kw>[a-z]["
    + _IDCHARS
    + rb"]*)"
    + _DELIMITED
    + rb"|(?P<id>\$["
    + _IDCHARS
    + rb"]+)"
    + _DELIMITED
    + rb'|(?P<str>"(?:[^"\\]|\\[\s\S])*")'
    + _DELIMITED
    + rb"|(?P<num>[+\-0-9]["
    + _IDCHARS
    + rb"]*)"
    + _DELIMITED
    + rb"|(?P<lc>;;[^\n\r]*)"
    + rb"|(?P<bc>\(;)"
    + rb'|(?P<reserved>(?:[^ \t\n\r()";]|"(?:[^"\\]|\\[\s\S])*")+)'
)
_BLOCK_COMMENT_PART = re.compile(rb"\(;|;\)")
_ESCAPE = re.compile(rb"\\(?:([0-9a-fA-F]{2})|u\{([0-9a-fA-F](?:_?[0-9a-fA-F])*)\}|(.))", re.S)
_SIMPLE_ESCAPES = {b"t": b"\t", b"n": b"\n", b"r": b"\r", b'"': b'"', b"'": b"'", b"\\": b"\\"}
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


class TextDecodeError(DecodeError):
    """A ``DecodeError`` for text: ``offset`` is the byte offset in the source text.

    ``message`` starts with the spec test suite's wording ("unexpected token", "unknown
    operator", ...), possibly followed by detail; ``line`` and ``column`` count from 1.
    """

    def __init__(self, message: str, offset: int, line: int, column: int) -> None:
        super().__init__(message, offset)
        self.line = line
        self.column = column
        self.args = (f"{message} (line {line}, column {column})",)

    def __str__(self) -> str:
        return str(self.args[0])


class Tokens:
    """A tokenized source: ``kinds[i]``, ``values[i]`` and ``starts[i]`` describe token i.

    ``closers[i]`` is the index of the ``)`` matching the ``(`` at i (-1 for other tokens).
    The last token is always EOF, at the end of the source.
    """

    __slots__ = ("_line_starts", "closers", "kinds", "source", "starts", "values")

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.kinds: list[int] = []
        self.values: list[object] = []
        self.starts: list[int] = []
        self.closers: list[int] = []
        self._line_starts: list[int] | None = None

    def line_column(self, offset: int) -> tuple[int, int]:
        """1-based line and column (in bytes) of a byte offset; lines end at LF."""
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer(rb"\n", self.source)]
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def error(self, message: str, offset: int) -> TextDecodeError:
        line, column = self.line_column(offset)
        return TextDecodeError(message, offset, line, column)


def tokenize(source: bytes) -> Tokens:
    """Split ``source`` into tokens. Raises ``TextDecodeError`` for anything not a token:
    reserved tokens, bad escapes, control characters in strings, unclosed strings or comments,
    unbalanced parentheses."""
    tokens = Tokens(source)
    kinds, values, starts, closers = tokens.kinds, tokens.values, tokens.starts, tokens.closers
    open_parens: list[int] = []
    match = _SCAN.match
    pos = 0
    end = len(source)
    while pos < end:
        m = match(source, pos)
        if m is None:
            raise _bad_character(tokens, pos)
        group = m.lastgroup
        start, pos = pos, m.end()
        if group == "ws" or group == "lc":
            continue
        if group == "lp":
            open_parens.append(len(kinds))
            kinds.append(LPAREN)
            values.append(None)
            closers.append(-1)
        elif group == "rp":
            if not open_parens:
                raise tokens.error("unexpected token ')': nothing to close", start)
            closers[open_parens.pop()] = len(kinds)
            kinds.append(RPAREN)
            values.append(None)
            closers.append(-1)
        elif group == "kw":
            kinds.append(KEYWORD)
            values.append(m.group().decode("ascii"))
            closers.append(-1)
        elif group == "id":
            kinds.append(ID)
            values.append(m.group()[1:].decode("ascii"))
            closers.append(-1)
        elif group == "str":
            kinds.append(STRING)
            values.append(_decode_string(tokens, m.group(), start))
            closers.append(-1)
        elif group == "num":
            text = m.group().decode("ascii")
            if numbers.INT_RE.fullmatch(text):
                kinds.append(INT if text[0] in "+-" else NAT)
            elif numbers.FLOAT_RE.fullmatch(text):
                kinds.append(FLOAT)
            else:
                raise tokens.error(f"unknown operator {text}", start)
            values.append(text)
            closers.append(-1)
        elif group == "bc":
            pos = _skip_block_comment(tokens, pos, start)
            continue
        else:  # reserved
            text = m.group().decode("utf-8", "backslashreplace")
            raise tokens.error(f"unknown operator {text}", start)
        starts.append(start)
    if open_parens:
        raise tokens.error("unexpected end of input: unclosed '('", starts[open_parens[-1]])
    kinds.append(EOF)
    values.append(None)
    starts.append(end)
    closers.append(-1)
    return tokens


def _bad_character(tokens: Tokens, pos: int) -> TextDecodeError:
    char = tokens.source[pos : pos + 1]
    if char == b'"':
        return tokens.error("unclosed string literal", pos)
    if char == b";":
        return tokens.error("unexpected character ';'", pos)
    return tokens.error(f"unexpected character {char!r}", pos)


def _skip_block_comment(tokens: Tokens, pos: int, start: int) -> int:
    """The offset just after the ``;)`` closing the comment opened at ``start`` (nested)."""
    depth = 1
    search = _BLOCK_COMMENT_PART.search
    while depth:
        m = search(tokens.source, pos)
        if m is None:
            raise tokens.error("unclosed block comment", start)
        depth += 1 if m.group() == b"(;" else -1
        pos = m.end()
    return pos


def _decode_string(tokens: Tokens, literal: bytes, start: int) -> bytes:
    body = literal[1:-1]
    bad = _CONTROL.search(body)
    if bad:
        raise tokens.error("illegal control character in string", start + 1 + bad.start())
    if b"\\" not in body:
        return body

    def escape(m: re.Match[bytes]) -> bytes:
        hex_byte, code_point, other = m.groups()
        if hex_byte is not None:
            return bytes((int(hex_byte, 16),))
        if code_point is not None:
            value = int(code_point.replace(b"_", b""), 16)
            if value >= 0x110000 or 0xD800 <= value < 0xE000:
                raise tokens.error("malformed string: invalid Unicode escape", start + m.start())
            return chr(value).encode("utf-8")
        if other in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[other]
        raise tokens.error("malformed string: unknown escape", start + 1 + m.start())

    return _ESCAPE.sub(escape, body)


def utf8_name(tokens: Tokens, index: int) -> str:
    """The string token at ``index`` as a name: it must be valid UTF-8."""
    try:
        return cast(bytes, tokens.values[index]).decode("utf-8")
    except UnicodeDecodeError:
        raise tokens.error("malformed UTF-8 encoding", tokens.starts[index]) from None
