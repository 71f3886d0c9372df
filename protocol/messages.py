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
                              ◀───────────────────────     Ready(id, timings) | LoadFailed(link)
                                                           | LimitReached | Trapped | Exited
    Invoke(id, export, args)  ───────────────────────▶     run the export (``_start`` for a command)
                              ◀───────────────────────     Console(id, stream, data) ...
                              ◀───────────────────────     StdinRequest(id, max)
    StdinData(id, data)       ───────────────────────▶     (b"" is the end of input)
                              ◀───────────────────────     Result(id, results) | Trapped | Exited
                                                           | LimitReached | Refused
    Shutdown(id)              ───────────────────────▶     the guest process exits with status 0

Loading is split from booting so that the host can send the module the moment the guest
process exists, and the guest loads it while the host is still validating the configuration
that ``Boot`` carries (the limits, the program's arguments and environment).

A message is a dict with ``type`` (a ``MessageType``) and ``id``. Requests are verbs and go
host -> guest; replies are nouns and go guest -> host. ``id`` works like a stream id: every
request the host starts (``Boot``, ``Invoke``, ``Shutdown``) carries a new id, and every frame
that belongs to it -- the console output it produced, its stdin traffic, its final reply --
carries that same id. ``Hello`` has id 0. One request runs at a time; a guest has at most one
``StdinRequest`` outstanding.

After ``Exited``, ``LoadFailed`` or ``LimitReached``, and after a ``Trapped`` that answers
``Boot`` or is an ``internal_error``, the guest process exits by itself (the program is over,
or there is no program); after ``Loaded``, ``Ready``, ``Result``, ``Trapped`` or ``Refused``
it waits for the next request. Requests may be pipelined: the guest reads the next one when
it has answered the last.

This module and ``frames`` are what the guest imports: standard library and msgpack only.
The host validates every frame from a guest with the pydantic models in ``protocol.models``
(which the guest never imports).
"""

from __future__ import annotations

import enum
from typing import Any

PROTOCOL_NAME = "kindling"
PROTOCOL_VERSION = 1


class MessageType(enum.StrEnum):
    """The ``type`` tag of every message."""

    HELLO = "Hello"
    # requests: host -> guest
    LOAD = "Load"
    BOOT = "Boot"
    INVOKE = "Invoke"
    STDIN_DATA = "StdinData"
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
    CODE = "Code"


REQUESTS = frozenset(
    {
        MessageType.LOAD,
        MessageType.BOOT,
        MessageType.INVOKE,
        MessageType.STDIN_DATA,
        MessageType.SHUTDOWN,
    }
)
REPLIES = frozenset(
    {
        MessageType.LOADED,
        MessageType.READY,
        MessageType.RESULT,
        MessageType.TRAPPED,
        MessageType.EXITED,
        MessageType.LIMIT_REACHED,
        MessageType.LOAD_FAILED,
        MessageType.REFUSED,
        MessageType.CONSOLE,
        MessageType.STDIN_REQUEST,
        MessageType.CODE,
    }
)
# The replies that end a request (the others -- Console, StdinRequest -- happen during one).
FINAL_REPLIES = REPLIES - {MessageType.CONSOLE, MessageType.STDIN_REQUEST, MessageType.CODE}

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
``Boot`` arguments, env and the metered entry)."""

CODE_CHUNK = 64 * 1024
"""The most bytes of a code cache entry one ``Code`` frame carries."""

CONSOLE_CHUNK = 64 * 1024
"""The most output bytes one ``Console`` frame carries (the guest batches up to this)."""

GUEST_FRAME_CAP = CONSOLE_CHUNK + 16 * 1024
"""The cap on frames guest -> host: a full ``Console`` frame plus room for the record."""

MAX_TEXT = 4096
"""The longest message text (trap or error description) a reply may carry, in characters."""

MAX_RESULTS = 1000
"""The most values one ``Result`` may carry."""

MAX_STDIN_REQUEST = 1024 * 1024
"""The most bytes one ``StdinRequest`` may ask for."""

STDOUT = 1
STDERR = 2
STREAMS = (STDOUT, STDERR)

# -- vocabularies ----------------------------------------------------------------------------

TRAP_KINDS = frozenset(
    {
        "unreachable",
        "integer_divide_by_zero",
        "integer_overflow",
        "invalid_conversion",
        "out_of_bounds_memory",
        "out_of_bounds_table",
        "undefined_element",
        "uninitialized_element",
        "indirect_call_type_mismatch",
        "call_stack_exhausted",
        # An exception the engine did not expect: a bug in Kindling, contained in the guest.
        "internal_error",
    }
)
"""What ``Trapped.kind`` may be: the engine's trap codes (``TrapCode.kind``) that are not
limits, plus ``internal_error``. Running out of fuel or host memory is a ``LimitReached``."""

LIMIT_RESOURCES = frozenset({"memory", "fuel"})
"""What ``LimitReached.resource`` may be: the limits a guest detects itself."""


class RefusalReason(enum.StrEnum):
    """Why the guest refused an ``Invoke`` (``Refused.reason``)."""

    NO_EXPORT = "no_export"  # the module exports no function by that name
    ARGUMENTS = "arguments"  # the numbers do not fit the function's parameters


class LoadStage(enum.StrEnum):
    """Where loading a module failed (``LoadFailed.stage``)."""

    DECODE = "decode"  # the bytes are not a WebAssembly module
    VALIDATION = "validation"  # a well-formed module that breaks a typing rule
    LINK = "link"  # an import the guest cannot provide, or does not match
    COMPILE = "compile"  # the engine cannot translate a valid function


VALUE_TYPES = ("i32", "i64", "f32", "f64", "funcref", "externref")
"""The types a ``Result`` value is tagged with."""

# -- exit statuses of the guest process itself -------------------------------------------------

GUEST_STATUS_OK = 0
"""The guest process finished the protocol (after ``Shutdown``, ``Exited`` or ``LoadFailed``)."""
GUEST_STATUS_OUT_OF_MEMORY = 75
"""The guest process ran out of memory (its rlimit) where it could not report it in a frame."""
GUEST_STATUS_HOST_BROKE_PROTOCOL = 76
"""The guest process received something from the host that the protocol does not allow."""

Message = dict[str, Any]


# -- constructors: one per message type ----------------------------------------------------


def hello(ready_ns: int | None = None) -> Message:
    """The handshake. The guest's says when it was ready to serve: ``ready_ns``, its
    CLOCK_MONOTONIC (``time.monotonic_ns()``, the same clock in every process)."""
    message: Message = {
        "type": MessageType.HELLO,
        "id": 0,
        "protocol": PROTOCOL_NAME,
        "version": PROTOCOL_VERSION,
    }
    if ready_ns is not None:
        message["ready_ns"] = ready_ns
    return message


def load(request_id: int, module: bytes, cached: bytes | None = None) -> Message:
    """``cached``: left out when the host keeps no code cache; else the entry it has for this
    module (``protocol.codeentry``), b"" for none. With a cache and no usable entry, the
    guest compiles all of the module and sends a new entry in ``Code`` frames."""
    message: Message = {"type": MessageType.LOAD, "id": request_id, "module": module}
    if cached is not None:
        message["cached"] = cached
    return message


def boot(
    request_id: int,
    args: list[bytes],
    env: list[bytes],
    limits: dict[str, Any],
    cached: bytes | None = None,
) -> Message:
    """``limits``: ``memory_bytes`` (int), ``cpu_seconds`` (int or None), ``call_depth`` (int),
    ``fuel`` (int or None). ``cached``: as in ``load``, for the metered translation, when
    ``fuel`` is set and the host keeps a code cache."""
    message: Message = {
        "type": MessageType.BOOT,
        "id": request_id,
        "args": args,
        "env": env,
        "limits": limits,
    }
    if cached is not None:
        message["cached"] = cached
    return message


def invoke(request_id: int, export: str, args: list[int | float]) -> Message:
    return {"type": MessageType.INVOKE, "id": request_id, "export": export, "args": args}


def stdin_data(request_id: int, data: bytes) -> Message:
    return {"type": MessageType.STDIN_DATA, "id": request_id, "data": data}


def shutdown(request_id: int) -> Message:
    return {"type": MessageType.SHUTDOWN, "id": request_id}


def loaded(
    request_id: int, timings: dict[str, float], cache: str = "off", code_size: int = 0
) -> Message:
    """``timings``: ``decode_ms``, ``validate_ms``, ``compile_ms``. ``cache``: what the code
    cache gave: ``off`` (the host keeps none), ``hit``, ``miss``, or ``rejected: why``.
    ``code_size``: the module's code size, which the running memory bound allows for
    (``protocol.limits``; measured before any of the module's code ran)."""
    return {
        "type": MessageType.LOADED,
        "id": request_id,
        "timings": timings,
        "cache": cache,
        "code_size": code_size,
    }


def ready(request_id: int, timings: dict[str, float], cache: str = "off") -> Message:
    """``timings``: ``instantiate_ms``, ``precompile_ms`` (translating functions ahead of
    their first call while the guest waited for ``Boot``) and ``precompiled`` (how many).
    ``cache``: as in ``loaded``, for the metered translation (``off`` when none was needed)."""
    return {"type": MessageType.READY, "id": request_id, "timings": timings, "cache": cache}


def code(request_id: int, data: bytes) -> Message:
    """A piece of a new code cache entry, sent before ``Loaded`` or ``Ready``."""
    return {"type": MessageType.CODE, "id": request_id, "data": data}


def result(request_id: int, results: list[list[Any]], fuel: int | None = None) -> Message:
    """``results``: ``[type, value]`` pairs, ``type`` one of ``VALUE_TYPES``; integers are the
    engine's canonical unsigned values, references ``None`` (null) or a short description.
    ``fuel``: the fuel the instance has used so far, when it is metered."""
    message = {"type": MessageType.RESULT, "id": request_id, "results": results}
    if fuel is not None:
        message["fuel"] = fuel
    return message


def trapped(request_id: int, kind: str, message: str) -> Message:
    return {
        "type": MessageType.TRAPPED,
        "id": request_id,
        "kind": kind,
        "message": message[:MAX_TEXT],
    }


def exited(request_id: int, code: int) -> Message:
    return {"type": MessageType.EXITED, "id": request_id, "code": code}


def limit_reached(request_id: int, resource: str, message: str) -> Message:
    return {
        "type": MessageType.LIMIT_REACHED,
        "id": request_id,
        "resource": resource,
        "message": message[:MAX_TEXT],
    }


def load_failed(request_id: int, stage: LoadStage, message: str) -> Message:
    return {
        "type": MessageType.LOAD_FAILED,
        "id": request_id,
        "stage": stage,
        "message": message[:MAX_TEXT],
    }


def refused(request_id: int, reason: RefusalReason, message: str) -> Message:
    """The guest cannot do what the request asks (no such export, wrong arguments)."""
    return {
        "type": MessageType.REFUSED,
        "id": request_id,
        "reason": reason.value,
        "message": message[:MAX_TEXT],
    }


def console(request_id: int, stream: int, data: bytes) -> Message:
    return {"type": MessageType.CONSOLE, "id": request_id, "stream": stream, "data": data}


def stdin_request(request_id: int, max_bytes: int) -> Message:
    return {"type": MessageType.STDIN_REQUEST, "id": request_id, "max": max_bytes}
