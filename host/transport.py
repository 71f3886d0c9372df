"""The transport to one guest process: exec, pipes, pid, signals, reaping. No protocol here.

::

    host process                                      guest process (own process group)
    ────────────                                      ──────────────────────────────────
    to_guest   (non-blocking) ──── pipe ────▶ fd 3    python -S -P -m guestproc 3 4
    from_guest (non-blocking) ◀─── pipe ───── fd 4    fds 0, 1, 2: /dev/null
    pidfd ── readable when the process has exited ──  env: PYTHONPATH only (to find our code)

``spawn`` needs no event loop (``kindling run`` spawns the guest before it imports asyncio
and pydantic, so their start-ups overlap); it uses ``posix_spawn`` (vfork + exec: the cheapest way to start a process), so the
child runs none of the host's Python code between fork and exec. The child's pipe ends are
first moved to descriptors >= 10, then ``dup2``'ed onto 3 and 4, so no pipe descriptor can be
clobbered whatever numbers ``pipe()`` returned. Everything else the host has open is
close-on-exec, and the guest closes whatever might still slip through before it reads
anything (``guestproc.sandbox``).

Exit is observed through a pidfd (no SIGCHLD handler, no child watcher thread, and no
pid-reuse race), and reaped with ``wait4`` so the kernel's resource usage of the guest --
peak RSS, CPU time -- comes with its exit status. A ``GuestProcess`` is always reaped: by
``wait()``, or at the latest by ``close()``, which kills and reaps it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from protocol.messages import GUEST_UID_VARIABLE, SUBORDINATE_IDS_VARIABLE

from .uids import exec_guest_env

GUEST_ID_VARIABLES = (GUEST_UID_VARIABLE, SUBORDINATE_IDS_VARIABLE)

if TYPE_CHECKING:
    import asyncio

GUEST_READ_FD = 3
GUEST_WRITE_FD = 4
TEMPLATE_CONTROL_FD = 5
_HIGH_FD = 10
PIPE_SIZE = 256 * 1024  # room for a few full console frames in flight
POLL_INTERVAL = 0.01  # only without pidfd (Linux < 5.3)


@dataclass(frozen=True)
class ExitStatus:
    """How the process ended, from ``wait4``: exactly one of ``code`` and ``signal`` is set."""

    code: int | None
    signal: int | None
    max_rss: int  # bytes: the peak resident set of the process
    cpu_seconds: float  # user + system

    @classmethod
    def from_wait(cls, status: int, rusage: object) -> ExitStatus:
        max_rss = int(getattr(rusage, "ru_maxrss", 0)) * 1024  # Linux reports KiB
        cpu = float(getattr(rusage, "ru_utime", 0.0)) + float(getattr(rusage, "ru_stime", 0.0))
        if os.WIFSIGNALED(status):
            return cls(None, os.WTERMSIG(status), max_rss, cpu)
        return cls(os.waitstatus_to_exitcode(status), None, max_rss, cpu)

    def __str__(self) -> str:
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        return f"exit status {self.code}"


def _package_root(package: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(package)  # finds without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


@dataclass(frozen=True)
class Launcher:
    """How to start a guest process: ``argv`` (the two pipe descriptors are appended) and
    its whole environment. ``default()`` is the real guest; tests pass other commands."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Launcher:
        """``python -S -P -m guestproc``: no site (its .pth hooks cost tens of ms), no current
        directory on the path; ``PYTHONPATH`` holds just what the guest imports."""
        import msgpack  # type: ignore[import-untyped]

        import protocol

        roots: list[str] = []
        for root in (
            _package_root("guestproc"),
            Path(protocol.__file__).resolve().parent.parent,
            Path(msgpack.__file__).resolve().parent.parent,
        ):
            if root is not None and str(root) not in roots:
                roots.append(str(root))
        # The guest's ids: a uid of its own, picked at random (host.uids).
        env = {"PYTHONPATH": os.pathsep.join(roots), **exec_guest_env()}
        return cls(argv=(sys.executable, "-S", "-P", "-m", "guestproc"), env=env)

    def with_arguments(self, *extra: str) -> Launcher:
        """The same command with ``extra`` arguments before the descriptors."""
        return Launcher((*self.argv, *extra), self.env)

    def with_env(self, **variables: str) -> Launcher:
        """The same command with ``variables`` added to its environment."""
        return Launcher(self.argv, {**self.env, **variables})

    def with_ids(self, variables: Mapping[str, str]) -> Launcher:
        """The same command with its guest ids named by ``variables`` alone
        (``host.uids``: a template's; {} for none)."""
        env = {k: v for k, v in self.env.items() if k not in GUEST_ID_VARIABLES}
        return Launcher(self.argv, {**env, **variables})

    @property
    def subordinate_ids(self) -> tuple[int, int] | None:
        """The subordinate uid and gid the host maps into the guest's user namespace
        (``host.idmap``), if it names any."""
        named = self.env.get(SUBORDINATE_IDS_VARIABLE)
        if named is None:
            return None
        uid, _, gid = named.partition(":")
        return int(uid), int(gid)

    def with_module(self, module: str, *extra: str) -> Launcher:
        """The same interpreter and environment running another guest-side module."""
        return Launcher((*self.argv[:-1], module, *extra), self.env)


def _move_high(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FD)
    os.close(fd)
    return high


class GuestProcess:
    """One running guest process and the host's ends of its pipes.

    ``to_guest`` and ``from_guest`` are non-blocking descriptors owned by this object;
    ``close()`` closes them (and the pidfd) and reaps the process if nobody has.
    """

    def __init__(self, pid: int, pidfd: int | None, to_guest: int, from_guest: int) -> None:
        self.spawned_ns = time.monotonic_ns()  # CLOCK_MONOTONIC: the guest's clock too
        self.pid = pid
        self._pidfd = pidfd
        self.to_guest = to_guest
        self.from_guest = from_guest
        # The uid and gid to map into its user namespace before its Hello is answered
        # (``host.idmap``), if its launcher named them.
        self.subordinate_ids: tuple[int, int] | None = None
        self.status: ExitStatus | None = None
        self._exit_waiters: list[asyncio.Future[ExitStatus]] = []
        self._watching: asyncio.AbstractEventLoop | None = None
        self._poll_handle: asyncio.TimerHandle | None = None

    @classmethod
    def spawn(
        cls, launcher: Launcher, extra_args: Sequence[str] = (), control: int | None = None
    ) -> GuestProcess:
        """Start a guest process; ``OSError`` if it cannot be started. ``control``: a
        descriptor the process gets as ``TEMPLATE_CONTROL_FD`` (a template's socket)."""
        host_read = host_write = -1
        child_ends: list[int] = []
        try:
            guest_read, host_write = os.pipe()
            host_read, guest_write = os.pipe()
            guest_read, guest_write = _move_high(guest_read), _move_high(guest_write)
            child_ends = [guest_read, guest_write]
            with contextlib.suppress(OSError):  # a bigger pipe is a nicety, not a need
                fcntl.fcntl(host_read, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            fds = [str(GUEST_READ_FD), str(GUEST_WRITE_FD)]
            moves: list[tuple[int, int, int]] = []
            if control is not None:
                control = _move_high(os.dup(control))
                child_ends.append(control)
                fds.append(str(TEMPLATE_CONTROL_FD))
                moves.append((os.POSIX_SPAWN_DUP2, control, TEMPLATE_CONTROL_FD))
            argv = [*launcher.argv, *extra_args, *fds]
            pid = os.posix_spawn(
                argv[0],
                argv,
                dict(launcher.env),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                    (os.POSIX_SPAWN_DUP2, guest_read, GUEST_READ_FD),
                    (os.POSIX_SPAWN_DUP2, guest_write, GUEST_WRITE_FD),
                    *moves,
                ],
                setpgroup=0,
            )
        except BaseException:
            for fd in (host_read, host_write, *child_ends):
                if fd >= 0:
                    os.close(fd)
            raise
        for fd in child_ends:
            os.close(fd)
        os.set_blocking(host_read, False)
        os.set_blocking(host_write, False)
        pidfd: int | None
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None
        process = cls(pid, pidfd, host_write, host_read)
        process.subordinate_ids = launcher.subordinate_ids
        return process

    # -- signals ----------------------------------------------------------------------------

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` unless the process has already been reaped (then nothing happens)."""
        if self.status is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    # -- exit ---------------------------------------------------------------------------------

    def poll(self) -> ExitStatus | None:
        """Reap the process if it has exited; its ``ExitStatus``, or None while it runs."""
        if self.status is None:
            try:
                pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                # Someone else reaped it (a foreign SIGCHLD policy): no status to be had.
                self._set_status(ExitStatus(None, None, 0, 0.0))
                return self.status
            if pid == 0:
                return None
            self._set_status(ExitStatus.from_wait(status, rusage))
        return self.status

    def _set_status(self, status: ExitStatus) -> None:
        self.status = status
        self._stop_watching()
        waiters, self._exit_waiters = self._exit_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(status)

    async def wait(self) -> ExitStatus:
        """Wait for the process to exit and reap it."""
        import asyncio  # here, not at the top: ``spawn`` must not wait for asyncio's import

        if self.poll() is not None:
            assert self.status is not None
            return self.status
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[ExitStatus] = loop.create_future()
        self._exit_waiters.append(waiter)
        self._watch(loop)
        return await waiter

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._watching is not None:
            return
        self._watching = loop
        if self._pidfd is not None:
            loop.add_reader(self._pidfd, self.poll)
        else:
            self._schedule_poll()

    def _schedule_poll(self) -> None:
        assert self._watching is not None
        self._poll_handle = self._watching.call_later(POLL_INTERVAL, self._poll_tick)

    def _poll_tick(self) -> None:
        if self.poll() is None:
            self._schedule_poll()

    def _stop_watching(self) -> None:
        loop, self._watching = self._watching, None
        if loop is not None and self._pidfd is not None and not loop.is_closed():
            loop.remove_reader(self._pidfd)
        if self._poll_handle is not None:
            self._poll_handle.cancel()
            self._poll_handle = None

    def close_pipes(self) -> None:
        """Close the host's ends of both pipes (idempotent)."""
        for name in ("to_guest", "from_guest"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def close(self) -> ExitStatus:
        """Kill the process if it still runs, reap it, close every descriptor; the status."""
        if self.poll() is None:
            self.kill()
            while self.poll() is None:
                # SIGKILL cannot be caught: the wait is short.
                with contextlib.suppress(ChildProcessError):
                    _, status, rusage = os.wait4(self.pid, 0)
                    self._set_status(ExitStatus.from_wait(status, rusage))
        self._stop_watching()
        self.close_pipes()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        assert self.status is not None
        return self.status
