"""The holder of a template's guests' PID namespace, host side: watch it, end it, and reap
what the template made that the host was never told of.

::

    template, at Load, before it decodes the module (guestproc.cloning):
        clone_parent() ─▶ holder: process 1 of a new PID namespace, a child of ours
        ◀── Namespace(pid)                        ─▶ NamespaceHolder(pid)
    every process the template makes afterwards is in that namespace
    NamespaceHolder.end():  SIGKILL the holder ─▶ the kernel kills the whole namespace
        reap the strays: our children in it that we do not know (zombies by now)
        ─▶ the holder finishes exiting; its pidfd says so; we reap it

While the templates run, ``StrayHunt`` (the fleet's, every ``STRAY_SWEEP_SECONDS``) ends the
processes in their namespaces that the host was never told of.

Why the strays are ours to reap: a template (and whatever it forks, the same way) clones
with ``CLONE_PARENT``, so each process is a child of the host, and an init finishes dying
only once every process of its namespace has been reaped. A template that an engine bug
let an attacker take over can fork processes we never asked for; nobody else reaps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable

from .watchdog import stat_fields

HOLDER_EXIT_SECONDS = 5.0
"""Seconds ``NamespaceHolder.end`` waits for the holder to exit once killed; it is reaped
later if it takes longer."""


class NamespaceHolder:
    """The process that holds a template's guests' PID namespace (its init): a child of
    ours that only waits. We reap it, and call ``gone`` if it ends before ``end``."""

    def __init__(self, pid: int, loop: asyncio.AbstractEventLoop, gone: Callable[[], None]) -> None:
        self.pid = pid
        self.namespace = pid_namespace(pid)
        self._loop = loop
        self._gone = gone
        self._pidfd = os.pidfd_open(pid)
        self._ended: asyncio.Future[None] | None = None  # set by end(): we killed it
        loop.add_reader(self._pidfd, self._on_exit)

    def _on_exit(self) -> None:
        self._stop_watching()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)  # it has exited: its pidfd said so
        if self._ended is None:
            self._gone()
        elif not self._ended.done():
            self._ended.set_result(None)

    def _stop_watching(self) -> None:
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    async def end(self, known: Callable[[int], bool]) -> None:
        """Kill it (SIGKILL: an init ignores the rest), and with it every process in its
        namespace; reap those of them that are our children and not ``known`` (strays a
        subverted template forked), and the holder once its pidfd says it has exited,
        waiting at most ``HOLDER_EXIT_SECONDS``.

        Never a blocking ``waitpid``: the holder finishes dying only once every process in
        its namespace has been reaped, and a stray may still be dying. Past the deadline
        the holder is reaped when it does exit."""
        if self._pidfd < 0:
            return  # it ended already, and was reaped
        self._ended = self._loop.create_future()
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        deadline = self._loop.time() + HOLDER_EXIT_SECONDS
        pause = 0.001
        strays = StrayHunt(grace=0.0)  # all of them are dying with the namespace
        while not self._ended.done() and self._loop.time() < deadline:
            with contextlib.suppress(OSError):
                strays.sweep([self], known)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._ended), pause)
            pause = min(pause * 2, 0.05)


class StrayHunt:
    """Ends the processes in our templates' namespaces that the host was never told of,
    while the templates live on: a template that an engine bug let an attacker take over
    after its start could fork them, and nothing else would watch them (no watchdog, no
    limit of the host's) until the host closes.

    ``sweep`` goes over our children; one that is in a holder's namespace, is neither the
    holder nor ``known``, and is still unknown ``grace`` seconds after it was first seen is
    killed and reaped. A guest the template forks on request is known well within the grace
    (``Fleet.fork`` registers it once the template has said its pid; a reply takes at most
    the fork timeout to come), so only a process nobody asked for outlives it."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self._first_seen: dict[int, float] = {}
        self.ended = 0  # strays killed or reaped, in all

    def sweep(self, holders: list[NamespaceHolder], known: Callable[[int], bool]) -> list[int]:
        """One pass; the pids of the strays it ended."""
        namespaces = {holder.namespace for holder in holders}
        holder_pids = {holder.pid for holder in holders}
        now = time.monotonic()
        seen: dict[int, float] = {}
        ended = []
        for pid in children() if namespaces else ():
            if pid in holder_pids or known(pid):
                continue
            try:
                if pid_namespace(pid) not in namespaces:
                    continue
            except OSError:
                continue
            first = seen[pid] = self._first_seen.get(pid, now)
            if now - first < self.grace:
                continue
            # Still our child, unreaped: its pid cannot have been given to another process.
            fields = stat_fields(pid)
            if fields is not None and fields[0] != b"Z":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                continue  # reaped by the next pass, once it is a zombie
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
                ended.append(pid)
                del seen[pid]
        self._first_seen = seen
        self.ended += len(ended)
        return ended


def children() -> list[int]:
    """The pids of this process's children, exited ones included (each thread's list:
    a child's parent is the thread that made it)."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir("/proc/self/task"):
            with (
                contextlib.suppress(FileNotFoundError),
                open(f"/proc/self/task/{task}/children", "rb") as listed,
            ):
                found.extend(int(pid) for pid in listed.read().split())
    return found


def pid_namespace(pid: int) -> tuple[int, int]:
    """Which PID namespace process ``pid`` is in (``OSError`` if it cannot be told)."""
    found = os.stat(f"/proc/{pid}/ns/pid")
    return found.st_dev, found.st_ino
