"""WASI preview1 (``wasi_snapshot_preview1``) for Kindling guests.

::

    guest process (bridges to frames)        WasiEnvironment                   Wasm instance
    ─────────────────────────────────        ───────────────                   ─────────────
    write_console(stream 1|2, data)  ◀────── fd_write(fd, iovecs)  ◀────────── printf, fputs
    read_stdin(n) -> up to n bytes   ──────▶ fd_read(0, iovecs)    ──────────▶ fread, getchar
    except WasiExit as exit: exit.code ◀──── proc_exit(code)       ◀────────── exit(7)
                                              args, environ, clocks, random_get, poll_oneoff

The guest process builds one ``WasiEnvironment`` per guest, passes ``imports()`` to
``CompiledModule.instantiate``, and hands the instance's exported ``memory`` (and, when it
is metered, what pays for bulk work) to ``bind`` before running guest code::

    wasi = WasiEnvironment([b"prog", b"arg"], [b"KEY=value"],
                           write_console=send_console_frame, read_stdin=request_stdin)
    instance = compiled.instantiate(wasi.imports(), limits)
    wasi.bind(instance.exports["memory"], instance.pay_bytes)
    try:
        invoke(instance.exports["_start"], [])
        code = 0
    except WasiExit as exit:
        code = exit.code

This package imports only the standard library and the engine (never pydantic, never the
frame protocol): the console and stdin reach the outside only through the callables given
at construction.

The sandbox it models has the console, the directories it was given, and nothing else:
descriptors 0, 1 and 2 are the console (character devices when they reach a terminal, so
wasi-libc's ``isatty`` tells the truth), 3 and up the preopened directories, whose files the
host opens and reads for the guest (``files``, through the ``call_files`` callable; after
the last preopen ``fd_prestat_get`` answers ``BADF``, which ends wasi-libc's preopen scan).
There are no sockets. Every preview1 function exists with its exact core type, so
any program built with ``clang --target=wasm32-wasi`` links; what each answers is documented
in ``environment``.
"""

from .abi import (
    MODULE_NAME,
    SIGNATURES,
    ClockId,
    Errno,
    EventType,
    FdFlags,
    FileType,
    Rights,
    Whence,
)
from .descriptors import ConsoleStream
from .environment import (
    DEFAULT_MAX_SLEEP_NS,
    MAX_IO_BYTES,
    ReadStdin,
    WasiEnvironment,
    WasiExit,
    WriteConsole,
)

__all__ = [
    "DEFAULT_MAX_SLEEP_NS",
    "MAX_IO_BYTES",
    "MODULE_NAME",
    "SIGNATURES",
    "ClockId",
    "ConsoleStream",
    "Errno",
    "EventType",
    "FdFlags",
    "FileType",
    "ReadStdin",
    "Rights",
    "WasiEnvironment",
    "WasiExit",
    "Whence",
    "WriteConsole",
]
