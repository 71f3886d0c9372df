"""Kindling's WebAssembly engine: decoder, validator, compiler to Python, runtime.

The public surface is re-exported here; the submodules are private.
"""

from .decoder import decode_module
from .errors import (
    CompileError,
    DecodeError,
    EngineError,
    LinkError,
    Trap,
    TrapCode,
    ValidationError,
)
from .instance import CompiledModule, EngineLimits, Extern, Instance, compile_module
from .module import Module
from .runtime import Function, GlobalCell, LimitExceeded, Memory, Table, host_function, invoke
from .types import ExternKind, FuncType, GlobalType, Limits, MemoryType, TableType, ValType
from .validator import validate_module


def parse_module(text: str | bytes) -> Module:
    """Parse a module in the text format (imported on first use: most guests never need it)."""
    from .text import parse_module as parse

    return parse(text)


__all__ = [
    "CompileError",
    "CompiledModule",
    "DecodeError",
    "EngineError",
    "EngineLimits",
    "Extern",
    "ExternKind",
    "FuncType",
    "Function",
    "GlobalCell",
    "GlobalType",
    "Instance",
    "LimitExceeded",
    "Limits",
    "LinkError",
    "Memory",
    "MemoryType",
    "Module",
    "Table",
    "TableType",
    "Trap",
    "TrapCode",
    "ValType",
    "ValidationError",
    "compile_module",
    "decode_module",
    "host_function",
    "invoke",
    "parse_module",
    "validate_module",
]
