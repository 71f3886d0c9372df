"""Exit classification: how a guest ended, from its last reply or its process's exit status.

::

    final reply ── ending_of_reply ──▶ Ending | None (the guest goes on)
    wait4 status ── classify_exit ───▶ Ending         (when no reply decided it first)

Both are pure functions of what the guest said and what the kernel reported, so the one
place that decides "which ending" can be read (and tested) without a process.
"""

from __future__ import annotations

import signal

from protocol.messages import (
    Exited,
    GuestExitStatus,
    GuestMessage,
    Invoke,
    LimitReached,
    LoadFailed,
    Message,
    TrapKind,
    Trapped,
)

from .endings import Ending, Limit
from .transport import ExitStatus


def ending_of_reply(reply: GuestMessage, request: type[Message]) -> Ending | None:
    """The ending a final reply to ``request`` implies when it ends the guest, or None when
    the guest goes on (a trap in an invoked export leaves the instance usable)."""
    if isinstance(reply, Exited):
        return Ending.exited(reply.code)
    if isinstance(reply, LoadFailed):
        return Ending.load_failure(reply.stage, reply.message)
    if isinstance(reply, LimitReached):
        return Ending.limit(reply.resource, reply.message)
    if isinstance(reply, Trapped) and (
        request is not Invoke or reply.kind is TrapKind.INTERNAL_ERROR
    ):
        return ending_of_trap(reply)
    return None


def ending_of_trap(reply: Trapped) -> Ending:
    """``trapped(kind)``, with the backtrace the guest sent as lines, innermost first."""
    lines = tuple(
        f"{number}: wasm function {frame.function}" + (f" ({frame.name})" if frame.name else "")
        for number, frame in enumerate(reply.backtrace or ())
    )
    return Ending.trapped(reply.kind, reply.message, lines)


def classify_exit(status: ExitStatus, cpu_limit: int | None) -> Ending:
    """The ending of a guest process that died without a decided ending. ``cpu_limit``: the
    CPU seconds its configuration allowed (a SIGKILL past them is the kernel's hard limit)."""
    if status.signal is not None:
        if status.signal == signal.SIGXCPU or (
            status.signal == signal.SIGKILL
            and cpu_limit is not None
            and status.cpu_seconds >= cpu_limit
        ):
            if cpu_limit is None:
                return Ending.limit(Limit.CPU, "got SIGXCPU, the CPU-time limit's signal")
            return Ending.limit(Limit.CPU, f"used more than its {cpu_limit} s of CPU time")
        return Ending.signalled(status.signal)
    if status.code == GuestExitStatus.OUT_OF_MEMORY:
        return Ending.limit(Limit.MEMORY, "the guest process ran out of memory")
    if status.code == GuestExitStatus.HOST_BROKE_PROTOCOL:
        return Ending.protocol_error("the guest says the host broke the protocol")
    return Ending.protocol_error(
        f"the guest process ended ({status}) without reporting how the run ended"
    )
