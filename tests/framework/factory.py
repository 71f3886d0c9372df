"""``GuestFactory``: makes guests for one test and proves at the end that nothing leaked.

Modelled on Firecracker's ``microvm_factory``: every guest a test starts goes through the
factory, and ``check_clean()`` (run by the fixture's teardown) kills anything still running
and reports

- processes: any descendant of the test process, and any Kindling process (a guest or
  template, ``guestproc`` in its command line, or a ``kindling`` host or a fork of one)
  started since the factory was made, still alive after a short grace period;
- file descriptors: a change in the test process's open-descriptor count.

A process that is no longer a descendant (an orphan re-parented to pid 1) is recognised by
``KINDLING_TEST_OWNER`` in its environment, or, if the host scrubbed that, by being an orphaned
Kindling process started since the factory was made. Other test runs' live processes are
left alone.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from .guest import OWNER_VARIABLE, Guest, is_kindling_process

GRACE_SECONDS = 5.0


class GuestFactory:
    """Builds ``Guest`` objects and tracks them; see the module docstring."""

    def __init__(self) -> None:
        self.guests: list[Guest] = []
        self._me = psutil.Process()
        gc.collect()  # count only descriptors something still holds (as check_clean does)
        self._fds_before = self._me.num_fds()
        # create_time has a coarse resolution; anything started a little before is "ours" too.
        self._since = time.time() - 1.0

    def build(self, module: Path | str, args: Any = (), **options: Any) -> Guest:
        """A new, not yet spawned ``Guest`` (options as for ``Guest``)."""
        guest = Guest(module, args, **options)
        self.guests.append(guest)
        return guest

    def run(
        self,
        module: Path | str,
        args: Any = (),
        *,
        stdin: bytes = b"",
        wait_seconds: float | None = None,
        **options: Any,
    ) -> Guest:
        """Build, spawn and wait for a guest; return it finished."""
        guest = self.build(module, args, **options)
        if wait_seconds is None:
            return guest.run(stdin)
        return guest.run(stdin, timeout=wait_seconds)

    def __iter__(self) -> Iterator[Guest]:
        return iter(self.guests)

    # -- teardown -----------------------------------------------------------------------------

    def check_clean(self, test_failed: bool = False) -> list[str]:
        """End everything still running and return the leaks found (empty when clean).

        A guest the test left running counts as a leak only if the test itself passed: a
        failed assertion naturally leaves its siblings unfinished.
        """
        problems: list[str] = []
        for guest in self.guests:
            if guest.running and not guest.killed and not test_failed:
                problems.append(f"{guest!r} was still running at teardown")
            if guest.running:
                guest.kill()
            if guest.process is not None:
                for stream in (guest.process.stdin, guest.process.stdout, guest.process.stderr):
                    if stream is not None and not stream.closed:
                        stream.close()

        strays = self._wait_for_strays_to_go()
        for proc in strays:
            try:
                problems.append(f"stray process {proc.pid}: {' '.join(proc.cmdline())}")
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(strays, timeout=5)

        gc.collect()  # Popen objects and pipes dropped by the test close here
        fds_after = self._me.num_fds()
        if fds_after != self._fds_before:
            problems.append(
                f"open file descriptors of the test process went from {self._fds_before} to "
                f"{fds_after}: {self._describe_fds()}"
            )
        return problems

    def _wait_for_strays_to_go(self) -> list[psutil.Process]:
        deadline = time.monotonic() + GRACE_SECONDS
        while True:
            strays = self._strays()
            if not strays or time.monotonic() > deadline:
                return strays
            time.sleep(0.05)

    def _strays(self) -> list[psutil.Process]:
        mine = {self._me.pid} | {p.pid for p in self._me.parents()}
        found = {p.pid: p for p in self._me.children(recursive=True) if _alive(p)}
        for proc in psutil.process_iter(["create_time"]):
            if proc.pid in mine or proc.pid in found:
                continue
            created = proc.info.get("create_time") or 0.0
            if created >= self._since and self._is_our_orphan(proc) and _alive(proc):
                found[proc.pid] = proc
        return list(found.values())

    def _is_our_orphan(self, proc: psutil.Process) -> bool:
        """A Kindling process that is no longer our descendant but was started by this test.

        Ours if its environment carries our pid in ``OWNER_VARIABLE``; when the host gave it
        a clean environment, an orphan (re-parented to pid 1) counts as ours.
        """
        if not is_kindling_process(proc):
            return False
        try:
            owner = proc.environ().get(OWNER_VARIABLE)
            parent = proc.ppid()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        if owner is not None:
            return bool(owner == str(self._me.pid))
        return bool(parent == 1)

    def _describe_fds(self) -> str:
        described = []
        for fd in sorted(os.listdir("/proc/self/fd"), key=int):
            # The descriptor listdir itself used is already closed: skip it.
            with contextlib.suppress(OSError):
                described.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
        return ", ".join(described)


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
