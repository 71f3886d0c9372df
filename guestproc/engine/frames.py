"""The Wasm call stack's memory: big frames are charged, so deep recursion of them ends on time.

CPython bounds how deep calls go (``EngineLimits.call_depth``), not how many bytes their
frames take. A frame holds a slot for every local and temporary of its function, so a
function with 49,999 locals has a 400 KB frame and 4,000 nested calls of it take 1.6 GB.
Left to the kernel's limit, such a recursion ends wherever the interpreter happens to run
out (and CPython 3.11 reports that as a ``SystemError``, not a ``MemoryError``).

So, when ``EngineLimits.frame_bytes`` is set (a guest sets it: ``protocol.limits``), every
function whose frame is over ``CHARGED_FRAME`` bytes is called through a wrapper that adds
its frame's size to the instance's ``StackCharge`` for as long as the call lasts; past
``frame_bytes`` the call traps with ``HOST_MEMORY_EXHAUSTED`` (the guest ends
``limit(memory)``: the bytes are memory, where the call depth, 20,000, is the stack's
``call_stack_exhausted``) -- at the same depth on every run of the same module and input.
Frames up to ``CHARGED_FRAME`` are bounded by the call depth: 20,000 x 1 KiB at most. (Only
the 1-2 biggest functions of a C program, such as ``printf``'s, are over it; the wrapper is
one extra call for them.)

The charge is the frame CPython allocates: a word per local, temporary and operand stack
slot of the compiled function, and its header. Values the slots point to (a large integer
is 32 bytes more) are not charged; the kernel's limit and the host's watchdog hold those.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CodeType
from typing import Any, NoReturn

from .errors import Trap, TrapCode

WORD = 8
FRAME_HEADER_WORDS = 12
"""CPython's ``_PyInterpreterFrame`` fields and the call's bookkeeping, in words."""
CHARGED_FRAME = 1024
"""Frames larger than this (bytes) are charged to the ``StackCharge``."""
CHARGED_FILENAME = "<charged frame>"
"""The file name of the wrapper that charges a big frame (``StackCharge.charged``)."""


def frame_size(code: CodeType, wasm_locals: int) -> int:
    """Bytes of a frame of ``code``, a compiled function with ``wasm_locals`` parameters and
    locals. Locals that are not Python locals (kept in a list, say) cost a word each too."""
    slots = code.co_nlocals + len(code.co_cellvars) + len(code.co_freevars) + code.co_stacksize
    if code.co_nlocals < wasm_locals:
        slots += wasm_locals
    return WORD * (slots + FRAME_HEADER_WORDS)


class StackCharge:
    """The bytes of charged frames on an instance's call stack now, and the most allowed
    (None: no charge at all)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def over(self) -> NoReturn:
        raise Trap(
            TrapCode.HOST_MEMORY_EXHAUSTED,
            f"the Wasm call stack's frames need more than {self.limit} bytes "
            "(call depth x frame size)",
        )

    def charged(self, call: Callable[..., Any], params: int, size: int) -> Callable[..., Any]:
        """``call`` (a compiled function of ``params`` parameters), charging ``size`` bytes
        while it runs. The wrapper takes exactly ``params`` positional arguments, so CPython
        calls through it without recursing in C."""
        names = ", ".join(f"a{index}" for index in range(params))
        source = (
            f"def charged({names}):\n"
            f"    STACK.used += {size}\n"
            "    try:\n"
            "        if STACK.used > STACK.limit:\n"
            "            OVER()\n"
            f"        return CALL({names})\n"
            "    finally:\n"
            f"        STACK.used -= {size}\n"
        )
        namespace: dict[str, Any] = {"STACK": self, "OVER": self.over, "CALL": call}
        exec(compile(source, CHARGED_FILENAME, "exec"), namespace)
        wrapper: Callable[..., Any] = namespace["charged"]
        return wrapper
