"""Compiled modules and their instances.

::

    bytes ──decode_module──▶ Module ──validate_module──▶ (checked) ──compile_module──▶ CompiledModule
                                                                                         │ instantiate(imports, limits)
                                                                                         ▼
                                                                                      Instance ── exports

A ``CompiledModule`` holds the generated Python code of every function; it is immutable and
can be instantiated many times (a template instantiates once, then forks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .module import Module
from .runtime import Function, GlobalCell, Memory, Table

Extern = Function | Table | Memory | GlobalCell


@dataclass(frozen=True, slots=True)
class EngineLimits:
    """Limits enforced inside the engine.

    - ``memory_pages``: cap on every linear memory; ``memory.grow`` past it returns -1, and a
      module whose initial memory is larger fails to instantiate with ``LimitExceeded``.
    - ``table_elements``: the same for tables (``table.grow`` returns -1).
    - ``call_depth``: nested Wasm calls past this trap with "call stack exhausted".
    - ``fuel``: when set, execution traps with "all fuel consumed" once this many units are
      spent (one unit per instruction, charged per basic block).
    """

    memory_pages: int | None = None
    table_elements: int | None = 10_000_000
    call_depth: int = 20_000
    fuel: int | None = None


class Instance:
    """An instantiated module. ``exports`` maps export names to externs."""

    exports: dict[str, Extern]

    def invoke(self, name: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    @property
    def fuel_used(self) -> int:
        raise NotImplementedError


class CompiledModule:
    module: Module

    def instantiate(
        self, imports: Mapping[tuple[str, str], Extern], limits: EngineLimits = EngineLimits()
    ) -> Instance:
        raise NotImplementedError


def compile_module(module: Module) -> CompiledModule:
    raise NotImplementedError
