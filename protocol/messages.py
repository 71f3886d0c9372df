"""The messages host and guest exchange: small tagged records, one per frame.

::

    host                                                   guest
    ────                                                   ─────
    Hello(version)            ───────────────────────▶     (each side's first frame)
                              ◀───────────────────────     Hello(version)
    Load(id, module)          ───────────────────────▶     decode, validate, compile
                              ◀───────────────────────     Loaded(id, timings, code_size)
                                                           | LoadFailed
                                                           | LimitReached
                                                           (then, while idle, it translates the
                                                           functions it will probably need first)
    Boot(id, args, env, limits) ─────────────────────▶     kernel limits, instantiate
                              ◀───────────────────────     Starting(id): its code runs from now
                              ◀───────────────────────     Snapshot(id, data) ... (start=snapshot)
                              ◀───────────────────────     Ready(id, timings) | LoadFailed(link)
                                                           | LimitReached | Trapped | Exited
    Invoke(id, export, args)  ───────────────────────▶     run the export (``_start`` for a command)
                              ◀───────────────────────     Console(id, stream, data) ...
                              ◀───────────────────────     StdinRequest(id, max)
    StdinData(id, data)       ───────────────────────▶     (b"" is the end of input)
                              ◀───────────────────────     FileCall(id, op, handle, path, ...)
    FileAnswer(id, errno, ...) ──────────────────────▶     (a preopened directory's file I/O,
                                                           done by the host: host.filebroker)
    ConsoleClosed(id, stream) ───────────────────────▶     (its reader went: writes fail EPIPE)
                              ◀───────────────────────     Result(id, results) | Trapped | Exited
                                                           | LimitReached | Refused
    Shutdown(id)              ───────────────────────▶     the guest process exits with status 0

Loading is split from booting so that the host can send the module the moment the guest
process exists, and the guest loads it while the host is still validating the configuration
that ``Boot`` carries (the limits, the program's arguments and environment).

Every message is declared below, once, as a record (``protocol.schema``): its fields with
their types and bounds. On the wire it is a map with ``type`` (a ``MessageType``), ``id`` and
those fields. The guest checks what it receives with ``schema.from_wire``; the host validates
with pydantic models derived from the same declarations (``protocol.models``); code on both
sides dispatches on the record's class. Requests are verbs and go host -> guest; replies are
nouns and go guest -> host. ``id`` works like a stream id: every
request the host starts (``Boot``, ``Invoke``, ``Shutdown``) carries a new id, and every frame
that belongs to it -- the console output it produced, its stdin traffic, its final reply --
carries that same id. ``Hello`` has id 0. One request runs at a time; a guest has at most one
``StdinRequest`` outstanding.

After ``Exited``, ``LoadFailed`` or ``LimitReached``, and after a ``Trapped`` that answers
``Boot`` or is an ``internal_error``, the guest process exits by itself (the program is over,
or there is no program); after ``Loaded``, ``Ready``, ``Result``, ``Trapped`` or ``Refused``
it waits for the next request. Requests may be pipelined: the guest reads the next one when
it has answered the last.

A template has a second channel, its control socket (``host.template``,
``guestproc.template``)::

                              ◀───────────────────────     Namespace(pid): its guests' PID
                                                           namespace, held by pid (first, once)
    Fork(id) + two pipe ends  ───────────────────────▶     clone a guest
                              ◀───────────────────────     Forked(id, pid) | ForkFailed(id, error)

This module, ``schema`` and ``frames`` are what the guest imports: standard library and
msgpack only (``protocol.models`` and pydantic are the host's alone).
"""

from __future__ import annotations

import enum
import math
from typing import Annotated, ClassVar, Literal

from .schema import Length, OneOf, Range, Record, SchemaError, from_wire, record, to_wire

# 7: FileCalls sent ahead; 6: Invoke.stdin; 5: Boot.init, Invoke argv/environ, files, terminals
PROTOCOL_VERSION = 7

# -- sizes: every frame is capped by its reader --------------------------------------------

MAX_MODULE_BYTES = 64 * 1024 * 1024
"""The largest module the host sends in ``Load``."""

DEFAULT_LOAD_TIMEOUT = 60.0
"""Seconds a guest may take to load a module (decode, validate, compile) unless configured
otherwise (``load_timeout``); then it ends ``limit(wall)``. Loading is linear in the module's
size, about 4 ms per KiB cold, so this covers modules of about 15 MiB; the code cache makes
later loads far quicker."""

MAX_ENTRY_BYTES = 32 * 1024 * 1024
"""The largest code cache entry (``protocol.codeentry``) a guest may send or the host may
keep: compiled code takes about 7 bytes per byte of module, so this covers modules of
several MiB; a larger one is compiled afresh each time."""

HOST_FRAME_CAP = MAX_MODULE_BYTES + MAX_ENTRY_BYTES + 4 * 1024 * 1024
"""The cap on frames host -> guest (``Load`` carries the module and its code cache entry,
``Boot`` arguments, env, the metered entry and a template's snapshot)."""

MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024
"""The largest snapshot (``Snapshot``, ``Boot.snapshot``): what a start function left, as
``guestproc.snapshots`` encodes it. Linear memory's zero chunks take no room in it."""

CODE_CHUNK = 64 * 1024
"""The most bytes of a code cache entry one ``Code`` frame carries, or of a snapshot one
``Snapshot`` frame."""

CONSOLE_CHUNK = 64 * 1024
"""The most output bytes one ``Console`` frame carries (the guest batches up to this)."""

GUEST_FRAME_CAP = CONSOLE_CHUNK + 16 * 1024
"""The cap on frames guest -> host: a full ``Console`` frame plus room for the record."""

CONTROL_FRAME_CAP = 4096
"""The cap on a template's control messages, either way (one ``SOCK_SEQPACKET`` datagram)."""

MAX_TEXT = 4096
"""The longest message text (trap or error description) a reply may carry, in characters."""

MAX_RESULTS = 1000
"""The most values one ``Result`` may carry."""

MAX_STDIN_REQUEST = 1024 * 1024
"""The most bytes one ``StdinRequest`` may ask for."""

MAX_INVOKE_STDIN = 32 * 1024
"""The most bytes of stdin an ``Invoke`` may bring with it (more comes by ``StdinRequest``):
what the guest holds of it counts against its memory like any other allocation."""

MAX_EXPORT_NAME = 1024
"""The longest export name the host names in ``Boot.init``, in characters."""

MAX_PROGRAM_STRINGS = 4096
"""The most arguments, or environment entries, one ``Invoke`` may bring."""

FILE_CHUNK = 64 * 1024
"""The most file bytes one ``FileCall`` carries (a write) or one ``FileAnswer`` (a read, a
directory listing): a larger ``fd_read``/``fd_write`` is a short one, which C stdio retries."""

MAX_FILE_CALLS = 8
"""The most ``FileCall``s a guest may have unanswered. A write to a regular file is sent
ahead, without waiting for its answer, so that writing through a preopen streams as stdout
does; the host serves a guest's calls one at a time, in order, and answers each in turn."""

MAX_PATH_BYTES = 4096
"""The longest path a ``FileCall`` may name (Linux's ``PATH_MAX``)."""

MAX_PREOPENS = 64
"""The most preopened directories a guest may be given."""

GUEST_UID_VARIABLE = "KINDLING_GUEST_UID"
"""The environment variable in which a host running as root names the uid (and gid) a guest
process takes when it drops root: each template, with its throwaway guest and the guests it
forks, has its own (``host.uids``). Without it, a guest becomes ``nobody``."""

SUBORDINATE_IDS_VARIABLE = "KINDLING_SUBORDINATE_IDS"
"""The environment variable in which a host running as an ordinary user, with subordinate
ids (``/etc/subuid``, ``/etc/subgid``), names the uid and gid (``UID:GID``) a guest process
takes: the guest enters a user namespace of its own at start-up, before its Hello, and the
host maps that uid and gid into it (``newuidmap``, ``newgidmap``) before its own Hello."""

SUBORDINATE_INSIDE_ID = 1
"""The uid and gid, inside such a guest's user namespace, that the host maps to the
subordinate ones it named (0 is mapped to the host's own): the guest drops to it at Load."""

U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF
I64_MIN = -(1 << 63)
REQUEST_ID_MAX = (1 << 63) - 1

# -- vocabularies ----------------------------------------------------------------------------


class MessageType(enum.StrEnum):
    """The ``type`` tag of every message, on every channel."""

    HELLO = "Hello"
    # requests: host -> guest
    LOAD = "Load"
    BOOT = "Boot"
    INVOKE = "Invoke"
    STDIN_DATA = "StdinData"
    FILE_ANSWER = "FileAnswer"
    CONSOLE_CLOSED = "ConsoleClosed"
    SHUTDOWN = "Shutdown"
    # replies: guest -> host
    LOADED = "Loaded"
    READY = "Ready"
    RESULT = "Result"
    TRAPPED = "Trapped"
    EXITED = "Exited"
    LIMIT_REACHED = "LimitReached"
    LOAD_FAILED = "LoadFailed"
    REFUSED = "Refused"
    CONSOLE = "Console"
    STDIN_REQUEST = "StdinRequest"
    FILE_CALL = "FileCall"
    CODE = "Code"
    STARTING = "Starting"
    SNAPSHOT = "Snapshot"
    # a template's control socket
    FORK = "Fork"
    FORKED = "Forked"
    FORK_FAILED = "ForkFailed"
    NAMESPACE = "Namespace"


class TrapKind(enum.StrEnum):
    """What ``Trapped.kind`` may be: the engine's trap codes (``TrapCode.kind``) that are
    not limits, plus ``internal_error``. Running out of fuel or host memory is a
    ``LimitReached``."""

    UNREACHABLE = "unreachable"
    INTEGER_DIVIDE_BY_ZERO = "integer_divide_by_zero"
    INTEGER_OVERFLOW = "integer_overflow"
    INVALID_CONVERSION = "invalid_conversion"
    OUT_OF_BOUNDS_MEMORY = "out_of_bounds_memory"
    OUT_OF_BOUNDS_TABLE = "out_of_bounds_table"
    UNDEFINED_ELEMENT = "undefined_element"
    UNINITIALIZED_ELEMENT = "uninitialized_element"
    INDIRECT_CALL_TYPE_MISMATCH = "indirect_call_type_mismatch"
    CALL_STACK_EXHAUSTED = "call_stack_exhausted"
    # An exception the engine did not expect: a bug in Kindling, contained in the guest.
    INTERNAL_ERROR = "internal_error"


class Limit(enum.StrEnum):
    """The limits a guest can end at (``limit(...)``). The guest itself reports ``memory``
    and ``fuel`` (``LimitReached.resource``); the kernel, the watchdog and the host enforce
    the others."""

    MEMORY = "memory"
    CPU = "cpu"
    WALL = "wall"
    FUEL = "fuel"
    OUTPUT = "output"


class LoadStage(enum.StrEnum):
    """Where loading a module failed (``LoadFailed.stage``, ``load_failure(stage)``)."""

    DECODE = "decode"  # the bytes are not a WebAssembly module
    VALIDATION = "validation"  # a well-formed module that breaks a typing rule
    LINK = "link"  # an import the guest cannot provide, or does not match
    COMPILE = "compile"  # the engine cannot translate a valid function
    SNAPSHOT = "snapshot"  # a template cannot install what the start function left
    INIT = "init"  # Boot.init names no export taking and returning nothing
    # The host's own: the module file cannot be read; the export to call does not exist.
    READ = "read"
    EXPORT = "export"


GUEST_LOAD_STAGES = OneOf(
    LoadStage.DECODE,
    LoadStage.VALIDATION,
    LoadStage.LINK,
    LoadStage.COMPILE,
    LoadStage.SNAPSHOT,
    LoadStage.INIT,
)


class StartMode(enum.StrEnum):
    """What Boot does about the module's start function (``Boot.start``); left out, the
    guest runs it, as any guest does. Templates never run module code: a throwaway guest
    runs the start function and sends what it left, and the template installs that
    (``host.template``, ``guestproc.snapshots``)."""

    SNAPSHOT = "snapshot"  # run it, then send what it left in Snapshot frames before Ready
    RESTORE = "restore"  # run no module code: install Boot's snapshot, if the module has a start


class RefusalReason(enum.StrEnum):
    """Why the guest refused an ``Invoke`` (``Refused.reason``)."""

    NO_EXPORT = "no_export"  # the module exports no function by that name
    ARGUMENTS = "arguments"  # the numbers do not fit the function's parameters


class ValueType(enum.StrEnum):
    """The type a ``Result`` value is tagged with."""

    I32 = "i32"
    I64 = "i64"
    F32 = "f32"
    F64 = "f64"
    FUNCREF = "funcref"
    EXTERNREF = "externref"


class FileOp(enum.StrEnum):
    """What a ``FileCall`` asks the host to do in a preopened directory. ``handle`` (and
    ``handle2``) name a directory or file the host holds for the guest; ``numbers`` and
    ``data`` carry the arguments, and the ``FileAnswer`` the results, as listed here."""

    OPEN = "open"  # handle, path, [lookupflags, oflags, fdflags, read, write] -> [handle, filetype]
    CLOSE = "close"  # handle
    READ = "read"  # handle, [size] -> data
    PREAD = "pread"  # handle, [size, offset] -> data
    WRITE = "write"  # handle, data -> [written]
    PWRITE = "pwrite"  # handle, data, [offset] -> [written]
    SEEK = "seek"  # handle, [offset as u64, whence] -> [position]
    SET_FLAGS = "set_flags"  # handle, [fdflags]
    FILESTAT = "filestat"  # handle -> [dev, ino, filetype, nlink, size, atim, mtim, ctim]
    SET_SIZE = "set_size"  # handle, [size]
    SET_TIMES = "set_times"  # handle, [atim, mtim, fstflags]
    ADVISE = "advise"  # handle, [offset, length, advice]
    ALLOCATE = "allocate"  # handle, [offset, length]
    SYNC = "sync"  # handle
    DATASYNC = "datasync"  # handle
    READDIR = "readdir"  # handle, [cookie, size] -> data: preview1 dirents from cookie on
    PATH_FILESTAT = "path_filestat"  # handle, path, [lookupflags] -> as FILESTAT
    PATH_SET_TIMES = "path_set_times"  # handle, path, [lookupflags, atim, mtim, fstflags]
    MKDIR = "mkdir"  # handle, path
    RMDIR = "rmdir"  # handle, path
    UNLINK = "unlink"  # handle, path
    RENAME = "rename"  # handle, path -> handle2, path2
    LINK = "link"  # handle, path -> handle2, path2, [lookupflags]
    SYMLINK = "symlink"  # path2 (the link's text) at handle, path
    READLINK = "readlink"  # handle, path -> data


class Stream(enum.IntEnum):
    """Where a ``Console`` frame's bytes go."""

    STDOUT = 1
    STDERR = 2


class GuestExitStatus(enum.IntEnum):
    """The exit status of a guest (or template) process itself. The host reads it only when
    no final frame explained the ending."""

    OK = 0  # it finished the protocol (after Shutdown, Exited or LoadFailed)
    OUT_OF_MEMORY = 75  # it ran out of memory (its rlimit) where no frame could say so
    HOST_BROKE_PROTOCOL = 76  # the host sent something the protocol does not allow


# -- field types -------------------------------------------------------------------------------

RequestId = Annotated[int, Range(0, REQUEST_ID_MAX)]
Text = Annotated[str, Length(0, MAX_TEXT)]
Millis = Annotated[float, Range(0.0, 1e9)]
Count = Annotated[int, Range(0, U32_MAX)]
Number = Annotated[int, Range(I64_MIN, U64_MAX)] | float
Numbers = Annotated[list[Annotated[int, Range(0, U64_MAX)]], Length(0, 8)]


@record
class Message(Record):
    """Every message: its tag (``TYPE``, the wire's ``type``) and its request id."""

    TYPE: ClassVar[MessageType]
    id: RequestId

    def wire(self) -> dict[str, object]:
        """The map this message travels as (``frames.encode_frame`` takes it)."""
        encoded: dict[str, object] = to_wire(self, self.TYPE)
        return encoded


def clip(text: str) -> str:
    """``text`` cut to what a reply may carry (``MAX_TEXT``)."""
    return text[:MAX_TEXT]


# -- the handshake, both ways ------------------------------------------------------------------


@record
class HostHello(Message):
    """The host's first frame (id 0): the protocol and version it speaks."""

    TYPE = MessageType.HELLO
    protocol: Literal["kindling"] = "kindling"
    version: Count = PROTOCOL_VERSION


@record
class GuestHello(Message):
    """The guest's first frame (id 0): what it speaks, and ``ready_ns``, its CLOCK_MONOTONIC
    (``time.monotonic_ns()``, the same clock in every process) when it was ready to serve."""

    TYPE = MessageType.HELLO
    protocol: Literal["kindling"] = "kindling"
    version: Count = PROTOCOL_VERSION
    ready_ns: Annotated[int, Range(0, (1 << 63) - 1)]


# -- requests: host -> guest -------------------------------------------------------------------


@record
class Load(Message):
    """Decode, validate and compile ``module``. ``cached``: left out when the host keeps no
    code cache; else the entry it has for this module (``protocol.codeentry``), b"" for
    none. With a cache and no usable entry, the guest compiles all of the module and sends a
    new entry in ``Code`` frames."""

    TYPE = MessageType.LOAD
    module: Annotated[bytes, Length(0, MAX_MODULE_BYTES)]
    cached: Annotated[bytes, Length(0, MAX_ENTRY_BYTES)] | None = None


@record
class BootLimits(Record):
    """The limits a guest sets on itself at Boot (filled from the host's config in one
    place, ``host.config.boot_limits``)."""

    memory_bytes: Annotated[int, Range(0, 1 << 32)]  # linear memory budget
    cpu_seconds: Annotated[int, Range(1, U32_MAX)] | None  # RLIMIT_CPU; None: no limit
    call_depth: Annotated[int, Range(1, U32_MAX)]  # Wasm calls deep before a trap
    fuel: Annotated[int, Range(0, (1 << 63) - 1)] | None  # None: unmetered


@record
class Preopen(Record):
    """A directory the guest is given (``Boot.preopens``): its WASI name (``/``, ``data``),
    and whether the host refuses every change in it (1: read-only). Its ``FileCall``
    handle is its index in ``Boot.preopens``."""

    name: Annotated[bytes, Length(1, MAX_PATH_BYTES)]
    read_only: Annotated[int, Range(0, 1)]


@record
class Boot(Message):
    """Instantiate the module: the program's arguments (argv[0] first) and environment
    (``KEY=VALUE``), and its limits. ``cached``: as in ``Load``, for the metered translation,
    when ``fuel`` is set and the host keeps a code cache. ``start`` and ``snapshot``: see
    ``StartMode``; ``snapshot`` only with ``restore``, and then exactly when the module has
    a start function or ``init``. ``init``: an export taking and returning nothing (a
    function's initialiser) that a ``snapshot`` Boot calls after the start function, before
    it sends what they left; a ``restore`` Boot names it to say the snapshot holds its work.
    ``preopens``: the directories it is given, as WASI fds 3, 4, ... (left out: none).
    ``terminals``: which of its console streams are terminals (left out: none)."""

    TYPE = MessageType.BOOT
    args: list[bytes]
    env: list[bytes]
    limits: BootLimits
    cached: Annotated[bytes, Length(0, MAX_ENTRY_BYTES)] | None = None
    start: StartMode | None = None
    snapshot: Annotated[bytes, Length(1, MAX_SNAPSHOT_BYTES)] | None = None
    init: Annotated[str, Length(1, MAX_EXPORT_NAME)] | None = None

    preopens: Annotated[list[Preopen], Length(0, MAX_PREOPENS)] | None = None
    terminals: Annotated[list[Annotated[int, Range(0, 2)]], Length(0, 3)] | None = None


@record
class Invoke(Message):
    """Call an export (``_start`` for a command) with numbers. ``argv`` and ``environ``, when
    ``argv`` is not empty: the program's arguments (argv[0] first) and environment
    (``KEY=VALUE``) from now on, in place of Boot's: a request to a function forked from a
    template brings its own. (Lists rather than optional fields: the generated fast reader
    of this hot message reads plain lists only.) ``stdin``: the program's whole stdin, given
    with the request: its reads take from it, then see the end of input, and no
    ``StdinRequest`` is sent (a command-mode request, whose body the host has: each of its
    round trips cost the host a validated frame and the guest two system calls and a wait);
    None: reads ask the host, ``StdinRequest`` by ``StdinRequest``."""

    TYPE = MessageType.INVOKE
    export: str
    args: list[Number]
    argv: Annotated[list[bytes], Length(0, MAX_PROGRAM_STRINGS)] = []  # noqa: RUF012
    environ: Annotated[list[bytes], Length(0, MAX_PROGRAM_STRINGS)] = []  # noqa: RUF012
    stdin: Annotated[bytes, Length(0, MAX_INVOKE_STDIN)] | None = None


@record
class StdinData(Message):
    """Answers a ``StdinRequest``; b"" is the end of input."""

    TYPE = MessageType.STDIN_DATA
    data: Annotated[bytes, Length(0, MAX_STDIN_REQUEST)]


@record
class FileAnswer(Message):
    """Answers a ``FileCall``: ``errno`` is a WASI preview1 errno (0 for success), and
    ``numbers`` and ``data`` the results ``FileOp`` lists."""

    TYPE = MessageType.FILE_ANSWER
    errno: Annotated[int, Range(0, 76)]
    numbers: Numbers
    data: Annotated[bytes, Length(0, FILE_CHUNK)] = b""


@record
class ConsoleClosed(Message):
    """Nobody reads ``stream`` any more (the host's write to it failed, e.g. ``EPIPE``):
    the program's later writes to it fail with preview1's ``PIPE``. Sent at any time while
    a request runs; the guest takes note whenever it reads."""

    TYPE = MessageType.CONSOLE_CLOSED
    stream: Stream


@record
class Shutdown(Message):
    """The guest process exits with status 0."""

    TYPE = MessageType.SHUTDOWN


# -- replies: guest -> host --------------------------------------------------------------------


@record
class LoadTimings(Record):
    """How long each step of loading took inside the guest, in milliseconds."""

    decode_ms: Millis
    validate_ms: Millis
    compile_ms: Millis


@record
class Loaded(Message):
    """The module is decoded, valid and ready to be instantiated. ``cache``: what the code
    cache gave: ``off`` (the host keeps none), ``hit``, ``miss``, or ``rejected: why``.
    ``code_size``: the module's code size, which the running memory bound allows for
    (``protocol.limits``; measured before any of the module's code ran). ``start``: the
    index of the module's start function; left out when it has none."""

    TYPE = MessageType.LOADED
    timings: LoadTimings
    cache: Text = "off"
    code_size: Annotated[int, Range(0, U64_MAX)] = 0
    start: Count | None = None


@record
class BootTimings(Record):
    """Instantiation, and the functions translated ahead of their first call while the
    guest waited for Boot (milliseconds, and how many)."""

    instantiate_ms: Millis
    precompile_ms: Millis
    precompiled: Count


@record
class Ready(Message):
    """The module is instantiated (its start function, if any, has run). ``cache``: as in
    ``Loaded``, for the metered translation (``off`` when none was needed)."""

    TYPE = MessageType.READY
    timings: BootTimings
    cache: Text = "off"


_INT_RANGE = {ValueType.I32: U32_MAX, ValueType.I64: U64_MAX}


@record
class ResultValue(Record):
    """One result: its Wasm type and its canonical value (integers unsigned, references
    None for null or a short description). On the wire: a ``[type, value]`` pair."""

    WIRE_PAIR = True
    type: ValueType
    value: int | float | Annotated[str, Length(0, 200)] | None

    def problem(self) -> str | None:
        value = self.value
        if self.type in _INT_RANGE:
            if isinstance(value, bool) or not isinstance(value, int):
                return f"an {self.type} result must be an int"
            if not 0 <= value <= _INT_RANGE[self.type]:
                return f"{value} is out of range for an {self.type}"
        elif self.type in (ValueType.F32, ValueType.F64):
            if not isinstance(value, float):
                return f"an {self.type} result must be a float"
        elif not (value is None or isinstance(value, str)):
            return f"a {self.type} result must be null or a description"
        return None

    def signed(self) -> int | float | str | None:
        """The value as people read it: integers signed (an i32 0xFFFFFFFF is -1)."""
        value = self.value
        if self.type is ValueType.I32 and isinstance(value, int):
            return value - (1 << 32) if value >= 1 << 31 else value
        if self.type is ValueType.I64 and isinstance(value, int):
            return value - (1 << 64) if value >= 1 << 63 else value
        return value

    def display(self) -> str:
        """How ``kindling run --invoke`` prints this value."""
        value = self.signed()
        if value is None:
            return "null"
        if isinstance(value, float):
            return repr(value) if math.isfinite(value) else str(value)
        return str(value)


@record
class Result(Message):
    """An invoked export returned. ``fuel``: what the instance has used so far, when it is
    metered."""

    TYPE = MessageType.RESULT
    results: Annotated[list[ResultValue], Length(0, MAX_RESULTS)]
    fuel: Annotated[int, Range(0, 1 << 63)] | None = None


MAX_BACKTRACE = 100
"""The most frames a ``Trapped`` backtrace carries (the innermost)."""


@record
class TrapFrame(Record):
    """One Wasm function a trap went through: its index in the module's function space and
    its name from the module's name section, if it has one (module text: the host escapes
    it)."""

    function: Count
    name: Annotated[str, Length(0, 200)] | None = None


@record
class Trapped(Message):
    """Execution trapped. ``backtrace``: the Wasm functions it went through, innermost
    first (left out when none is known)."""

    TYPE = MessageType.TRAPPED
    kind: TrapKind
    message: Text
    backtrace: Annotated[list[TrapFrame], Length(0, MAX_BACKTRACE)] | None = None


@record
class Exited(Message):
    """The program called ``proc_exit(code)``; the guest process exits next."""

    TYPE = MessageType.EXITED
    code: Count


@record
class LimitReached(Message):
    """The guest hit a limit it enforces itself (linear memory at instantiation, the memory
    its process may have, fuel)."""

    TYPE = MessageType.LIMIT_REACHED
    resource: Annotated[Limit, OneOf(Limit.MEMORY, Limit.FUEL)]
    message: Text


@record
class LoadFailed(Message):
    """The module could not be loaded; the guest process exits next."""

    TYPE = MessageType.LOAD_FAILED
    stage: Annotated[LoadStage, GUEST_LOAD_STAGES]
    message: Text


@record
class Refused(Message):
    """The guest cannot do what the request asked (no such export, wrong arguments)."""

    TYPE = MessageType.REFUSED
    reason: RefusalReason
    message: Text


@record
class Console(Message):
    """Output of the running request; never empty, at most ``CONSOLE_CHUNK`` bytes. (Up to
    the frame cap passes the schema: a larger frame is the output limit's business, so the
    host ends it ``limit(output)`` rather than ``protocol_error``.)"""

    TYPE = MessageType.CONSOLE
    stream: Stream
    data: Annotated[bytes, Length(1, GUEST_FRAME_CAP)]


@record
class Code(Message):
    """A piece of a new code cache entry (``protocol.codeentry``), during Load or Boot."""

    TYPE = MessageType.CODE
    data: Annotated[bytes, Length(1, CODE_CHUNK)]


@record
class Starting(Message):
    """Boot: the module's own code starts running now (its start function, then what the
    host invokes). Sent before it, always: from here on the module may have subverted the
    guest, so the host takes no ``Code`` from it any more (what it sent before is as
    trustworthy as compiling the module afresh), and console output or stdin traffic before
    it is a protocol error."""

    TYPE = MessageType.STARTING


@record
class Snapshot(Message):
    """A piece of what the start function left (``Boot`` with ``start=snapshot``), after
    ``Starting`` and before ``Ready``: every piece but the last is a full ``CODE_CHUNK``.
    Module code made it, so it is untrusted data: the template that installs it checks
    every part (``guestproc.engine.snapshot``)."""

    TYPE = MessageType.SNAPSHOT
    data: Annotated[bytes, Length(1, CODE_CHUNK)]


@record
class StdinRequest(Message):
    """The running request wants up to ``max`` bytes of stdin."""

    TYPE = MessageType.STDIN_REQUEST
    max: Annotated[int, Range(1, MAX_STDIN_REQUEST)]


@record
class FileCall(Message):
    """The running request asks the host to do ``op`` in a preopened directory
    (``FileOp`` lists the arguments). Each is answered by a ``FileAnswer``, in the order the
    calls came; at most ``MAX_FILE_CALLS`` are unanswered."""

    TYPE = MessageType.FILE_CALL
    op: FileOp
    handle: Count = 0
    path: Annotated[bytes, Length(0, MAX_PATH_BYTES)] = b""
    handle2: Count = 0
    path2: Annotated[bytes, Length(0, MAX_PATH_BYTES)] = b""
    numbers: Numbers
    data: Annotated[bytes, Length(0, FILE_CHUNK)] = b""


# -- a template's control socket -----------------------------------------------------------------


@record
class Fork(Message):
    """Clone a guest; the datagram carries the guest's two pipe ends (``SCM_RIGHTS``)."""

    TYPE = MessageType.FORK


@record
class Forked(Message):
    """The guest is running: ``pid``, a child of the host (``CLONE_PARENT``)."""

    TYPE = MessageType.FORKED
    pid: Annotated[int, Range(2, (1 << 22))]  # pid_max is at most 2**22 on Linux


@record
class ForkFailed(Message):
    """The template could not clone a guest; ``error`` says why."""

    TYPE = MessageType.FORK_FAILED
    error: Text


@record
class Namespace(Message):
    """A template's first word on its control socket, before it reads a ``Fork``: ``pid``
    is the process that holds its guests' PID namespace (a child of the host, the
    namespace's init: when it ends, so does every guest in it), or None when the kernel
    gave none and its guests share the host's (id 0)."""

    TYPE = MessageType.NAMESPACE
    pid: Annotated[int, Range(2, (1 << 22))] | None = None


# -- the channels ------------------------------------------------------------------------------

GuestReply = Loaded | Ready | Result | Trapped | Exited | LimitReached | LoadFailed | Refused
# Frames that belong to a request being served (the host counts them: ``host.framebudget``)
DuringRequest = Console | StdinRequest | FileCall | Code | Starting | Snapshot
GuestMessage = GuestHello | GuestReply | DuringRequest
TemplateReply = Forked | ForkFailed | Namespace


def _by_tag(*classes: type[Message]) -> dict[str, type[Message]]:
    return {str(cls.TYPE): cls for cls in classes}


HOST_TO_GUEST = _by_tag(
    HostHello, Load, Boot, Invoke, StdinData, FileAnswer, ConsoleClosed, Shutdown
)
"""What the host may send a guest (and a template, before it forks: Hello, Load, Boot)."""
GUEST_TO_HOST = _by_tag(
    GuestHello,
    Loaded,
    Ready,
    Result,
    Trapped,
    Exited,
    LimitReached,
    LoadFailed,
    Refused,
    Console,
    StdinRequest,
    FileCall,
    Code,
    Starting,
    Snapshot,
)
"""What a guest (or a template, before it forks) may send the host."""
HOST_TO_TEMPLATE = _by_tag(Fork)
"""What the host sends on a template's control socket."""
TEMPLATE_TO_HOST = _by_tag(Forked, ForkFailed, Namespace)
"""What a template answers on its control socket."""


def declaration_of(channel: dict[str, type[Message]], value: object) -> type[Message]:
    """The declaration ``value`` (a decoded frame) claims to fit on ``channel``, by its
    ``type``; ``SchemaError`` if it is not a map or names no message of the channel."""
    if not isinstance(value, dict):
        raise SchemaError(f"a message must be a map, got {type(value).__name__}")
    tag = value.get("type")
    cls = channel.get(tag) if isinstance(tag, str) else None
    if cls is None:
        shown = repr(tag) if not isinstance(tag, str) or len(tag) <= 40 else repr(tag[:40])
        raise SchemaError(f"a message of type {shown} is not allowed on this channel")
    return cls


def read_message(channel: dict[str, type[Message]], value: object) -> Message:
    """``value``, a decoded frame, checked against the channel's declarations (the guest's
    checker, ``schema.from_wire``); ``SchemaError`` naming the message and field if it does
    not fit."""
    return from_wire(declaration_of(channel, value), value)
