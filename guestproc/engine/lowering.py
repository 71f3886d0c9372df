"""Which lowering a function gets: structured (``compiler``), flattened (``flat``) or split
(``split``).

::

    structured ──NestingTooDeep──▶ structured, flat guards ──NestingTooDeep──▶ flat
         │ (at once, before any code is made, when ifs and loops nest deeper than
         │  compiler.DEEP_NESTING, or loops deeper than MAX_WHILE_NESTING: then flat)
         ▼
    the source longer than SPLIT_SOURCE characters? ──yes──▶ split (compiled in pieces)

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

from types import CodeType

from .compiler import FunctionCompiler, ModuleInfo, NestingTooDeep
from .flat import FlatCompiler
from .split import SplitCompiler

SPLIT_SOURCE = 600_000
"""Functions whose source would be longer than this (characters) are compiled in pieces.

CPython's compiler takes about 70-90 bytes of memory per character of source, all at once
for one function (measured: 1.24 MB of source, 108 MiB; 2 MB, 114 MiB), and a guest loads
within 64 MiB plus 256 bytes per byte of module (``guestproc.sandbox``): so at most about
45 MiB for one function. The largest function of the benchmarks and test fixtures is 83 KB
of source; the pathological ones of ``host.bench.loadshapes`` reach 2 MB."""


def _lower(info: ModuleInfo, func_index: int, fuel: bool, fuel_shortcuts: bool) -> FunctionCompiler:
    """The compiler that took the function (its ``source`` made)."""
    lowered: FunctionCompiler | None = None
    for regions in (True, False):  # label regions indent; flat guards do not
        try:
            lowered = FunctionCompiler(info, func_index, fuel, fuel_shortcuts, regions)
            lowered.compile()
            break
        except NestingTooDeep as exc:
            lowered = None
            if exc.at_once:  # its nesting alone is too deep: no other way will fit
                break
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
    executed, and bulk operations their length too (``fuel.FuelTank.pay_bytes``), and traps
    with "all fuel consumed" when it runs out. Every valid function compiles, in time linear
    in its size.
    """
    return _lower(info, func_index, fuel, fuel_shortcuts).source


def function_code(
    info: ModuleInfo, func_index: int, fuel: bool = False, fuel_shortcuts: bool = True
) -> CodeType:
    """The code object that defines the function (see ``compile_function``) when executed
    in an instance's namespace."""
    return _lower(info, func_index, fuel, fuel_shortcuts).code()
