"""``Guest``: one guest process as host code sees it -- start, boot, invoke, stop.

::

    Guest        policy: requests, states, limits, endings      (this module)
      ▲  message_received / connection_broken / eof_received
    GuestConnection   protocol: frame cap, msgpack, pydantic models   (connection.py)
      ▲  bytes, pidfd
    GuestProcess      transport: pipes, pid, signals, wait4           (transport.py)

The guest is hostile from the moment it runs: every frame has been capped and validated
before ``Guest`` sees it, and ``Guest`` checks that it is allowed *now* (the right state, the
id of the request the guest is working on, at most one stdin request outstanding). The first
thing that goes wrong decides the ending and the process is killed; whatever the guest says
after that is ignored.

Requests may be pipelined: ``submit_load``, ``submit_boot`` and ``submit_invoke`` send at
once, even before earlier requests are answered, and the guest works through them in order
(it reads one request, answers it, reads the next). ``kindling run`` sends Hello and Load the
moment the guest process exists -- before the host has even imported pydantic -- and Boot and
Invoke once the configuration is validated, so the guest loads the module (and translates
its functions) while the host is still starting up. The configuration may therefore be
given late, with ``configure``, as long as it is before ``submit_boot``.

States (the state is that of the request the guest is working on; ``_TRANSITIONS`` is the
one table of legal changes)::

    SPAWNED ─Hello─▶ CONNECTED ─Load─▶ LOADING ─Loaded─▶ LOADED ─Boot─▶ BOOTING ─Ready─▶ READY
       └──────────────────────Hello (a guest forked from a template: begin(forked=True))──▶┘
                                                                 RUNNING ◀──Invoke──┘ ▲
                                                                    └─Result, Trapped,─┘
                                                                      Refused
    LOADING, BOOTING, RUNNING ──a reply that ends the program──▶ EXITING
        (Exited, LoadFailed, LimitReached; Trapped from Boot, or an internal error)
    CONNECTED, LOADED, READY ──stop()──▶ STOPPING
    every state ──the process is reaped──▶ ENDED

Limits enforced here: the wall-clock deadline (``config.timeout``: SIGKILL, ``limit(wall)``),
the console quota (``config.max_output`` bytes in all, ``CONSOLE_CHUNK`` per frame:
``limit(output)``), the console frame rate (``FRAME_RATE``, ``FRAME_BURST``:
``protocol_error``), and the handshake deadline (``protocol_error``). The guest process
applies its kernel limits itself (RLIMIT_DATA for its memory bound, RLIMIT_CPU) and its
engine limits (linear memory, charged frames); ``_classify`` reads their effects from the
exit status. ``memory_bound`` is the bound the host's watchdog (``host.watchdog``) holds it
to, from outside.

This module does not import the pydantic models at import time (they are only needed once
frames arrive): it dispatches on each message's ``type``.
"""

from __future__ import annotations

import asyncio
import enum
import signal
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from protocol import messages as msg
from protocol.limits import loading_bound, running_bound
from protocol.messages import (
    CONSOLE_CHUNK,
    DEFAULT_LOAD_TIMEOUT,
    MAX_MODULE_BYTES,
    PROTOCOL_VERSION,
    MessageType,
)

from . import codecache
from .connection import GuestConnection
from .endings import Ending, Limit
from .errors import GuestEnded, GuestStartError, GuestTrapped, IllegalAction, InvokeRefused
from .stdio import CapturedConsole, ConsoleSink, NoStdin, StdinSource
from .transport import ExitStatus, GuestProcess, Launcher

if TYPE_CHECKING:
    from protocol.config import GuestConfig
    from protocol.models import (
        BootTimings,
        Code,
        Console,
        GuestMessage,
        Hello,
        LoadTimings,
        ResultValue,
        StdinRequest,
        Trapped,
    )

HANDSHAKE_TIMEOUT = 30.0
"""Seconds a new guest process has to say Hello (no untrusted code has run yet)."""
EXIT_GRACE = 2.0
"""Seconds a guest that said it is done (or was asked to shut down) has to exit."""
EOF_GRACE = 1.0
"""Seconds a guest that closed its pipe mid-request has before it counts as broken."""
FRAME_RATE = 2000.0
"""Console frames per second a guest may send on average (it batches its output)."""
FRAME_BURST = 4000.0
"""Console frames a guest may send in a burst."""
DEFAULT_CALL_DEPTH = 20_000
STDIN_CHUNK = 64 * 1024


class GuestState(enum.Enum):
    SPAWNED = "spawned"
    CONNECTED = "connected"
    LOADING = "loading"
    LOADED = "loaded"
    BOOTING = "booting"
    READY = "ready"
    RUNNING = "running"
    EXITING = "exiting"
    STOPPING = "stopping"
    ENDED = "ended"


S = GuestState
_TRANSITIONS: dict[GuestState, frozenset[GuestState]] = {
    S.SPAWNED: frozenset({S.CONNECTED, S.READY, S.ENDED}),  # READY: forked from a template
    S.CONNECTED: frozenset({S.LOADING, S.STOPPING, S.ENDED}),
    S.LOADING: frozenset({S.LOADED, S.EXITING, S.ENDED}),
    S.LOADED: frozenset({S.BOOTING, S.STOPPING, S.ENDED}),
    S.BOOTING: frozenset({S.READY, S.EXITING, S.ENDED}),
    S.READY: frozenset({S.RUNNING, S.STOPPING, S.ENDED}),
    S.RUNNING: frozenset({S.READY, S.EXITING, S.ENDED}),
    S.EXITING: frozenset({S.ENDED}),
    S.STOPPING: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
}

# The final replies each request may get.
_FINAL: dict[MessageType, frozenset[str]] = {
    MessageType.HELLO: frozenset({MessageType.HELLO}),
    MessageType.LOAD: frozenset(
        {MessageType.LOADED, MessageType.LOAD_FAILED, MessageType.LIMIT_REACHED}
    ),
    MessageType.BOOT: frozenset(
        {
            MessageType.READY,
            MessageType.LOAD_FAILED,
            MessageType.LIMIT_REACHED,
            MessageType.TRAPPED,
            MessageType.EXITED,
        }
    ),
    MessageType.INVOKE: frozenset(
        {
            MessageType.RESULT,
            MessageType.REFUSED,
            MessageType.TRAPPED,
            MessageType.EXITED,
            MessageType.LIMIT_REACHED,
            MessageType.LOAD_FAILED,  # functions compile on first call
        }
    ),
}
# What the guest is doing while it works on each kind of request.
_WORKING_STATE = {
    MessageType.LOAD: S.LOADING,
    MessageType.BOOT: S.BOOTING,
    MessageType.INVOKE: S.RUNNING,
}
_FILLS_CACHE = frozenset({MessageType.LOAD, MessageType.BOOT})  # may be answered with Code
_IDLE_STATE = {MessageType.LOAD: S.LOADED, MessageType.BOOT: S.READY, MessageType.INVOKE: S.READY}

Number = int | float
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1


@dataclass
class _Request:
    """A request sent to the guest and not yet answered."""

    id: int
    kind: MessageType
    future: asyncio.Future[Any]
    started: float = 0.0  # when the guest could begin on it (perf_counter)


class Guest:
    """One guest process. Use from a running event loop::

        guest = Guest(config)
        await guest.start()                  # spawn, handshake
        await guest.boot(module_bytes)       # load + instantiate; GuestEnded if it cannot
        results = await guest.invoke("add", [2, 3])
        ending = await guest.stop()          # always reaps the process

    Every method raises ``GuestEnded`` once the guest is over, ``IllegalAction`` when called
    in a state that does not allow it. ``ending`` is set once the process has been reaped;
    ``timings`` (milliseconds) and ``exit_status`` (peak RSS, CPU time) fill in as it goes.
    ``config`` may be left out and given later with ``configure`` (before ``submit_boot``);
    the defaults apply if it never is.
    """

    def __init__(
        self,
        config: GuestConfig | None = None,
        *,
        console: ConsoleSink | None = None,
        stdin: StdinSource | None = None,
        launcher: Launcher | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self._config = config
        self.console: ConsoleSink = console if console is not None else CapturedConsole()
        self.stdin: StdinSource = stdin if stdin is not None else NoStdin()
        self._launcher = launcher
        self._handshake_timeout = handshake_timeout
        self.state = GuestState.SPAWNED
        self.ending: Ending | None = None
        self.exit_status: ExitStatus | None = None
        self.timings: dict[str, float] = {}
        self.code_cache: str | None = None  # what the code cache did (``submit_load``)
        self.code_size: int | None = None  # the module's, from Loaded (``protocol.limits``)
        self._module_size = 0
        self._booted = False  # Ready received (or forked): the running bound holds
        self.fuel_used: int | None = None  # fuel spent so far, as of the last Result
        self._cache_dir: str | None = None
        self._digest = b""
        self._entry: list[bytes] = []  # Code frames of the running request
        self._entry_bytes = 0
        self.output_bytes = 0
        self._process: GuestProcess | None = None
        self._connection: GuestConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._decided: Ending | None = None
        self._last_id = 0
        self._inflight: deque[_Request] = deque()
        self._load_submitted = False
        self._boot_submitted = False
        self._forked = False
        self._handshake: asyncio.Future[Any] | None = None
        self._ended: asyncio.Future[Ending] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._load_deadline: asyncio.TimerHandle | None = None  # until Load is answered
        self._load_sent = 0.0  # loop time
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stdin_outstanding = False
        self._draining = False
        self._tokens = FRAME_BURST
        self._tokens_at = 0.0

    def __repr__(self) -> str:
        ending = f" {self.ending}" if self.ending else ""
        return f"<Guest pid={self.pid} {self.state.value}{ending}>"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def config(self) -> GuestConfig:
        """The configuration (the defaults until ``configure`` says otherwise)."""
        if self._config is None:
            from protocol.config import GuestConfig

            self._config = GuestConfig()
        return self._config

    @property
    def memory_bound(self) -> int:
        """The most memory of its own (USS, bytes) the guest may have now
        (``protocol.limits``): the running bound once it is ready (a forked guest from the
        start), the loading bound until its module is loaded, the larger of the two while
        it boots. The host's watchdog ends a guest over it."""
        loading = loading_bound(self._module_size)
        if self._config is None or self.code_size is None:
            return loading  # not booting yet: Boot needs both
        running = running_bound(self._config.memory, self.code_size)
        return running if self._booted else max(loading, running)

    @property
    def cpu_limit(self) -> int | None:
        """The CPU seconds the configuration allows (None: no limit, or none given yet)."""
        return self._config.cpu if self._config is not None else None

    @property
    def started(self) -> bool:
        """``begin`` has been called: there is (or was) a guest process."""
        return self._process is not None

    @property
    def load_submitted(self) -> bool:
        return self._load_submitted

    def configure(self, config: GuestConfig) -> None:
        """Set the configuration of a guest that is not booted yet. Its wall-clock timeout
        counts from now (or from ``begin``, if that comes later)."""
        if self._boot_submitted:
            raise IllegalAction("the configuration cannot change once Boot is sent")
        if self._config is not None and self._loop is not None:
            raise IllegalAction("the configuration is already in force")
        self._config = config
        if self._loop is not None:
            self._arm_deadline()
        if self._load_deadline is not None:  # Load went out before the config was known
            self._arm_load_deadline()

    def _arm_deadline(self) -> None:
        assert self._loop is not None
        timeout = self.config.timeout
        if timeout is not None:
            self._timers.append(self._loop.call_later(timeout, self._on_deadline))

    @property
    def frames_received(self) -> int:
        """Frames received from the guest so far (all validated)."""
        return self._connection.frames_received if self._connection is not None else 0

    # -- state --------------------------------------------------------------------------------

    def _transition(self, new: GuestState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise IllegalAction(f"a guest cannot go from {self.state.value} to {new.value}")
        self.state = new

    def _check_alive(self) -> None:
        if self.ending is not None:
            raise GuestEnded(self.ending)
        if self._decided is not None:
            raise GuestEnded(self._decided)

    def _decide(self, ending: Ending) -> None:
        """Record the first cause; later ones do not change how the guest ended. Nothing
        the guest sends after this matters, so its frames are no longer even read."""
        if self._decided is None:
            self._decided = ending
            if self._connection is not None:
                self._connection.stop_reading()

    def _terminate(self, ending: Ending) -> None:
        """End the guest now with ``ending`` (unless something already decided it): SIGKILL."""
        if self.state is GuestState.ENDED:
            return
        self._decide(ending)
        if self._process is not None:
            self._process.kill()

    # -- start --------------------------------------------------------------------------------

    def begin(
        self,
        process: GuestProcess | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        forked: bool = False,
        code_size: int = 0,
    ) -> None:
        """Spawn the guest process (or adopt ``process``, spawned earlier; the guest owns it
        from now on) and send Hello, without waiting for anything.

        ``loop`` defaults to the running loop. ``GuestStartError`` if no process can be
        started. ``handshake()`` waits for the guest's Hello. ``forked``: ``process`` was
        forked from a template (``host.template``), so its module -- of ``code_size``, as
        the template's ``Loaded`` said -- is loaded and booted already, with this guest's
        configuration: after Hello it is ready for Invoke.
        """
        if self._process is not None or self.state is not GuestState.SPAWNED:
            raise IllegalAction("this guest was already started")
        if forked:
            if process is None or self._config is None:
                raise IllegalAction("a forked guest needs its process and its configuration")
            self._forked = self._load_submitted = self._boot_submitted = True
            self.code_size, self._booted = code_size, True
        loop = self._loop = loop or asyncio.get_running_loop()
        if process is None:
            try:
                process = GuestProcess.spawn(self._launcher or Launcher.default())
            except OSError as exc:
                raise GuestStartError(f"cannot start a guest process: {exc}") from exc
        self._process = process
        self._connection = GuestConnection(process, self, loop)
        self._ended = loop.create_future()
        self._tokens_at = loop.time()
        if self._config is not None:
            self._arm_deadline()
        self._timers.append(loop.call_later(self._handshake_timeout, self._on_handshake_timeout))
        if self._forked:
            # The template checked our versions already; its guests only say they are ready.
            self._handshake = self._expect(MessageType.HELLO, 0)
        else:
            self._handshake = self._send(MessageType.HELLO, msg.hello())
        self._spawn(self._watch_exit())
        self._connection.resume_reading()

    async def handshake(self) -> None:
        """Wait for the guest's Hello; ``GuestEnded`` if it breaks the handshake or dies."""
        if self._handshake is None:
            raise IllegalAction("the guest has not begun")
        await self._handshake

    async def start(self, process: GuestProcess | None = None) -> None:
        """``begin()`` and ``handshake()``: a started, connected guest."""
        self.begin(process)
        await self.handshake()

    def _spawn(self, coroutine: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_deadline(self) -> None:
        assert self.config.timeout is not None
        self._terminate(
            Ending.limit(
                Limit.WALL, f"still running after its timeout of {self.config.timeout:g} s"
            )
        )

    def _on_handshake_timeout(self) -> None:
        if self.state is GuestState.SPAWNED:
            self._terminate(
                Ending.protocol_error(f"no Hello within {self._handshake_timeout:g} s of start")
            )

    # -- requests -----------------------------------------------------------------------------

    def _send(self, kind: MessageType, message: dict[str, Any]) -> asyncio.Future[Any]:
        assert self._loop is not None and self._connection is not None
        future: asyncio.Future[Any] = self._loop.create_future()
        request = _Request(message["id"], kind, future, time.perf_counter())
        idle = not self._inflight
        self._inflight.append(request)
        if not idle:
            request.started = 0.0  # set when the guest gets to it (_begin_next)
        elif kind in _WORKING_STATE:
            self._transition(_WORKING_STATE[kind])  # CONNECTED -> BOOTING, READY -> RUNNING
        self._connection.send(message)
        return future

    def _expect(self, kind: MessageType, request_id: int) -> asyncio.Future[Any]:
        """A request the guest answers without being sent one (a forked guest's Hello)."""
        assert self._loop is not None
        future: asyncio.Future[Any] = self._loop.create_future()
        self._inflight.append(_Request(request_id, kind, future, time.perf_counter()))
        return future

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def submit_load(self, module: bytes, cache_dir: str | None = None) -> asyncio.Future[Any]:
        """Send the module now; the future gives the guest's ``LoadTimings`` once it is
        decoded, validated and compiled (``GuestEnded`` when it cannot be). The guest then
        translates functions ahead of time until the next request arrives.

        ``cache_dir`` is the code cache's directory (``host.codecache.prepare``): the guest
        gets the module's entry from there if there is one, else compiles all of the module
        and sends a new entry to be kept. ``code_cache`` then says what happened."""
        self._check_alive()
        if self._process is None or self._load_submitted:
            raise IllegalAction(f"cannot load a module into a guest that is {self.state.value}")
        if len(module) > MAX_MODULE_BYTES:
            raise ValueError(
                f"the module is {len(module)} bytes, over the limit of {MAX_MODULE_BYTES}"
            )
        self._load_submitted = True
        self._module_size = len(module)
        cached = None
        if cache_dir is not None:
            self._cache_dir = cache_dir
            self._digest = codecache.module_digest(module)
            cached = codecache.read(cache_dir, self._digest, metered=False)
        message = msg.load(self._next_id(), bytes(module), cached)
        future = self._send(MessageType.LOAD, message)
        assert self._loop is not None
        self._load_sent = self._loop.time()
        self._arm_load_deadline()
        return future

    def _arm_load_deadline(self) -> None:
        """``limit(wall)`` unless Load is answered ``load_timeout`` seconds after it went out
        (the default until the configuration is known)."""
        assert self._loop is not None
        if self._load_deadline is not None:
            self._load_deadline.cancel()
        seconds = DEFAULT_LOAD_TIMEOUT if self._config is None else self._config.load_timeout
        self._load_deadline = self._loop.call_at(
            self._load_sent + seconds, self._on_load_deadline, seconds
        )

    def _on_load_deadline(self, seconds: float) -> None:
        self._terminate(
            Ending.limit(
                Limit.WALL,
                f"still loading the module (decode, validate, compile) after its load "
                f"timeout of {seconds:g} s",
            )
        )

    def submit_boot(self, program_name: str = "module.wasm") -> asyncio.Future[Any]:
        """Send Boot now (after Load, possibly before it is answered): the configuration's
        limits, and the program's arguments (``program_name`` is argv[0]) and environment.
        The future gives the guest's ``BootTimings`` once it is instantiated."""
        self._check_alive()
        if not self._load_submitted or self._boot_submitted:
            raise IllegalAction(f"cannot boot a guest that is {self.state.value}")
        config = self.config
        self._boot_submitted = True
        cached = None
        if self._cache_dir is not None and config.fuel is not None:
            cached = codecache.read(self._cache_dir, self._digest, metered=True)
        message = msg.boot(
            self._next_id(),
            [program_name.encode(), *(arg.encode() for arg in config.args)],
            config.env_entries(),
            {
                "memory_bytes": config.memory,
                "cpu_seconds": config.cpu,
                "call_depth": DEFAULT_CALL_DEPTH,
                "fuel": config.fuel,
            },
            cached,
        )
        return self._send(MessageType.BOOT, message)

    def submit_invoke(self, export: str, args: Sequence[Number] = ()) -> asyncio.Future[Any]:
        """Send an Invoke now (after a Boot, possibly before it is answered); the future gives
        the results or raises as ``invoke`` does."""
        self._check_alive()
        if not self._boot_submitted or self.state in (S.STOPPING, S.EXITING, S.ENDED):
            raise IllegalAction(f"cannot invoke a guest that is {self.state.value}")
        values = [_check_number(value) for value in args]
        return self._send(MessageType.INVOKE, msg.invoke(self._next_id(), export, values))

    async def boot(self, module: bytes, program_name: str = "module.wasm") -> dict[str, float]:
        """Load the module and instantiate it; the load and boot timings (milliseconds).

        ``program_name`` is the program's argv[0]. ``GuestEnded`` when the module cannot be
        loaded (``load_failure(stage)``), needs more memory than the budget
        (``limit(memory)``), or its start function traps or exits.
        """
        loaded = self.submit_load(module)
        booted = self.submit_boot(program_name)
        load_timings = cast("LoadTimings", await loaded)
        boot_timings = cast("BootTimings", await booted)
        return {**load_timings.model_dump(), **boot_timings.model_dump()}

    async def invoke(self, export: str, args: Sequence[Number] = ()) -> list[ResultValue]:
        """Call an exported function with numbers; its results (``ResultValue.signed()``).

        ``GuestTrapped`` if it traps (the guest can be invoked again), ``InvokeRefused`` if
        there is no such function or the arguments do not fit, ``GuestEnded`` if the guest
        ends meanwhile (the program exits, a limit, a protocol error).
        """
        return cast("list[ResultValue]", await self.submit_invoke(export, args))

    async def run_command(self) -> Ending:
        """Run the WASI command (``_start``); how the program ended.

        Returning from ``_start`` is ``exited(0)``; ``proc_exit(n)`` is ``exited(n)``.
        ``GuestTrapped`` / ``InvokeRefused`` / ``GuestEnded`` as for ``invoke``.
        """
        try:
            await self.invoke("_start")
        except GuestEnded as ended:
            return ended.ending
        return Ending.exited(0)

    def terminate(self, reason: str = "stopped by the host") -> None:
        """Kill the guest now, from any context (e.g. a signal handler); ``stopped`` unless
        something else already decided the ending. ``stop()`` or the run then reaps it."""
        self._terminate(Ending.stopped(reason))

    async def stop(self, grace: float = EXIT_GRACE) -> Ending:
        """End the guest and reap it; how it ended. Safe to call in any state, repeatedly.

        An idle guest is asked to shut down (``stopped``); a guest that said it is done gets
        ``grace`` seconds to exit; anything else -- mid-request, or not exiting in time --
        is killed.
        """
        if self._process is None:
            self.state = GuestState.ENDED
            self.ending = self.ending or Ending.stopped("never started")
            return self.ending
        if self.state in (S.CONNECTED, S.LOADED, S.READY) and not self._inflight:
            self._decide(Ending.stopped("shut down by the host"))
            self._transition(GuestState.STOPPING)
            assert self._connection is not None
            self._connection.send(msg.shutdown(self._next_id()))
        elif self.state not in (S.EXITING, S.STOPPING, S.ENDED):
            self._terminate(Ending.stopped("stopped by the host"))
        assert self._ended is not None
        if not self._ended.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._ended), grace)
            except TimeoutError:
                self._terminate(Ending.stopped("did not exit in time; killed"))
        return await self._ended

    async def wait(self) -> Ending:
        """Wait until the guest has ended and been reaped; how it ended."""
        if self._ended is None:
            raise IllegalAction("the guest has not begun")
        return await asyncio.shield(self._ended)

    def send_signal(self, sig: int) -> None:
        """Signal the guest process (nothing happens once it has been reaped)."""
        if self._process is not None:
            self._process.send_signal(sig)

    def end(self, ending: Ending) -> None:
        """Kill the guest now, recording ``ending`` (a limit the caller enforces, say)
        unless something else already decided how it ended."""
        self._terminate(ending)

    async def kill(self, reason: str = "killed by the host") -> Ending:
        """Kill the guest now (``stopped`` unless something else already decided); reap it."""
        self._terminate(Ending.stopped(reason))
        return await self.stop()

    # -- exit ---------------------------------------------------------------------------------

    async def _watch_exit(self) -> None:
        assert self._process is not None
        status = await self._process.wait()
        self._on_exit(status)

    def _on_exit(self, status: ExitStatus) -> None:
        assert self._process is not None and self._connection is not None
        self.exit_status = status
        # Collect what it wrote before it went: its last frames may say how it ended.
        self._connection.read_available()
        ending = self._decided or self._classify(status)
        self.ending = ending
        self.state = GuestState.ENDED  # every state may end
        for timer in self._timers:
            timer.cancel()
        if self._load_deadline is not None:
            self._load_deadline.cancel()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        self._connection.close()
        self._process.close()
        for request in self._inflight:
            if not request.future.done():
                _fail(request.future, GuestEnded(ending))
        self._inflight.clear()
        assert self._ended is not None
        self._ended.set_result(ending)

    def _classify(self, status: ExitStatus) -> Ending:
        """The ending of a guest process that died without a decided ending."""
        if status.signal is not None:
            cpu = self.config.cpu
            if status.signal == signal.SIGXCPU or (
                status.signal == signal.SIGKILL and cpu is not None and status.cpu_seconds >= cpu
            ):
                if cpu is None:
                    return Ending.limit(Limit.CPU, "got SIGXCPU, the CPU-time limit's signal")
                return Ending.limit(Limit.CPU, f"used more than its {cpu} s of CPU time")
            return Ending.signalled(status.signal)
        if status.code == msg.GUEST_STATUS_OUT_OF_MEMORY:
            return Ending.limit(Limit.MEMORY, "the guest process ran out of memory")
        if status.code == msg.GUEST_STATUS_HOST_BROKE_PROTOCOL:
            return Ending.protocol_error("the guest says the host broke the protocol")
        return Ending.protocol_error(
            f"the guest process ended ({status}) without reporting how the run ended"
        )

    # -- ConnectionListener ---------------------------------------------------------------------

    def connection_broken(self, reason: str) -> None:
        self._terminate(Ending.protocol_error(reason))

    def eof_received(self) -> None:
        if self._decided is not None or self.state in (S.EXITING, S.STOPPING):
            return  # it is exiting, as it should
        assert self._loop is not None
        self._timers.append(self._loop.call_later(EOF_GRACE, self._on_eof_grace))

    def _on_eof_grace(self) -> None:
        self._terminate(Ending.protocol_error("the guest closed its pipe but kept running"))

    def message_received(self, message: GuestMessage) -> None:
        if self._decided is not None or self.state is GuestState.ENDED:
            return  # the ending is decided; nothing it says now matters
        if message.type == "Console":
            self._on_console(message)
        elif message.type == "Code":
            self._on_code(message)
        elif message.type == "StdinRequest":
            self._on_stdin_request(message)
        else:
            self._on_final_reply(message)

    def _violation(self, reason: str) -> None:
        self._terminate(Ending.protocol_error(reason))

    def _in_request(self, message: GuestMessage, running_code: bool = False) -> bool:
        """The guest is working on a request and ``message`` names it. ``running_code``:
        the message is one only Wasm code can cause (console, stdin), so loading is no
        excuse for it."""
        working = (S.BOOTING, S.RUNNING) if running_code else (S.LOADING, S.BOOTING, S.RUNNING)
        if self.state not in working:
            self._violation(f"{message.type} while {self.state.value}")
            return False
        current = self._inflight[0].id
        if message.id != current:
            self._violation(f"{message.type} for request {message.id}, not {current}")
            return False
        return True

    def _take_token(self) -> bool:
        assert self._loop is not None
        now = self._loop.time()
        self._tokens = min(FRAME_BURST, self._tokens + (now - self._tokens_at) * FRAME_RATE)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _on_console(self, message: Console) -> None:
        if not self._in_request(message, running_code=True):
            return
        if not self._take_token():
            self._violation(f"frame flood: more than {FRAME_RATE:g} console frames per second")
            return
        data = message.data
        if len(data) > CONSOLE_CHUNK:
            self._terminate(
                Ending.limit(
                    Limit.OUTPUT,
                    f"a console frame of {len(data)} bytes is over the per-frame cap of "
                    f"{CONSOLE_CHUNK} bytes",
                )
            )
            return
        room = self.config.max_output - self.output_bytes
        if len(data) > room:
            if room > 0:
                self.console.write(message.stream, data[:room])
                self.output_bytes += room
            self._terminate(
                Ending.limit(
                    Limit.OUTPUT,
                    f"wrote more than its output quota of {self.config.max_output} bytes",
                )
            )
            return
        self.output_bytes += len(data)
        self.console.write(message.stream, data)
        if self.console.backed_up and not self._draining:
            self._draining = True
            assert self._connection is not None
            self._connection.pause_reading()
            self._spawn(self._drain_console())

    async def _drain_console(self) -> None:
        try:
            await self.console.drain()
        finally:
            self._draining = False
        if self.state is not GuestState.ENDED and self._connection is not None:
            self._connection.resume_reading()

    def _on_code(self, message: Code) -> None:
        if not self._in_request(message):
            return
        if self._cache_dir is None or self._inflight[0].kind not in _FILLS_CACHE:
            self._violation("a Code frame but the host keeps no code cache for this request")
            return
        self._entry_bytes += len(message.data)
        if self._entry_bytes > msg.MAX_ENTRY_BYTES:
            self._violation(f"a code cache entry over {msg.MAX_ENTRY_BYTES} bytes")
            return
        self._entry.append(message.data)

    def _keep_entry(self, kind: MessageType, status: str) -> None:
        """Note what the code cache did for a Load or Boot; write the entry the guest sent."""
        if self._entry and self._cache_dir is not None:
            entry = b"".join(self._entry)
            self._entry, self._entry_bytes = [], 0
            metered = kind is MessageType.BOOT
            status += "; " + codecache.write(self._cache_dir, self._digest, metered, entry)
        if kind is MessageType.LOAD:
            self.code_cache = status
        elif status != "off":
            self.code_cache = f"{self.code_cache}; metered: {status}"

    def _on_stdin_request(self, message: StdinRequest) -> None:
        if not self._in_request(message, running_code=True):
            return
        if self._stdin_outstanding:
            self._violation("a second StdinRequest before the first was answered")
            return
        self._stdin_outstanding = True
        self._spawn(self._serve_stdin(message.id, min(message.max, STDIN_CHUNK)))

    async def _serve_stdin(self, request_id: int, size: int) -> None:
        try:
            data = await self.stdin.read(size)
        except OSError:
            data = b""  # unreadable stdin is the end of input
        if self.state is GuestState.ENDED or self._decided is not None:
            return
        if not self._stdin_outstanding or not self._inflight or self._inflight[0].id != request_id:
            return
        self._stdin_outstanding = False
        self._tokens = min(FRAME_BURST, self._tokens + 1.0)  # a read flushes the prompt first
        assert self._connection is not None
        self._connection.send(msg.stdin_data(request_id, data[:size]))

    def _on_final_reply(self, message: GuestMessage) -> None:
        if not self._inflight:
            self._violation(f"{message.type} while no request is running")
            return
        request = self._inflight[0]
        if message.type not in _FINAL[request.kind]:
            self._violation(f"{message.type} is not a reply to {request.kind}")
            return
        if request.kind is MessageType.HELLO:
            self._on_hello(cast("Hello", message), request)
            return
        if not self._in_request(message):
            return
        if self._stdin_outstanding:
            self._violation(f"{message.type} while its StdinRequest was unanswered")
            return
        now = time.perf_counter()
        if request.kind is MessageType.INVOKE:
            # From when the host saw the guest free to start it (the guest reports the rest).
            elapsed = round((now - request.started) * 1000, 3)
            self.timings["run_ms"] = round(self.timings.get("run_ms", 0.0) + elapsed, 3)
        self._inflight.popleft()
        if request.kind is MessageType.LOAD and self._load_deadline is not None:
            self._load_deadline.cancel()
            self._load_deadline = None
        finished = self._finished_ending(message, request.kind)
        if finished is not None:
            # The guest process exits by itself now; give it a moment, then insist.
            self._decide(finished)
            self._transition(GuestState.EXITING)
            assert self._loop is not None and self._process is not None
            self._timers.append(self._loop.call_later(EXIT_GRACE, self._process.kill))
            _fail(request.future, GuestEnded(finished))
            return
        self._transition(_IDLE_STATE[request.kind])
        self._begin_next(now)
        self._settle(request, message)

    def _finished_ending(self, message: GuestMessage, kind: MessageType) -> Ending | None:
        """The ending a final reply implies, when it ends the guest (None if it goes on)."""
        if message.type == "Exited":
            return Ending.exited(message.code)
        if message.type == "LoadFailed":
            failed = message
            return Ending.load_failure(failed.stage, failed.message)
        if message.type == "LimitReached":
            limit = message
            return Ending.limit(Limit(limit.resource), limit.message)
        if message.type == "Trapped":
            trap = message
            if kind is not MessageType.INVOKE or trap.kind == "internal_error":
                return Ending.trapped(trap.kind, trap.message)
        return None

    def _settle(self, request: _Request, message: GuestMessage) -> None:
        """Resolve a request's future from its (non-final) reply."""
        future = request.future
        if message.type in ("Loaded", "Ready"):
            self._keep_entry(request.kind, message.cache)
            if message.type == "Loaded":
                self.code_size = message.code_size
            else:
                self._booted = True
            timings = message.timings
            self.timings.update(timings.model_dump())
            future.set_result(timings)
        elif message.type == "Result":
            if message.fuel is not None:
                self.fuel_used = message.fuel
            future.set_result(list(message.results))
        elif message.type == "Refused":
            _fail(future, InvokeRefused(message.message, message.reason))
        else:
            trap = cast("Trapped", message)
            _fail(future, GuestTrapped(Ending.trapped(trap.kind, trap.message)))

    def _on_hello(self, message: Hello, request: _Request) -> None:
        if message.id != 0:
            self._violation(f"Hello must have id 0, not {message.id}")
            return
        if message.version != PROTOCOL_VERSION:
            self._violation(
                f"the guest speaks protocol version {message.version}, the host {PROTOCOL_VERSION}"
            )
            return
        now = time.perf_counter()
        assert self._process is not None
        # Both clocks are CLOCK_MONOTONIC: when the guest was ready, not when we looked.
        spawn_ns = max(message.ready_ns - self._process.spawned_ns, 0)
        self.timings["spawn_ms"] = round(spawn_ns / 1e6, 3)
        self._inflight.popleft()
        self._transition(GuestState.READY if self._forked else GuestState.CONNECTED)
        self._begin_next(now)
        request.future.set_result(message)

    def _begin_next(self, now: float) -> None:
        """The guest moves on to the next pipelined request, if there is one."""
        if self._inflight:
            following = self._inflight[0]
            following.started = now
            self._transition(_WORKING_STATE[following.kind])


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    future.set_exception(error)
    future.exception()  # marked as retrieved: a pipelined request may never be awaited


def _check_number(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"invoke arguments must be ints or floats, got {value!r}")
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        raise ValueError(f"{value} does not fit in 64 bits")
    return value
