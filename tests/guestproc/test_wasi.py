"""WASI preview1 host functions (``guestproc.wasi``).

Three layers, from the bytes up:

- unit tests call every function through ``invoke`` on a real one-page ``Memory`` filled with
  a sentinel byte, and check exactly which bytes were written;
- parity tests make the same calls on wasmtime's own WASI (the reference) and compare the
  errno and the whole memory afterwards;
- program tests run C programs built with ``clang --target=wasm32-wasi -O2`` (sources and
  binaries in ``data/``): under wasmtime's WASI to record the reference output, under our
  WASI with wasmtime only executing the Wasm code, and under our own engine.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from guestproc.engine import (
    CompiledModule,
    EngineLimits,
    Function,
    Limits,
    Memory,
    MemoryType,
    ValType,
    compile_module,
    decode_module,
    invoke,
    validate_module,
)
from guestproc.wasi import (
    MAX_IO_BYTES,
    MODULE_NAME,
    SIGNATURES,
    ClockId,
    Errno,
    EventType,
    FdFlags,
    FileType,
    Rights,
    WasiEnvironment,
    WasiExit,
    abi,
)

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[2]
PAGE = 65536
SENTINEL = 0xAA
# tests/fixtures/wasi-cc: clang --target=wasm32-wasi -O2 -Wall -Wextra, never wasm-opt
WASI_CC = ROOT / "tests" / "fixtures" / "wasi-cc"
LDFLAGS = ["-Wl,--strip-debug"]

SUCCESS, BADF, FAULT, INVAL = Errno.SUCCESS, Errno.BADF, Errno.FAULT, Errno.INVAL
SPIPE, NOTSUP, NOTSOCK, NOTCAPABLE = Errno.SPIPE, Errno.NOTSUP, Errno.NOTSOCK, Errno.NOTCAPABLE


# ---------------------------------------------------------------------------------------------
# A WasiEnvironment on a real memory, with recording callables
# ---------------------------------------------------------------------------------------------


class Harness:
    """One ``WasiEnvironment`` bound to a fresh one-page memory filled with ``SENTINEL``.

    Console writes, stdin requests and sleeps are recorded; clocks and randomness are fixed
    so every written byte can be predicted.
    """

    def __init__(
        self,
        args: Sequence[bytes] = (b"prog",),
        env: Sequence[bytes] = (),
        stdin: Sequence[bytes] = (),
        **options: Any,
    ) -> None:
        self.console: list[tuple[int, bytes]] = []
        self.stdin_chunks = list(stdin)
        self.stdin_requests: list[int] = []
        self.sleeps: list[int] = []
        self.realtime = 1_700_000_000_123_456_789
        self.monotonic = 5_000_000_000
        self.memory = Memory(MemoryType(Limits(1, 4)))
        self.memory.data[:] = bytes([SENTINEL]) * PAGE
        self.wasi = WasiEnvironment(
            list(args),
            list(env),
            write_console=lambda stream, data: self.console.append((stream, data)),
            read_stdin=self._read_stdin,
            clock_ns=lambda: self.realtime,
            monotonic_ns=lambda: self.monotonic,
            process_cputime_ns=lambda: 0x0102030405060708,
            thread_cputime_ns=lambda: 42,
            random_bytes=lambda n: bytes((i * 7 + 3) & 0xFF for i in range(n)),
            sleep_ns=self.sleeps.append,
            **options,
        )
        self.wasi.bind(self.memory)
        self.functions = self.wasi.imports()

    def _read_stdin(self, limit: int) -> bytes:
        self.stdin_requests.append(limit)
        if not self.stdin_chunks:
            return b""
        chunk = self.stdin_chunks.pop(0)
        if len(chunk) > limit:
            self.stdin_chunks.insert(0, chunk[limit:])
        return chunk[:limit]

    def call(self, name: str, *args: int) -> int | None:
        results = invoke(self.functions[(MODULE_NAME, name)], list(args))
        return results[0] if results else None

    def put(self, address: int, payload: bytes) -> None:
        self.memory.write(address, payload)

    def get(self, address: int, size: int) -> bytes:
        return self.memory.read(address, size)

    def iovecs(self, address: int, *buffers: tuple[int, int]) -> int:
        """Write (buf, len) pairs at ``address``; return ``address``."""
        self.put(address, b"".join(abi.CIOVEC.pack(buf, size) for buf, size in buffers))
        return address

    def untouched(self, start: int, end: int) -> bool:
        return self.memory.data[start:end] == bytes([SENTINEL]) * (end - start)


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def clock_subscription(userdata: int, clock: int, timeout: int, flags: int = 0) -> bytes:
    return abi.SUBSCRIPTION.pack(userdata, EventType.CLOCK, clock, timeout, 0, flags)


def fd_subscription(userdata: int, event_type: int, fd: int) -> bytes:
    return abi.SUBSCRIPTION.pack(userdata, event_type, fd, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# The ABI: numbers, layouts and signatures
# ---------------------------------------------------------------------------------------------


def test_errno_values_named_in_the_brief() -> None:
    assert (SUCCESS, BADF, FAULT, INVAL) == (0, 8, 21, 28)
    assert (Errno.NOSYS, Errno.NOTSUP, Errno.SPIPE, Errno.NOTCAPABLE) == (52, 58, 70, 76)
    assert [int(e) for e in Errno] == list(range(77))


def test_layout_sizes_match_the_witx() -> None:
    assert abi.CIOVEC.size == 8
    assert abi.FDSTAT.size == 24
    assert abi.FILESTAT.size == 64
    assert abi.SUBSCRIPTION.size == 48
    assert abi.EVENT.size == 32


WASI_HEADER = Path("/usr/include/wasm32-wasi/wasi/api.h")


@pytest.mark.skipif(
    not WASI_HEADER.exists(), reason="wasi-libc headers (Debian wasi-libc) not installed"
)
def test_constants_agree_with_wasi_libc_header() -> None:
    header = WASI_HEADER.read_text()
    defines = {
        name: int(value)
        for name, value in re.findall(
            r"#define __WASI_([A-Z0-9_]+) \(\(?(?:UINT\d+_C\(|__wasi_\w+_t\)\(1 << )(\d+)\)", header
        )
    }
    groups: list[tuple[str, type[Any]]] = [
        ("ERRNO_", Errno),
        ("CLOCKID_", ClockId),
        ("FILETYPE_", FileType),
        ("EVENTTYPE_", EventType),
        ("RIGHTS_", Rights),
        ("FDFLAGS_", FdFlags),
        ("WHENCE_", abi.Whence),
    ]
    for prefix, enum_type in groups:
        from_header = {
            name[len(prefix) :]: value for name, value in defines.items() if name.startswith(prefix)
        }
        assert from_header, prefix
        if enum_type in (Rights, FdFlags):  # flags: the header gives bit numbers
            from_header = {name: 1 << bit for name, bit in from_header.items()}
        ours = {member.name.replace("TOO_BIG", "2BIG"): int(member) for member in enum_type}
        assert ours == from_header, prefix


def test_wasi_imports_neither_pydantic_nor_the_frame_protocol() -> None:
    code = (
        "import sys, guestproc.wasi; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'protocol', 'msgpack')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    assert completed.stdout.strip() == "[]"


def test_every_preview1_function_is_provided_with_its_signature() -> None:
    harness = Harness()
    assert len(SIGNATURES) == 46
    assert set(harness.functions) == {(MODULE_NAME, name) for name in SIGNATURES}
    for (_, name), function in harness.functions.items():
        assert isinstance(function, Function)
        assert function.type == SIGNATURES[name]
        assert function.name == f"{MODULE_NAME}.{name}"
    assert harness.wasi.imports() is not harness.wasi.imports()  # callers may extend their copy


def _wasmtime_valtype(valtype: wasmtime.ValType) -> ValType:
    return {"i32": ValType.I32, "i64": ValType.I64}[str(valtype)]


def test_signatures_are_what_clang_imports() -> None:
    """``all_imports.wasm`` imports every function wasi-libc declares; read their types."""
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(DATA / "all_imports.wasm"))
    imported = {}
    for item in module.imports:
        assert item.module == MODULE_NAME and item.name is not None
        func_type = item.type
        assert isinstance(func_type, wasmtime.FuncType)
        imported[item.name] = (
            tuple(_wasmtime_valtype(p) for p in func_type.params),
            tuple(_wasmtime_valtype(r) for r in func_type.results),
        )
    assert len(imported) == 45  # all of preview1 except proc_raise, which wasi-libc dropped
    for name, (params, results) in imported.items():
        assert (SIGNATURES[name].params, SIGNATURES[name].results) == (params, results), name
    assert set(SIGNATURES) - set(imported) == {"proc_raise"}
    assert SIGNATURES["proc_raise"].params == (ValType.I32,)  # witx: (param $sig $signal)
    assert SIGNATURES["proc_raise"].results == (ValType.I32,)


# ---------------------------------------------------------------------------------------------
# Arguments and environment
# ---------------------------------------------------------------------------------------------


def test_args_sizes_and_strings_byte_for_byte() -> None:
    harness = Harness(args=[b"prog", b"", b"two words", "ü".encode()])
    assert harness.call("args_sizes_get", 0x10, 0x14) == SUCCESS
    assert harness.get(0x10, 8) == u32(4) + u32(5 + 1 + 10 + 3)
    assert harness.call("args_get", 0x100, 0x200) == SUCCESS
    assert harness.get(0x100, 16) == u32(0x200) + u32(0x205) + u32(0x206) + u32(0x210)
    assert harness.get(0x200, 19) == b"prog\0\0two words\0\xc3\xbc\0"
    assert harness.untouched(0x110, 0x200) and harness.untouched(0x213, 0x300)
    assert harness.untouched(0xFC, 0x100)


def test_environ_sizes_and_strings_byte_for_byte() -> None:
    harness = Harness(env=[b"A=1", b"EMPTY=", b"K=v=w"])
    assert harness.call("environ_sizes_get", 0x20, 0x24) == SUCCESS
    assert harness.get(0x20, 8) == u32(3) + u32(4 + 7 + 6)
    assert harness.call("environ_get", 0x400, 0x500) == SUCCESS
    assert harness.get(0x400, 12) == u32(0x500) + u32(0x504) + u32(0x50B)
    assert harness.get(0x500, 17) == b"A=1\0EMPTY=\0K=v=w\0"
    assert harness.untouched(0x40C, 0x500) and harness.untouched(0x511, 0x600)


def test_empty_args_and_environ() -> None:
    harness = Harness(args=[], env=[])
    assert harness.call("args_sizes_get", 0, 4) == SUCCESS
    assert harness.get(0, 8) == u32(0) + u32(0)
    assert harness.call("environ_get", 0x100, 0x200) == SUCCESS
    assert harness.untouched(0x100, 0x300)


def test_args_and_environ_out_of_bounds_give_efault_and_write_nothing() -> None:
    harness = Harness(args=[b"prog", b"x"], env=[b"A=1"])
    assert harness.call("args_sizes_get", PAGE - 3, 0) == FAULT
    assert harness.call("args_sizes_get", 0, 0xFFFFFFFF) == FAULT
    assert harness.call("args_get", PAGE - 4, 0x100) == FAULT  # needs 8 bytes of pointers
    assert harness.call("args_get", 0x100, PAGE - 6) == FAULT  # needs 7 bytes of strings
    assert harness.call("environ_sizes_get", 0xFFFFFFFC, 0) == FAULT
    assert harness.call("environ_get", 0x100, PAGE - 3) == FAULT
    assert harness.untouched(0, PAGE)
    assert harness.call("args_get", PAGE - 8, PAGE - 16) == SUCCESS  # exactly at the end fits


@pytest.mark.parametrize(
    ("args", "env", "error", "message"),
    [
        ([b"a\0b"], [], ValueError, r"args\[0\] contains a NUL"),
        ([b"ok"], [b"A=1", b"NOEQUALS"], ValueError, r"env\[1\] must have the form KEY=VALUE"),
        ([b"ok"], [b"A=\0"], ValueError, r"env\[0\] contains a NUL"),
        (["text"], [], TypeError, r"args\[0\] must be bytes, not str"),
    ],
)
def test_bad_args_or_env_are_refused_by_name(
    args: list[Any], env: list[Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        WasiEnvironment(args, env, write_console=lambda s, d: None, read_stdin=lambda n: b"")


# ---------------------------------------------------------------------------------------------
# fd_write and fd_read
# ---------------------------------------------------------------------------------------------


def test_fd_write_gathers_iovecs_into_one_console_write() -> None:
    harness = Harness()
    harness.put(0x100, b"hello, ")
    harness.put(0x180, b"world\n")
    iovs = harness.iovecs(0x40, (0x100, 7), (0x300, 0), (0x180, 6))
    assert harness.call("fd_write", 1, iovs, 3, 0x60) == SUCCESS
    assert harness.console == [(1, b"hello, world\n")]
    assert harness.get(0x60, 4) == u32(13)
    assert harness.untouched(0x64, 0x68)
    assert harness.call("fd_write", 2, iovs, 1, 0x60) == SUCCESS
    assert harness.console[-1] == (2, b"hello, ")
    assert type(harness.console[-1][0]) is int and type(harness.console[-1][1]) is bytes


def test_fd_write_with_nothing_to_write_does_not_call_the_console() -> None:
    harness = Harness()
    assert harness.call("fd_write", 1, 0x40, 0, 0x60) == SUCCESS
    assert harness.call("fd_write", 1, harness.iovecs(0x40, (0x100, 0)), 1, 0x64) == SUCCESS
    assert harness.get(0x60, 8) == u32(0) + u32(0)
    assert harness.console == []


@pytest.mark.parametrize(
    ("iovecs", "nwritten_ptr"),
    [
        ([(0x100, 4), (PAGE - 2, 3)], 0x60),  # second buffer runs past the end
        ([(0xFFFFFFFF, 1)], 0x60),
        ([(0x100, 4)], PAGE - 3),  # no room for the result
    ],
)
def test_fd_write_out_of_bounds_gives_efault_and_writes_nothing(
    iovecs: list[tuple[int, int]], nwritten_ptr: int
) -> None:
    harness = Harness()
    iovs = harness.iovecs(0x40, *iovecs)
    assert harness.call("fd_write", 1, iovs, len(iovecs), nwritten_ptr) == FAULT
    assert harness.console == []
    assert harness.untouched(0x60, 0x64)


def test_fd_write_iovec_array_out_of_bounds_gives_efault() -> None:
    harness = Harness()
    assert harness.call("fd_write", 1, PAGE - 8, 2, 0x60) == FAULT
    assert harness.call("fd_write", 1, 0, 0xFFFFFFFF, 0x60) == FAULT
    assert harness.console == []


def test_fd_write_to_descriptors_that_cannot_write() -> None:
    harness = Harness()
    iovs = harness.iovecs(0x40, (0x100, 4))
    assert harness.call("fd_write", 0, iovs, 1, 0x60) == BADF
    assert harness.call("fd_write", 3, iovs, 1, 0x60) == BADF
    assert harness.call("fd_write", 0xFFFFFFFF, iovs, 1, 0x60) == BADF
    assert harness.console == []


def test_fd_write_caps_one_call_and_reports_a_short_write() -> None:
    harness = Harness()
    assert harness.memory.grow(3) == 1  # 256 KiB of memory, written 5 times over
    iovs = harness.iovecs(0x40, *[(0, 4 * PAGE)] * 5)
    assert harness.call("fd_write", 1, iovs, 5, 0x80) == SUCCESS
    assert len(harness.console) == 1
    assert len(harness.console[0][1]) == MAX_IO_BYTES
    assert harness.get(0x80, 4) == u32(MAX_IO_BYTES)


def test_fd_read_scatters_a_short_read_across_iovecs() -> None:
    harness = Harness(stdin=[b"abcdefg", b"tail"])
    iovs = harness.iovecs(0x40, (0x100, 4), (0x200, 0), (0x180, 10))
    assert harness.call("fd_read", 0, iovs, 3, 0x60) == SUCCESS
    assert harness.stdin_requests == [14]  # one request for the whole iovec capacity
    assert harness.get(0x60, 4) == u32(7)
    assert harness.get(0x100, 4) == b"abcd"
    assert harness.get(0x180, 3) == b"efg"
    assert harness.untouched(0x104, 0x180) and harness.untouched(0x183, 0x300)


def test_fd_read_end_of_input_is_zero_and_sticks() -> None:
    harness = Harness(stdin=[b"xy"])
    iovs = harness.iovecs(0x40, (0x100, 8))
    assert harness.call("fd_read", 0, iovs, 1, 0x60) == SUCCESS
    assert harness.get(0x60, 4) == u32(2)
    assert harness.call("fd_read", 0, iovs, 1, 0x60) == SUCCESS
    assert harness.get(0x60, 4) == u32(0)
    assert harness.call("fd_read", 0, iovs, 1, 0x60) == SUCCESS
    assert harness.get(0x60, 4) == u32(0)
    assert harness.stdin_requests == [8, 8]  # not asked again after end of input


def test_fd_read_of_nothing_does_not_ask_for_input() -> None:
    harness = Harness(stdin=[b"data"])
    assert harness.call("fd_read", 0, harness.iovecs(0x40, (0x100, 0)), 1, 0x60) == SUCCESS
    assert harness.get(0x60, 4) == u32(0)
    assert harness.stdin_requests == []


def test_fd_read_asks_for_at_most_the_cap() -> None:
    harness = Harness(stdin=[b"z"])
    assert harness.memory.grow(3) == 1
    iovs = harness.iovecs(0x40, *[(0, 4 * PAGE)] * 5)
    assert harness.call("fd_read", 0, iovs, 5, 0x80) == SUCCESS
    assert harness.stdin_requests == [MAX_IO_BYTES]


def test_fd_read_checks_every_address_before_consuming_input() -> None:
    harness = Harness(stdin=[b"precious"])
    iovs = harness.iovecs(0x40, (0x100, 4), (PAGE - 1, 2))
    assert harness.call("fd_read", 0, iovs, 2, 0x60) == FAULT
    assert harness.call("fd_read", 0, harness.iovecs(0x40, (0x100, 4)), 1, PAGE) == FAULT
    assert harness.stdin_requests == []
    assert harness.call("fd_read", 1, iovs, 1, 0x60) == BADF
    assert harness.call("fd_read", 9, iovs, 1, 0x60) == BADF


def test_fd_read_refuses_a_bridge_that_returns_too_much() -> None:
    wasi = WasiEnvironment(
        [], [], write_console=lambda s, d: None, read_stdin=lambda n: b"x" * (n + 1)
    )
    memory = Memory(MemoryType(Limits(1)))
    wasi.bind(memory)
    memory.write(0, abi.CIOVEC.pack(0x100, 4))
    with pytest.raises(ValueError, match=r"read_stdin\(4\) returned 5 bytes"):
        wasi.fd_read(0, 0, 1, 0x60)


def test_exceptions_from_the_console_propagate_unchanged() -> None:
    class OutputQuota(Exception):
        pass

    def refuse(stream: int, data: bytes) -> None:
        raise OutputQuota(stream)

    wasi = WasiEnvironment([], [], write_console=refuse, read_stdin=lambda n: b"")
    memory = Memory(MemoryType(Limits(1)))
    wasi.bind(memory)
    memory.write(0, abi.CIOVEC.pack(0x100, 4))
    with pytest.raises(OutputQuota):
        invoke(wasi.imports()[(MODULE_NAME, "fd_write")], [2, 0, 1, 0x60])


# ---------------------------------------------------------------------------------------------
# Descriptor bookkeeping
# ---------------------------------------------------------------------------------------------

STDIN_RIGHTS = (
    Rights.FD_READ | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_FILESTAT_GET | Rights.POLL_FD_READWRITE
)
OUTPUT_RIGHTS = (
    Rights.FD_WRITE | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_FILESTAT_GET | Rights.POLL_FD_READWRITE
)


@pytest.mark.parametrize(
    ("fd", "rights"), [(0, STDIN_RIGHTS), (1, OUTPUT_RIGHTS), (2, OUTPUT_RIGHTS)]
)
def test_fdstat_of_the_console_is_a_character_device_byte_for_byte(fd: int, rights: int) -> None:
    harness = Harness()
    assert harness.call("fd_fdstat_get", fd, 0x100) == SUCCESS
    expected = (
        bytes([FileType.CHARACTER_DEVICE, 0])
        + struct.pack("<H", 0)
        + bytes(4)
        + u64(rights)
        + u64(0)
    )
    assert harness.get(0x100, 24) == expected
    assert harness.untouched(0x118, 0x120)


def test_console_looks_like_a_tty_to_wasi_libc() -> None:
    """wasi-libc's isatty: a character device without FD_SEEK or FD_TELL (line-buffered stdout)."""
    harness = Harness()
    for fd in (0, 1, 2):
        harness.call("fd_fdstat_get", fd, 0x100)
        filetype, _flags, rights_base, _inheriting = abi.FDSTAT.unpack(harness.get(0x100, 24))
        assert filetype == FileType.CHARACTER_DEVICE
        assert rights_base & (Rights.FD_SEEK | Rights.FD_TELL) == 0


def test_fdstat_errors() -> None:
    harness = Harness()
    assert harness.call("fd_fdstat_get", 3, 0x100) == BADF
    assert harness.call("fd_fdstat_get", 1, PAGE - 23) == FAULT
    assert harness.untouched(0, PAGE)


def test_filestat_of_the_console_byte_for_byte() -> None:
    harness = Harness()
    assert harness.call("fd_filestat_get", 1, 0x200) == SUCCESS
    expected = u64(0) + u64(0) + bytes([FileType.CHARACTER_DEVICE]) + bytes(7) + u64(1) + u64(0) * 4
    assert harness.get(0x200, 64) == expected
    assert harness.untouched(0x240, 0x260)
    assert harness.call("fd_filestat_get", 7, 0x200) == BADF
    assert harness.call("fd_filestat_get", 0, PAGE - 63) == FAULT


def test_fdstat_set_flags() -> None:
    harness = Harness()
    assert harness.call("fd_fdstat_set_flags", 1, FdFlags.APPEND | FdFlags.SYNC) == SUCCESS
    harness.call("fd_fdstat_get", 1, 0x100)
    assert harness.get(0x102, 2) == struct.pack("<H", FdFlags.APPEND | FdFlags.SYNC)
    assert harness.call("fd_fdstat_set_flags", 0, FdFlags.NONBLOCK) == NOTSUP
    assert harness.call("fd_fdstat_set_flags", 1, 1 << 5) == INVAL
    assert harness.call("fd_fdstat_set_flags", 5, 0) == BADF
    assert harness.call("fd_fdstat_set_flags", 1, 0) == SUCCESS
    harness.call("fd_fdstat_get", 1, 0x100)
    assert harness.get(0x102, 2) == b"\0\0"


def test_fdstat_set_rights_only_drops_rights_and_they_are_enforced() -> None:
    harness = Harness()
    remaining = OUTPUT_RIGHTS & ~Rights.FD_WRITE & ~Rights.FD_FILESTAT_GET
    assert harness.call("fd_fdstat_set_rights", 1, remaining, 0) == SUCCESS
    harness.call("fd_fdstat_get", 1, 0x100)
    assert harness.get(0x108, 16) == u64(remaining) + u64(0)
    iovs = harness.iovecs(0x40, (0x80, 1))
    assert harness.call("fd_write", 1, iovs, 1, 0x60) == NOTCAPABLE
    assert harness.call("fd_filestat_get", 1, 0x200) == NOTCAPABLE
    assert harness.call("fd_fdstat_set_rights", 1, OUTPUT_RIGHTS, 0) == NOTCAPABLE  # no re-adding
    assert harness.call("fd_fdstat_set_rights", 1, remaining, Rights.FD_READ) == NOTCAPABLE
    assert harness.call("fd_fdstat_set_rights", 0, 0, 0) == SUCCESS
    assert harness.call("fd_read", 0, iovs, 1, 0x60) == NOTCAPABLE
    assert harness.call("fd_fdstat_set_flags", 0, 0) == NOTCAPABLE
    assert harness.call("fd_fdstat_set_rights", 4, 0, 0) == BADF
    assert harness.console == []


def test_seek_and_tell_on_the_console_give_espipe() -> None:
    harness = Harness()
    for fd in (0, 1, 2):
        assert harness.call("fd_seek", fd, 0, 1, 0x100) == SPIPE
        assert harness.call("fd_seek", fd, (-5) & (2**64 - 1), 0, 0x100) == SPIPE
        assert harness.call("fd_tell", fd, 0x100) == SPIPE
    assert harness.call("fd_seek", 1, 0, 3, 0x100) == INVAL
    assert harness.call("fd_seek", 3, 0, 0, 0x100) == BADF
    assert harness.call("fd_tell", 3, 0x100) == BADF
    assert harness.untouched(0, PAGE)


def test_close_then_use() -> None:
    harness = Harness()
    assert harness.call("fd_close", 1) == SUCCESS
    iovs = harness.iovecs(0x40, (0x80, 1))
    assert harness.call("fd_write", 1, iovs, 1, 0x60) == BADF
    assert harness.call("fd_fdstat_get", 1, 0x100) == BADF
    assert harness.call("fd_close", 1) == BADF
    assert harness.call("fd_close", 3) == BADF
    assert harness.call("fd_write", 2, iovs, 1, 0x60) == SUCCESS
    assert harness.console == [(2, bytes([SENTINEL]))]


def test_renumber_moves_a_stream_to_another_fd() -> None:
    harness = Harness()
    harness.put(0x80, b"E")
    iovs = harness.iovecs(0x40, (0x80, 1))
    assert harness.call("fd_renumber", 2, 1) == SUCCESS  # like dup2(2, 1) then close(2)
    assert harness.call("fd_write", 1, iovs, 1, 0x60) == SUCCESS
    assert harness.console == [(2, b"E")]
    assert harness.call("fd_write", 2, iovs, 1, 0x60) == BADF
    assert harness.call("fd_renumber", 1, 1) == SUCCESS
    assert harness.call("fd_renumber", 1, 5) == BADF  # the target must be open
    assert harness.call("fd_renumber", 5, 1) == BADF


def test_no_preopened_directories() -> None:
    harness = Harness()
    for fd in (0, 1, 2, 3, 4, 0xFFFFFFFF):
        assert harness.call("fd_prestat_get", fd, 0x100) == BADF
        assert harness.call("fd_prestat_dir_name", fd, 0x100, 16) == BADF
    assert harness.untouched(0, PAGE)


# ---------------------------------------------------------------------------------------------
# Clocks, randomness, scheduling, exit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        (ClockId.REALTIME, 1_700_000_000_123_456_789),
        (ClockId.MONOTONIC, 5_000_000_000),
        (ClockId.PROCESS_CPUTIME_ID, 0x0102030405060708),
        (ClockId.THREAD_CPUTIME_ID, 42),
    ],
)
def test_clock_time_get_byte_for_byte(clock: int, expected: int) -> None:
    harness = Harness()
    assert harness.call("clock_time_get", clock, 1000, 0x100) == SUCCESS
    assert harness.get(0x100, 8) == u64(expected)
    assert harness.untouched(0xF8, 0x100) and harness.untouched(0x108, 0x110)


def test_clock_errors() -> None:
    harness = Harness()
    assert harness.call("clock_time_get", 4, 0, 0x100) == INVAL
    assert harness.call("clock_res_get", 4, 0x100) == INVAL
    assert harness.call("clock_time_get", 0, 0, PAGE - 7) == FAULT
    assert harness.call("clock_res_get", 1, PAGE - 4) == FAULT
    assert harness.untouched(0, PAGE)


def test_clock_res_get_is_positive_for_every_clock() -> None:
    harness = Harness()
    for clock in ClockId:
        assert harness.call("clock_res_get", clock, 0x100) == SUCCESS
        assert 0 < struct.unpack("<Q", harness.get(0x100, 8))[0] <= 1_000_000_000


def test_real_clocks_by_default() -> None:
    wasi = WasiEnvironment([], [], write_console=lambda s, d: None, read_stdin=lambda n: b"")
    memory = Memory(MemoryType(Limits(1)))
    wasi.bind(memory)
    assert wasi.clock_time_get(ClockId.MONOTONIC, 0, 0) == SUCCESS
    assert wasi.clock_time_get(ClockId.MONOTONIC, 0, 8) == SUCCESS
    assert memory.read_u64(8) >= memory.read_u64(0) > 0
    assert wasi.clock_time_get(ClockId.REALTIME, 0, 16) == SUCCESS
    assert memory.read_u64(16) > 1_577_836_800 * 10**9  # after 2020
    assert wasi.random_get(0x100, 32) == SUCCESS
    assert wasi.random_get(0x200, 32) == SUCCESS
    assert memory.read(0x100, 32) != memory.read(0x200, 32)


def test_random_get_byte_for_byte() -> None:
    harness = Harness()
    assert harness.call("random_get", 0x100, 5) == SUCCESS
    assert harness.get(0x100, 5) == bytes([3, 10, 17, 24, 31])
    assert harness.untouched(0x105, 0x110)
    assert harness.call("random_get", 0x100, 0) == SUCCESS
    assert harness.call("random_get", PAGE - 4, 5) == FAULT
    assert harness.untouched(PAGE - 4, PAGE)


def test_sched_yield_and_proc_raise() -> None:
    harness = Harness()
    assert harness.call("sched_yield") == SUCCESS
    assert harness.call("proc_raise", 6) == NOTSUP


@pytest.mark.parametrize("code", [0, 7, 255, 0xFFFFFFFF])
def test_proc_exit_raises_wasi_exit_through_invoke(code: int) -> None:
    harness = Harness()
    with pytest.raises(WasiExit) as caught:
        harness.call("proc_exit", code)
    assert caught.value.code == code
    assert str(code) in str(caught.value)


# ---------------------------------------------------------------------------------------------
# poll_oneoff
# ---------------------------------------------------------------------------------------------


def poll(harness: Harness, *subscriptions: bytes) -> tuple[int, list[tuple[int, ...]]]:
    """Run poll_oneoff over ``subscriptions``; return the errno and the decoded events."""
    harness.put(0x1000, b"".join(subscriptions))
    errno = harness.call("poll_oneoff", 0x1000, 0x2000, len(subscriptions), 0x3000)
    assert errno is not None
    if errno != SUCCESS:
        return errno, []
    count = harness.memory.read_u32(0x3000)
    events = [abi.EVENT.unpack(harness.get(0x2000 + 32 * i, 32)) for i in range(count)]
    assert harness.untouched(0x2000 + 32 * count, 0x2000 + 32 * len(subscriptions))
    return errno, events


def test_poll_relative_clock_sleeps_and_reports_byte_for_byte() -> None:
    harness = Harness()
    errno, _ = poll(harness, clock_subscription(0x1122334455667788, ClockId.MONOTONIC, 5_000_000))
    assert errno == SUCCESS
    assert harness.sleeps == [5_000_000]
    assert harness.get(0x3000, 4) == u32(1)
    assert harness.get(0x2000, 32) == u64(0x1122334455667788) + bytes(2) + bytes([0]) + bytes(
        5
    ) + bytes(16)


def test_poll_reports_only_the_earliest_clocks() -> None:
    harness = Harness()
    errno, events = poll(
        harness,
        clock_subscription(1, ClockId.MONOTONIC, 10_000_000),
        clock_subscription(2, ClockId.REALTIME, 3_000_000),
        clock_subscription(3, ClockId.MONOTONIC, 3_000_000),
    )
    assert errno == SUCCESS
    assert harness.sleeps == [3_000_000]
    assert [event[0] for event in events] == [2, 3]


def test_poll_absolute_deadlines() -> None:
    harness = Harness()
    errno, events = poll(
        harness, clock_subscription(9, ClockId.MONOTONIC, harness.monotonic + 4000, 1)
    )
    assert (errno, harness.sleeps, [e[0] for e in events]) == (SUCCESS, [4000], [9])
    harness.sleeps.clear()
    errno, events = poll(harness, clock_subscription(8, ClockId.REALTIME, harness.realtime - 1, 1))
    assert (errno, harness.sleeps, [e[0] for e in events]) == (SUCCESS, [], [8])  # already due


def test_poll_caps_a_long_sleep_and_still_reports_the_clock() -> None:
    harness = Harness(max_sleep_ns=250_000_000)
    errno, events = poll(harness, clock_subscription(4, ClockId.MONOTONIC, 2**64 - 1))
    assert (errno, harness.sleeps, [e[0] for e in events]) == (SUCCESS, [250_000_000], [4])


def test_poll_console_is_ready_at_once() -> None:
    harness = Harness(stdin=[b"x"])
    errno, events = poll(
        harness,
        clock_subscription(1, ClockId.MONOTONIC, 10**9),
        fd_subscription(2, EventType.FD_READ, 0),
        fd_subscription(3, EventType.FD_WRITE, 2),
        clock_subscription(4, ClockId.MONOTONIC, 0),
    )
    assert errno == SUCCESS
    assert harness.sleeps == []
    assert events == [
        (2, 0, EventType.FD_READ, 1, 0),
        (3, 0, EventType.FD_WRITE, 1, 0),
        (4, 0, 0, 0, 0),
    ]


def test_poll_stdin_after_end_of_input_reports_hangup() -> None:
    harness = Harness(stdin=[])
    harness.call("fd_read", 0, harness.iovecs(0x40, (0x100, 4)), 1, 0x60)
    errno, events = poll(harness, fd_subscription(7, EventType.FD_READ, 0))
    assert (errno, events) == (SUCCESS, [(7, 0, EventType.FD_READ, 0, abi.EVENTRWFLAGS_HANGUP)])


@pytest.mark.parametrize(
    ("subscription", "expected"),
    [
        (fd_subscription(1, EventType.FD_READ, 1), BADF),  # stdout cannot be read
        (fd_subscription(1, EventType.FD_WRITE, 0), BADF),
        (fd_subscription(1, EventType.FD_READ, 9), BADF),
        (abi.SUBSCRIPTION.pack(1, 3, 0, 0, 0, 0), INVAL),  # no such event type
        (clock_subscription(1, ClockId.PROCESS_CPUTIME_ID, 5), INVAL),
        (clock_subscription(1, 7, 5), INVAL),
        (clock_subscription(1, ClockId.MONOTONIC, 5, flags=2), INVAL),
    ],
)
def test_poll_bad_subscription_fails_the_call(subscription: bytes, expected: int) -> None:
    harness = Harness()
    errno, _ = poll(harness, clock_subscription(0, ClockId.MONOTONIC, 1000), subscription)
    assert errno == expected
    assert harness.sleeps == []
    assert harness.untouched(0x2000, 0x2040) and harness.untouched(0x3000, 0x3004)


def test_poll_argument_errors() -> None:
    harness = Harness()
    assert harness.call("poll_oneoff", 0x1000, 0x2000, 0, 0x3000) == INVAL
    harness.put(0x1000, clock_subscription(0, ClockId.MONOTONIC, 1000))
    assert harness.call("poll_oneoff", PAGE - 47, 0x2000, 1, 0x3000) == FAULT
    assert harness.call("poll_oneoff", 0x1000, PAGE - 31, 1, 0x3000) == FAULT
    assert harness.call("poll_oneoff", 0x1000, 0x2000, 1, PAGE - 3) == FAULT
    assert harness.call("poll_oneoff", 0x1000, 0x2000, 0xFFFFFFFF, 0x3000) == FAULT
    assert harness.sleeps == []


def test_poll_with_the_real_sleep() -> None:
    wasi = WasiEnvironment([], [], write_console=lambda s, d: None, read_stdin=lambda n: b"")
    memory = Memory(MemoryType(Limits(1)))
    wasi.bind(memory)
    memory.write(0, clock_subscription(5, ClockId.MONOTONIC, 20_000_000))
    before = wasi_clock(wasi, memory)
    assert wasi.poll_oneoff(0, 0x100, 1, 0x200) == SUCCESS
    assert wasi_clock(wasi, memory) - before >= 20_000_000
    assert memory.read_u32(0x200) == 1 and memory.read_u64(0x100) == 5


def wasi_clock(wasi: WasiEnvironment, memory: Memory) -> int:
    assert wasi.clock_time_get(ClockId.MONOTONIC, 0, 0x300) == SUCCESS
    return memory.read_u64(0x300)


# ---------------------------------------------------------------------------------------------
# Everything a sandbox without files or sockets refuses
# ---------------------------------------------------------------------------------------------

IOV, PATH, BUF, OUT = 0x40, 0x80, 0x100, 0x200

REFUSED: list[tuple[str, tuple[int, ...], int]] = [
    ("fd_advise", (1, 0, 10, 0), BADF),
    ("fd_advise", (1, 0, 10, 6), INVAL),  # no such advice
    ("fd_advise", (9, 0, 10, 6), BADF),
    ("fd_allocate", (1, 0, 10), BADF),
    ("fd_datasync", (1,), BADF),
    ("fd_sync", (2,), BADF),
    ("fd_filestat_set_size", (1, 0), BADF),
    ("fd_filestat_set_times", (1, 0, 0, 0), BADF),
    ("fd_filestat_set_times", (1, 0, 0, 3), INVAL),  # atim and atim_now together
    ("fd_filestat_set_times", (1, 0, 0, 16), INVAL),
    ("fd_pread", (0, IOV, 1, 0, OUT), SPIPE),
    ("fd_pread", (1, IOV, 1, 0, OUT), BADF),
    ("fd_pwrite", (1, IOV, 1, 0, OUT), SPIPE),
    ("fd_pwrite", (0, IOV, 1, 0, OUT), BADF),
    ("fd_pwrite", (9, IOV, 1, 0, OUT), BADF),
    ("fd_readdir", (1, BUF, 64, 0, OUT), BADF),
    ("path_create_directory", (3, PATH, 3), BADF),
    ("path_filestat_get", (3, 0, PATH, 3, OUT), BADF),
    ("path_filestat_set_times", (3, 0, PATH, 3, 0, 0, 0), BADF),
    ("path_link", (3, 0, PATH, 3, 3, PATH, 3), BADF),
    ("path_open", (3, 0, PATH, 3, 0, 0, 0, 0, OUT), BADF),
    ("path_open", (1, 0, PATH, 3, 0, 0, 0, 0, OUT), BADF),
    ("path_readlink", (3, PATH, 3, BUF, 64, OUT), BADF),
    ("path_remove_directory", (3, PATH, 3), BADF),
    ("path_rename", (3, PATH, 3, 3, PATH, 3), BADF),
    ("path_symlink", (PATH, 3, 3, PATH, 3), BADF),
    ("path_unlink_file", (3, PATH, 3), BADF),
    ("sock_accept", (1, 0, OUT), NOTSOCK),
    ("sock_accept", (3, 0, OUT), BADF),
    ("sock_recv", (0, IOV, 1, 0, OUT, OUT + 4), NOTSOCK),
    ("sock_send", (1, IOV, 1, 0, OUT), NOTSOCK),
    ("sock_send", (9, IOV, 1, 0, OUT), BADF),
    ("sock_shutdown", (1, 3), NOTSOCK),
    ("sock_shutdown", (1, 4), INVAL),
    ("sock_shutdown", (4, 1), BADF),
]


@pytest.mark.parametrize(("name", "args", "expected"), REFUSED, ids=lambda v: str(v))
def test_refused_operations(name: str, args: tuple[int, ...], expected: int) -> None:
    harness = Harness(stdin=[b"must stay unread"])
    harness.iovecs(IOV, (BUF, 16))
    harness.put(PATH, b"etc")
    before = bytes(harness.memory.data)
    assert harness.call(name, *args) == expected
    assert bytes(harness.memory.data) == before
    assert harness.console == [] and harness.stdin_requests == []


def test_before_bind_every_address_is_out_of_bounds() -> None:
    console: list[tuple[int, bytes]] = []
    wasi = WasiEnvironment(
        [b"p"], [], write_console=lambda s, d: console.append((s, d)), read_stdin=lambda n: b""
    )
    functions = wasi.imports()
    assert invoke(functions[(MODULE_NAME, "fd_write")], [1, 0, 1, 8]) == [FAULT]
    assert invoke(functions[(MODULE_NAME, "args_sizes_get")], [0, 4]) == [FAULT]
    assert invoke(functions[(MODULE_NAME, "fd_write")], [1, 0, 0, 0]) == [FAULT]
    assert invoke(functions[(MODULE_NAME, "sched_yield")], []) == [SUCCESS]
    assert wasi.memory is None and console == []


def test_memory_growth_after_bind_is_visible() -> None:
    harness = Harness()
    assert harness.call("random_get", PAGE + 10, 4) == FAULT
    assert harness.memory.grow(1) == 1
    assert harness.call("random_get", PAGE + 10, 4) == SUCCESS
    assert harness.get(PAGE + 10, 4) == bytes([3, 10, 17, 24])


def test_max_sleep_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_sleep_ns"):
        WasiEnvironment(
            [], [], write_console=lambda s, d: None, read_stdin=lambda n: b"", max_sleep_ns=-1
        )


# ---------------------------------------------------------------------------------------------
# Parity with wasmtime's WASI, call by call
# ---------------------------------------------------------------------------------------------
#
# wasmtime is the reference for a capability-less preview1 host. Where we answer differently on
# purpose, the call is not in these tables:
# - out-of-bounds or misaligned pointers and invalid enum values: wasmtime traps, we answer
#   FAULT / INVAL (tested above);
# - fd_fdstat_get / fd_filestat_get on the console: wasmtime's file-backed stdio is filetype
#   UNKNOWN, ours a character device (so wasi-libc line-buffers stdout as on a terminal);
# - fd_fdstat_set_flags / fd_fdstat_set_rights on the console: wasmtime answers BADF, we
#   implement them; fd_prestat_dir_name on the console: wasmtime ENOTDIR, we BADF as for
#   fd_prestat_get; the CPU-time clocks: wasmtime BADF, we read them.

PARITY_STDIN = b"hello from stdin"


def _forwarding_wat() -> str:
    """A module that re-exports every preview1 import under the same name, plus its memory."""
    lines = ["(module"]
    for name, func_type in SIGNATURES.items():
        params = " ".join(p.text for p in func_type.params)
        results = " ".join(r.text for r in func_type.results)
        lines.append(
            f'(import "{MODULE_NAME}" "{name}" (func ${name} (param {params}) (result {results})))'
        )
    lines.append('(memory (export "memory") 1)')
    for name, func_type in SIGNATURES.items():
        params = " ".join(p.text for p in func_type.params)
        results = " ".join(r.text for r in func_type.results)
        gets = " ".join(f"(local.get {i})" for i in range(len(func_type.params)))
        lines.append(
            f'(func (export "{name}") (param {params}) (result {results}) (call ${name} {gets}))'
        )
    lines.append(")")
    return "\n".join(lines)


@dataclass
class WasmtimeWasi:
    """wasmtime's own WASI behind the forwarding module, on a sentinel-filled memory."""

    store: wasmtime.Store
    exports: Any
    memory: wasmtime.Memory

    def call(self, name: str, *args: int) -> int:
        signed = [
            arg - (1 << 32)
            if p is ValType.I32 and arg >= 1 << 31
            else arg - (1 << 64)
            if arg >= 1 << 63
            else arg
            for arg, p in zip(args, SIGNATURES[name].params, strict=True)
        ]
        result = self.exports[name](self.store, *signed)
        assert isinstance(result, int)
        return result

    def snapshot(self) -> bytes:
        return bytes(self.memory.read(self.store, 0, PAGE))

    def put(self, address: int, payload: bytes) -> None:
        self.memory.write(self.store, payload, address)


@pytest.fixture(scope="module")
def forwarding_module() -> tuple[wasmtime.Engine, wasmtime.Module]:
    engine = wasmtime.Engine()
    return engine, wasmtime.Module(engine, _forwarding_wat())


@pytest.fixture
def reference(
    forwarding_module: tuple[wasmtime.Engine, wasmtime.Module], tmp_path: Path
) -> WasmtimeWasi:
    engine, module = forwarding_module
    (tmp_path / "stdin").write_bytes(PARITY_STDIN)
    config = wasmtime.WasiConfig()
    config.argv = ["prog", "", "two words"]
    config.env = [("A", "1"), ("EMPTY", "")]
    config.stdin_file = str(tmp_path / "stdin")
    config.stdout_file = str(tmp_path / "stdout")
    config.stderr_file = str(tmp_path / "stderr")
    store = wasmtime.Store(engine)
    store.set_wasi(config)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, module)
    exports = instance.exports(store)
    memory = exports["memory"]
    assert isinstance(memory, wasmtime.Memory)
    reference = WasmtimeWasi(store, exports, memory)
    reference.put(0, bytes([SENTINEL]) * PAGE)
    return reference


def _parity_harness() -> Harness:
    return Harness(args=[b"prog", b"", b"two words"], env=[b"A=1", b"EMPTY="], stdin=[PARITY_STDIN])


def _prepare(target: Harness | WasmtimeWasi) -> None:
    target.put(IOV, abi.CIOVEC.pack(BUF, 16))
    target.put(BUF, b"0123456789abcdef")
    target.put(PATH, b"etc")


def _per_fd_calls() -> Iterator[tuple[str, tuple[int, ...]]]:
    for fd in (0, 1, 2, 3, 9):
        yield from [
            ("fd_advise", (fd, 0, 10, 0)),
            ("fd_allocate", (fd, 0, 10)),
            ("fd_close", (fd,)),
            ("fd_datasync", (fd,)),
            ("fd_filestat_set_size", (fd, 0)),
            ("fd_filestat_set_times", (fd, 0, 0, 0)),
            ("fd_pread", (fd, IOV, 1, 0, OUT)),
            ("fd_prestat_get", (fd, OUT)),
            ("fd_pwrite", (fd, IOV, 1, 0, OUT)),
            ("fd_read", (fd, IOV, 1, OUT)),
            ("fd_readdir", (fd, BUF, 64, 0, OUT)),
            ("fd_renumber", (fd, fd)),
            ("fd_renumber", (fd, 1)),
            ("fd_seek", (fd, 0, 1, OUT)),
            ("fd_sync", (fd,)),
            ("fd_tell", (fd, OUT)),
            ("fd_write", (fd, IOV, 1, OUT)),
            ("path_create_directory", (fd, PATH, 3)),
            ("path_filestat_get", (fd, 0, PATH, 3, OUT)),
            ("path_filestat_set_times", (fd, 0, PATH, 3, 0, 0, 0)),
            ("path_link", (fd, 0, PATH, 3, fd, PATH, 3)),
            ("path_open", (fd, 0, PATH, 3, 0, 0, 0, 0, OUT)),
            ("path_readlink", (fd, PATH, 3, BUF, 64, OUT)),
            ("path_remove_directory", (fd, PATH, 3)),
            ("path_rename", (fd, PATH, 3, fd, PATH, 3)),
            ("path_symlink", (PATH, 3, fd, PATH, 3)),
            ("path_unlink_file", (fd, PATH, 3)),
            ("sock_accept", (fd, 0, OUT)),
            ("sock_recv", (fd, IOV, 1, 0, OUT, OUT + 8)),
            ("sock_send", (fd, IOV, 1, 0, OUT)),
            ("sock_shutdown", (fd, 1)),
        ]
    for fd in (3, 9):
        yield from [
            ("fd_fdstat_get", (fd, OUT)),
            ("fd_filestat_get", (fd, OUT)),
            ("fd_fdstat_set_flags", (fd, 0)),
            ("fd_fdstat_set_rights", (fd, 0, 0)),
            ("fd_prestat_dir_name", (fd, BUF, 16)),
        ]


PARITY_CALLS: list[tuple[str, tuple[int, ...]]] = [
    *_per_fd_calls(),
    ("args_sizes_get", (OUT, OUT + 4)),
    ("args_get", (OUT, 0x300)),
    ("environ_sizes_get", (OUT, OUT + 4)),
    ("environ_get", (OUT, 0x300)),
    ("clock_res_get", (ClockId.REALTIME, OUT)),
    ("clock_res_get", (ClockId.MONOTONIC, OUT)),
    ("sched_yield", ()),
    ("proc_raise", (6,)),
    ("poll_oneoff", (0x1000, 0x2000, 0, OUT)),
]


@pytest.mark.parametrize(("name", "args"), PARITY_CALLS, ids=lambda v: str(v))
def test_same_errno_and_memory_as_wasmtime(
    reference: WasmtimeWasi, name: str, args: tuple[int, ...]
) -> None:
    ours = _parity_harness()
    _prepare(ours)
    _prepare(reference)
    assert ours.call(name, *args) == reference.call(name, *args)
    assert bytes(ours.memory.data) == reference.snapshot()


def test_same_poll_events_as_wasmtime(reference: WasmtimeWasi) -> None:
    ours = _parity_harness()
    subscriptions = b"".join(
        [
            fd_subscription(0x51, EventType.FD_READ, 0),
            clock_subscription(0x52, ClockId.MONOTONIC, 10**9),
            fd_subscription(0x53, EventType.FD_WRITE, 1),
        ]
    )

    def poll(target: Harness | WasmtimeWasi) -> tuple[int | None, list[tuple[int, ...]]]:
        target.put(0x1000, subscriptions)
        errno = target.call("poll_oneoff", 0x1000, 0x2000, 3, OUT)
        memory = bytes(target.memory.data) if isinstance(target, Harness) else target.snapshot()
        count = struct.unpack_from("<I", memory, OUT)[0]
        return errno, [abi.EVENT.unpack_from(memory, 0x2000 + 32 * i) for i in range(count)]

    ours_polled = poll(ours)
    assert ours_polled[0] == SUCCESS and len(ours_polled[1]) == 2
    # wasmtime checks its stdin file's readiness on a worker thread: on a busy machine a poll
    # may return with the write event alone, which the spec allows (any ready subset). Every
    # answer must be a subset of ours, and one of a few must be all of it.
    answers = [poll(reference) for _ in range(20)]
    for errno, events in answers:
        assert errno == SUCCESS and events and set(events) <= set(ours_polled[1])
    assert ours_polled in answers


# ---------------------------------------------------------------------------------------------
# C programs: wasmtime's WASI, our WASI on wasmtime, our WASI on our engine
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Program:
    name: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    stdin: bytes = b""
    # What the program must print; checked against wasmtime too, so a wrong expectation fails.
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0

    def __str__(self) -> str:
        return self.name


@dataclass
class Outcome:
    stdout: bytes
    stderr: bytes
    exit_code: int


ECHO_INPUT = b"".join(b"line %d: the quick brown fox\n" % i for i in range(40)) + b"no newline"

PROGRAMS = [
    Program(
        "hello",
        ("hello",),
        stdout=b"hello, stdout\n42 kindling 2.500 x\nno newline at the end",
        stderr="hello, stderr\ncafé ☕\n".encode(),
    ),
    Program(
        "args_env",
        ("args_env", "one", "two words", "ünï", ""),
        env=(("KINDLING_GREETING", "hi there"), ("EMPTY", ""), ("EQ", "a=b")),
        stdout=(
            "argc=5\nargv[0]=[args_env]\nargv[1]=[one]\nargv[2]=[two words]\nargv[3]=[ünï]\n"
            "argv[4]=[]\nenv[0]=[KINDLING_GREETING=hi there]\nenv[1]=[EMPTY=]\nenv[2]=[EQ=a=b]\n"
            "getenv=[hi there]\n"
        ).encode(),
    ),
    Program(
        "echo_stdin",
        ("echo_stdin",),
        stdin=ECHO_INPUT,
        stdout=ECHO_INPUT,
        stderr=b"read %d bytes, eof=1\n" % len(ECHO_INPUT),
    ),
    Program("echo_stdin_empty", ("echo_stdin",), stderr=b"read 0 bytes, eof=1\n"),
    Program(
        "exit_code",
        ("exit_code",),
        stdout=b"about to exit",
        stderr=b"exiting with 7\n",
        exit_code=7,
    ),
    Program(
        "libc_probe",
        ("libc_probe",),
        stdout=(
            b"realtime after 2020: ok\nnanosleep 2ms: ok\nmonotonic advanced by the sleep: ok\n"
            b"getentropy: ok\nrandom bytes differ: ok\npoll stdout writable: ok\n"
            b"lseek(stdout): -1 Invalid seek\n"
            b"open(/etc/passwd): -1 Capabilities insufficient\n"
            b"close(7): -1 Bad file descriptor\n"
            b"write(stdin): -1 Bad file descriptor\n"
            b"write(closed stderr): -1 Bad file descriptor\n"
        ),
    ),
]


def _wasm_path(program: Program) -> Path:
    return DATA / f"{program.name.removesuffix('_empty')}.wasm"


def run_with_wasmtime_wasi(program: Program, scratch: Path) -> Outcome:
    """The reference: wasmtime runs the code and provides WASI."""
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "stdin").write_bytes(program.stdin)
    config = wasmtime.WasiConfig()
    config.argv = list(program.args)
    config.env = [list(pair) for pair in program.env]
    config.stdin_file = str(scratch / "stdin")
    config.stdout_file = str(scratch / "stdout")
    config.stderr_file = str(scratch / "stderr")
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_wasi(config)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(
        store, wasmtime.Module.from_file(engine, str(_wasm_path(program)))
    )
    start = instance.exports(store)["_start"]
    assert isinstance(start, wasmtime.Func)
    exit_code = 0
    try:
        start(store)
    except wasmtime.ExitTrap as exit_trap:
        exit_code = exit_trap.code
    return Outcome((scratch / "stdout").read_bytes(), (scratch / "stderr").read_bytes(), exit_code)


class ConsoleRecorder:
    """The guest process's side of the contract: collects console writes, feeds stdin in
    small pieces (as frames might arrive), and remembers the order of every write."""

    def __init__(self, stdin: bytes, piece: int = 7) -> None:
        self.writes: list[tuple[int, bytes]] = []
        self._stdin = stdin
        self._piece = piece

    def write_console(self, stream: int, data: bytes) -> None:
        assert stream in (1, 2)
        self.writes.append((stream, data))

    def read_stdin(self, limit: int) -> bytes:
        assert limit > 0
        piece, self._stdin = (
            self._stdin[: min(limit, self._piece)],
            self._stdin[min(limit, self._piece) :],
        )
        return piece

    def stream(self, number: int) -> bytes:
        return b"".join(data for stream, data in self.writes if stream == number)


def _wasi_for(program: Program, recorder: ConsoleRecorder) -> WasiEnvironment:
    return WasiEnvironment(
        [arg.encode() for arg in program.args],
        [f"{key}={value}".encode() for key, value in program.env],
        write_console=recorder.write_console,
        read_stdin=recorder.read_stdin,
    )


def _wasmtime_bridge(function: Function, memory: Memory) -> Callable[..., Any]:
    """Call one of our host functions from wasmtime: copy linear memory in, call, copy back.

    wasmtime passes i32/i64 as signed ints; our functions take the canonical unsigned form.
    """
    masks = [(1 << 32) - 1 if p is ValType.I32 else (1 << 64) - 1 for p in function.type.params]

    def call(caller: wasmtime.Caller, *args: int) -> Any:
        exported = caller["memory"]
        assert isinstance(exported, wasmtime.Memory)
        memory.data[:] = exported.read(caller, 0, exported.data_len(caller))
        try:
            return function.call(*(arg & mask for arg, mask in zip(args, masks, strict=True)))
        finally:
            exported.write(caller, bytes(memory.data), 0)

    return call


def run_with_our_wasi_on_wasmtime(program: Program, recorder: ConsoleRecorder) -> int:
    """Our WASI, with wasmtime only executing the Wasm code (until our engine can)."""
    wasi = _wasi_for(program, recorder)
    memory = Memory(MemoryType(Limits(0)))  # resized to mirror wasmtime's memory on each call
    wasi.bind(memory)
    ours = wasi.imports()
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module.from_file(engine, str(_wasm_path(program)))
    externs: list[wasmtime.Func] = []
    for item in module.imports:
        assert item.name is not None
        function = ours[(item.module, item.name)]
        func_type = item.type
        assert isinstance(func_type, wasmtime.FuncType)
        externs.append(
            wasmtime.Func(store, func_type, _wasmtime_bridge(function, memory), access_caller=True)
        )
    start = wasmtime.Instance(store, module, externs).exports(store)["_start"]
    assert isinstance(start, wasmtime.Func)
    try:
        start(store)
    except WasiExit as exit:
        return exit.code
    return 0


def _compile_with_our_engine(wasm: bytes) -> CompiledModule:
    module = decode_module(wasm)
    validate_module(module)
    return compile_module(module)


def run_with_our_wasi_on_our_engine(program: Program, recorder: ConsoleRecorder) -> int:
    compiled = _compile_with_our_engine(_wasm_path(program).read_bytes())
    wasi = _wasi_for(program, recorder)
    instance = compiled.instantiate(wasi.imports(), EngineLimits())
    memory = instance.exports["memory"]
    start = instance.exports["_start"]
    assert isinstance(memory, Memory) and isinstance(start, Function)
    wasi.bind(memory)
    try:
        invoke(start, [])
    except WasiExit as exit:
        return exit.code
    return 0


@pytest.fixture(scope="module")
def reference_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    scratch = tmp_path_factory.mktemp("wasmtime")
    return {
        program.name: run_with_wasmtime_wasi(program, scratch / program.name)
        for program in PROGRAMS
    }


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_program_under_wasmtime_wasi_prints_what_we_expect(
    program: Program, reference_outcomes: dict[str, Outcome]
) -> None:
    assert reference_outcomes[program.name] == Outcome(
        program.stdout, program.stderr, program.exit_code
    )


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_program_with_our_wasi_matches_wasmtime(
    program: Program, reference_outcomes: dict[str, Outcome]
) -> None:
    recorder = ConsoleRecorder(program.stdin)
    exit_code = run_with_our_wasi_on_wasmtime(program, recorder)
    assert (
        Outcome(recorder.stream(1), recorder.stream(2), exit_code)
        == reference_outcomes[program.name]
    )


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_program_with_our_wasi_on_our_engine_matches_wasmtime(
    program: Program, reference_outcomes: dict[str, Outcome]
) -> None:
    recorder = ConsoleRecorder(program.stdin)
    exit_code = run_with_our_wasi_on_our_engine(program, recorder)
    assert (
        Outcome(recorder.stream(1), recorder.stream(2), exit_code)
        == reference_outcomes[program.name]
    )


HELLO_WRITE_ORDER = [
    (1, b"hello, stdout\n"),
    (2, b"hello, stderr\n"),
    (1, b"42 kindling 2.500 x\n"),
    (2, "café ☕\n".encode()),
    (1, b"no newline at the end"),
]


@pytest.mark.parametrize(
    "run",
    [run_with_our_wasi_on_wasmtime, run_with_our_wasi_on_our_engine],
    ids=["wasmtime", "our_engine"],
)
def test_stdout_is_line_buffered_like_a_terminal(
    run: Callable[[Program, ConsoleRecorder], int],
) -> None:
    """wasi-libc sees a character device, so each printed line reaches the console in order."""
    recorder = ConsoleRecorder(b"")
    assert run(PROGRAMS[0], recorder) == 0
    assert recorder.writes == HELLO_WRITE_ORDER


def test_stdin_reaches_the_program_in_small_pieces() -> None:
    recorder = ConsoleRecorder(ECHO_INPUT, piece=3)
    program = PROGRAMS[2]
    assert run_with_our_wasi_on_wasmtime(program, recorder) == 0
    assert recorder.stream(1) == ECHO_INPUT


# ---------------------------------------------------------------------------------------------
# The committed binaries are built from the committed sources
# ---------------------------------------------------------------------------------------------

C_SOURCES = sorted(DATA.glob("*.c"))


@pytest.mark.skipif(
    shutil.which("clang") is None, reason="clang (Debian clang, lld, wasi-libc) not installed"
)
@pytest.mark.parametrize("source", C_SOURCES, ids=lambda p: p.name)
def test_committed_wasm_is_built_from_its_source(source: Path, tmp_path: Path) -> None:
    built = tmp_path / source.with_suffix(".wasm").name
    command = ["bash", str(WASI_CC), str(built), str(source), *LDFLAGS]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""  # no warnings
    committed = source.with_suffix(".wasm")
    assert built.read_bytes() == committed.read_bytes(), (
        f"rebuild with: tests/fixtures/wasi-cc {committed} {source} {' '.join(LDFLAGS)}"
    )
