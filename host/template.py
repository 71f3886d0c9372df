"""Templates, host side: start one per module and configuration, fork ready guests from it.

::

    Template.start(module, config)
        spawn python -m guestproc --template 3 4 5     (a socketpair end as 5)
        Hello, Load, Boot over the frame pipes          (a Guest does the talking)
    template.fork()
        two new pipes; Fork + the guest's ends ──control socket──▶ template clones
        ◀── Forked(pid): the guest is *our* child (CLONE_PARENT): pidfd, wait4, signals
        Guest.begin(forked=True) ── Hello ──▶ READY: ready for Invoke

The host never forks itself and never decodes the module: the template does, once. What the
template says is checked like any guest frame: a reply must be a small map naming a pending
request and a pid that is a child of this process (``waitid`` with ``WNOWAIT`` proves that
without reaping it) and not a guest we already have. A template that breaks those rules, or
dies, fails its pending forks with ``TemplateError``; the guests it forked live on, since
they are ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped]

from protocol.config import GuestConfig

from .errors import GuestEnded, GuestStartError
from .guest import Guest
from .stdio import ConsoleSink, StdinSource
from .transport import GuestProcess, Launcher

FORK_TIMEOUT = 10.0
"""Seconds a template has to answer a Fork."""
REPLY_CAP = 4096


class TemplateError(GuestStartError):
    """The template could not fork a guest (it died, refused, or broke the protocol)."""


class Template:
    """A running template process for one module and one configuration.

    ``guest`` is the template's own frame connection (its Hello, Load and Boot); ``fork``
    makes guests. ``close`` shuts the template down; forked guests are not affected.
    """

    def __init__(self, guest: Guest, control: socket.socket, config: GuestConfig) -> None:
        self.guest = guest
        self.config = config
        self._control = control
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._last_id = 0
        self._broken: str | None = None
        self.forked = 0
        self.known_pid: Callable[[int], bool] = lambda _pid: False
        self._loop.add_reader(control.fileno(), self._on_control)

    @classmethod
    async def start(
        cls,
        module: bytes,
        config: GuestConfig,
        *,
        cache_dir: str | None = None,
        launcher: Launcher | None = None,
    ) -> Template:
        """Start a template and load and boot ``module`` in it; ``GuestEnded`` if the module
        cannot be loaded or booted (the template's ending says why), ``GuestStartError`` if
        no process can be started."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            base = launcher or Launcher.default()
            process = GuestProcess.spawn(
                base.with_module("guestproc", "--template"), control=theirs.fileno()
            )
        except OSError as exc:
            ours.close()
            raise GuestStartError(f"cannot start a template process: {exc}") from exc
        finally:
            theirs.close()
        # The template itself has no deadline or output; its guests have the real config.
        template_config = config.model_copy(update={"timeout": None})
        guest = Guest(template_config)
        try:
            guest.begin(process)
            await guest.handshake()
            guest.submit_load(module, cache_dir)
            await guest.submit_boot()
        except BaseException:
            ours.close()
            await guest.stop()
            raise
        return cls(guest, ours, config)

    @property
    def pid(self) -> int | None:
        return self.guest.pid

    @property
    def alive(self) -> bool:
        return self._broken is None and self.guest.ending is None

    async def fork(
        self, console: ConsoleSink | None = None, stdin: StdinSource | None = None
    ) -> Guest:
        """A new guest, forked from the template, connected and ready for Invoke."""
        if not self.alive:
            raise TemplateError(f"the template is gone: {self._broken or self.guest.ending}")
        guest_read = host_write = host_read = guest_write = -1
        self._last_id += 1
        request_id = self._last_id
        requested = time.monotonic_ns()
        try:
            guest_read, host_write = os.pipe2(os.O_CLOEXEC)
            host_read, guest_write = os.pipe2(os.O_CLOEXEC)
            message = msgpack.packb({"type": "Fork", "id": request_id})
            socket.send_fds(self._control, [message], [guest_read, guest_write])
        except OSError as exc:
            _close(host_read, host_write)
            raise TemplateError(f"cannot ask the template to fork: {exc}") from exc
        finally:
            _close(guest_read, guest_write)  # the template holds its own copies now
        # No await since the send: the reply cannot have been read before this is pending.
        future: asyncio.Future[int] = self._loop.create_future()
        self._pending[request_id] = future
        try:
            pid = await asyncio.wait_for(future, FORK_TIMEOUT)
        except BaseException:
            _close(host_read, host_write)
            self._pending.pop(request_id, None)
            raise
        os.set_blocking(host_read, False)
        os.set_blocking(host_write, False)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
        process = GuestProcess(pid, pidfd, host_write, host_read)
        process.spawned_ns = requested
        guest = Guest(self.config, console=console, stdin=stdin)
        guest.begin(process, self._loop, forked=True, code_size=self.guest.code_size or 0)
        self.forked += 1
        return guest

    def _on_control(self) -> None:
        try:
            data = self._control.recv(REPLY_CAP)
        except BlockingIOError:
            return
        except OSError as exc:
            self._break(f"its control socket failed: {exc}")
            return
        if not data:
            self._break("it closed its control socket")
            return
        try:
            reply = msgpack.unpackb(data, max_bin_len=0, max_str_len=512)
            request_id = reply["id"]
            future = self._pending.pop(request_id)
            kind = reply["type"]
        except Exception:
            self._break(f"it sent an unreadable reply ({len(data)} bytes)")
            return
        if kind == "ForkFailed":
            _fail(future, TemplateError(f"the template could not fork: {reply.get('error')}"))
            return
        pid = reply.get("pid")
        problem = self._bad_pid(pid)
        if kind != "Forked" or problem:
            self._break(problem or f"it sent a {kind!r} reply")
            _fail(future, TemplateError(f"the template broke the protocol: {self._broken}"))
            return
        future.set_result(pid)

    def _bad_pid(self, pid: Any) -> str | None:
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
            return f"it named pid {pid!r}"
        if self.known_pid(pid):
            return f"it named pid {pid}, a guest the host already has"
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return f"it named pid {pid}, which is not a child of the host"
        return None

    def _break(self, reason: str) -> None:
        """The template can no longer be trusted or reached: fail what waits, kill it."""
        if self._broken is None:
            self._broken = reason
            self._loop.remove_reader(self._control.fileno())
            self.guest.terminate(f"template broke: {reason}")
        pending, self._pending = self._pending, {}
        for future in pending.values():
            _fail(future, TemplateError(f"the template is gone: {reason}"))

    async def close(self) -> None:
        """Shut the template down and reap it (its forked guests go on)."""
        if self._broken is None:
            self._broken = "closed by the host"
            self._loop.remove_reader(self._control.fileno())
        with contextlib.suppress(GuestEnded):
            await self.guest.stop()
        self._control.close()
        for future in self._pending.values():
            _fail(future, TemplateError("the template was closed"))
        self._pending.clear()


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


def _fail(future: asyncio.Future[int], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()
