"""A guest's memory bound: one formula for the guest (its kernel limit) and the host (its watchdog).

::

    running bound = memory budget + INTERPRETER_ALLOWANCE + CODE_ALLOWANCE x code size
    loading bound =                 INTERPRETER_ALLOWANCE + LOADING_ALLOWANCE x module size

What is bounded is the guest's *own* memory: the pages no other process shares, its USS
(``Private_Clean + Private_Dirty`` in ``/proc/PID/smaps_rollup``). For a guest forked from
a template that is what it changed or allocated since the fork; for a guest started by exec
it is all of its interpreter.

- The **running bound** holds from Boot, before any of the module's code runs, until the
  guest ends; a forked guest is under it from the fork (its template sets the limit its
  guests inherit before it forks the first). With the default 5 MiB budget and a 25 KB C program it is about 75 MiB.
- The **loading bound** holds while a guest started by exec decodes, validates and compiles
  its module; the guest drops what only loading needed (the module's bytes, its custom
  sections) before it moves to the running bound.

The parts, as measured (``DESIGN.md``, Limits):

- the memory budget: linear memory, which the engine caps at the budget (``memory.grow``
  returns -1 past it); a module's data segments are copied into it;
- ``INTERPRETER_ALLOWANCE``: the interpreter and the engine (about 10 MiB of USS in a guest
  started by exec, under 1 MiB in a forked one), the Wasm call stack's frames (functions
  with frames over 1 KiB are charged by the engine, up to 16 MiB; smaller ones are bounded
  by the call depth, 20,000 x 1 KiB), and transient work such as translating a function on
  its first call;
- ``CODE_ALLOWANCE`` per unit of code size: the decoded module (about 60 bytes per byte of
  code) and its compiled functions (15 to 130 bytes per byte, about 110 bytes per declared
  local). Custom sections count for nothing.

``code_size`` is the number of bytes of the module's code section, plus one for every local
its functions declare (declarations are run-length encoded: "49,999 locals of type i64"
takes four bytes, yet every one of them costs the compiled function a name and a slot in
each of its frames). For a module in the text format it is its number of instructions (each
is at least one byte in the binary format), plus its locals. The guest measures it before
any module code has run (it is in ``Loaded``).
"""

from __future__ import annotations

from .messages import MAX_SNAPSHOT_BYTES

MIB = 1024 * 1024

INTERPRETER_ALLOWANCE = 64 * MIB
"""The fixed part of every bound: the interpreter, the engine and the Wasm call stack."""

CODE_ALLOWANCE = 256
"""Bytes of the running bound per unit of code size (see the module docstring)."""

FRAME_ALLOWANCE = 16 * MIB
"""Of ``INTERPRETER_ALLOWANCE``: the most the frames the engine charges (those over 1 KiB)
may take on the Wasm call stack at once (``EngineLimits.frame_bytes``)."""

LOADING_ALLOWANCE = 256
"""Bytes of the loading bound per byte of module: decoding, validating and compiling take
up to about this much (the module's bytes, its decoded form, compiled code, transient
copies)."""


def snapshot_allowance(snapshot_size: int) -> int:
    """What a template may hold beyond its bound while it boots with a snapshot of this
    size (``StartMode``): the bytes Boot carried, and the pieces they unpack to."""
    return 2 * snapshot_size


SNAPSHOT_ALLOWANCE = snapshot_allowance(MAX_SNAPSHOT_BYTES)
"""The room a template makes for the largest snapshot, once its module is loaded."""


def running_bound(memory_budget: int, code_size: int) -> int:
    """The most memory (USS, bytes) a guest may have once its module's code can run."""
    return memory_budget + INTERPRETER_ALLOWANCE + CODE_ALLOWANCE * code_size


def loading_bound(module_size: int) -> int:
    """The most memory (USS, bytes) a guest may have while it loads a module of this size."""
    return INTERPRETER_ALLOWANCE + LOADING_ALLOWANCE * module_size
