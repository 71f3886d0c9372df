"""The one leak check: what a test left running or open, against a snapshot taken before it.

``LeakCheck()`` records the test process's descendants and open descriptors; ``problems()``
(at teardown) waits a short grace period for things to go, kills what is left and reports

- processes: a descendant of the test process that was not there before, still alive or a
  zombie (whoever started it must reap it); and a Kindling process (a guest or template,
  ``guestproc`` in its command line, or a ``kindling`` host or a fork of one) started since
  the snapshot that is no longer our descendant: an orphan re-parented away from us;
- file descriptors: every descriptor of the test process (``/proc/self/fd``) opened, or
  pointing elsewhere, or closed since the snapshot, each named with its target.

An orphan is recognised as ours by ``KINDLING_TEST_OWNER`` (our pid) in its environment, or,
if the host scrubbed that (a guest's environment holds only ``PYTHONPATH``), by being a
Kindling process re-parented to pid 1 that started since the snapshot. Other test runs' live
processes are left alone.

Used by the ``no_leaks`` fixture (automatic for the host's tests) and by ``GuestFactory``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time

import psutil

from .guest import OWNER_VARIABLE, is_kindling_process

GRACE_SECONDS = 5.0


def open_fds() -> dict[int, str]:
    """The test process's open descriptors and what each points to."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listdir itself used is gone
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return found


class LeakCheck:
    """A snapshot of the test process's descendants and descriptors; see the module docstring."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        gc.collect()  # count only descriptors something still holds (as problems() does)
        self._fds_before = open_fds()
        self._children_before = {p.pid for p in self._me.children(recursive=True)}
        # create_time has a coarse resolution; anything started a little before is "ours" too.
        self._since = time.time() - 1.0

    def problems(self, grace: float = GRACE_SECONDS) -> list[str]:
        """Kill every process left behind and return the leaks found (empty when clean).

        Processes and descriptors get ``grace`` seconds to go on their own first.
        """
        deadline = time.monotonic() + grace
        while True:
            gc.collect()  # Popen objects, pipes and sockets dropped by the test close here
            strays = self._strays()
            fds = self._fd_changes()
            if (not strays and not fds) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        problems = []
        for proc in strays:
            try:
                state = " (zombie)" if proc.status() == psutil.STATUS_ZOMBIE else ""
                problems.append(f"stray process {proc.pid}{state}: {' '.join(proc.cmdline())}")
                proc.kill()
            except psutil.ZombieProcess:  # cmdline() of a zombie (a kind of NoSuchProcess)
                problems.append(f"stray process {proc.pid} (zombie)")
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(strays, timeout=5)
        return problems + fds

    def _strays(self) -> list[psutil.Process]:
        mine = {self._me.pid} | {p.pid for p in self._me.parents()}
        found = {
            p.pid: p
            for p in self._me.children(recursive=True)
            if p.pid not in self._children_before and _exists(p)
        }
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

    def _fd_changes(self) -> list[str]:
        now = open_fds()
        before = self._fds_before
        opened = {fd: target for fd, target in now.items() if before.get(fd) != target}
        closed = {fd: target for fd, target in before.items() if fd not in now}
        problems = []
        if opened:
            problems.append(f"descriptors left open: {_describe(opened)}")
        if closed:
            problems.append(f"descriptors open before the test were closed: {_describe(closed)}")
        return problems


def _describe(fds: dict[int, str]) -> str:
    return ", ".join(f"{fd}->{target}" for fd, target in sorted(fds.items()))


def _exists(proc: psutil.Process) -> bool:
    """Alive or a zombie: either way not yet reaped."""
    try:
        proc.status()
    except psutil.NoSuchProcess:
        return False
    return True


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
