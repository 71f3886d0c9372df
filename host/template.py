"""Templates, host side: start one per module and configuration, fork ready guests from it.

::

    Template(config)  then  template.boot(module)        (Template.start: both)
        spawn python -m guestproc --template 3 4 5     (a socketpair end as 5)
        Hello, Load over the frame pipes                (a Guest does the talking)
        ◀── Loaded(start): the module has a start function: a throwaway guest (exec'd,
            hardened, the launch's limits) loads it and runs it, Boot(start=snapshot)
            ◀── Snapshot, ... Ready: what it left, as data; the throwaway exits
        Boot(start=restore, snapshot) ──▶ the template instantiates without running any
            module code, installs the snapshot after checking it, compiles every function
        all of it within the launch's timeout
    template.fork()
        two new pipes; Fork + the guest's ends ──control socket──▶ template clones
        ◀── Forked(pid): the guest is *our* child (CLONE_PARENT): pidfd, wait4, signals
        Guest.begin(forked=True) ── Hello ──▶ READY: ready for Invoke

At most ``FORKS_IN_FLIGHT`` Fork requests are outstanding per template; further ``fork`` calls
wait their turn (first come, first served) before they even make their pipes. The control
socket is non-blocking on the host's side, so a burst of thousands of launches queues in
the host instead of blocking the event loop in ``sendmsg`` while the template, its replies
unread, blocks too.

A template never runs module code (issue 12): it keeps ``clone`` and fd passing for its whole
life, so it never takes the running seccomp filter, and whatever code ran in it would be
inherited by every guest. The start function runs in the throwaway guest instead, under
the running filter, and comes back as data the template checks (Wizer's model).

The host never forks itself and never decodes the module: the template does, once. What the
template says is checked like any guest frame: a reply must be a small map naming a pending
request and a pid that is a child of this process (``waitid`` with ``WNOWAIT`` proves that
without reaping it), in its guests' PID namespace (``/proc/PID/ns/pid``: no other child of
ours is) and not a guest we already have. A template that breaks those rules, or dies,
fails its pending forks with ``TemplateError``; the guests it forked live on, since they
are ours.

Its guests' PID namespace: the template's first control message, ``Namespace(pid)``, sent at
Load before it decodes the module, names the holder, process 1 of the namespace its guests
are forked into (``guestproc.cloning``), a child of ours that only waits. We reap it; if it
ends, so have the guests in it, and the template is broken. ``release`` ends it, once the
guests are stopped, and reaps any process the template forked unasked (``host.holder``); a
template that fails to start is released at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable

import msgpack  # type: ignore[import-untyped]

from protocol.messages import (
    CONTROL_FRAME_CAP,
    Fork,
    Forked,
    ForkFailed,
    Namespace,
    StartMode,
)

from .config import GuestConfig
from .endings import Ending, Limit
from .errors import GuestEnded, GuestStartError
from .guest import Guest
from .holder import NamespaceHolder, pid_namespace
from .stdio import ConsoleSink, StdinSource
from .transport import GuestProcess, Launcher
from .watchdog import Watchdog

FORK_TIMEOUT = 10.0
"""Seconds a template has to answer a Fork, counted from when the request is sent."""
FORKS_IN_FLIGHT = 16
"""Fork requests a template may have outstanding. A template forks one guest at a time, so
more only queue in its socket; a few keep it busy while the host reads replies. Measured
with ``kindling bench spawn --burst 3000`` (time to all ready, two runs each): 1: 3.7-4.0 s,
8: 3.6-3.7 s, 16: 2.8-2.9 s, 32: 2.7-2.9 s, 64: 2.8-3.2 s."""


class TemplateError(GuestStartError):
    """The template could not fork a guest (it died, refused, or broke the protocol)."""


class Template:
    """A running template process for one module and one configuration.

    ``guest`` is the template's own frame connection (its Hello, Load and Boot); ``fork``
    makes guests. ``close`` shuts the template down; forked guests are not affected.
    """

    def __init__(
        self,
        config: GuestConfig,
        *,
        cache_dir: str | None = None,
        launcher: Launcher | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        """Spawn the template process (``GuestStartError`` if that fails); ``boot`` then
        loads and starts the module in it. From here on ``guest`` can be ended (``end_start``
        ends the throwaway guest of the start function with it). ``watchdog``: it watches
        that throwaway guest while it lives."""
        self.config = config
        self._cache_dir = cache_dir
        self._watchdog = watchdog
        self._loop = asyncio.get_running_loop()
        self._launcher = base = launcher or Launcher.default()
        self._starter: Guest | None = None  # the throwaway guest running the start function
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # The launcher's own command, as a template (a test's launcher runs its own file)
            process = GuestProcess.spawn(base.with_arguments("--template"), control=theirs.fileno())
        except OSError as exc:
            ours.close()
            raise GuestStartError(f"cannot start a template process: {exc}") from exc
        finally:
            theirs.close()
        # The template lives on after its start: the launch's wall-clock limit applies only
        # until it is ready (``boot``); its guests get the real config.
        self.guest = Guest(config.model_copy(update={"timeout": None}))
        self.guest.begin(process, self._loop)
        self._control = ours
        ours.setblocking(False)
        # Read from the start: its first message, Namespace, comes at Load.
        self._loop.add_reader(ours.fileno(), self._on_control)
        self._slots = asyncio.Semaphore(FORKS_IN_FLIGHT)
        self._writable: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._last_id = 0
        self._broken: str | None = None
        self._ready = False
        self.forked = 0
        self.known_pid: Callable[[int], bool] = lambda _pid: False
        # Its guests' PID namespace: told of first (``Namespace``), held by ``holder``.
        self._namespace_told = False
        self.holder: NamespaceHolder | None = None

    @classmethod
    async def start(
        cls,
        module: bytes,
        config: GuestConfig,
        *,
        cache_dir: str | None = None,
        launcher: Launcher | None = None,
        watchdog: Watchdog | None = None,
    ) -> Template:
        """A template with ``module`` loaded and started: ``Template(...)``, then ``boot``."""
        template = cls(config, cache_dir=cache_dir, launcher=launcher, watchdog=watchdog)
        await template.boot(module)
        return template

    async def boot(
        self, module: bytes, digest: bytes | None = None, init: str | None = None
    ) -> None:
        """Load ``module`` in the template and start it: a start function runs in a
        throwaway guest held to the launch's limits (its fuel, CPU time and memory), and the
        template installs what it left. The launch's wall-clock ``timeout`` covers loading and
        the start function together.

        ``digest``: the module's, if the caller has it (the code cache files entries under
        it). ``init``: an export the throwaway guest runs after the start function, with
        the same limits, whose work the template installs too (a function's initialiser).
        ``GuestEnded`` if the module cannot be loaded or started; the template's ending
        says why (``load_failure(...)``, ``limit(wall)``, ``limit(cpu)``, ``limit(fuel)``,
        ``trapped(...)``, or ``stopped`` when the host closed meanwhile) and it is gone.
        """
        guest = self.guest
        deadline = None
        if self.config.timeout is not None:
            timeout = self.config.timeout
            ending = Ending.limit(
                Limit.WALL,
                f"not started after its timeout of {timeout:g} s "
                "(loading the module and running its start function)",
            )
            deadline = self._loop.call_later(timeout, self.end_start, ending)
        try:
            await guest.handshake()
            loaded = guest.submit_load(module, self._cache_dir, digest, give_entries=False)
            # While the template loads (another process, another core), the models of
            # what its guests will send: otherwise derived on first sight, by a guest's
            # first reply. (The handshake has imported pydantic already.)
            from protocol.models import derive_all

            derive_all()
            await loaded
            snapshot = None
            if guest.module_start is not None or init is not None:
                snapshot = await self._run_start(module, digest, init)
            await guest.submit_boot(start=StartMode.RESTORE, snapshot=snapshot, init=init)
        except BaseException:
            if self._broken is None:
                self._on_control()  # a Namespace it sent but we have not read yet
                self._broken = "it could not start the module"
                self._loop.remove_reader(self._control.fileno())
            self._control.close()
            await guest.stop()
            # Its holder, and with it whatever it forked while it loaded the module.
            await self.release()
            raise
        finally:
            if deadline is not None:
                deadline.cancel()
        self._ready = True

    async def _run_start(self, module: bytes, digest: bytes | None, init: str | None) -> bytes:
        """Run the start function in a throwaway guest with the launch's limits (the
        template's deadline covers its time); what it left. ``GuestEnded`` with the
        throwaway's ending if the start function traps, exits or passes a limit."""
        starter = self._starter = Guest(
            self.config.model_copy(update={"timeout": None}), launcher=self._launcher
        )
        try:
            await starter.start()
            if self._watchdog is not None:
                self._watchdog.watch(starter)
            starter.submit_load(module, self._cache_dir, digest)
            await starter.submit_boot(start=StartMode.SNAPSHOT, init=init)
            return starter.snapshot()
        finally:
            with contextlib.suppress(GuestEnded):
                await starter.stop()
            if self._watchdog is not None:
                self._watchdog.forget(starter)
            self._starter = None

    def end_start(self, ending: Ending) -> None:
        """End the template while it starts, and the throwaway guest of its start function."""
        if self._starter is not None:
            self._starter.end(ending)
        self.guest.end(ending)

    @property
    def pid(self) -> int | None:
        return self.guest.pid

    @property
    def alive(self) -> bool:
        """Ready to fork: booted, and neither broken, closed nor dead."""
        return self._ready and self._broken is None and self.guest.ending is None

    async def fork(
        self, console: ConsoleSink | None = None, stdin: StdinSource | None = None
    ) -> Guest:
        """A new guest, forked from the template, connected and ready for Invoke. Waits for
        one of the template's ``FORKS_IN_FLIGHT`` slots first."""
        async with self._slots:
            if not self.alive:
                raise TemplateError(f"the template is gone: {self._broken or self.guest.ending}")
            requested = time.monotonic_ns()
            pid, host_read, host_write = await self._request_fork()
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

    async def _request_fork(self) -> tuple[int, int, int]:
        """Send one Fork with the guest's pipe ends; the new pid and the host's two ends."""
        guest_read = host_write = host_read = guest_write = -1
        self._last_id += 1
        request_id = self._last_id
        future: asyncio.Future[int] = self._loop.create_future()
        self._pending[request_id] = future
        try:
            try:
                guest_read, host_write = os.pipe2(os.O_CLOEXEC)
                host_read, guest_write = os.pipe2(os.O_CLOEXEC)
                message = msgpack.packb(Fork(id=request_id).wire())
                await self._send(message, [guest_read, guest_write])
            except OSError as exc:
                raise TemplateError(f"cannot ask the template to fork: {exc}") from exc
            finally:
                _close(guest_read, guest_write)  # the template holds its own copies now
            pid = await asyncio.wait_for(future, FORK_TIMEOUT)
        except BaseException:
            _close(host_read, host_write)
            self._pending.pop(request_id, None)
            raise
        return pid, host_read, host_write

    async def _send(self, message: bytes, fds: list[int]) -> None:
        """``sendmsg`` on the non-blocking control socket, waiting (not blocking) while the
        socket is full."""
        while True:
            if self._broken is not None:
                raise TemplateError(f"the template is gone: {self._broken}")
            try:
                socket.send_fds(self._control, [message], fds)
                return
            except BlockingIOError:
                await self._until_writable()

    async def _until_writable(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()
            self._loop.add_writer(self._control.fileno(), self._on_writable)
        await asyncio.shield(self._writable)

    def _on_writable(self) -> None:
        self._loop.remove_writer(self._control.fileno())
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_control(self) -> None:
        try:
            data = self._control.recv(CONTROL_FRAME_CAP)
        except BlockingIOError:
            return
        except OSError as exc:
            self._break(f"its control socket failed: {exc}")
            return
        if not data:
            self._break("it closed its control socket")
            return
        from protocol.models import InvalidMessage, parse_template_reply

        try:
            reply = parse_template_reply(
                msgpack.unpackb(data, max_bin_len=0, max_str_len=CONTROL_FRAME_CAP)
            )
        except (InvalidMessage, ValueError, msgpack.UnpackException) as exc:
            self._break(f"it sent an unreadable reply ({len(data)} bytes): {exc}")
            return
        if isinstance(reply, Namespace) or not self._namespace_told:
            self._on_namespace(reply)
            return
        future = self._pending.pop(reply.id, None)
        if future is None:
            self._break(f"it answered request {reply.id}, which is not pending")
            return
        if isinstance(reply, ForkFailed):
            _fail(future, TemplateError(f"the template could not fork: {reply.error}"))
            return
        problem = self._bad_pid(reply.pid)
        if problem:
            self._break(problem)
            _fail(future, TemplateError(f"the template broke the protocol: {self._broken}"))
            return
        future.set_result(reply.pid)

    def _on_namespace(self, reply: Namespace | Forked | ForkFailed) -> None:
        """The first control message must say where its guests' PID namespace is, once."""
        if not isinstance(reply, Namespace) or self._namespace_told:
            self._break(f"it sent {reply.TYPE} where its one Namespace belongs")
            return
        self._namespace_told = True
        if reply.pid is None:
            return  # the kernel gave it none: its guests share ours (kindling doctor says so)
        problem = self._bad_pid(reply.pid)
        if problem:
            self._break(problem)
            return
        try:
            self.holder = NamespaceHolder(reply.pid, self._loop, self._on_holder_gone)
        except OSError as exc:
            self._break(f"its namespace's holder cannot be watched: {exc}")

    def _on_holder_gone(self) -> None:
        self._break("the holder of its guests' PID namespace ended (and with it, they did)")

    def _bad_pid(self, pid: int) -> str | None:
        if self.known_pid(pid):
            return f"it named pid {pid}, a guest the host already has"
        if self.holder is not None and pid == self.holder.pid:
            return f"it named pid {pid}, the holder of its guests' PID namespace"
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return f"it named pid {pid}, which is not a child of the host"
        if self.holder is not None:
            # A guest it forked is in its guests' namespace; no other child of ours is.
            # (One that has exited already has no namespace to show: its exit tells.)
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                if pid_namespace(pid) != self.holder.namespace:
                    return f"it named pid {pid}, which is not in its guests' PID namespace"
        return None

    def _break(self, reason: str) -> None:
        """The template can no longer be trusted or reached: fail what waits, kill it."""
        if self._broken is None:
            self._broken = reason
            self._loop.remove_reader(self._control.fileno())
            self._on_writable()
            self.guest.end(Ending.stopped(f"template broke: {reason}"))
        pending, self._pending = self._pending, {}
        for future in pending.values():
            _fail(future, TemplateError(f"the template is gone: {reason}"))

    async def release(self) -> None:
        """End the holder of its guests' PID namespace, and with it every guest still in
        it (the namespace's init is gone): what a host does last, once it has stopped its
        guests. ``close`` first."""
        if self.holder is not None:
            await self.holder.end(self.known_pid)
            self.holder = None

    async def close(self) -> None:
        """Shut the template down and reap it (its forked guests go on, and so does the
        holder of their PID namespace: ``release``)."""
        if self._broken is None:
            self._broken = "closed by the host"
            self._loop.remove_reader(self._control.fileno())
            self._on_writable()
        with contextlib.suppress(GuestEnded):
            await self.guest.stop()
        if self._control.fileno() >= 0:
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
