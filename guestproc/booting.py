"""Boot: the loaded module instantiated, under the running limits.

::

    Boot(args, env, limits, cached?, start?, snapshot?)
      ──▶ fuel, and the module was loaded unmetered: the metered translation, still under the
          loading bound (loading.translate_metered)
      ──▶ let go of what only loading needed (the module's bytes)
      ──▶ the kernel limits, for good (a template: the CPU limit only)   confinement.before_running
      ──▶ instantiate, with WASI wired to the protocol ──▶ Ready(timings)
            ├── LoadFailed(link), LimitReached(memory): linear memory or a table over the budget
            └── the start function ended the program: as running.report_ending says
          start=restore (a template): the start function does not run; the snapshot of what
          it left in a throwaway guest is installed instead (LoadFailed(snapshot) if it does
          not fit the module); start=snapshot (that throwaway): Snapshot frames before Ready
      ──▶ a template compiles every function now (LoadFailed(compile)), shared by its guests

WASI is wired to the protocol: console writes become ``Console`` frames (batched by
``ConsoleWriter``), reads of fd 0 become a ``StdinRequest`` answered by ``StdinData``
(``Replies.read_stdin``), and a preopened directory's file operations become ``FileCall``
frames the host's file broker answers (``Replies.files``).

Memory: the guest is held to the loading bound until the kernel limits go on, and to the
running bound (``protocol.limits``) from then on, which counts what it holds then: it lets go
of the module's bytes first, and the module lets go of its active data segments once they
are in linear memory (``release_data``). The engine's own limits come from Boot's too:
linear memory and tables share the memory budget.
"""

from __future__ import annotations

import time
from functools import partial

from protocol import messages as msg
from protocol.limits import FRAME_ALLOWANCE
from protocol.messages import Boot, Limit, LoadStage, StartMode, clip

from . import confinement, engine, snapshots
from .engine import (
    CompileError,
    EngineLimits,
    Function,
    Instance,
    LimitExceeded,
    LinkError,
    Memory,
)
from .engine.snapshot import SnapshotError
from .loading import LoadedModule, elapsed_ms, in_stage, translate_metered
from .replies import PASS_THROUGH, Replies, StopServing
from .running import report_ending
from .wasi import WasiEnvironment

TABLE_ELEMENT_BYTES = 8
"""What one table element costs the guest (a pointer): tables share the memory budget."""
MIN_TABLE_ELEMENTS = 10_000


class BootedInstance:
    """What Boot leaves: the instance, and the limits it was booted with (a template sets
    its guests' limits from them)."""

    # A plain class: a dataclass would cost every guest about 0.8 ms more start-up.
    __slots__ = ("code_size", "cpu_seconds", "instance", "memory_budget", "metered", "wasi")

    def __init__(
        self,
        instance: Instance,
        metered: bool,
        memory_budget: int,
        code_size: int,
        cpu_seconds: int | None,
        wasi: WasiEnvironment,
    ) -> None:
        self.instance = instance
        self.wasi = wasi  # an Invoke may bring its own arguments and environment
        self.metered = metered  # compiled with fuel: a Result says how much the instance used
        self.memory_budget = memory_budget  # Boot's linear memory budget, bytes
        self.code_size = code_size  # what the running bound allows for
        self.cpu_seconds = cpu_seconds  # Boot's CPU limit (a forked guest sets it anew)


class TakeOnce:
    """Bytes Boot brought (its metered code cache entry, its snapshot), held once: ``take``
    hands them over and forgets them, so that no reference outlives its use (they count
    against the running bound)."""

    __slots__ = ("_entry",)

    def __init__(self, entry: bytes | None) -> None:
        self._entry = entry

    def take(self) -> bytes | None:
        entry, self._entry = self._entry, None
        return entry


def start_problem(message: Boot, loaded: LoadedModule, template: bool) -> str | None:
    """What is wrong with how ``message`` asks Boot to treat the start function, if
    anything: a template never runs module code, and a snapshot comes exactly when there is
    a start function whose work it stands for."""
    if template and message.start is not StartMode.RESTORE:
        return "a template runs no module code: its Boot must restore"
    if message.start is None:
        if message.init is not None:
            return "init runs only in a Boot that snapshots or restores"
        return None if message.snapshot is None else "a snapshot only comes to restore"
    if message.start is StartMode.SNAPSHOT:
        return None if message.snapshot is None else "a snapshot only comes to restore"
    left_state = loaded.compiled.module.start is not None or message.init is not None
    if left_state != (message.snapshot is not None):
        return (
            "a snapshot comes with a Boot to restore exactly when the module has a start "
            "function or an init"
        )
    return None


def boot(
    replies: Replies,
    loaded: LoadedModule,
    message: Boot,
    entry: TakeOnce,
    snapshot: TakeOnce,
    template: bool,
) -> BootedInstance:
    """Serve ``Boot`` (whose metered cache entry, if any, is in ``entry``, and snapshot in
    ``snapshot``): reply ``Ready``, or end the request (``StopServing``). ``template``: the
    process will fork guests from the instance (``guestproc.template``); it runs no module
    code, and installs the snapshot instead (``snapshots``)."""
    limits = message.limits
    args, env = message.args, message.env
    memory_budget = limits.memory_bytes
    engine_limits = EngineLimits(
        memory_pages=memory_budget // 65536,
        table_elements=max(memory_budget // TABLE_ELEMENT_BYTES, MIN_TABLE_ELEMENTS),
        call_depth=limits.call_depth,
        fuel=limits.fuel,
        frame_bytes=FRAME_ALLOWANCE,
    )
    cache_status = "off"
    if engine_limits.fuel is not None and not loaded.compiled.fuel:
        # Metered code is a different translation: the idle-time precompiling was for the
        # unmetered one (a Load cannot know the budget that Boot will bring). Still
        # loading work, done under the loading bound.
        loaded.compiled, cache_status = translate_metered(replies, loaded, entry.take(), template)
        loaded.precompiler = None
    # The running bound counts what the guest holds now: let go of what only loading
    # needed first. Then the kernel limits, for good, before the module's first
    # instruction runs (a template sets its guests' once it is ready to fork).
    entry.take()  # unused (no fuel, or already metered): let go of it all the same
    loaded.module_bytes = b""
    confinement.before_running(template, memory_budget, loaded.code_size, limits.cpu_seconds)

    wasi = WasiEnvironment(
        args,
        env,
        write_console=replies.console.write,
        read_stdin=replies.read_stdin,
        preopens=[(p.name, bool(p.read_only)) for p in message.preopens or ()],
        call_files=replies.files.call,
        write_ahead=replies.files.write_ahead,
        terminals=message.terminals or (),
    )
    # The last moment a code cache entry may have been sent: the module's code runs next
    # (here, or in a guest forked from this template).
    replies.send_during(msg.Starting(id=replies.request_id))
    started = time.perf_counter()
    run_start = message.start is not StartMode.RESTORE
    try:
        instance = loaded.compiled.instantiate(
            wasi.imports(), engine_limits, release_data=True, run_start=run_start
        )
    except LinkError as exc:
        replies.end(
            msg.LoadFailed(id=replies.request_id, stage=LoadStage.LINK, message=clip(str(exc)))
        )
    except LimitExceeded as exc:
        replies.end(
            msg.LimitReached(id=replies.request_id, resource=Limit.MEMORY, message=clip(str(exc)))
        )
    except PASS_THROUGH:
        raise
    except BaseException as exc:
        # The start function ran and ended the program, or a segment did not fit.
        report_ending(replies, exc, loaded.compiled.module)
        raise StopServing from None
    if message.init is not None and run_start:
        _bind(wasi, instance)
        run_init(replies, instance, message.init)
    instantiate_ms = elapsed_ms(started)
    if not run_start and (loaded.compiled.module.start is not None or message.init is not None):
        restore = partial(snapshots.restore, instance, wasi, snapshot.take)
        in_stage(replies, LoadStage.SNAPSHOT, SnapshotError, restore)
    if template:
        # Every function its guests will run is compiled here, once, and shared by all
        # of them (before Ready, so running out of memory is this Boot's ending).
        in_stage(replies, LoadStage.COMPILE, CompileError, instance.compile_all)
    precompiler = loaded.precompiler
    timings = msg.BootTimings(
        instantiate_ms=instantiate_ms,
        precompile_ms=round(precompiler.seconds * 1000, 3) if precompiler else 0.0,
        precompiled=precompiler.done if precompiler else 0,
    )
    _bind(wasi, instance)
    if message.start is StartMode.SNAPSHOT:
        try:
            snapshots.send(replies, instance, wasi)
        except snapshots.TooLarge as exc:
            replies.end(
                msg.LimitReached(
                    id=replies.request_id, resource=Limit.MEMORY, message=clip(str(exc))
                )
            )
        except SnapshotError as exc:
            stage = LoadStage.SNAPSHOT
            replies.end(msg.LoadFailed(id=replies.request_id, stage=stage, message=clip(str(exc))))
    booted = BootedInstance(
        instance,
        metered=loaded.compiled.fuel,
        memory_budget=memory_budget,
        code_size=loaded.code_size,
        cpu_seconds=limits.cpu_seconds,
        wasi=wasi,
    )
    replies.send(msg.Ready(id=replies.request_id, timings=timings, cache=cache_status))
    return booted


def run_init(replies: Replies, instance: Instance, name: str) -> None:
    """Call the export ``name`` (no parameters, no results): a function's initialiser, run
    after the start function in the throwaway guest whose state the template installs.
    ``LoadFailed(init)`` if there is no such function; its ending if it does not return."""
    func = instance.exports.get(name)
    if not isinstance(func, Function) or func.type.params or func.type.results:
        text = f"init {name!r} is not an exported function taking and returning nothing"
        replies.end(msg.LoadFailed(id=replies.request_id, stage=LoadStage.INIT, message=clip(text)))
    try:
        engine.invoke(func, [])
    except PASS_THROUGH:
        raise
    except BaseException as exc:
        report_ending(replies, exc)
        raise StopServing from None


def _bind(wasi: WasiEnvironment, instance: Instance) -> None:
    memory = instance.exports.get("memory")
    if isinstance(memory, Memory):
        wasi.bind(memory, instance.pay_bytes)
