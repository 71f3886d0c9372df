"""The ``.wast`` script language of the spec test suite: modules, actions and assertions.

::

    script bytes --tokenize--> tokens --parse_script--> [Command, ...]   (each with its line)

A script is read in one go, but modules are turned into ``Module`` objects only as far as
the script language itself requires:

- ``(module ...)`` written in text is parsed with the script (as the reference interpreter
  does), so ``ScriptModule.module`` is ready;
- ``(module binary "...")`` keeps its bytes, ``(module quote "...")`` its text: both are
  decoded or parsed only when the runner calls ``ScriptModule.load()``. An
  ``assert_malformed (module quote ...)`` therefore parses fine as a script and reports its
  ``DecodeError`` from ``load()``, where the runner expects it.

Values in actions and results keep exact bits (``Value.payload``): i32/i64 as unsigned ints,
f32/f64 as raw IEEE-754 bits, so NaN payloads and signed zeros survive; ``Value.number()``
gives the engine's canonical Python value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..decoder import decode_module
from ..module import Module
from ..numeric import f32_from_bits, f64_from_bits
from ..types import ValType
from . import numbers, simd
from .cursor import Cursor
from .lexer import EOF, KEYWORD, LPAREN, RPAREN, Tokens, tokenize
from .parser import parse_fields


class ModuleForm(enum.Enum):
    TEXT = "text"  # (module field*): parsed with the script
    BINARY = "binary"  # (module binary "..."*): bytes, decoded by load()
    QUOTE = "quote"  # (module quote "..."*): text, parsed by load()


@dataclass(slots=True)
class ScriptModule:
    """A module as written in a script. ``name`` is its ``$id`` (without ``$``), if any.

    Exactly one of ``module`` (TEXT), ``binary`` (BINARY) and ``quote`` (QUOTE) is set;
    ``source`` is the module's own text in the script (all forms). Offsets in a TEXT module
    (``Instr.offset``, error offsets) count from the start of the script; in a QUOTE module
    from the start of the quoted text.
    """

    form: ModuleForm
    name: str | None
    line: int
    source: bytes
    module: Module | None = None
    binary: bytes | None = None
    quote: bytes | None = None

    def load(self) -> Module:
        """The module: already parsed (TEXT), or decoded / parsed now.

        Raises ``DecodeError`` for a malformed binary or quoted module.
        """
        if self.module is not None:
            return self.module
        if self.binary is not None:
            return decode_module(self.binary)
        assert self.quote is not None  # a QUOTE module always has its text
        from . import parse_module  # the package's entry point (avoids an import cycle)

        return parse_module(self.quote)


@dataclass(frozen=True, slots=True)
class Value:
    """A constant argument or an exactly expected result.

    ``payload``: i32/i64 the canonical unsigned value; f32/f64 the raw bits; funcref and
    externref ``None`` for null, else (externref only) the number ``N`` of ``(ref.extern N)``,
    which names a host reference the runner makes up.
    """

    type: ValType
    payload: int | None

    def number(self) -> int | float:
        """The engine's canonical value of a numeric constant (see ``runtime``)."""
        payload = self.payload
        if payload is None or self.type.is_ref:
            raise TypeError(f"{self} is not a number")
        if self.type is ValType.F32:
            return f32_from_bits(payload)
        if self.type is ValType.F64:
            return f64_from_bits(payload)
        return payload


@dataclass(frozen=True, slots=True)
class NanPattern:
    """``nan:canonical`` (``canonical=True``) or ``nan:arithmetic`` as an expected result."""

    type: ValType
    canonical: bool


@dataclass(frozen=True, slots=True)
class V128Pattern:
    """An expected ``v128.const`` with NaN patterns in some float lanes: each lane is the
    exact bits expected or a ``NanPattern``; ``bits`` is the lane width."""

    bits: int
    lanes: tuple[int | NanPattern, ...]


@dataclass(frozen=True, slots=True)
class RefPattern:
    """``(ref.func)`` / ``(ref.extern)`` without an index: any non-null reference."""

    type: ValType


Expected = Value | NanPattern | RefPattern | V128Pattern


@dataclass(frozen=True, slots=True)
class Invoke:
    module: str | None  # a module's $id, or None for the latest module
    name: str
    args: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Get:
    module: str | None
    name: str


Action = Invoke | Get


@dataclass(frozen=True, slots=True)
class ModuleCommand:
    """Define (and instantiate) a module; it becomes the latest module."""

    line: int
    module: ScriptModule


@dataclass(frozen=True, slots=True)
class Register:
    """Make a module's exports importable under ``name``."""

    line: int
    name: str
    module: str | None


@dataclass(frozen=True, slots=True)
class ActionCommand:
    """Perform an action and ignore its results."""

    line: int
    action: Action


@dataclass(frozen=True, slots=True)
class AssertReturn:
    line: int
    action: Action
    expected: tuple[Expected, ...]


@dataclass(frozen=True, slots=True)
class AssertTrap:
    """An action that traps, or a module whose instantiation traps (start, segments)."""

    line: int
    target: Action | ScriptModule
    message: str


@dataclass(frozen=True, slots=True)
class AssertExhaustion:
    line: int
    action: Action
    message: str


@dataclass(frozen=True, slots=True)
class AssertMalformed:
    line: int
    module: ScriptModule
    message: str


@dataclass(frozen=True, slots=True)
class AssertInvalid:
    line: int
    module: ScriptModule
    message: str


@dataclass(frozen=True, slots=True)
class AssertUnlinkable:
    line: int
    module: ScriptModule
    message: str


@dataclass(frozen=True, slots=True)
class AssertUninstantiable:
    line: int
    module: ScriptModule
    message: str


Command = (
    ModuleCommand
    | Register
    | ActionCommand
    | AssertReturn
    | AssertTrap
    | AssertExhaustion
    | AssertMalformed
    | AssertInvalid
    | AssertUnlinkable
    | AssertUninstantiable
)

_MODULE_ASSERTIONS: dict[
    str, type[AssertMalformed | AssertInvalid | AssertUnlinkable | AssertUninstantiable]
] = {
    "assert_malformed": AssertMalformed,
    "assert_invalid": AssertInvalid,
    "assert_unlinkable": AssertUnlinkable,
    "assert_uninstantiable": AssertUninstantiable,
}
_FIELD_KEYWORDS = frozenset(
    ("type", "import", "func", "table", "memory", "global", "export", "start", "elem", "data")
)
_NUMBER_TYPES = {
    "i32.const": ValType.I32,
    "i64.const": ValType.I64,
    "f32.const": ValType.F32,
    "f64.const": ValType.F64,
}


def parse_script(source: bytes) -> list[Command]:
    """Every command of a ``.wast`` script, in order.

    Raises ``DecodeError`` (a ``TextDecodeError`` with line and column) if the script itself,
    or a module written in text in it, is malformed.
    """
    return _ScriptParser(tokenize(source)).commands()


def read_module(cursor: Cursor) -> ScriptModule:
    """The ``(module $id? ...)`` form at the cursor, in any of its three spellings."""
    tokens = cursor.tokens
    open_at = cursor.pos
    close_at = cursor.closers[open_at]
    line = tokens.line_column(cursor.starts[open_at])[0]
    source = tokens.source[cursor.starts[open_at] : cursor.starts[close_at] + 1]
    cursor.open("module")
    name = cursor.optional_id()
    keyword = cursor.values[cursor.pos] if cursor.kinds[cursor.pos] == KEYWORD else None
    if keyword == "binary" or keyword == "quote":
        cursor.pos += 1
        text = cursor.strings()
        cursor.close()
        if keyword == "binary":
            return ScriptModule(ModuleForm.BINARY, name, line, source, binary=text)
        return ScriptModule(ModuleForm.QUOTE, name, line, source, quote=text)
    module = parse_fields(tokens, cursor.pos, close_at)
    cursor.pos = close_at + 1
    return ScriptModule(ModuleForm.TEXT, name, line, source, module=module)


class _ScriptParser(Cursor):
    def __init__(self, tokens: Tokens) -> None:
        super().__init__(tokens, 0)

    def commands(self) -> list[Command]:
        if self.kinds[0] == LPAREN and self.values[1] in _FIELD_KEYWORDS:
            # A script that is just module fields is one module (core/inline-module.wast).
            end = len(self.kinds) - 1
            source = self.tokens.source
            module = parse_fields(self.tokens, 0, end)
            script_module = ScriptModule(ModuleForm.TEXT, None, self._line(), source, module)
            return [ModuleCommand(script_module.line, script_module)]
        found: list[Command] = []
        while self.kinds[self.pos] != EOF:
            found.append(self._command())
        return found

    def _line(self) -> int:
        return self.tokens.line_column(self.starts[self.pos])[0]

    def _command(self) -> Command:
        if self.kinds[self.pos] != LPAREN or self.kinds[self.pos + 1] != KEYWORD:
            raise self.unexpected(expected="a command")
        keyword = str(self.values[self.pos + 1])
        line = self._line()
        if keyword == "module":
            return ModuleCommand(line, read_module(self))
        if keyword == "register":
            self.pos += 2
            name = self.name()
            registered = self.optional_id()
            self.close()
            return Register(line, name, registered)
        if keyword == "invoke" or keyword == "get":
            return ActionCommand(line, self._action())
        self.pos += 2
        command: Command
        if keyword == "assert_return":
            action = self._action()
            expected = []
            while self.kinds[self.pos] == LPAREN:
                expected.append(self._constant(allow_patterns=True))
            command = AssertReturn(line, action, tuple(expected))
        elif keyword == "assert_trap":
            target: Action | ScriptModule
            target = read_module(self) if self.at_open("module") else self._action()
            command = AssertTrap(line, target, self._message())
        elif keyword == "assert_exhaustion":
            command = AssertExhaustion(line, self._action(), self._message())
        elif keyword in _MODULE_ASSERTIONS:
            module = read_module(self)
            command = _MODULE_ASSERTIONS[keyword](line, module, self._message())
        else:
            raise self.unexpected(self.pos - 1, expected="a command")
        self.close()
        return command

    def _message(self) -> str:
        return self.string().decode("utf-8", "replace")

    def _action(self) -> Action:
        if self.at_open("invoke"):
            self.pos += 2
            module = self.optional_id()
            name = self.name()
            args = []
            while self.kinds[self.pos] == LPAREN:
                constant = self._constant(allow_patterns=False)
                assert isinstance(constant, Value)  # patterns are refused above
                args.append(constant)
            self.close()
            return Invoke(module, name, tuple(args))
        if self.at_open("get"):
            self.pos += 2
            module = self.optional_id()
            name = self.name()
            self.close()
            return Get(module, name)
        raise self.unexpected(self.pos + 1 if self.kinds[self.pos] == LPAREN else None, "an action")

    def _constant(self, allow_patterns: bool) -> Expected:
        """``(i32.const 1)``, ``(ref.null func)``, ``(ref.extern 1)``; in results also
        ``(f32.const nan:canonical)``, ``(ref.func)`` and ``(ref.extern)``."""
        self.pos += 1
        if self.kinds[self.pos] != KEYWORD:
            raise self.unexpected(expected="a constant")
        keyword = str(self.values[self.pos])
        self.pos += 1
        result: Expected
        valtype = _NUMBER_TYPES.get(keyword)
        if valtype is ValType.I32 or valtype is ValType.I64:
            result = Value(valtype, self.int_literal(32 if valtype is ValType.I32 else 64))
        elif valtype is not None:
            value = self.values[self.pos]
            if allow_patterns and value in ("nan:canonical", "nan:arithmetic"):
                self.pos += 1
                result = NanPattern(valtype, value == "nan:canonical")
            else:
                fmt = numbers.F32 if valtype is ValType.F32 else numbers.F64
                result = Value(valtype, self.float_literal(fmt))
        elif keyword == "v128.const":
            result = self._v128(allow_patterns)
        elif keyword == "ref.null":
            result = Value(self.heaptype(), None)
        elif keyword == "ref.extern":
            if self.kinds[self.pos] == RPAREN and allow_patterns:
                result = RefPattern(ValType.EXTERNREF)
            else:
                result = Value(ValType.EXTERNREF, self.nat32())
        elif keyword == "ref.func" and allow_patterns and self.kinds[self.pos] == RPAREN:
            result = RefPattern(ValType.FUNCREF)
        else:
            raise self.unexpected(self.pos - 1, expected="a constant")
        self.close()
        return result

    def _v128(self, allow_patterns: bool) -> Value | V128Pattern:
        shape, count, bits = simd.read_shape(self)
        simd.check_lane_count(self, count)
        lanes: list[int | NanPattern] = []
        lane_type = ValType.F32 if bits == 32 else ValType.F64
        for _ in range(count):
            value = self.values[self.pos]
            if allow_patterns and shape[0] == "f" and value in ("nan:canonical", "nan:arithmetic"):
                self.pos += 1
                lanes.append(NanPattern(lane_type, value == "nan:canonical"))
            else:
                lanes.append(simd.read_lane(self, shape, bits))
        exact = [lane for lane in lanes if isinstance(lane, int)]
        if len(exact) == count:
            return Value(ValType.V128, simd.join_lanes(exact, bits))
        return V128Pattern(bits, tuple(lanes))


__all__ = [
    "Action",
    "ActionCommand",
    "AssertExhaustion",
    "AssertInvalid",
    "AssertMalformed",
    "AssertReturn",
    "AssertTrap",
    "AssertUninstantiable",
    "AssertUnlinkable",
    "Command",
    "Expected",
    "Get",
    "Invoke",
    "ModuleCommand",
    "ModuleForm",
    "NanPattern",
    "RefPattern",
    "Register",
    "ScriptModule",
    "V128Pattern",
    "Value",
    "parse_script",
    "read_module",
]
