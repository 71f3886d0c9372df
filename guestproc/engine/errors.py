"""Everything the engine raises.

::

    EngineError                      anything the engine reports on purpose
    ├── DecodeError                  malformed binary or text: the bytes are not a module
    ├── ValidationError              a well-formed module that breaks a typing rule
    ├── LinkError                    imports that do not match (unknown import, wrong type)
    ├── CompileError                 a valid function the compiler cannot translate
    └── Trap                         a run-time trap; ``code`` is a ``TrapCode``

Decode and validation errors carry the byte offset where the rule was broken. Traps are
ordinary exceptions (never ``assert``), so they survive ``python -O``.
"""

from __future__ import annotations

import enum


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class DecodeError(EngineError):
    """The input is malformed: not a WebAssembly module in the binary (or text) format."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.message = message
        self.offset = offset
        where = f" at byte offset {offset:#x}" if offset is not None else ""
        super().__init__(f"{message}{where}")


class ValidationError(EngineError):
    """The module is well-formed but invalid; ``message`` names the broken rule."""

    def __init__(
        self, message: str, offset: int | None = None, func_index: int | None = None
    ) -> None:
        self.message = message
        self.offset = offset
        self.func_index = func_index
        where = []
        if func_index is not None:
            where.append(f"in function {func_index}")
        if offset is not None:
            where.append(f"at byte offset {offset:#x}")
        super().__init__(message + (" (" + ", ".join(where) + ")" if where else ""))


class LinkError(EngineError):
    """An import is missing or does not match what the module declares."""


class CompileError(EngineError):
    """A valid function could not be translated (an engine limit, never a user error)."""


class TrapCode(enum.Enum):
    """Why execution trapped. The value is the spec test suite's message."""

    UNREACHABLE = "unreachable"
    INTEGER_DIVIDE_BY_ZERO = "integer divide by zero"
    INTEGER_OVERFLOW = "integer overflow"
    INVALID_CONVERSION = "invalid conversion to integer"
    OUT_OF_BOUNDS_MEMORY = "out of bounds memory access"
    OUT_OF_BOUNDS_TABLE = "out of bounds table access"
    UNDEFINED_ELEMENT = "undefined element"
    UNINITIALIZED_ELEMENT = "uninitialized element"
    INDIRECT_CALL_TYPE_MISMATCH = "indirect call type mismatch"
    CALL_STACK_EXHAUSTED = "call stack exhausted"
    OUT_OF_FUEL = "all fuel consumed"
    HOST_MEMORY_EXHAUSTED = "host memory exhausted"

    @property
    def kind(self) -> str:
        """A short identifier for reports and CLI messages: ``out_of_bounds_memory``."""
        return self.name.lower()


class Trap(EngineError):
    """Execution trapped. ``code`` says why; ``message`` may add detail."""

    def __init__(self, code: TrapCode, detail: str | None = None) -> None:
        self.code = code
        self.detail = detail
        super().__init__(code.value + (f": {detail}" if detail else ""))
