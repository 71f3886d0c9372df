"""``Guest``: one guest process as host code sees it -- start, boot, invoke, end.

::

    Guest        process, requests sent, deadlines, how it ends     (this module)
      Conversation   every frame from the guest: checked, routed,   (conversation.py)
      │              replies settled; state and stage
      ├─ Pipeline      requests sent and not yet answered          (pipeline.py)
      ├─ OutputGate    console quota, frame rate, backpressure     (output.py)
      ├─ StdinServer   StdinRequest -> StdinData                   (stdinserver.py)
      ├─ FileBroker    FileCall -> FileAnswer, preopened directories (filebroker.py)
      ├─ CacheSink     code cache entries out, new entries in      (cachesink.py)
      └─ exits         how it ended, from a reply or a wait status (exits.py)
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
once, even before earlier requests are answered (``host.pipeline``). ``kindling run`` sends
Hello and Load the moment the guest process exists -- before the host has even imported
pydantic -- and Boot and Invoke once the configuration is validated, so the guest loads the
module (and translates its functions) while the host is still starting up. The
configuration may therefore be given late, with ``configure``, as long as it is before
``submit_boot``. The states, their one table of legal changes, and the module's stages are
in ``host.gueststate``.

Two ways out: ``end(ending)`` kills the guest now (a limit the caller enforces, an
interrupt, a broken rule), and ``stop()`` asks an idle guest to shut down, waits, and reaps
it (killing what does not go). The first ending decided is the one that counts.

Limits enforced here: the wall-clock deadline (``config.timeout``: SIGKILL, ``limit(wall)``),
the load deadline (``config.load_timeout``), the console quota and frame rate
(``host.output``), and the handshake deadline (``protocol_error``). The guest process
applies its kernel limits itself (RLIMIT_DATA for its memory bound, RLIMIT_CPU) and its
engine limits (linear memory, charged frames); ``host.exits`` reads their effects from the
exit status. ``memory_bound`` is the bound the host's watchdog (``host.watchdog``) holds it
to, from outside.

This module does not import pydantic at import time (the models are only needed once frames
arrive, and the config once Boot is sent).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from protocol.limits import loading_bound, running_bound, snapshot_allowance
from protocol.messages import (
    DEFAULT_LOAD_TIMEOUT,
    MAX_INVOKE_STDIN,
    MAX_MODULE_BYTES,
    MAX_SNAPSHOT_BYTES,
    PROTOCOL_VERSION,
    BootTimings,
    GuestHello,
    HostHello,
    Invoke,
    Load,
    LoadTimings,
    Message,
    ResultValue,
    Shutdown,
    StartMode,
)

from . import codecache
from .cachesink import CacheSink
from .chunked import ChunkedPayload
from .connection import GuestConnection
from .conversation import Conversation, timings_dict
from .endings import Ending, Limit
from .errors import GuestEnded, GuestStartError, IllegalAction
from .exits import classify_exit
from .filebroker import FileBroker
from .framebudget import FrameBudget
from .gueststate import IDLE_STATES, LEAVING_STATES, GuestState, Stage
from .idmap import IdMapError, map_subordinate_ids
from .output import OutputGate
from .pipeline import WORKING_STATE, Pipeline
from .stdinserver import StdinServer
from .stdio import CapturedConsole, ConsoleSink, NoStdin, StdinSource
from .transport import ExitStatus, GuestProcess, Launcher

if TYPE_CHECKING:
    from .config import GuestConfig

HANDSHAKE_TIMEOUT = 30.0
"""Seconds a new guest process has to say Hello (no untrusted code has run yet)."""
EXIT_GRACE = 2.0
"""Seconds a guest that said it is done (or was asked to shut down) has to exit."""
EOF_GRACE = 1.0
"""Seconds a guest that closed its pipe mid-request has before it counts as broken."""

Number = int | float
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1

__all__ = ["EXIT_GRACE", "HANDSHAKE_TIMEOUT", "Guest", "GuestState", "Number"]


class Guest(Conversation):
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
        super().__init__(console if console is not None else CapturedConsole())
        self._config = config
        self._stdin: StdinSource = stdin if stdin is not None else NoStdin()
        self._launcher = launcher
        self._handshake_timeout = handshake_timeout
        self.exit_status: ExitStatus | None = None
        # Which of the program's stdin, stdout, stderr (0, 1, 2) are terminals (Boot says so).
        self.terminals: list[int] = []
        self._module_size = 0
        self._process: GuestProcess | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._snapshot_sent = 0  # the size of the one Boot brought (a template's)
        self._handshake: asyncio.Future[Any] | None = None
        self._ended: asyncio.Future[Ending] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._load_deadline: asyncio.TimerHandle | None = None  # until Load is answered
        self._load_sent = 0.0  # loop time
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        ending = f" {self.ending}" if self.ending else ""
        return f"<Guest pid={self.pid} {self.state.value}{ending}>"

    # -- what it is --------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def ending(self) -> Ending | None:
        """How the guest ended, once its process has been reaped (None until then)."""
        return self._decided if self.state is GuestState.ENDED else None

    @property
    def config(self) -> GuestConfig:
        """The configuration (the defaults until ``configure`` says otherwise)."""
        if self._config is None:
            from .config import GuestConfig

            self._config = GuestConfig()
        return self._config

    @property
    def console(self) -> ConsoleSink:
        return self._console

    @property
    def output_bytes(self) -> int:
        """Console bytes the guest has written (and the host passed on)."""
        return self._output.bytes_written if self._output is not None else 0

    @property
    def memory_bound(self) -> int:
        """The most memory of its own (USS, bytes) the guest may have now
        (``protocol.limits``): the running bound once it is ready (a forked guest from the
        start), the loading bound until its module is loaded, the larger of the two while
        it boots, and a template the room for the snapshot its Boot brought on top. The
        host's watchdog ends a guest over it."""
        loading = loading_bound(self._module_size)
        if self._config is None or self.code_size is None:
            return loading  # not booting yet: Boot needs both
        running = running_bound(self._config.memory, self.code_size)
        if self._stage is Stage.BOOTED:
            return running
        return max(loading, running) + snapshot_allowance(self._snapshot_sent)

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
        return self._stage >= Stage.LOAD_SENT

    @property
    def frames_received(self) -> int:
        """Frames received from the guest so far (all validated)."""
        return self._connection.frames_received if self._connection is not None else 0

    def configure(self, config: GuestConfig) -> None:
        """Set the configuration of a guest that is not booted yet. Its wall-clock timeout
        counts from now (or from ``begin``, if that comes later)."""
        if self._stage >= Stage.BOOT_SENT:
            raise IllegalAction("the configuration cannot change once Boot is sent")
        if self._config is not None and self._loop is not None:
            raise IllegalAction("the configuration is already in force")
        self._config = config
        if self._loop is not None:
            self._arm_deadline()
        if self._load_deadline is not None:  # Load went out before the config was known
            self._arm_load_deadline()

    # -- state ------------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._decided is not None:
            raise GuestEnded(self._decided)

    def end(self, ending: Ending) -> None:
        """Kill the guest now (SIGKILL), from any context (a signal handler, a watchdog),
        recording ``ending`` unless something already decided how it ended. ``stop()``, or
        the run that owns the guest, then reaps it."""
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
            self.code_size, self._stage = code_size, Stage.BOOTED
            self._open_broker()
        loop = self._loop = loop or asyncio.get_running_loop()
        if process is None:
            try:
                process = GuestProcess.spawn(self._launcher or Launcher.default())
            except OSError as exc:
                raise GuestStartError(f"cannot start a guest process: {exc}") from exc
        self._process = process
        connection = self._connection = GuestConnection(process, self, loop)
        self._pipeline = Pipeline(loop)
        self._frames = FrameBudget(loop)
        self._output = OutputGate(
            self._console,
            lambda: self.config.max_output,
            loop,
            pause=functools.partial(connection.hold, "output"),
            resume=functools.partial(connection.release, "output"),
            spawn=self._spawn,
        )
        self._stdin_server = StdinServer(self._stdin, self._answer, self._still_wanted, self._spawn)
        self._ended = loop.create_future()
        if self._config is not None:
            self._arm_deadline()
        self._timers.append(loop.call_later(self._handshake_timeout, self._on_handshake_timeout))
        if process.subordinate_ids is not None and not forked:
            # It waits for our Hello in a user namespace of its own: its ids first.
            connection.cork()
        hello = HostHello(id=0)
        if forked:
            # The template checked our versions already; its guests only say they are ready.
            self._handshake = self._pipeline.add(HostHello, 0).future
        else:
            self._handshake = self._send(hello)
        self._spawn(self._watch_exit(process))
        connection.resume_reading()

    async def handshake(self) -> None:
        """Wait for the guest's Hello; ``GuestEnded`` if it breaks the handshake or dies."""
        if self._handshake is None:
            raise IllegalAction("the guest has not begun")
        await self._handshake

    async def start(self, process: GuestProcess | None = None) -> None:
        """``begin()`` and ``handshake()``: a started, connected guest."""
        self.begin(process)
        await self.handshake()

    def _open_broker(self) -> None:
        """The file broker for the configuration's preopened directories, if it has any."""
        preopens = self.config.preopen_directories()
        if preopens:
            self._files = FileBroker(
                preopens, self._answer, self._still_wanted, self._spawn, self._hold_for_files
            )

    def _hold_for_files(self, held: bool) -> None:
        """Stop reading the guest's frames while its file writes wait (``FileBroker``)."""
        if self._connection is not None:
            (self._connection.hold if held else self._connection.release)("files")

    def _spawn(self, coroutine: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- deadlines -----------------------------------------------------------------------------

    def _arm_deadline(self) -> None:
        assert self._loop is not None
        timeout = self.config.timeout
        if timeout is not None:
            ending = Ending.limit(Limit.WALL, f"still running after its timeout of {timeout:g} s")
            self._timers.append(self._loop.call_later(timeout, self.end, ending))

    def _on_handshake_timeout(self) -> None:
        if self.state is GuestState.SPAWNED:
            self.end(
                Ending.protocol_error(f"no Hello within {self._handshake_timeout:g} s of start")
            )

    def _arm_load_deadline(self) -> None:
        """``limit(wall)`` unless Load is answered ``load_timeout`` seconds after it went out
        (the default until the configuration is known)."""
        assert self._loop is not None
        if self._load_deadline is not None:
            self._load_deadline.cancel()
        seconds = DEFAULT_LOAD_TIMEOUT if self._config is None else self._config.load_timeout
        ending = Ending.limit(
            Limit.WALL,
            f"still loading the module (decode, validate, compile) after its load "
            f"timeout of {seconds:g} s",
        )
        self._load_deadline = self._loop.call_at(self._load_sent + seconds, self.end, ending)

    # -- requests -----------------------------------------------------------------------------

    def _send(self, message: Message) -> asyncio.Future[Any]:
        assert self._pipeline is not None and self._connection is not None
        request = self._pipeline.add(type(message), message.id)
        if request.started and type(message) in WORKING_STATE:
            self._transition(WORKING_STATE[type(message)])  # CONNECTED -> LOADING, ...
        self._connection.send(message)
        return request.future

    def _next_id(self) -> int:
        assert self._pipeline is not None
        return self._pipeline.next_id()

    def submit_load(
        self,
        module: bytes,
        cache_dir: str | None = None,
        digest: bytes | None = None,
        give_entries: bool = True,
    ) -> asyncio.Future[Any]:
        """Send the module now; the future gives the guest's ``LoadTimings`` once it is
        decoded, validated and compiled (``GuestEnded`` when it cannot be). The guest then
        translates functions ahead of time until the next request arrives.

        ``cache_dir`` is the code cache's directory (``host.codecache.prepare``): the guest
        gets the module's entry from there if there is one, else compiles all of the module
        and sends a new entry to be kept. ``code_cache`` then says what happened.
        ``digest``: the module's (``codecache.module_digest``), if the caller has it.
        ``give_entries=False`` (a template, which loads no entry: ``guestproc.loading``):
        the guest gets none, but may still fill the cache."""
        self._check_alive()
        if self._process is None or self._stage >= Stage.LOAD_SENT:
            raise IllegalAction(f"cannot load a module into a guest that is {self.state.value}")
        if len(module) > MAX_MODULE_BYTES:
            raise ValueError(
                f"the module is {len(module)} bytes, over the limit of {MAX_MODULE_BYTES}"
            )
        self._stage = Stage.LOAD_SENT
        self._module_size = len(module)
        cached = None
        if cache_dir is not None:
            self._cache = CacheSink(
                cache_dir, digest or codecache.module_digest(module), give_entries
            )
            cached = self._cache.entry(metered=False)
        future = self._send(Load(id=self._next_id(), module=bytes(module), cached=cached))
        assert self._loop is not None
        self._load_sent = self._loop.time()
        self._arm_load_deadline()
        return future

    def submit_boot(
        self,
        program_name: str = "module.wasm",
        start: StartMode | None = None,
        snapshot: bytes | None = None,
        init: str | None = None,
    ) -> asyncio.Future[Any]:
        """Send Boot now (after Load, possibly before it is answered): the configuration's
        limits, and the program's arguments (``program_name`` is argv[0]) and environment.
        The future gives the guest's ``BootTimings`` once it is instantiated.

        ``start`` and ``snapshot``: what to do about the start function (``StartMode``);
        with ``snapshot`` mode, ``snapshot()`` gives what it left once Boot is answered.
        ``init``: an export the snapshot Boot runs after the start function (``Boot.init``)."""
        self._check_alive()
        if self._stage is not Stage.LOAD_SENT:
            raise IllegalAction(f"cannot boot a guest that is {self.state.value}")
        config = self.config
        self._stage = Stage.BOOT_SENT
        cached = None
        if self._cache is not None and config.fuel is not None:
            cached = self._cache.entry(metered=True)
        if start is StartMode.SNAPSHOT:
            self._snapshot = ChunkedPayload("Snapshot", MAX_SNAPSHOT_BYTES)
        self._snapshot_sent = len(snapshot or b"")
        boot = config.boot(self._next_id(), program_name, cached)
        self._open_broker()
        terminals = sorted(set(self.terminals)) or None
        return self._send(
            boot.replaced(start=start, snapshot=snapshot, init=init, terminals=terminals)
        )

    def snapshot(self) -> bytes:
        """What the start function left, as the guest sent it (a Boot with ``snapshot``
        mode, answered): for a template's Boot, which checks it."""
        if self._snapshot is None or self._stage is not Stage.BOOTED:
            raise IllegalAction("no snapshot: Boot did not ask for one, or is not answered")
        return self._snapshot.join()

    def submit_invoke(
        self,
        export: str,
        args: Sequence[Number] = (),
        *,
        argv: list[bytes] | None = None,
        environ: list[bytes] | None = None,
        stdin: bytes | None = None,
    ) -> asyncio.Future[Any]:
        """Send an Invoke now (after a Boot, possibly before it is answered); the future gives
        the results or raises as ``invoke`` does. ``argv`` (not empty) and ``environ``: the
        program's arguments and environment from now on, in place of Boot's (``Invoke``).
        ``stdin``: the program's whole stdin for this request, at most ``MAX_INVOKE_STDIN``
        bytes, sent with it (its reads then never ask the guest's stdin source)."""
        self._check_alive()
        if self._stage < Stage.BOOT_SENT or self.state in LEAVING_STATES:
            raise IllegalAction(f"cannot invoke a guest that is {self.state.value}")
        values = [_check_number(value) for value in args]
        if stdin is not None and len(stdin) > MAX_INVOKE_STDIN:
            raise ValueError(f"an Invoke brings at most {MAX_INVOKE_STDIN} bytes of stdin")
        invoke = Invoke(
            id=self._next_id(),
            export=export,
            args=values,
            argv=argv or [],
            environ=environ or [],
            stdin=stdin,
        )
        return self._send(invoke)

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
        return {**timings_dict(load_timings), **timings_dict(boot_timings)}

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

    # -- end ----------------------------------------------------------------------------------

    async def stop(self, grace: float = EXIT_GRACE, ending: Ending | None = None) -> Ending:
        """End the guest and reap it; how it ended. Safe to call in any state, repeatedly.

        An idle guest is asked to shut down; a guest that said it is done gets ``grace``
        seconds to exit; anything else -- mid-request, or not exiting in time -- is killed.
        ``ending`` is recorded unless something already decided how it ended (default:
        ``stopped``; a sandbox whose program is over gives the program's ending).
        """
        if self._process is None:
            self._decide(ending or Ending.stopped("never started"))
            self.state = GuestState.ENDED
            assert self._decided is not None
            return self._decided
        assert self._pipeline is not None and self._ended is not None
        if self.state in IDLE_STATES and not self._pipeline:
            self._decide(ending or Ending.stopped("shut down by the host"))
            self._transition(GuestState.STOPPING)
            assert self._connection is not None
            self._connection.send(Shutdown(id=self._next_id()))
        elif self.state not in LEAVING_STATES:
            self.end(ending or Ending.stopped("stopped by the host"))
        if not self._ended.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._ended), grace)
            except TimeoutError:
                self.end(Ending.stopped("did not exit in time; killed"))
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

    async def _watch_exit(self, process: GuestProcess) -> None:
        self._on_exit(await process.wait())

    def _on_exit(self, status: ExitStatus) -> None:
        assert self._process is not None and self._connection is not None
        assert self._pipeline is not None and self._ended is not None
        self.exit_status = status
        # Collect what it wrote before it went: its last frames may say how it ended.
        self._connection.read_available()
        self._decide(classify_exit(status, self.cpu_limit))  # unless already decided
        assert self._decided is not None
        self.state = GuestState.ENDED  # every state may end
        if self._output is not None:
            self._output.closed = True
        for timer in self._timers:
            timer.cancel()
        if self._load_deadline is not None:
            self._load_deadline.cancel()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        self._connection.close()
        self._process.close()
        if self._files is not None:
            self._files.close()
        self._pipeline.fail_all(GuestEnded(self._decided))
        self._ended.set_result(self._decided)

    # -- what the conversation asks of it (host.conversation) ---------------------------------

    def eof_received(self) -> None:
        if self._decided is not None or self.state in LEAVING_STATES:
            return  # it is exiting, as it should
        assert self._loop is not None
        ending = Ending.protocol_error("the guest closed its pipe but kept running")
        self._timers.append(self._loop.call_later(EOF_GRACE, self.end, ending))

    def _exit_expected(self, ending: Ending) -> None:
        """A reply ended the program: the guest process exits by itself now; give it a
        moment, then insist."""
        self._decide(ending)
        self._transition(GuestState.EXITING)
        assert self._loop is not None and self._process is not None
        self._timers.append(self._loop.call_later(EXIT_GRACE, self._process.kill))

    def _load_answered(self) -> None:
        if self._load_deadline is not None:
            self._load_deadline.cancel()
            self._load_deadline = None

    def _on_hello(self, message: GuestHello) -> str | None:
        if message.id != 0:
            return f"Hello must have id 0, not {message.id}"
        if message.version != PROTOCOL_VERSION:
            return (
                f"the guest speaks protocol version {message.version}, the host {PROTOCOL_VERSION}"
            )
        assert self._process is not None and self._pipeline is not None
        # Both clocks are CLOCK_MONOTONIC: when the guest was ready, not when we looked.
        spawn_ns = max(message.ready_ns - self._process.spawned_ns, 0)
        self.timings["spawn_ms"] = round(spawn_ns / 1e6, 3)
        # Only a guest forked from a template is booted before its Hello.
        forked = self._stage is Stage.BOOTED
        if self._process.subordinate_ids is not None and not forked:
            self._spawn(self._map_ids(*self._process.subordinate_ids))
        request, _ = self._pipeline.pop(time.perf_counter())
        self._transition(GuestState.READY if forked else GuestState.CONNECTED)
        self._begin_next()
        request.future.set_result(message)
        return None

    async def _map_ids(self, uid: int, gid: int) -> None:
        """Map its subordinate ids into its user namespace, then let our Hello and what
        follows it through (``host.idmap``); end it if they cannot be mapped."""
        assert self._process is not None and self._connection is not None
        try:
            await map_subordinate_ids(self._process.pid, uid, gid)
        except (IdMapError, OSError) as exc:
            self.end(Ending.stopped(f"its subordinate ids were not mapped: {exc}"))
            return
        self._connection.uncork()


def _check_number(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"invoke arguments must be ints or floats, got {value!r}")
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        raise ValueError(f"{value} does not fit in 64 bits")
    return value
