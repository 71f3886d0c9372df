"""Which lowering a function gets: structured (``compiler``) or flattened (``flat``).

::

    body ──nesting (one pass)──▶ deeper than the structured lowering can take? ──yes──▶ flat
                                         │ no
                                         ▼
        structured ──NestingTooDeep──▶ structured, flat guards ──NestingTooDeep──▶ flat

The structured lowering gives the fastest code: Wasm's blocks become Python's own ``while``
and ``if``, so it is what every function gets that it can take. CPython limits it to 100
levels of indentation and 20 nested loops; the flattened lowering (a dispatch loop over
basic blocks) has no such limit and takes any valid function, at a cost in speed (see
``DEEP_NESTING``). Each attempt takes time linear in the function's size, so a function that
fails the structured lowerings still compiles in linear time.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import opcodes as op
from .compiler import MAX_WHILE_NESTING, FunctionCompiler, ModuleInfo, NestingTooDeep
from .flat import FlatCompiler
from .module import Instr

DEEP_NESTING = 40
"""Functions whose ``if``s and loops nest deeper than this go straight to the flat lowering."""


def nesting(body: Sequence[Instr]) -> tuple[int, int]:
    """How deeply ``if``s and loops nest in ``body`` (each may become an indented Python
    block), and how deeply loops alone do."""
    depth = loops = deepest = deepest_loops = 0
    kinds: list[int] = []
    for instr in body:
        code = instr.op
        if code in (op.BLOCK, op.LOOP, op.IF):
            kinds.append(code)
            if code != op.BLOCK:
                depth += 1
                deepest = max(deepest, depth)
                if code == op.LOOP:
                    loops += 1
                    deepest_loops = max(deepest_loops, loops)
        elif code == op.END and kinds:
            kind = kinds.pop()
            if kind != op.BLOCK:
                depth -= 1
                if kind == op.LOOP:
                    loops -= 1
    return deepest, deepest_loops


def compile_function(
    info: ModuleInfo, func_index: int, fuel: bool = False, fuel_shortcuts: bool = True
) -> str:
    """The Python source of ``def f<func_index>(...)`` for a defined function.

    With ``fuel`` the function charges one unit of the instance's ``FUEL`` per instruction
    executed and traps with "all fuel consumed" when it runs out. Every valid function
    compiles, in time linear in its size.
    """
    module = info.module
    body = module.functions[func_index - (len(info.func_types) - len(module.functions))].body
    depth, loops = nesting(body)
    if depth <= DEEP_NESTING and loops <= MAX_WHILE_NESTING:
        try:
            return FunctionCompiler(info, func_index, fuel, fuel_shortcuts).compile()
        except NestingTooDeep:
            pass
        try:
            # Label regions indent; flat guards do not.
            return FunctionCompiler(info, func_index, fuel, fuel_shortcuts, regions=False).compile()
        except NestingTooDeep:
            pass
    return FlatCompiler(info, func_index, fuel).compile()
