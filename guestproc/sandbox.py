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
  ``RLIMIT_DATA`` that holds the guest to the loading bound (``protocol.limits``).
- ``limit_running`` runs when ``Boot`` arrives, before any of the module's code can run:
  ``RLIMIT_DATA`` for the running bound, for good, and ``RLIMIT_CPU`` (then the kernel sends
  SIGXCPU, which ends the process). A guest forked from a template inherits its
  ``RLIMIT_DATA``, which the template sets for its guests before it forks the first
  (``limit_guests``; the template's own allowed for loading), and sets its CPU limit with
  ``limit_forked``.

``RLIMIT_DATA`` counts address space (``VmData``: the heap and private writable mappings),
the bound counts pages in use (USS); address space is never less than the private pages in
it. A guest started by exec counts all of its address space: its limit is the bound (or what
it has, if that is more). A forked guest counts none of what it inherited from its template
(those pages are the template's until it writes to them, and the watchdog sees it if it
does): its limit is what it has plus the bound. Both get an eighth of the memory budget more,
as address space only: a ``bytearray`` (linear memory) reserves up to an eighth more than it
holds, and never touches it. Memory that ``RLIMIT_DATA`` does not count -- shared mappings,
``MAP_GROWSDOWN`` -- a guest cannot map (``hardening.ARGUMENT_RULES``); its stack it can
grow, and the host's watchdog, which reads USS, ends it then.

Which of these a guest, a template and a forked guest take on, and when, is decided in one
place: ``confinement``.

The limits inside the engine come first and give precise endings (``memory.grow`` returns -1
at the budget, deep recursion of big frames traps at ``EngineLimits.frame_bytes``); these
kernel limits catch whatever gets past them (``MemoryError``: ``limit(memory)``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import resource
import signal
from typing import Any

from protocol.limits import SNAPSHOT_ALLOWANCE, loading_bound, running_bound
from protocol.messages import GUEST_UID_VARIABLE, SUBORDINATE_IDS_VARIABLE

MIB = 1024 * 1024

MAX_OPEN_FILES = 16
"""RLIMIT_NOFILE: the pipes, stdio, and a little room (CPython opens source files to import)."""

STACK_BYTES = 112 * MIB
"""RLIMIT_STACK once raised. The main thread's stack grows on demand up to this; the kernel
leaves at least 128 MiB below a stack for it when the program starts, so this fits."""


named_uid = ""
"""The uid the host named for this guest (``GUEST_UID_VARIABLE``), kept from the environment
``enter`` empties; "" if none."""

subordinate_ids = ""
"""The subordinate uid and gid the host maps into our user namespace
(``SUBORDINATE_IDS_VARIABLE``, ``UID:GID``); "" if none. ``enter`` made that namespace."""

CLONE_NEWUSER = 0x10000000


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
    global named_uid, subordinate_ids
    keep_status()
    named_uid = os.environ.get(GUEST_UID_VARIABLE, "")  # for the uid drop at Load
    subordinate_ids = os.environ.get(SUBORDINATE_IDS_VARIABLE, "")
    os.environ.clear()
    if subordinate_ids:
        enter_user_namespace()
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


def enter_user_namespace() -> None:
    """A user namespace of our own, now, before the Hello: the host maps our subordinate
    uid and gid into it (``host.idmap``) before it answers, and we take them at Load
    (``hardening.drop_privileges``). If this fails, the ids are never taken, and the
    probe and the doctor say so."""
    import ctypes

    global subordinate_ids
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWUSER) != 0:
        subordinate_ids = ""


def set_parent_death_signal() -> None:
    """SIGKILL when the parent dies (a forked guest's parent is the host)."""
    _prctl()(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@functools.cache
def _prctl() -> Any:
    """libc's prctl, looked up once: a template looks it up before forking, so its guests
    do not each write to the pages that a fresh ctypes lookup touches."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


def release_freed() -> None:
    """Give the heap memory that is free back to the kernel (glibc's ``malloc_trim``: the
    top of the heap is unmapped, free pages inside it are released), so that it no longer
    counts as the process's own. About half a millisecond after loading a C program."""
    import ctypes

    with contextlib.suppress(AttributeError):  # not glibc
        ctypes.CDLL(None).malloc_trim(0)


def restrict() -> None:
    """The fixed limits: no files written, no core dumps, few descriptors, a deeper stack."""
    _set_limit(resource.RLIMIT_FSIZE, 0)
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_NOFILE, MAX_OPEN_FILES)
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    wanted = STACK_BYTES if hard == resource.RLIM_INFINITY else min(hard, STACK_BYTES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_STACK, (wanted, hard))


def limit_guests(memory_budget: int, code_size: int) -> int:
    """In a template, once it is ready to fork: ``RLIMIT_DATA``, for good, at what each of
    its guests may have -- the address space it inherits (the pages it shares with the
    template are not its own: its USS starts near zero) and the running bound in new
    memory. The guests inherit the limit with the rest, so not one of them spends a system
    call or a page of its own on it; the template, which only forks from now on, needs no
    more. The limit set, bytes."""
    limit = data_in_use() + running_bound(memory_budget, code_size) + reserve(memory_budget)
    _set_limit(resource.RLIMIT_DATA, limit)
    return limit


def limit_forked(cpu_seconds: int | None) -> None:
    """In a guest forked from a template: its own limits, which the template could not set
    for it (``RLIMIT_DATA`` it inherits: ``limit_guests``). The CPU limit counts from zero
    again (a child's CPU time starts at zero, but the template's limit allowed for its own
    start-up); no process may be created."""
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


_status_fd = -1  # /proc/self/status, opened at start-up (``enter``): no file opens later


def data_in_use() -> int:
    """The process's data segment size now (``VmData``: heap and private mappings), bytes.
    Read through the descriptor ``enter`` opened (a read at offset 0 regenerates it), since
    the loader's filter opens no file; a process that never entered opens it now."""
    if _status_fd >= 0:
        status = os.pread(_status_fd, 8192, 0)
    else:
        with open("/proc/self/status", "rb") as file:
            status = file.read()
    for line in status.splitlines():
        if line.startswith(b"VmData:"):
            return int(line.split()[1]) * 1024
    raise OSError("VmData is missing from /proc/self/status")


def keep_status() -> None:
    """Open ``/proc/self/status`` for ``data_in_use``, while files may still be opened."""
    global _status_fd
    if _status_fd < 0:
        _status_fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)


def forget_status() -> None:
    """Close the ``/proc/self/status`` descriptor: once the running limits are set for
    good, nothing reads it (a forked guest's names its template's)."""
    global _status_fd
    if _status_fd >= 0:
        os.close(_status_fd)
        _status_fd = -1


def _hold_to(bound: int, slack: int, for_good: bool) -> int:
    """Set ``RLIMIT_DATA`` so the process's address space, all of it its own, can reach
    ``bound``, and ``slack`` more; the limit, bytes. ``for_good``: the hard limit too (else
    it stays, and a later call may raise the soft one)."""
    limit = max(data_in_use(), bound) + slack
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit if for_good else hard))
    return limit


def reserve(memory_budget: int) -> int:
    """Address space beyond the bound that linear memory may reserve without using it."""
    return memory_budget // 8


def limit_loading(module_size: int) -> int:
    """Before decoding a module: a soft ``RLIMIT_DATA`` for the loading bound; the limit in
    bytes. The hard limit stays where it is, so ``limit_running`` can set the real one once
    the memory budget is known (nothing but the loader runs until then)."""
    return _hold_to(loading_bound(module_size), 0, for_good=False)


def allow_snapshot() -> int:
    """In a template, once loaded: the soft ``RLIMIT_DATA`` raised by
    ``SNAPSHOT_ALLOWANCE``, for the Boot that may carry a snapshot; the limit, bytes."""
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    if soft == resource.RLIM_INFINITY:
        return soft
    return _hold_to(soft + SNAPSHOT_ALLOWANCE, 0, for_good=False)


def allow_instance(memory_budget: int, code_size: int) -> int:
    """In a template at Boot, before it instantiates: the soft ``RLIMIT_DATA`` raised to the
    running bound (its linear memory, which a snapshot fills, counts as a guest's does) with
    the snapshot's room on top, as the host's watchdog allows while it boots; the limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    if soft == resource.RLIM_INFINITY:
        return soft
    bound = running_bound(memory_budget, code_size) + SNAPSHOT_ALLOWANCE
    return _hold_to(max(soft, bound), 0, for_good=False)


def limit_running(memory_budget: int, code_size: int, cpu_seconds: int | None) -> int:
    """Before instantiating (the first module code), for good: ``RLIMIT_DATA`` for the
    running bound and ``RLIMIT_CPU``; the ``RLIMIT_DATA`` set, in bytes.

    ``cpu_seconds`` counts from now: the CPU time already spent starting up is added.
    """
    bound = running_bound(memory_budget, code_size)
    limit = _hold_to(bound, reserve(memory_budget), for_good=True)
    limit_cpu(cpu_seconds)
    return limit


def limit_cpu(cpu_seconds: int | None, for_good: bool = True) -> None:
    """``RLIMIT_CPU``: ``cpu_seconds`` from now (SIGXCPU then), and with ``for_good`` the
    hard limit a second later (SIGKILL). A template sets only the soft limit at Boot, while
    it boots the module (installing its start function's snapshot): ``lift_cpu_limit`` takes it
    away once it only forks. (Its memory stays under the loading bound; its guests' limits
    are set for them: ``limit_guests``, ``limit_forked``.)"""
    if cpu_seconds is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        spent = math.ceil(usage.ru_utime + usage.ru_stime)
        soft = spent + cpu_seconds
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        # One more second past SIGXCPU, the kernel sends SIGKILL.
        if for_good and (hard == resource.RLIM_INFINITY or hard > soft + 1):
            hard = soft + 1
        resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard), hard))


def lift_cpu_limit() -> None:
    """A template that has started its module: no CPU limit of its own any more (the soft
    one goes back up to the hard one). It runs no module code from now on, and forking its
    guests, each with its own limit, must not count against the launch's."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
