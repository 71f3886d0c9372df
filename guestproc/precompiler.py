"""Translating a loaded module's functions while the guest waits for its next request.

::

    Loaded ──▶ (the host has not sent Boot yet) ──▶ Session.idle ──▶ Precompiler.run_until
                 start function, _start, other exports ──▶ what they call (breadth first)
                 ──▶ functions in tables ──▶ what they call        ... until a frame arrives
    Boot   ──▶ BootTimings(precompile_ms, precompiled)

The engine translates a function the first time it is called; this does the same work
earlier, in time the guest would otherwise spend waiting for the host. It is optional work:
a function that fails to translate, or memory running out, leaves the rest to first calls.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator

from .engine import CompiledModule, Module
from .engine import opcodes as op
from .engine.types import ExternKind


class Precompiler:
    """Translates a module's functions ahead of their first call, in the order a program
    will probably need them: the start function, ``_start`` and the other exports, then what
    they call directly (breadth first), then functions in tables and what they call.

    The engine translates a function the first time it is called; this does the same work
    earlier, while the guest would otherwise wait for the host. A function that fails to
    translate is skipped: its first call reports the error as usual.
    """

    def __init__(self, compiled: CompiledModule) -> None:
        self.compiled = compiled
        self._order = self._plan(compiled.module, compiled.imported_functions)
        self.done = 0
        self.seconds = 0.0

    @staticmethod
    def _plan(module: Module, imported: int) -> Iterator[int]:
        defined = range(imported, imported + len(module.functions))
        seen: set[int] = set()
        queue: deque[int] = deque()

        def visit(index: int) -> None:
            if index in defined and index not in seen:
                seen.add(index)
                queue.append(index)

        def breadth_first() -> Iterator[int]:
            while queue:
                index = queue.popleft()
                yield index
                for instr in module.functions[index - imported].body:
                    if instr.op == op.CALL:
                        visit(instr.arg)

        if module.start is not None:
            visit(module.start)
        exports = [e for e in module.exports if e.kind is ExternKind.FUNC]
        for export in sorted(exports, key=lambda e: e.name != "_start"):
            visit(export.index)
        yield from breadth_first()
        # Then what can be called indirectly, and what that calls. Functions reachable in
        # neither way are never called: they are left alone.
        for segment in module.elements:
            for expr in segment.init:
                for instr in expr:
                    if instr.op == op.REF_FUNC:
                        visit(instr.arg)
        yield from breadth_first()

    def run_until(self, stop: Callable[[], bool]) -> None:
        """Translate functions until ``stop()`` is true or none are left."""
        started = time.perf_counter()
        try:
            for index in self._order:
                try:
                    self.compiled.function_code(index)
                except MemoryError:
                    return  # optional work: what is left is translated on first call
                except Exception:
                    pass  # reported when the function is first called
                self.done += 1
                if stop():
                    return
        finally:
            self.seconds += time.perf_counter() - started
