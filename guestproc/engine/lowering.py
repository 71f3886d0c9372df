"""Which lowering a function gets: structured (``compiler``), flattened (``flat``) or split
(``split``).

::

    body ──nesting (one pass)──▶ deeper than the structured lowering can take? ──yes──▶ flat
                                         │ no
                                         ▼
        structured ──NestingTooDeep──▶ structured, flat guards ──NestingTooDeep──▶ flat
                                         │
                     source over SPLIT_SOURCE characters? ──yes──▶ split (in pieces)

The structured lowering gives the fastest code: Wasm's blocks become Python's own ``while``
and ``if``. CPython limits it to 100 levels of indentation and 20 nested loops; the flattened
lowering (a dispatch loop over basic blocks) has no such limit and takes any valid function,
and the split one compiles a function too big for CPython's compiler in one piece as several.
Measured on one machine, a call of:

    ===========================  ==========  ======  =====
    function                     structured  flat    split
    ===========================  ==========  ======  =====
    40 nested ifs                1.3 us      3.8     7.1
    18 nested loops (2,000 x)    251 us      386     460
    br_table of 2,000 targets    106 us      408     454
    ===========================  ==========  ======  =====

So every function gets the structured lowering if it fits, and the others only when it does
not. Each attempt takes time linear in the function's size, so a function that fails the
structured lowerings still compiles in linear time (three passes at most).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import CodeType

from . import opcodes as op
from .compiler import (
    MAX_INDENT,
    MAX_WHILE_NESTING,
    FunctionCompiler,
    ModuleInfo,
    NestingTooDeep,
)
from .flat import FlatCompiler
from .module import Instr
from .split import SplitCompiler

DEEP_NESTING = MAX_INDENT - 1
"""Functions whose ``if``s and loops nest deeper than this go straight to the flat lowering:
each indents the structured code one level more than the function body (``MAX_INDENT``).
Shallower ones are tried (and often fit: it depends on the branches, which may double the
indentation), since the structured code is the fastest."""

SPLIT_SOURCE = 600_000
"""Functions whose source would be longer than this (characters) are compiled in pieces.

CPython's compiler takes about 70-90 bytes of memory per character of source, all at once
for one function (measured: 1.24 MB of source, 108 MiB; 2 MB, 114 MiB), and a guest loads
within 64 MiB plus 256 bytes per byte of module (``guestproc.sandbox``): so at most about
45 MiB for one function. The largest function of the benchmarks and test fixtures is 83 KB
of source; the pathological ones of ``host.bench.loadshapes`` reach 2 MB."""


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


def _lower(info: ModuleInfo, func_index: int, fuel: bool, fuel_shortcuts: bool) -> FunctionCompiler:
    """The compiler that took the function (its ``source`` made)."""
    module = info.module
    body = module.functions[func_index - (len(info.func_types) - len(module.functions))].body
    depth, loops = nesting(body)
    lowered: FunctionCompiler | None = None
    if depth <= DEEP_NESTING and loops <= MAX_WHILE_NESTING:
        for regions in (True, False):  # label regions indent; flat guards do not
            try:
                lowered = FunctionCompiler(info, func_index, fuel, fuel_shortcuts, regions)
                lowered.compile()
                break
            except NestingTooDeep:
                lowered = None
    if lowered is None:
        lowered = FlatCompiler(info, func_index, fuel)
        lowered.compile()
    if len(lowered.source) > SPLIT_SOURCE:
        lowered = SplitCompiler(info, func_index, fuel)
        lowered.compile()
    return lowered


def compile_function(
    info: ModuleInfo, func_index: int, fuel: bool = False, fuel_shortcuts: bool = True
) -> str:
    """The Python source of ``def f<func_index>(...)`` for a defined function (to read: a
    function compiled in pieces shows them one after the other).

    With ``fuel`` the function charges one unit of the instance's ``FUEL`` per instruction
    executed and traps with "all fuel consumed" when it runs out. Every valid function
    compiles, in time linear in its size.
    """
    return _lower(info, func_index, fuel, fuel_shortcuts).source


def function_code(
    info: ModuleInfo, func_index: int, fuel: bool = False, fuel_shortcuts: bool = True
) -> CodeType:
    """The code object that defines the function (see ``compile_function``) when executed
    in an instance's namespace."""
    return _lower(info, func_index, fuel, fuel_shortcuts).code()
