"""Load: a module's bytes to a ``CompiledModule``, under the loading bound.

::

    Load(module, cached?) ──▶ import what loading needs (text parser, codecache)
      ──▶ hardening, RLIMIT_DATA (loading)                        confinement.before_loading
      ├── an entry in the code cache ──▶ the RUNNING filter ──▶ caching.from_cache
      │     (a guest; a template loads no entry)         confinement.before_cache_entry
      │                                                 ──hit──▶ Loaded(cache=hit)
      └── decode ──▶ validate ──▶ compile ──▶ Loaded(timings, code size)
            └─────────┴────────────┴──── LoadFailed(stage), and the guest stops
            with a code cache: every function compiled, sent as an entry (caching.send_entry)
            without: a Precompiler for the time until the next request

    Boot with fuel, of a module loaded unmetered ──▶ translate_metered: the cache's metered
      entry, or compile again with fuel (decoding again if the module came from the cache)

A module is in the binary format, or in the text format when it lacks the binary magic
(``decode``). What Load leaves for Boot is a ``LoadedModule``; Boot lets go of the module's
bytes before it moves to the running bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from protocol import messages as msg
from protocol.messages import Load, LoadStage, clip

from . import confinement
from .caching import from_cache, send_entry
from .engine import (
    CompiledModule,
    CompileError,
    DecodeError,
    Module,
    ValidationError,
    compile_module,
    decode_module,
    validate_module,
)
from .precompiler import Precompiler
from .replies import PASS_THROUGH, Replies

T = TypeVar("T")


class LoadedModule:
    """What Load leaves for Boot (``booting`` replaces ``compiled`` with the metered
    translation when Boot brings fuel, and empties ``module_bytes``)."""

    # A plain class: a dataclass would cost every guest about 0.8 ms more start-up.
    __slots__ = ("code_size", "compiled", "module_bytes", "precompiler")

    def __init__(self, compiled: CompiledModule, code_size: int, module_bytes: bytes = b"") -> None:
        self.compiled = compiled
        self.code_size = code_size  # what the running bound allows for (``Module.code_size``)
        # Kept only while a metered translation may need to decode the module again.
        self.module_bytes = module_bytes
        self.precompiler: Precompiler | None = None


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (``time.perf_counter()``), as timings report them."""
    return round((time.perf_counter() - started) * 1000, 3)


def load(replies: Replies, message: Load, template: bool = False) -> LoadedModule:
    """Serve ``Load``: reply ``Loaded``, or end with ``LoadFailed`` (``StopServing``).
    ``template``: the process is a template (its hardening differs: ``confinement``)."""
    module_bytes = message.module
    cached = message.cached
    if template and cached:
        # A template keeps ``clone`` and descriptor passing for its whole life, so it never
        # takes the RUNNING filter that unmarshalling an entry needs (``confinement``): it
        # compiles afresh, and fills the cache for the guests that may load it. (The host
        # sends a template no entry; one that arrives anyway is not read.)
        cached = b""
    # The hardening goes on before the first untrusted byte is read; what loading will
    # import is imported first (as nobody, the interpreter's files may be out of reach).
    # Those imports are part of decoding and of loading from the cache: timed as such.
    started = time.perf_counter()
    if _looks_like_text(module_bytes) and not module_bytes.startswith(b"\0asm"):
        from .engine import text  # noqa: F401
    parser_ms = elapsed_ms(started)
    started = time.perf_counter()
    if cached is not None:
        from . import codecache  # noqa: F401
    cache_ms = elapsed_ms(started)
    confinement.before_loading(len(module_bytes), template)

    status = "off"
    if cached is not None:
        started = time.perf_counter()
        if cached:
            confinement.before_cache_entry()
        compiled, status = from_cache(cached, False, lambda: decode(module_bytes, bodies=False))
        if compiled is not None:
            # Its functions have no bodies: a metered translation would decode again.
            loaded = LoadedModule(compiled, compiled.module.code_size(), module_bytes)
            loading = round(cache_ms + elapsed_ms(started), 3)
            timings = {"decode_ms": 0.0, "validate_ms": 0.0, "compile_ms": loading}
            replies.send(_loaded(replies, loaded, timings, status))
            return loaded
    compiled, timings = compile_stages(replies, module_bytes, metered=False)
    timings["decode_ms"] = round(timings["decode_ms"] + parser_ms, 3)
    loaded = LoadedModule(compiled, compiled.module.code_size())
    if cached is not None:
        # The entry holds every function, so there is nothing left to translate ahead.
        started = time.perf_counter()
        send_entry(replies, compiled)
        timings["compile_ms"] = round(timings["compile_ms"] + cache_ms + elapsed_ms(started), 3)
    else:
        loaded.precompiler = Precompiler(compiled)
    replies.send(_loaded(replies, loaded, timings, status))
    return loaded


def _loaded(
    replies: Replies, loaded: LoadedModule, timings: dict[str, float], cache: str
) -> msg.Loaded:
    return msg.Loaded(
        id=replies.request_id,
        timings=msg.LoadTimings(**timings),
        cache=cache,
        code_size=loaded.code_size,
        start=loaded.compiled.module.start,
    )


def compile_stages(
    replies: Replies, module_bytes: bytes, metered: bool
) -> tuple[CompiledModule, dict[str, float]]:
    """Decode, validate and prepare the module, and how long each took (``LoadFailed``
    ends the guest)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    module = in_stage(replies, LoadStage.DECODE, DecodeError, lambda: decode(module_bytes))
    keep_only_names(module)
    timings["decode_ms"] = elapsed_ms(started)
    started = time.perf_counter()
    in_stage(replies, LoadStage.VALIDATION, ValidationError, lambda: validate_module(module))
    timings["validate_ms"] = elapsed_ms(started)
    started = time.perf_counter()
    compiled = in_stage(
        replies, LoadStage.COMPILE, CompileError, lambda: compile_module(module, fuel=metered)
    )
    timings["compile_ms"] = elapsed_ms(started)
    return compiled, timings


def in_stage(
    replies: Replies, stage: LoadStage, expected: type[Exception], step: Callable[[], T]
) -> T:
    """``step()``; if it fails, end the request with ``LoadFailed(stage)``: its message for
    an ``expected`` error, an internal error for any other (a bug in the engine, contained)."""
    try:
        return step()
    except PASS_THROUGH:
        raise
    except expected as exc:
        replies.end(msg.LoadFailed(id=replies.request_id, stage=stage, message=clip(str(exc))))
    except Exception as exc:  # a bug in the engine: contain it, name it
        text = f"internal error: {type(exc).__name__}: {exc}"
        replies.end(msg.LoadFailed(id=replies.request_id, stage=stage, message=clip(text)))


def translate_metered(
    replies: Replies, loaded: LoadedModule, cached: bytes | None, template: bool
) -> tuple[CompiledModule, str]:
    """The module compiled with fuel metering, from the code cache if it has it (never in
    a ``template``: ``load``); and what the cache gave."""
    if cached is None:
        return compile_module(loaded.compiled.module, fuel=True), "off"
    if cached and not template:
        confinement.before_cache_entry()
    elif template:
        cached = b""  # as in ``load``: a template loads no entry
    compiled, status = from_cache(cached, True, lambda: loaded.compiled.module)
    if compiled is None:
        if loaded.compiled.from_cache:
            # A module that came from the cache has no function bodies: decode it again.
            compiled, _ = compile_stages(replies, loaded.module_bytes, metered=True)
        else:
            compiled = compile_module(loaded.compiled.module, fuel=True)
        send_entry(replies, compiled)
    return compiled, status


def decode(module_bytes: bytes, bodies: bool = True) -> Module:
    """A module in the binary format, or in the text format when it lacks the binary magic.
    ``bodies=False``: with every function's body left empty (``decode_module``); custom
    sections are dropped then too.

    Bytes that are neither -- empty, or not UTF-8 text -- get the binary decoder's verdict
    ("magic header not detected", "unexpected end"); text that does not parse is named as
    such, so a shell script or a typo'd path does not read like a WAT syntax error only.
    """
    if module_bytes.startswith(b"\0asm") or not _looks_like_text(module_bytes):
        module = decode_module(module_bytes, bodies)
    else:
        module = _parse_text(module_bytes)
        if not bodies:
            module.functions = [replace(f, body=[]) for f in module.functions]
    if not bodies:
        keep_only_names(module)  # as compile_stages leaves a module it compiles
    return module


MAX_NAME_SECTION = 256 * 1024
"""The largest name section a guest keeps (for a trap's backtrace, ``guestproc.backtrace``);
a larger one, or any other custom section, is dropped once the module is decoded: they count
against the guest's memory and mean nothing to running it."""


def keep_only_names(module: Module) -> None:
    """Drop every custom section but a name section of at most ``MAX_NAME_SECTION`` bytes."""
    module.customs[:] = [
        (name, payload)
        for name, payload in module.customs
        if name == "name" and len(payload) <= MAX_NAME_SECTION
    ][:1]


def _parse_text(module_bytes: bytes) -> Module:
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
