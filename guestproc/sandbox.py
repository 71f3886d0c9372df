"""The sandbox a guest process puts itself in before it touches untrusted bytes.

Four steps, all but ``limit_loading`` one-way (hard limits are lowered with the soft ones,
so nothing in the process can raise them again):

- ``enter`` runs first thing at start-up: descriptors 0-2 point at /dev/null, every other
  inherited descriptor except the two protocol pipes is closed, the environment is emptied,
  the process is its own process group, dies with its host (``PR_SET_PDEATHSIG``) and can
  never gain privileges (``PR_SET_NO_NEW_PRIVS``).
- ``restrict`` follows once the engine is imported: the process may write no file data
  (``RLIMIT_FSIZE`` 0 -- CPython ignores SIGXFSZ, so a write fails with EFBIG), dump no
  core, and open almost no descriptors. The main thread's stack limit is raised, as a
  margin for C recursion.
- ``limit_loading`` runs when ``Load`` arrives, before the module bytes are decoded: a soft
  ``RLIMIT_DATA`` sized for the loader's work on a module of that size.
- ``limit_resources`` runs when ``Boot`` arrives, before any of the module's code can run:
  ``RLIMIT_DATA`` for good (a backstop above the engine's own linear-memory budget, see
  ``data_limit``) and ``RLIMIT_CPU`` (then the kernel sends SIGXCPU, which ends the process).

The limits inside the engine come first and give precise endings (``memory.grow`` returns -1
at the budget); these kernel limits catch whatever gets past them.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import resource
import signal
from typing import Any

MIB = 1024 * 1024

MAX_OPEN_FILES = 16
"""RLIMIT_NOFILE: the pipes, stdio, and a little room (CPython opens source files to import)."""

STACK_BYTES = 112 * MIB
"""RLIMIT_STACK once raised. The main thread's stack grows on demand up to this; the kernel
leaves at least 128 MiB below a stack for it when the program starts, so this fits."""

DATA_MARGIN = 64 * MIB
"""Room above the measured baseline for the interpreter's own work (frames of deep calls,
compiled code, transient copies)."""

DATA_PER_MODULE_BYTE = 256
"""Decoding, validating and compiling a module costs the interpreter up to about this many
bytes per byte of module (measured: ~40x decoded, ~250x after compiling small modules)."""

LINEAR_MEMORY_FACTOR = 3
"""``memory.grow`` briefly holds old and new contents while the bytearray is extended."""


def enter(keep: tuple[int, ...]) -> None:
    """Apply the start-up sandbox; ``keep`` are the protocol pipes' descriptors."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if null != fd:
            os.dup2(null, fd, inheritable=False)
    protected = {0, 1, 2, *keep}
    if null not in protected:
        os.close(null)
    _close_all_but(protected)
    os.environ.clear()
    with contextlib.suppress(OSError):  # already a group leader: the host spawned us that way
        os.setpgid(0, 0)
    tie_to_parent()


PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38


def tie_to_parent() -> None:
    """Die with the host (SIGKILL when it exits, however it exits), and never gain
    privileges through exec. A host killed with SIGKILL cannot clean up: without this, a
    guest in an endless loop would outlive it. (If the host died even before this call,
    the guest's first write, its Hello, fails and it exits then.)"""
    set_parent_death_signal()
    _prctl()(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def set_parent_death_signal() -> None:
    """SIGKILL when the parent dies (a forked guest's parent is the host)."""
    _prctl()(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@functools.cache
def _prctl() -> Any:
    """libc's prctl, looked up once: a template looks it up before forking, so its guests
    do not each write to the pages that a fresh ctypes lookup touches."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


def restrict() -> None:
    """The fixed limits: no files written, no core dumps, few descriptors, a deeper stack."""
    _set_limit(resource.RLIMIT_FSIZE, 0)
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_NOFILE, MAX_OPEN_FILES)
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    wanted = STACK_BYTES if hard == resource.RLIM_INFINITY else min(hard, STACK_BYTES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_STACK, (wanted, hard))


def limit_forked(cpu_seconds: int | None) -> None:
    """In a guest forked from a template: its own limits, which the template could not set
    for it. The CPU limit counts from zero again (a child's CPU time starts at zero, but the
    template's limit allowed for its own start-up); no process may be created."""
    if cpu_seconds is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    limit_processes()


def limit_processes() -> None:
    """RLIMIT_NPROC 0: no new process (the kernel exempts root; seccomp stops it anyway)."""
    _set_limit(resource.RLIMIT_NPROC, 0)


def _close_all_but(protected: set[int]) -> None:
    start = 0
    for fd in sorted(protected):
        if fd > start:
            os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _set_limit(which: int, value: int) -> None:
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY and hard < value:
        value = hard
    resource.setrlimit(which, (value, value))


def data_in_use() -> int:
    """The process's data segment size now (``VmData``: heap and private mappings), bytes."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmData:"):
                return int(line.split()[1]) * 1024
    raise OSError("VmData is missing from /proc/self/status")


def data_limit(baseline: int, memory_budget: int, module_size: int) -> int:
    """``RLIMIT_DATA`` for a guest: the baseline, its linear memory, the module's cost, margin."""
    return (
        baseline
        + LINEAR_MEMORY_FACTOR * memory_budget
        + DATA_PER_MODULE_BYTE * module_size
        + DATA_MARGIN
    )


def limit_loading(module_size: int) -> int:
    """Before decoding a module: a soft ``RLIMIT_DATA`` for the loading work; the limit in
    bytes. The hard limit stays where it is, so ``limit_resources`` can set the real one
    once the memory budget is known (nothing but the loader runs until then)."""
    limit = data_limit(data_in_use(), 0, module_size)
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return limit


def limit_resources(memory_budget: int, module_size: int, cpu_seconds: int | None) -> int:
    """Before instantiating (the first module code): the per-guest kernel limits, for good.
    Returns the ``RLIMIT_DATA`` set, in bytes.

    ``cpu_seconds`` counts from now: the CPU time already spent starting up is added.
    """
    limit = data_limit(data_in_use(), memory_budget, module_size)
    _set_limit(resource.RLIMIT_DATA, limit)
    if cpu_seconds is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        spent = math.ceil(usage.ru_utime + usage.ru_stime)
        soft = spent + cpu_seconds
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        # One more second past SIGXCPU, the kernel sends SIGKILL.
        if hard == resource.RLIM_INFINITY or hard > soft + 1:
            hard = soft + 1
        resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard), hard))
    return limit
