"""What a guest does with each request: load, boot, invoke.

::

    Load ──▶ RLIMIT_DATA (loading) ──▶ decode ──▶ validate ──▶ compile ──▶ Loaded(code size)
               │                         └───────────┴────────────┴──── LoadFailed(stage)
               └── then, until the next request arrives: translate functions ahead of their
                   first call, those reachable from the entry points first (``Precompiler``)
    Boot ──▶ drop what only loading needed ──▶ RLIMIT_DATA, RLIMIT_CPU (for good)
             ──▶ instantiate ──▶ Ready
                   ├── LoadFailed(link), LimitReached(memory)
                   └── Trapped / Exited (start function)
    Invoke ──▶ fit arguments ──▶ invoke(export) ──▶ Result | Trapped | Exited | LimitReached
                 └── Refused (no such export, arguments that do not fit)

WASI is wired to the protocol: console writes become ``Console`` frames (batched by
``ConsoleWriter``), reads of fd 0 become a ``StdinRequest`` answered by ``StdinData``.

Memory: the guest is held to the loading bound while it loads, and to the running bound
(``protocol.limits``) from Boot on; before it moves to the running bound it lets go of the
module's bytes and custom sections, and the module lets go of its active data segments once
they are in linear memory. Running out of memory anywhere -- a ``MemoryError``, a frame
CPython could not allocate, big frames past the engine's charge -- is ``LimitReached(memory)``.

``handle`` returns whether the guest process should keep serving: it stops after ``Exited``,
``LoadFailed``, ``LimitReached``, a failed ``Boot`` and an internal error, because the
instance is then finished or in no state to go on.
"""

from __future__ import annotations

import select
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

from guestproc import hardening, sandbox
from guestproc.engine import (
    CompiledModule,
    CompileError,
    DecodeError,
    EngineLimits,
    Function,
    Instance,
    LimitExceeded,
    LinkError,
    Memory,
    Module,
    Trap,
    TrapCode,
    ValidationError,
    compile_module,
    decode_module,
    invoke,
    validate_module,
)
from guestproc.engine import opcodes as op
from guestproc.engine.types import ExternKind
from guestproc.wasi import WasiEnvironment, WasiExit
from protocol import messages as msg
from protocol.frames import encode_frame
from protocol.limits import FRAME_ALLOWANCE
from protocol.messages import (
    Boot,
    Invoke,
    Limit,
    Load,
    LoadStage,
    Message,
    RefusalReason,
    Shutdown,
    TrapKind,
    clip,
)

from .channel import Channel, HostGone, HostProtocolError
from .console import ConsoleWriter
from .values import ArgumentError, convert_arguments, encode_result

T = TypeVar("T")

# Exceptions that are not about the module or the program: they end the guest process.
PASS_THROUGH = (MemoryError, HostProtocolError, HostGone)

TABLE_ELEMENT_BYTES = 8
"""What one table element costs the guest (a pointer): tables share the memory budget."""
MIN_TABLE_ELEMENTS = 10_000


class StopServing(Exception):
    """The request ended the guest's work (the reply has been sent)."""


def _decode(module_bytes: bytes) -> Module:
    """A module in the binary format, or in the text format when it lacks the binary magic.

    Bytes that are neither -- empty, or not UTF-8 text -- get the binary decoder's verdict
    ("magic header not detected", "unexpected end"); text that does not parse is named as
    such, so a shell script or a typo'd path does not read like a WAT syntax error only.
    """
    if module_bytes.startswith(b"\0asm") or not _looks_like_text(module_bytes):
        return decode_module(module_bytes)
    from .engine.text import parse_module  # only text modules pay for importing the parser

    try:
        return parse_module(module_bytes)
    except DecodeError as exc:
        raise DecodeError(
            "not a WebAssembly module: no binary magic header, and not the text format "
            f"either: {exc}"
        ) from exc


def _looks_like_text(data: bytes) -> bool:
    if not data.strip():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class Session:
    """The state of one guest process: its channel, console, module and instance."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.console = ConsoleWriter(channel)
        self.compiled: CompiledModule | None = None
        self.module_size = 0
        self.code_size = 0  # what the running bound allows for (``Module.code_size``)
        self.memory_budget = 0  # Boot's (a template sets its guests' limits from it)
        # Kept only while a metered translation may need to decode the module again.
        self.module_bytes = b""
        self.template = False  # a template: it forks guests after Boot (guestproc.template)
        self.cpu_seconds: int | None = None  # Boot's CPU limit (a forked guest sets it anew)
        self.code_cache = False  # the host keeps compiled code: it sends entries, takes new ones
        self.instance: Instance | None = None
        self.request_id = 0
        self.precompiler: Precompiler | None = None
        # Encoded ahead of time: when memory runs out there may be none left to encode it.
        self.out_of_memory_frame = b""

    def handle(self, message: Message) -> bool:
        """Serve one request; False when the guest process should exit now."""
        try:
            if isinstance(message, Load) and self.compiled is None:
                self._load(message)
            elif isinstance(message, Boot) and self.compiled is not None and self.instance is None:
                self._boot(message)
            elif isinstance(message, Invoke) and self.instance is not None:
                self._invoke(message)
            elif isinstance(message, Shutdown):
                return False
            else:
                raise HostProtocolError(f"{message.TYPE} is not allowed now")
        except StopServing:
            return False
        return True

    def idle(self) -> None:
        """Use the time until the next request arrives (it is waiting in the pipe then)."""
        if self.precompiler is not None and self.instance is None:
            self.precompiler.run_until(lambda: _readable(self.channel.read_fd))

    # -- helpers ------------------------------------------------------------------------------

    def _begin(self, request_id: int) -> None:
        self.console.start(request_id)
        self.request_id = request_id
        self.out_of_memory_frame = encode_frame(
            msg.LimitReached(
                id=request_id,
                resource=Limit.MEMORY,
                message="the guest process ran out of memory (its RLIMIT_DATA)",
            ).wire()
        )

    def _reply(self, message: Message) -> None:
        self.console.flush()
        self.channel.send(message)

    def _finish(self, message: Message) -> NoReturn:
        self._reply(message)
        raise StopServing

    def _stage(self, stage: LoadStage, expected: type[Exception], step: Callable[[], T]) -> T:
        try:
            return step()
        except PASS_THROUGH:
            raise
        except expected as exc:
            self._finish(msg.LoadFailed(id=self.request_id, stage=stage, message=clip(str(exc))))
        except Exception as exc:  # a bug in the engine: contain it, name it
            text = f"internal error: {type(exc).__name__}: {exc}"
            self._finish(msg.LoadFailed(id=self.request_id, stage=stage, message=clip(text)))

    def _read_stdin(self, size: int) -> bytes:
        """WASI's ``read_stdin``: ask the host for up to ``size`` bytes and wait for them."""
        self.console.flush()  # the program may be waiting for its prompt to be seen
        wanted = min(size, msg.MAX_STDIN_REQUEST)
        self.channel.send(msg.StdinRequest(id=self.request_id, max=wanted))
        reply = self.channel.expect(msg.StdinData)
        if reply.id != self.request_id or len(reply.data) > size:
            raise HostProtocolError("StdinData does not answer the StdinRequest")
        return reply.data

    # -- Load ---------------------------------------------------------------------------------

    def _load(self, message: Load) -> None:
        self._begin(message.id)
        module_bytes = message.module
        self.module_size = len(module_bytes)
        cached = message.cached
        # The hardening goes on before the first untrusted byte is read; what loading will
        # import is imported first (as nobody, the interpreter's files may be out of reach).
        # Those imports are part of decoding and of loading from the cache: timed as such.
        started = time.perf_counter()
        if _looks_like_text(module_bytes) and not module_bytes.startswith(b"\0asm"):
            from .engine import text  # noqa: F401
        parser_ms = _ms(started)
        started = time.perf_counter()
        if cached is not None:
            from . import codecache  # noqa: F401
        cache_ms = _ms(started)
        hardening.harden_loader()  # what it could not do, kindling doctor reports
        sandbox.limit_loading(len(module_bytes))

        self.code_cache = cached is not None
        status = "off"
        if cached is not None:
            started = time.perf_counter()
            compiled, status = self._from_cache(cached, metered=False)
            if compiled is not None:
                self.compiled = compiled
                self.code_size = compiled.module.code_size()
                # Its functions have no bodies: a metered translation would decode again.
                self.module_bytes = module_bytes
                loading = round(cache_ms + _ms(started), 3)
                timings = {"decode_ms": 0.0, "validate_ms": 0.0, "compile_ms": loading}
                self._reply(self._loaded(timings, status))
                return
        compiled, timings = self._compile(module_bytes, metered=False)
        timings["decode_ms"] = round(timings["decode_ms"] + parser_ms, 3)
        self.compiled = compiled
        self.code_size = compiled.module.code_size()
        if self.code_cache:
            # The entry holds every function, so there is nothing left to translate ahead.
            started = time.perf_counter()
            self._send_entry(compiled)
            timings["compile_ms"] = round(timings["compile_ms"] + cache_ms + _ms(started), 3)
        else:
            self.precompiler = Precompiler(compiled)
        self._reply(self._loaded(timings, status))

    def _loaded(self, timings: dict[str, float], cache: str) -> msg.Loaded:
        return msg.Loaded(
            id=self.request_id,
            timings=msg.LoadTimings(**timings),
            cache=cache,
            code_size=self.code_size,
        )

    def _compile(
        self, module_bytes: bytes, metered: bool
    ) -> tuple[CompiledModule, dict[str, float]]:
        """Decode, validate and prepare the module (``LoadFailed`` ends the guest)."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        module = self._stage(LoadStage.DECODE, DecodeError, lambda: _decode(module_bytes))
        module.customs.clear()  # custom sections count for nothing once loaded
        timings["decode_ms"] = _ms(started)
        started = time.perf_counter()
        self._stage(LoadStage.VALIDATION, ValidationError, lambda: validate_module(module))
        timings["validate_ms"] = _ms(started)
        started = time.perf_counter()
        compiled = self._stage(
            LoadStage.COMPILE, CompileError, lambda: compile_module(module, fuel=metered)
        )
        timings["compile_ms"] = _ms(started)
        return compiled, timings

    def _from_cache(self, entry: bytes, metered: bool) -> tuple[CompiledModule | None, str]:
        """The module compiled, from the host's code cache entry, or None; and what the
        cache gave (``hit``, ``miss``, ``rejected: why``)."""
        if not entry:
            return None, "miss"
        from protocol.codeentry import EntryError

        from .codecache import unpack

        try:
            return unpack(entry, metered), "hit"
        except EntryError as exc:
            return None, f"rejected: {exc}"

    def _send_entry(self, compiled: CompiledModule) -> None:
        """Compile all of ``compiled`` and send it to the host as a code cache entry."""
        from .codecache import pack

        try:
            entry = pack(compiled)
        except CompileError:
            return  # the function that does not translate reports it at its first call
        if len(entry) > msg.MAX_ENTRY_BYTES:
            return  # too large to keep: compiled afresh each time
        for start in range(0, len(entry), msg.CODE_CHUNK):
            piece = entry[start : start + msg.CODE_CHUNK]
            self.channel.send(msg.Code(id=self.request_id, data=piece))

    # -- Boot ---------------------------------------------------------------------------------

    def _boot(self, message: Boot) -> None:
        self._begin(message.id)
        limits = message.limits
        args, env = message.args, message.env
        memory_budget = limits.memory_bytes
        self.cpu_seconds = limits.cpu_seconds
        self.memory_budget = memory_budget
        assert self.compiled is not None
        engine_limits = EngineLimits(
            memory_pages=memory_budget // 65536,
            table_elements=max(memory_budget // TABLE_ELEMENT_BYTES, MIN_TABLE_ELEMENTS),
            call_depth=limits.call_depth,
            fuel=limits.fuel,
            frame_bytes=FRAME_ALLOWANCE,
        )
        cache_status = "off"
        if engine_limits.fuel is not None and not self.compiled.fuel:
            # Metered code is a different translation: the idle-time precompiling was for the
            # unmetered one (a Load cannot know the budget that Boot will bring). Still
            # loading work, done under the loading bound.
            self.compiled, cache_status = self._metered(message.cached)
            self.precompiler = None
        # The running bound counts what the guest holds now: let go of what only loading
        # needed first. Then the kernel limits, for good, before the module's first
        # instruction runs (a template sets its guests' once it is ready to fork).
        del message  # it holds the metered entry
        self.module_bytes = b""
        if self.template:
            # No malloc_trim here: pages it gave back cost its guests pages of their own
            # (measured: 30-40 KiB more USS per idle guest).
            sandbox.limit_cpu(self.cpu_seconds, for_good=False)
        else:
            sandbox.release_freed()
            sandbox.limit_running(memory_budget, self.code_size, self.cpu_seconds)
            sandbox.limit_processes()
            hardening.harden_running()

        wasi = WasiEnvironment(
            args, env, write_console=self.console.write, read_stdin=self._read_stdin
        )
        started = time.perf_counter()
        try:
            instance = self.compiled.instantiate(wasi.imports(), engine_limits, release_data=True)
        except LinkError as exc:
            self._finish(
                msg.LoadFailed(id=self.request_id, stage=LoadStage.LINK, message=clip(str(exc)))
            )
        except LimitExceeded as exc:
            self._finish(
                msg.LimitReached(id=self.request_id, resource=Limit.MEMORY, message=clip(str(exc)))
            )
        except PASS_THROUGH:
            raise
        except BaseException as exc:
            # The start function ran and ended the program, or a segment did not fit.
            self._run_ended(exc)
            raise StopServing from None
        instantiate_ms = _ms(started)
        if self.template:
            # Every function its guests will run is compiled here, once, and shared by all
            # of them (before Ready, so running out of memory is this Boot's ending).
            self._stage(LoadStage.COMPILE, CompileError, instance.compile_all)
        precompiler = self.precompiler
        timings = msg.BootTimings(
            instantiate_ms=instantiate_ms,
            precompile_ms=round(precompiler.seconds * 1000, 3) if precompiler else 0.0,
            precompiled=precompiler.done if precompiler else 0,
        )
        memory = instance.exports.get("memory")
        if isinstance(memory, Memory):
            wasi.bind(memory, instance.pay_bytes)
        self.instance = instance
        self._reply(msg.Ready(id=self.request_id, timings=timings, cache=cache_status))

    def _metered(self, cached: bytes | None) -> tuple[CompiledModule, str]:
        """The module compiled with fuel metering, from the code cache if it has it; and
        what the cache gave."""
        assert self.compiled is not None
        if cached is None:
            return compile_module(self.compiled.module, fuel=True), "off"
        compiled, status = self._from_cache(cached, metered=True)
        if compiled is None:
            if self.compiled.from_cache:
                # A module that came from the cache has no function bodies: decode it again.
                compiled, _ = self._compile(self.module_bytes, metered=True)
            else:
                compiled = compile_module(self.compiled.module, fuel=True)
            self._send_entry(compiled)
        return compiled, status

    # -- Invoke -------------------------------------------------------------------------------

    def _invoke(self, message: Invoke) -> None:
        self._begin(message.id)
        assert self.instance is not None
        export = message.export
        func = self.instance.exports.get(export)
        if not isinstance(func, Function):
            functions = sorted(
                name for name, item in self.instance.exports.items() if isinstance(item, Function)
            )
            shown = ", ".join(functions[:20]) + (", ..." if len(functions) > 20 else "")
            exported = export in self.instance.exports
            what = "exports" if exported else "exports no function"
            kind = " but it is not a function" if exported else ""
            hint = " (it is not a WASI command: invoke one of its functions)" * (export == "_start")
            text = (
                f"the module {what} named {export!r}{kind}{hint}; its functions: {shown or 'none'}"
            )
            self._reply(self._refused(RefusalReason.NO_EXPORT, text))
            return
        try:
            args = convert_arguments(func, export, message.args)
        except ArgumentError as exc:
            self._reply(self._refused(RefusalReason.ARGUMENTS, str(exc)))
            return
        try:
            raw = invoke(func, args)
        except PASS_THROUGH:
            raise
        except BaseException as exc:
            if not self._run_ended(exc):
                raise StopServing from None
            return
        results = [encode_result(t, v) for t, v in zip(func.type.results, raw, strict=True)]
        fuel = self.instance.fuel.used if self.compiled and self.compiled.fuel else None
        self._reply(msg.Result(id=self.request_id, results=results, fuel=fuel))

    def _refused(self, reason: RefusalReason, text: str) -> msg.Refused:
        return msg.Refused(id=self.request_id, reason=reason, message=clip(text))

    def _run_ended(self, exc: BaseException) -> bool:
        """Report how running Wasm code ended with ``exc``; whether the guest can go on."""
        rid = self.request_id
        if isinstance(exc, WasiExit):
            self._reply(msg.Exited(id=rid, code=exc.code & 0xFFFFFFFF))
            return False
        if isinstance(exc, Trap):
            if exc.code is TrapCode.OUT_OF_FUEL:
                self._reply(msg.LimitReached(id=rid, resource=Limit.FUEL, message=clip(str(exc))))
                return False
            if exc.code is TrapCode.HOST_MEMORY_EXHAUSTED:
                self._reply(msg.LimitReached(id=rid, resource=Limit.MEMORY, message=clip(str(exc))))
                return False
            self._reply(msg.Trapped(id=rid, kind=TrapKind(exc.code.kind), message=clip(str(exc))))
            return True
        if isinstance(exc, CompileError):
            # Functions are translated on first call, so this can surface while running.
            text = clip(str(exc))
            self._reply(msg.LoadFailed(id=rid, stage=LoadStage.COMPILE, message=text))
            return False
        if isinstance(exc, Exception):
            # Not a trap: a bug in the engine or WASI. Contained; the instance is suspect.
            text = clip(f"{type(exc).__name__}: {exc}")
            self._reply(msg.Trapped(id=rid, kind=TrapKind.INTERNAL_ERROR, message=text))
            return False
        raise exc  # KeyboardInterrupt, SystemExit: not the program's doing


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


class Precompiler:
    """Translates a module's functions ahead of their first call, in the order a program
    will probably need them: the start function, ``_start`` and the other exports, then what
    they call directly (breadth first), then functions in tables and what they call.

    The engine translates a function the first time it is called; this does the same work
    earlier, while the guest would otherwise wait for the host. A function that fails to
    translate is skipped: its first call reports the error as usual.
    """

    def __init__(self, compiled: CompiledModule) -> None:
        self.compiled = compiled
        self._order = self._plan(compiled.module, compiled.imported_functions)
        self.done = 0
        self.seconds = 0.0

    @staticmethod
    def _plan(module: Module, imported: int) -> Iterator[int]:
        defined = range(imported, imported + len(module.functions))
        seen: set[int] = set()
        queue: deque[int] = deque()

        def visit(index: int) -> None:
            if index in defined and index not in seen:
                seen.add(index)
                queue.append(index)

        def breadth_first() -> Iterator[int]:
            while queue:
                index = queue.popleft()
                yield index
                for instr in module.functions[index - imported].body:
                    if instr.op == op.CALL:
                        visit(instr.arg)

        if module.start is not None:
            visit(module.start)
        exports = [e for e in module.exports if e.kind is ExternKind.FUNC]
        for export in sorted(exports, key=lambda e: e.name != "_start"):
            visit(export.index)
        yield from breadth_first()
        # Then what can be called indirectly, and what that calls. Functions reachable in
        # neither way are never called: they are left alone.
        for segment in module.elements:
            for expr in segment.init:
                for instr in expr:
                    if instr.op == op.REF_FUNC:
                        visit(instr.arg)
        yield from breadth_first()

    def run_until(self, stop: Callable[[], bool]) -> None:
        """Translate functions until ``stop()`` is true or none are left."""
        started = time.perf_counter()
        try:
            for index in self._order:
                try:
                    self.compiled.function_code(index)
                except MemoryError:
                    return  # optional work: what is left is translated on first call
                except Exception:
                    pass  # reported when the function is first called
                self.done += 1
                if stop():
                    return
        finally:
            self.seconds += time.perf_counter() - started
