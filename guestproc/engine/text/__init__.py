"""The WebAssembly text format: WAT modules and the ``.wast`` scripts of the spec tests.

::

    text --lexer.tokenize--> tokens --parser (two passes)--> Module   (same model as decode_module)
    .wast --lexer.tokenize--> tokens --script--> [Command, ...]

``parse_module`` accepts a module's fields (``(func ...) (memory 1)``) or one whole
``(module $id? ...)`` form, including ``(module binary "...")``. Malformed text raises
``TextDecodeError``, a ``DecodeError`` whose message starts with the spec suite's wording and
that carries the byte offset, line and column. ``Instr.offset`` in a parsed module is the byte
offset of the instruction in the text.
"""

from __future__ import annotations

from ..decoder import decode_module
from ..module import Module
from .cursor import Cursor
from .lexer import EOF, KEYWORD, LPAREN, TextDecodeError, tokenize
from .parser import parse_fields
from .script import (
    Action,
    ActionCommand,
    AssertExhaustion,
    AssertInvalid,
    AssertMalformed,
    AssertReturn,
    AssertTrap,
    AssertUninstantiable,
    AssertUnlinkable,
    Command,
    Expected,
    Get,
    Invoke,
    ModuleCommand,
    ModuleForm,
    NanPattern,
    RefPattern,
    Register,
    ScriptModule,
    V128Pattern,
    Value,
    parse_script,
    read_module,
)


def parse_module(text: str | bytes) -> Module:
    """The module written in ``text`` (fields, or one ``(module ...)`` form).

    Raises ``DecodeError`` (``TextDecodeError`` for text) if the text is malformed. The
    module is not validated.
    """
    source = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    tokens = tokenize(source)
    cursor = Cursor(tokens)
    if tokens.kinds[0] == LPAREN and tokens.kinds[1] == KEYWORD and tokens.values[1] == "module":
        form = read_module(cursor)
        if tokens.kinds[cursor.pos] != EOF:
            raise cursor.unexpected(expected="the end of the text after the module")
        if form.binary is not None:
            return decode_module(form.binary)
        return _count_instructions(form.load())
    return _count_instructions(parse_fields(tokens, 0, len(tokens.kinds) - 1))


def _count_instructions(module: Module) -> Module:
    """Text has no code section: its instructions stand for its size (``Module.code_bytes``)."""
    module.code_bytes = sum(len(function.body) for function in module.functions)
    return module


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
    "TextDecodeError",
    "V128Pattern",
    "Value",
    "parse_module",
    "parse_script",
]
