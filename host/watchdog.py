"""The host's watchdog: every guest's own memory and CPU time, read from ``/proc``.

::

    every INTERVAL seconds (longer when a sweep is slow: at most BUDGET of a core)
      for each watched guest
        /proc/PID/statm   resident pages (RSS)       RSS <= bound: fine, since USS <= RSS
                                                     RSS >  bound:
        /proc/PID/smaps_rollup   USS = Private_Clean + Private_Dirty
                                                     USS >  bound: end it, limit(memory)
        /proc/PID/stat    utime + stime, only for a guest with a CPU limit
                                                     over the limit by a second: limit(cpu)

The figure is the guest's *own* memory, the pages it shares with no other process (USS):
what it wrote or allocated since it was forked from its template, or all of its interpreter
for a guest started by exec. Its bound is ``Guest.memory_bound`` (``protocol.limits``): the
running bound from the moment it is ready, the loading bound before. Reading smaps_rollup
walks every mapping of the process (about ten times what statm costs), so RSS, which is
never less than USS, is read first and smaps_rollup only for the few guests over their
bound by that figure. A guest forked from a template shares most of its RSS with it: idle,
its RSS is about 20 MiB and its USS under 1 MiB, far under a bound of 69 MiB or more.

A guest cannot hide memory from this figure: RLIMIT_DATA does not count shared mappings,
but a running guest's seccomp filter refuses ``MAP_SHARED`` (and ``MAP_GROWSDOWN``) in
``mmap``, and it can open no file, socket or shared memory object to map
(``guestproc.hardening.RUNNING``).

``Host`` runs one watchdog for all its guests; ``kindling run`` (``host.api.run_guest``) runs
one for its guest. The watchdog backs up the guest's own limits -- the engine's (linear
memory, charged frames), the kernel's (RLIMIT_DATA, RLIMIT_CPU) -- and catches what they do
not count: a stack grown deep, memory a compromised guest maps some other way.
"""

from __future__ import annotations

import asyncio
import os
import time

from .endings import Ending, Limit
from .guest import Guest, GuestState

INTERVAL = 0.1
"""Seconds between sweeps when they are cheap."""
BUDGET = 0.05
"""The share of one core the watchdog may use: a sweep that takes longer is followed by a
longer pause (with 5,000 guests a sweep takes about 100 ms, so they come every 2 s)."""
CPU_GRACE = 1.0
"""Seconds past its CPU limit before the watchdog ends a guest (the kernel's SIGXCPU comes
first; this catches a guest that ignores it)."""
PAGE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KIB = 1024


def resident(pid: int) -> tuple[int, int] | None:
    """Bytes resident (RSS) of ``pid`` and how many of them are file or shared-memory pages,
    from ``/proc/PID/statm``; None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            fields = statm.read().split()
        return int(fields[1]) * PAGE, int(fields[2]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def own_memory(pid: int) -> int | None:
    """Bytes only ``pid`` has (USS: ``Private_Clean + Private_Dirty``), from
    ``/proc/PID/smaps_rollup``; None if it is gone or cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            text = rollup.read()
    except OSError:
        return None
    private = 0
    for line in text.splitlines():
        if line.startswith(b"Private_"):
            private += int(line.split()[1]) * KIB
    return private


def stat_fields(pid: int | None) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after the command name (field 3, the state, is the
    first); None if the process is gone. The name is skipped by its last ")", since it may
    hold spaces and parentheses of its own."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid``, from ``/proc/PID/stat``; None if it is gone."""
    tail = stat_fields(pid)
    if tail is None:
        return None
    # Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    return (int(tail[11]) + int(tail[12])) / CLOCK_TICKS


def over_limit(pid: int, guest: Guest) -> Ending | None:
    """The limit ``guest`` (process ``pid``) is over now, as its ending; None if none."""
    bound = guest.memory_bound
    pages = resident(pid)
    if pages is not None and pages[0] > bound:
        uss = own_memory(pid)
        figure = "memory of its own (USS)"
        if uss is None:  # not ours to read (it cannot be, for a guest): count more, not less
            uss, figure = pages[0] - pages[1], "anonymous memory"
        if uss > bound:
            return Ending.limit(
                Limit.MEMORY,
                f"the watchdog saw {uss // KIB} KiB of {figure}, over its bound of "
                f"{bound // KIB} KiB",
            )
    limit = guest.cpu_limit
    if limit is not None:
        used = cpu_seconds(pid)
        if used is not None and used > limit + CPU_GRACE:
            return Ending.limit(Limit.CPU, f"the watchdog saw {used:.1f} s of CPU time")
    return None


class Watchdog:
    """Sweeps the guests it watches; see the module docstring. ``run()`` sweeps until
    cancelled; ``sweep()`` is one pass (tests and benchmarks call it directly)."""

    def __init__(self, interval: float = INTERVAL, budget: float = BUDGET) -> None:
        self.interval = interval
        self.budget = budget
        self._guests: dict[int, Guest] = {}
        self.sweeps = 0
        self.seconds = 0.0  # spent sweeping, in all

    def watch(self, guest: Guest) -> None:
        """Watch ``guest`` from now until it ends (it must have its process)."""
        if guest.pid is None:
            raise ValueError("a guest is watched once it has a process")
        self._guests[guest.pid] = guest

    def forget(self, guest: Guest) -> None:
        if guest.pid is not None and self._guests.get(guest.pid) is guest:
            del self._guests[guest.pid]

    def __len__(self) -> int:
        return len(self._guests)

    def sweep(self) -> int:
        """One pass over the watched guests; how many it ended."""
        started = time.perf_counter()
        ended = 0
        for pid, guest in list(self._guests.items()):
            if guest.ending is not None or guest.state is GuestState.ENDED:
                del self._guests[pid]
                continue
            ending = over_limit(pid, guest)
            if ending is not None:
                guest.end(ending)
                ended += 1
        self.sweeps += 1
        self.seconds += time.perf_counter() - started
        return ended

    async def run(self) -> None:
        """Sweep, then sleep so that sweeping costs at most ``budget`` of a core; forever."""
        while True:
            started = time.perf_counter()
            self.sweep()
            spent = time.perf_counter() - started
            await asyncio.sleep(max(self.interval, spent / self.budget))
