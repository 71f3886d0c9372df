"""The Python API: a ``Host`` that launches supervised guests (``Sandbox``) from templates.

::

    async with Host() as host:
        sandbox = await host.launch("fn.wasm", memory="5MiB", fuel=10**9, timeout=30)
        results = await sandbox.invoke("add", 2, 3)        # [5]
        sandbox.pid, sandbox.state, sandbox.metrics()
        await sandbox.pause(); await sandbox.resume()
        ending = await sandbox.stop()                       # graceful, then SIGKILL

    Host ── Sandbox (lifecycle, restarts, events) ── fork ──▶ guest
      │        │ fork, release, publish
      └── Fleet (host.fleet): one template per (module, configuration), live guests,
                 watchdog: every guest's own memory (USS) and CPU, from /proc

A ``Sandbox`` is one supervised guest: one guest process at a time, forked from the template
of its module and configuration (started on first use, restarted if it dies), and restarted
by its ``Restart`` policy when the guest ends (``host.lifecycle``). Every state change is an
``Event`` delivered to the sandbox's and the host's subscribers.

Limits, outermost first: the host's watchdog (``host.watchdog``) polls each guest's own
memory (USS, with RSS as a cheap first look: fine for thousands of guests) and CPU time,
and ends a guest over its memory bound (``memory`` + 64 MiB + 256 bytes per byte of code,
``protocol.limits``) or one second over its CPU limit; the wall-clock deadline and the
console quota are the guest connection's (``host.guest``); the kernel limits and the engine
limits are the guest's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import GuestConfig, config_from_keywords
from .endings import Ending
from .errors import GuestEnded, GuestError, GuestStartError, GuestTrapped
from .fleet import Fleet
from .guest import Guest, Number
from .lifecycle import (
    TRANSITIONS,
    Event,
    LifecycleError,
    Listener,
    Restart,
    RestartCounter,
    RestartPolicy,
    State,
)
from .stdio import CapturedConsole, ConsoleSink, NoStdin, StdinSource, stdin_for
from .template import Template, TemplateError
from .transport import Launcher
from .uids import DEFAULT_GUEST_UIDS, GuestUids
from .watchdog import Watchdog, stat_fields

if TYPE_CHECKING:
    from .serve.function import Function
    from .serve.spec import FunctionSpec

SIGNAL_SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class Metrics:
    """A sandbox's guest process as the kernel sees it now, and its counters."""

    pid: int | None
    state: State
    rss: int | None  # bytes resident
    uss: int | None  # bytes only this process has (what it would free on exit)
    cpu_seconds: float | None
    fuel_used: int | None  # as of its last result, when metered
    invocations: int
    restarts: int


class Sandbox:
    """One supervised guest. Made by ``Host.launch``; see the module docstring."""

    def __init__(
        self,
        fleet: Fleet,
        name: str,
        module: bytes,
        config: GuestConfig,
        restart: Restart,
        console: ConsoleSink | None,
        stdin: Callable[[], StdinSource] = NoStdin,
    ) -> None:
        self._fleet = fleet
        self.name = name
        self.module = module
        self.config = config
        self.restart = restart
        # Every guest of the sandbox writes here: the caller's sink, or one kept for
        # ``stdout`` and ``stderr``.
        kept = CapturedConsole()
        self._kept = kept if console is None else None
        self.console: ConsoleSink = kept if console is None else console
        self._stdin = stdin  # makes each guest's source (``stdio.stdin_for``)
        self.state = State.NOT_STARTED
        self.ending: Ending | None = None  # how the last guest ended
        self.guest: Guest | None = None
        self.restarts = 0
        self.invocations = 0
        self._counter = RestartCounter(restart)
        self._listeners: list[Listener] = []
        self._stopping = False
        self._final = asyncio.get_running_loop().create_future()
        self._running = asyncio.get_running_loop().create_future()
        self._supervisor: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Sandbox {self.name} {self.state.value} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self.guest.pid if self.guest is not None and self.guest.ending is None else None

    # -- lifecycle ----------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` on every state change of this sandbox."""
        self._listeners.append(listener)

    def _move(self, new: State, reason: str) -> None:
        old = self.state
        if new not in TRANSITIONS[old]:
            raise LifecycleError(f"sandbox {self.name} cannot go from {old.value} to {new.value}")
        self.state = new
        event = Event(self, old, new, reason, time.monotonic())
        for listener in self._listeners:
            listener(event)
        self._fleet.publish(event)
        if new is State.RUNNING and not self._running.done():
            self._running.set_result(None)
        if new.final and not self._final.done():
            self._final.set_result(self.ending or Ending.stopped(reason))
            if not self._running.done():
                self._running.set_result(None)

    def _require(self, action: str, *allowed: State) -> None:
        if self.state not in allowed:
            names = " or ".join(state.value for state in allowed)
            raise LifecycleError(
                f"cannot {action} sandbox {self.name}: it is {self.state.value}, not {names}"
            )

    def _launch(self) -> None:
        self._move(State.STARTING, "launched")
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        self._supervisor.add_done_callback(self._supervisor_done)

    def _supervisor_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None or self.state.final:
            return
        # A bug in the supervision itself: contained, and said, rather than a silent hang.
        error = task.exception()
        self.ending = Ending.stopped(f"supervision failed: {type(error).__name__}: {error}")
        if self.guest is not None:
            self.guest.end(Ending.stopped("supervision failed"))
        self.state = State.FATAL
        if not self._final.done():
            self._final.set_result(self.ending)
        if not self._running.done():
            self._running.set_result(None)

    async def _supervise(self) -> None:
        """Start guests and watch them, as the restart policy says, until a final state."""
        while True:
            guest = await self._start_guest()
            if guest is None:  # the start failed: retry after a backoff, or give up
                self._counter.failed_starts += 1
                if self._stopping:
                    self._move(State.EXITED, "stopped while starting")
                    return
                if (
                    self.restart.policy is RestartPolicy.NEVER
                    or self._counter.failed_starts > self.restart.start_retries
                ):
                    self._move(State.FATAL, f"could not start: {self.ending}")
                    return
                if not await self._back_off("start failed"):
                    return
                continue
            self._counter.failed_starts = 0
            ending = self.ending = await guest.wait()
            self._fleet.release(guest)
            if self._stopping:
                self._move(State.EXITED, f"stopped: {ending}")
                return
            if not self.restart.wants_restart(ending):
                self._move(State.EXITED, str(ending))
                return
            if not self._counter.allow():
                self._move(
                    State.FATAL,
                    f"{ending}; more than {self.restart.max_restarts} restarts "
                    f"in {self.restart.window:g} s",
                )
                return
            if not await self._back_off(str(ending)):
                return
            self.restarts += 1

    async def _back_off(self, reason: str) -> bool:
        """BACKOFF for the policy's delay, then STARTING; False if stopped meanwhile."""
        self._move(State.BACKOFF, reason)
        await asyncio.sleep(self._counter.backoff())
        if self._stopping:
            self._move(State.STOPPING, "stopped during backoff")
            self._move(State.EXITED, "stopped during backoff")
            return False
        self._move(State.STARTING, "restarting")
        return True

    async def _start_guest(self) -> Guest | None:
        try:
            guest = await self._fleet.fork(self.module, self.config, self.console, self._stdin())
        except GuestEnded as exc:  # the module does not load or boot: the template's ending
            self.ending = exc.ending
            return None
        except (GuestStartError, OSError) as exc:
            self.ending = Ending.stopped(f"could not start: {exc}")
            return None
        self.guest = guest
        if self._stopping:
            await guest.stop()
            return guest
        self._move(State.RUNNING, f"guest {guest.pid} ready")
        return guest

    # -- actions ------------------------------------------------------------------------------

    async def invoke(self, export: str, *args: Number) -> list[int | float | str | None]:
        """Call an exported function; its results as Python numbers (integers signed).

        ``LifecycleError`` unless the sandbox is running. ``GuestTrapped`` for a trap (the
        guest goes on), ``InvokeRefused`` for no such export or arguments that do not fit,
        ``GuestEnded`` when the guest ends meanwhile (its ending names the cause).
        """
        self._require("invoke", State.RUNNING)
        assert self.guest is not None
        self.invocations += 1
        results = await self.guest.invoke(export, args)
        return [value.signed() for value in results]

    @property
    def stdout(self) -> bytes:
        """What its guests have written to stdout so far, every restart's in turn, when
        ``launch`` was given no console (``ValueError`` otherwise: it went there)."""
        return self._captured().stdout

    @property
    def stderr(self) -> bytes:
        """As ``stdout``, for stderr."""
        return self._captured().stderr

    def _captured(self) -> CapturedConsole:
        if self._kept is None:
            raise ValueError(f"{self.name}'s output went to the console given to launch")
        return self._kept

    async def run(self) -> Ending:
        """Run the module as a WASI command (its ``_start``); how the program ended
        (``exited(n)``, a limit...). The program is then over, and so is its guest: the
        guest is shut down, the sandbox's ending is the program's, and the restart policy
        decides what follows, as for any ending. A trap raises ``GuestTrapped`` after the
        same; ``InvokeRefused`` (no ``_start``) leaves the guest as it was."""
        self._require("run", State.RUNNING)
        guest = self.guest
        assert guest is not None
        self.invocations += 1
        try:
            ending = await guest.run_command()
        except GuestTrapped as trapped:
            await self._program_over(guest, trapped.ending)
            raise
        await self._program_over(guest, ending)
        return ending

    async def _program_over(self, guest: Guest, ending: Ending) -> None:
        """The program ended while its guest lives on (``_start`` returned or trapped):
        shut the guest down with the program's ending, which supervision then sees."""
        if guest.ending is None:
            await guest.stop(ending=ending)

    async def pause(self) -> None:
        """Stop the guest process where it is (SIGSTOP); its wall-clock deadline runs on."""
        self._require("pause", State.RUNNING)
        self._signal(signal.SIGSTOP)
        await self._settle(stopped=True)
        self._move(State.PAUSED, "paused by the host")

    async def resume(self) -> None:
        """Let a paused guest go on (SIGCONT)."""
        self._require("resume", State.PAUSED)
        self._signal(signal.SIGCONT)
        await self._settle(stopped=False)
        self._move(State.RUNNING, "resumed by the host")

    async def _settle(self, stopped: bool) -> None:
        """Signals arrive asynchronously: wait (briefly) until the kernel shows the guest
        stopped, or running again, so that ``state`` tells the truth on return."""
        pid = self.pid
        deadline = time.monotonic() + SIGNAL_SETTLE_SECONDS
        while pid is not None and time.monotonic() < deadline:
            if (proc_state(pid) in ("T", "t")) == stopped:
                return
            await asyncio.sleep(0.001)

    def _signal(self, number: int) -> None:
        if self.guest is not None:
            self.guest.send_signal(number)

    async def stop(self, grace: float = 2.0) -> Ending:
        """End the sandbox for good: ask an idle guest to shut down, give it ``grace``
        seconds, then SIGKILL; a busy or paused guest is killed at once. Never restarted.
        How the last guest ended."""
        if self.state.final:
            return await self.wait()
        self._stopping = True
        self._stop_backoff()
        if self.state in (State.RUNNING, State.PAUSED, State.STARTING):
            paused = self.state is State.PAUSED
            self._move(State.STOPPING, "stopped by the host")
            guest = self.guest
            if guest is not None and guest.ending is None:
                if paused:
                    guest.end(Ending.stopped("stopped by the host while paused"))
                await guest.stop(grace)
        elif self.state is State.NOT_STARTED:
            self._move(State.EXITED, "never started")
        return await self.wait()

    def kill(self) -> None:
        """SIGKILL the guest now and end the sandbox for good (``wait`` for the ending)."""
        if self.state.final:
            return
        self._stopping = True
        self._stop_backoff()
        if self.state in (State.RUNNING, State.PAUSED, State.STARTING):
            self._move(State.STOPPING, "killed by the host")
        if self.guest is not None:
            self.guest.end(Ending.stopped("killed by the host"))

    def _stop_backoff(self) -> None:
        """Stopped while waiting to restart: no need to wait out the delay."""
        if self.state is State.BACKOFF and self._supervisor is not None:
            self._supervisor.cancel()
            self._move(State.STOPPING, "stopped during backoff")
            self._move(State.EXITED, "stopped during backoff")

    async def wait(self) -> Ending:
        """Wait for a final state (exited or fatal); how the last guest ended."""
        result: Ending = await asyncio.shield(self._final)
        return result

    async def wait_running(self) -> None:
        """Wait until the sandbox is running, or in a final state."""
        await asyncio.shield(self._running)

    def metrics(self) -> Metrics:
        """RSS, USS and CPU time of the guest process now; fuel used; counters."""
        pid = self.pid
        rss = uss = None
        cpu = None
        if pid is not None:
            import psutil  # type: ignore[import-untyped]

            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                memory = process.memory_full_info()
                rss, uss = memory.rss, memory.uss
                times = process.cpu_times()
                cpu = times.user + times.system
        fuel = self.guest.fuel_used if self.guest is not None else None
        return Metrics(pid, self.state, rss, uss, cpu, fuel, self.invocations, self.restarts)


class Host:
    """Launches and supervises sandboxes; use as ``async with Host() as host``.

    ``cache``: keep compiled code on disk (``host.codecache``); ``cache_dir``: where, if not
    the default directory -- one per trust domain, since what one host's guests store,
    every later guest of the same module loads. An unusable default directory leaves the
    cache off; an unusable ``cache_dir`` is a ``CacheDirectoryError`` on entering.
    ``guest_uids``: the uids a host running as root gives its templates, one each, for
    their guests (``host.uids``; ``ValueError`` if the range holds root, nobody or the
    host's uid). ``subordinate_ids``: a host running as an ordinary user gives each template
    a subordinate uid and gid of its own, if ``/etc/subuid`` and ``/etc/subgid`` grant it
    some and ``newuidmap`` is installed (else, or with False, its guests share its uid).
    Closing the host stops every sandbox and template; guests never outlive
    the host process in any case (each dies with it, ``PR_SET_PDEATHSIG``).
    """

    def __init__(
        self,
        *,
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        launcher: Launcher | None = None,
        guest_uids: range = DEFAULT_GUEST_UIDS,
        subordinate_ids: bool = True,
    ) -> None:
        if cache_dir is not None and not cache:
            raise ValueError("Host(cache=False) takes no cache_dir")
        self._cache_wanted = cache
        self._cache_dir = None if cache_dir is None else Path(cache_dir)
        self._sandboxes: dict[str, Sandbox] = {}
        self._fleet = Fleet(None, launcher, GuestUids(guest_uids, subordinate_ids))
        self._names = 0
        self._functions: list[Function] = []

    async def __aenter__(self) -> Host:
        raise_descriptor_limit()
        if self._cache_wanted:
            from .codecache import CacheDirectoryError, prepare

            if self._cache_dir is not None:
                self._fleet.cache_dir = prepare(self._cache_dir)
            else:
                with contextlib.suppress(CacheDirectoryError):
                    self._fleet.cache_dir = prepare()
        self._fleet.start_watching()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def watchdog(self) -> Watchdog:
        """The watchdog holding every running guest to its memory and CPU limits."""
        return self._fleet.watchdog

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` on every state change of every sandbox."""
        self._fleet.subscribe(listener)

    def guests(self) -> list[Sandbox]:
        """Every sandbox launched and not yet removed, in launch order."""
        return list(self._sandboxes.values())

    def __iter__(self) -> Iterator[Sandbox]:
        return iter(self.guests())

    async def launch(
        self,
        module: bytes | str | Path,
        *,
        name: str | None = None,
        restart: Restart | RestartPolicy | str = RestartPolicy.NEVER,
        console: ConsoleSink | None = None,
        stdin: Any = None,
        wait: bool = True,
        **settings: Any,
    ) -> Sandbox:
        """Launch a sandbox for ``module`` (a path, or the module's bytes).

        ``stdin``: what the program reads: bytes (each guest of the sandbox, a restarted
        one too, reads them from the start), a binary file object or an async iterator of
        bytes (read once, on demand: a restarted guest reads on), a ``StdinSource``, or
        None for end of input at once (``stdio.stdin_for``). ``console``: where the output
        goes as it comes (a ``ConsoleSink``); without one the sandbox keeps it, in
        ``Sandbox.stdout`` and ``Sandbox.stderr``.

        ``settings`` are the limits and inputs by ``GuestConfig``'s field names, e.g.
        ``memory="64MiB", fuel=10**9`` (``host.configkeys`` lists and explains them); None
        stands for the default. A bad value is a ``ConfigError`` naming ``Host.launch`` and
        the key; an unknown name, a ``TypeError``.
        With ``wait`` (the default) it returns once the guest is running, and raises
        ``GuestEnded`` if it could not start (the ending names the cause, e.g.
        ``load_failure(validation)``); otherwise it returns at once, still ``starting``.
        """
        if isinstance(module, str | Path):
            module = Path(module).read_bytes()
        config = config_from_keywords(settings, "Host.launch")
        if not isinstance(restart, Restart):
            try:
                restart = Restart(RestartPolicy(restart))
            except ValueError:
                choices = ", ".join(policy.value for policy in RestartPolicy)
                raise ValueError(f"restart must be one of {choices}, got {restart!r}") from None
        self._names += 1
        name = name or f"sandbox-{self._names}"
        if name in self._sandboxes:
            raise ValueError(f"a sandbox named {name!r} exists already")
        sandbox = Sandbox(
            self._fleet, name, bytes(module), config, restart, console, stdin_for(stdin)
        )
        self._sandboxes[name] = sandbox
        sandbox._launch()
        if wait:
            await sandbox.wait_running()
            if sandbox.state is not State.RUNNING:
                raise GuestEnded(sandbox.ending or Ending.stopped("could not start"))
        return sandbox

    async def function(
        self,
        name: str,
        module: bytes | str | Path,
        *,
        mode: str = "command",
        start: bool = False,
        **settings: Any,
    ) -> Function:
        """Deploy a serverless function (``host.serve``): ``module`` (a path, or its bytes)
        served in ``mode`` ``"command"`` (WAGI/CGI, a fresh guest per request) or
        ``"export"`` (a warm pool; ``export=`` names the function). ``settings``: the
        ``[[function]]`` keys of ``kindling serve`` (``export``, ``init``, ``route``,
        ``concurrency``, ``queue``, ``pool``) and every limit of ``launch``. A bad value is a
        ``ConfigError`` naming the key. ``start``: build its template now (else the first
        invocation does, cold). ``response = await fn.invoke(body=..., headers=..., query=...)``."""
        from .serve.spec import validate_function

        if isinstance(module, str | Path):
            module = Path(module).read_bytes()
        if any(function.name == name for function in self._functions):
            raise ValueError(f"a function named {name!r} exists already")
        values = {k: v for k, v in settings.items() if v is not None}
        spec = validate_function({"name": name, "mode": mode, **values}, "Host.function")
        function = self.deploy(spec, bytes(module))
        if start:
            await function.start()
        return function

    def deploy(self, spec: FunctionSpec, module: bytes) -> Function:
        """A function from a validated spec (``kindling serve``'s way in: two versions of
        one name may live at once while the old one drains)."""
        from .serve.function import Function

        function = Function(self._fleet, spec, module)
        self._functions.append(function)
        return function

    def functions(self) -> list[Function]:
        """Every function deployed and not yet removed."""
        return list(self._functions)

    async def remove_function(self, function: Function) -> None:
        """Stop a function's guests and forget it."""
        if function in self._functions:
            self._functions.remove(function)
        await function.close()

    def remove(self, sandbox: Sandbox) -> None:
        """Forget a sandbox in a final state (``guests()`` no longer lists it)."""
        if not sandbox.state.final:
            raise LifecycleError(f"sandbox {sandbox.name} is {sandbox.state.value}: stop it first")
        self._sandboxes.pop(sandbox.name, None)

    async def close(self) -> None:
        """Kill every sandbox's guest and every template still starting, then shut the
        templates down. However guests and templates behave, this returns within the time
        to reap the guests (measured: 4-6 s for 5,000) plus at most ``EXIT_GRACE`` (2 s) for
        an idle template to exit before it is killed."""
        await self._fleet.stop_watching()
        functions, self._functions = self._functions, []
        await asyncio.gather(*(f.close() for f in functions), return_exceptions=True)
        sandboxes = [s for s in self._sandboxes.values() if not s.state.final]
        for sandbox in sandboxes:
            sandbox.kill()
        self._fleet.kill_starting()
        await asyncio.gather(*(s.wait() for s in sandboxes), return_exceptions=True)
        await self._fleet.close_templates()

    def templates(self) -> list[Template]:
        """The templates ready to fork, one per module and configuration in use."""
        return self._fleet.templates()

    def sweep(self) -> int:
        """One watchdog pass over the running guests now; how many it ended."""
        return self._fleet.watchdog.sweep()


def raise_descriptor_limit() -> None:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit: the host holds three
    descriptors per guest (two pipe ends and a pidfd), and the usual soft limit of 1,024
    would stop it at about 330 guests."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_state(pid: int) -> str:
    """The kernel's one-letter state of ``pid`` (R, S, T, Z...), or "" if it is gone."""
    fields = stat_fields(pid)
    return fields[0].decode() if fields else ""


__all__ = [
    "Event",
    "GuestError",
    "Host",
    "LifecycleError",
    "Metrics",
    "Restart",
    "RestartPolicy",
    "Sandbox",
    "State",
    "TemplateError",
]
