"""The preview1 function set: one ``WasiEnvironment`` per guest instance.

Every function takes and returns canonical values (unsigned ints) and answers with an errno;
none of them lets a Python exception escape for anything the guest can do. The only
exceptions that leave a function are ``WasiExit`` (from ``proc_exit``) and whatever the
injected callables raise (``write_console``, ``read_stdin``, ...), which propagate unchanged
so the guest process can end the guest on its own terms (e.g. an output quota).

Rules that hold for every function:

- A guest address range that is not inside linear memory gives ``FAULT``, checked before
  anything happens (no output is written, no input is consumed). Pointers need no alignment.
- Checks run in this order: the descriptor (``BADF`` if it is not open, or cannot do this at
  all, e.g. reading stdout), its rights (``NOTCAPABLE``), enum and flag arguments (``INVAL``),
  addresses (``FAULT``), then the operation itself (e.g. ``SPIPE`` for seeking a console).
- There are no directories, files or sockets, so ``path_*`` answer ``BADF`` (no descriptor is
  a directory), file-only operations on a console answer ``BADF`` and socket operations on
  a console ``NOTSOCK``, as wasmtime does for its stdio. ``proc_raise`` answers ``NOTSUP``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Sequence
from typing import Literal

from guestproc.engine.runtime import Function, Memory, host_function

from .abi import (
    ADVICE_COUNT,
    ALL_FDFLAGS,
    ALL_FSTFLAGS,
    ALL_SDFLAGS,
    CIOVEC,
    EVENT,
    EVENTRWFLAGS_HANGUP,
    FDSTAT,
    FILESTAT,
    FSTFLAGS_ATIM,
    FSTFLAGS_ATIM_NOW,
    FSTFLAGS_MTIM,
    FSTFLAGS_MTIM_NOW,
    MODULE_NAME,
    SIGNATURES,
    SUBCLOCKFLAGS_ABSTIME,
    SUBSCRIPTION,
    U32,
    U64,
    ClockId,
    Errno,
    EventType,
    FdFlags,
    FileType,
    Rights,
    Whence,
)
from .descriptors import (
    ConsoleDescriptor,
    FileDescriptor,
    standard_descriptors,
    table_from_state,
    table_state,
)
from .files import BrokeredFiles, CallFiles, Descriptor, FileOp, WriteAhead, _no_files, scatter

WriteConsole = Callable[[int, bytes], None]
ReadStdin = Callable[[int], bytes]
ClockNs = Callable[[], int]
RandomBytes = Callable[[int], bytes]
SleepNs = Callable[[int], None]

# Errno values as plain ints: host functions return canonical values, not enum members.
SUCCESS = Errno.SUCCESS.value
BADF = Errno.BADF.value
FAULT = Errno.FAULT.value
INVAL = Errno.INVAL.value
NOTCAPABLE = Errno.NOTCAPABLE.value
NOTSOCK = Errno.NOTSOCK.value
NOTSUP = Errno.NOTSUP.value
NOTDIR = Errno.NOTDIR.value
PIPE = Errno.PIPE.value
SPIPE = Errno.SPIPE.value

MAX_IO_BYTES = 1 << 20
"""The most one ``fd_write`` hands to ``write_console`` (the rest is a short write, which
stdio retries) and the most one ``fd_read`` asks ``read_stdin`` for. Bounds the memory a
guest can make the host allocate with many iovecs that point at the same bytes."""

ENTRY_COST = 1024
"""With fuel: what reading one iovec, poll subscription or argument pointer costs, in bytes
of bulk work. ``kindling bench fuel`` measures an iovec at 150 ns, about what a memory copy
does in 1 KiB, and what eight units of ordinary instructions cost."""

RANDOM_BYTE_COST = 16
"""With fuel: one byte from ``random_get`` costs as much as this many bytes of bulk work
(``os.urandom`` makes about 0.3 bytes a nanosecond: 3 ns a byte)."""

DEFAULT_MAX_SLEEP_NS = 60 * 1_000_000_000
"""The longest one ``poll_oneoff`` sleeps; see ``WasiEnvironment``."""

_U64_MASK = (1 << 64) - 1
_CIOVEC_SIZE = CIOVEC.size
_FD_READ_EVENT = EventType.FD_READ.value
_FD_WRITE_EVENT = EventType.FD_WRITE.value
_CLOCK_EVENT = EventType.CLOCK.value
# Rights as plain ints: IntFlag arithmetic is slow, and fd_write is on every printf's path.
_RIGHT_FD_READ = Rights.FD_READ.value
_RIGHT_FD_WRITE = Rights.FD_WRITE.value
_RIGHT_SET_FLAGS = Rights.FD_FDSTAT_SET_FLAGS.value
_RIGHT_FILESTAT_GET = Rights.FD_FILESTAT_GET.value
_RIGHT_POLL = Rights.POLL_FD_READWRITE.value
_SLEEP_CLOCKS = (ClockId.REALTIME.value, ClockId.MONOTONIC.value)
_CLOCK_INFO_NAMES: dict[ClockId, Literal["time", "monotonic", "process_time", "thread_time"]] = {
    ClockId.REALTIME: "time",
    ClockId.MONOTONIC: "monotonic",
    ClockId.PROCESS_CPUTIME_ID: "process_time",
    ClockId.THREAD_CPUTIME_ID: "thread_time",
}


class WasiExit(Exception):
    """The guest called ``proc_exit(code)``: the program is over.

    Raised out of the host function and, through the engine, out of ``invoke`` unchanged.
    ``code`` is the full u32 the guest passed (C's ``exit(7)`` gives 7); mapping codes above
    255 to a process status is the caller's business.
    """

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"the guest called proc_exit({code})")


def _sleep_ns(duration_ns: int) -> None:
    time.sleep(duration_ns / 1e9)


def _pack_strings(kind: str, items: Sequence[bytes], need_equals: bool) -> tuple[bytes, list[int]]:
    """NUL-terminate and concatenate ``items``; return the blob and each item's offset in it."""
    offsets: list[int] = []
    position = 0
    for index, item in enumerate(items):
        if not isinstance(item, bytes | bytearray):
            raise TypeError(f"{kind}[{index}] must be bytes, not {type(item).__name__}")
        if b"\0" in item:
            raise ValueError(f"{kind}[{index}] contains a NUL byte, which C strings cannot hold")
        if need_equals and b"=" not in item:
            raise ValueError(f"{kind}[{index}] must have the form KEY=VALUE, got {bytes(item)!r}")
        offsets.append(position)
        position += len(item) + 1
    blob = b"".join(bytes(item) + b"\0" for item in items)
    if len(blob) > 0xFFFFFFFF or len(items) > 0xFFFFFFFF:
        raise ValueError(f"{kind} are larger than a 32-bit guest can address")
    return blob, offsets


class WasiEnvironment(BrokeredFiles):
    """WASI preview1 for one guest: arguments, environment, console, clocks, randomness.

    ``args`` and ``env`` are byte strings without NUL (``env`` entries ``KEY=VALUE``); a bad
    entry raises ``ValueError``/``TypeError`` naming its index. The callables are the only way
    out:

    - ``write_console(stream, data)``: ``stream`` is 1 (stdout) or 2 (stderr), the stream the
      descriptor was opened on (after ``fd_renumber`` the fd number may differ). Called once
      per ``fd_write`` with non-empty data of at most ``MAX_IO_BYTES``. If it raises
      ``BrokenPipeError`` (nobody reads the stream any more), ``fd_write`` answers ``PIPE``.
    - ``read_stdin(n)``: return up to ``n`` (1..``MAX_IO_BYTES``) bytes, blocking until at
      least one is available; ``b""`` means end of input. After end of input, ``fd_read``
      answers 0 bytes without calling it again. Returning more than ``n`` bytes raises
      ``ValueError`` (a bug in the caller).
    - ``clock_ns``, ``monotonic_ns``, ``process_cputime_ns``, ``thread_cputime_ns``: the four
      preview1 clocks, in nanoseconds.
    - ``random_bytes(n)``: exactly ``n`` random bytes for ``random_get``.
    - ``preopens``: the directories given, ``(name, read_only)`` each, as fds 3, 4, ...;
      ``call_files``: how their file operations reach the host (``files.CallFiles``), and
      ``write_ahead``, if given, how a write to a regular file does without waiting for its
      answer (``files.WriteAhead``).
    - ``terminals``: which of fds 0, 1, 2 reach a terminal (character devices, so that
      wasi-libc's ``isatty`` is true); the others' type is unknown.
    - ``sleep_ns(ns)``: how ``poll_oneoff`` waits for a clock subscription. One call sleeps at
      most ``max_sleep_ns``; when that cap cuts a wait short, the earliest clock subscription
      is still reported as fired (an early wake-up), so the guest continues instead of hanging.
      The host's wall-clock deadline, not this cap, is what bounds a guest's run.

    Exceptions from any callable propagate unchanged through the engine.
    Call ``bind`` with the instance's exported memory before running guest code; until then
    every address is out of bounds (functions that need memory answer ``FAULT``).

    With fuel metering, ``bind`` also takes the instance's ``pay_bytes``, and the functions
    whose work grows with their arguments pay for it as bulk memory instructions do (in bytes
    of such work, see ``ENTRY_COST`` and ``RANDOM_BYTE_COST``), before they do it:
    ``fd_write`` and ``fd_read`` for their iovecs once the array is in bounds, then for the
    bytes (``fd_read``: those that arrived, before they are copied in); ``random_get``,
    ``args_get`` and ``environ_get`` for what they copy; ``poll_oneoff`` for its
    subscriptions. A budget that cannot pay raises the engine's fuel trap, which propagates
    like any exception from a callable.
    """

    def __init__(
        self,
        args: Sequence[bytes],
        env: Sequence[bytes],
        *,
        write_console: WriteConsole,
        read_stdin: ReadStdin,
        clock_ns: ClockNs = time.time_ns,
        monotonic_ns: ClockNs = time.monotonic_ns,
        process_cputime_ns: ClockNs = time.process_time_ns,
        thread_cputime_ns: ClockNs = time.thread_time_ns,
        random_bytes: RandomBytes = os.urandom,
        sleep_ns: SleepNs = _sleep_ns,
        max_sleep_ns: int = DEFAULT_MAX_SLEEP_NS,
        preopens: Sequence[tuple[bytes, bool]] = (),
        call_files: CallFiles = _no_files,
        write_ahead: WriteAhead | None = None,
        terminals: Collection[int] = (0, 1, 2),
    ) -> None:
        if max_sleep_ns < 0:
            raise ValueError(f"max_sleep_ns must not be negative, got {max_sleep_ns}")
        self._args_blob, self._args_offsets = _pack_strings("args", args, need_equals=False)
        self._env_blob, self._env_offsets = _pack_strings("env", env, need_equals=True)
        self._write_console = write_console
        self._read_stdin = read_stdin
        self._clocks: dict[int, ClockNs] = {
            ClockId.REALTIME: clock_ns,
            ClockId.MONOTONIC: monotonic_ns,
            ClockId.PROCESS_CPUTIME_ID: process_cputime_ns,
            ClockId.THREAD_CPUTIME_ID: thread_cputime_ns,
        }
        self._resolutions = {
            int(clock): max(1, round(time.get_clock_info(name).resolution * 1e9))
            for clock, name in _CLOCK_INFO_NAMES.items()
        }
        self._random_bytes = random_bytes
        self._sleep_ns = sleep_ns
        self._max_sleep_ns = max_sleep_ns
        self._terminals = frozenset(terminals)
        self._fds: dict[int, Descriptor] = dict(standard_descriptors())
        self._mark_terminals()
        self._call_files = call_files
        self._write_ahead = write_ahead
        self._install_preopens(preopens)
        self._stdin_at_end = False
        self._memory: Memory | None = None
        self._data = bytearray()  # the guest's linear memory once bound; empty until then
        self._pay: Callable[[int], object] | None = None  # see ``bind``
        self._imports = {
            (MODULE_NAME, name): host_function(
                func_type, getattr(self, name), f"{MODULE_NAME}.{name}"
            )
            for name, func_type in SIGNATURES.items()
        }

    # -- wiring ---------------------------------------------------------------------------

    def imports(self) -> dict[tuple[str, str], Function]:
        """Every preview1 function as a host function, keyed ``("wasi_snapshot_preview1", name)``.

        The same ``Function`` objects on every call; the dict is a fresh copy the caller may
        extend with other imports.
        """
        return dict(self._imports)

    def descriptor_state(self) -> list[list[int]]:
        """The console descriptors as plain data (``descriptors.table_state``), for a
        snapshot. Files a start function left open are not part of it (their host side
        belongs to the throwaway guest that ran it); preopens come from Boot anyway."""
        return table_state(
            {fd: d for fd, d in self._fds.items() if isinstance(d, ConsoleDescriptor)}
        )

    def install_descriptors(self, entries: object) -> None:
        """Take the console descriptors a snapshot describes, keeping the preopens;
        ``ValueError`` if no guest could have made them."""
        console = table_from_state(entries)
        kept = {
            fd: d
            for fd, d in self._fds.items()
            if isinstance(d, FileDescriptor) and d.preopen is not None and fd not in console
        }
        self._fds = {**console, **kept}
        self._mark_terminals()

    def _mark_terminals(self) -> None:
        """A console stream is a character device only when it reaches a terminal (what
        wasi-libc's ``isatty`` asks); otherwise its type is unknown, as wasmtime says."""
        for descriptor in self._fds.values():
            if isinstance(descriptor, ConsoleDescriptor):
                terminal = descriptor.stream.value in self._terminals
                descriptor.filetype = FileType.CHARACTER_DEVICE if terminal else FileType.UNKNOWN

    def set_program(self, args: Sequence[bytes], env: Sequence[bytes]) -> None:
        """Replace the arguments and environment (a request to a forked guest brings its
        own); checked as ``__init__`` checks them."""
        args_packed = _pack_strings("args", args, need_equals=False)
        env_packed = _pack_strings("env", env, need_equals=True)
        self._args_blob, self._args_offsets = args_packed
        self._env_blob, self._env_offsets = env_packed

    def bind(self, memory: Memory, pay_bytes: Callable[[int], object] | None = None) -> None:
        """Give the functions the instance's exported ``memory``; call after instantiation.
        A metered instance's ``pay_bytes`` makes the functions pay for the bytes they move."""
        self._memory = memory
        self._data = memory.data
        self._pay = pay_bytes

    @property
    def memory(self) -> Memory | None:
        return self._memory

    def _fits(self, address: int, size: int) -> bool:
        return address + size <= len(self._data)

    # -- arguments and environment ---------------------------------------------------------

    def args_sizes_get(self, argc_ptr: int, buf_size_ptr: int) -> int:
        return self._sizes_get(self._args_offsets, self._args_blob, argc_ptr, buf_size_ptr)

    def args_get(self, argv_ptr: int, buf_ptr: int) -> int:
        return self._strings_get(self._args_offsets, self._args_blob, argv_ptr, buf_ptr)

    def environ_sizes_get(self, count_ptr: int, buf_size_ptr: int) -> int:
        return self._sizes_get(self._env_offsets, self._env_blob, count_ptr, buf_size_ptr)

    def environ_get(self, environ_ptr: int, buf_ptr: int) -> int:
        return self._strings_get(self._env_offsets, self._env_blob, environ_ptr, buf_ptr)

    def _sizes_get(self, offsets: list[int], blob: bytes, count_ptr: int, size_ptr: int) -> int:
        if not (self._fits(count_ptr, 4) and self._fits(size_ptr, 4)):
            return FAULT
        U32.pack_into(self._data, count_ptr, len(offsets))
        U32.pack_into(self._data, size_ptr, len(blob))
        return SUCCESS

    def _strings_get(self, offsets: list[int], blob: bytes, array_ptr: int, buf_ptr: int) -> int:
        if not (self._fits(array_ptr, 4 * len(offsets)) and self._fits(buf_ptr, len(blob))):
            return FAULT
        if self._pay is not None:
            self._pay(len(blob) + ENTRY_COST * len(offsets))
        data = self._data
        # A pointer that would wrap past 4 GiB cannot be in bounds, so no masking is needed.
        for index, offset in enumerate(offsets):
            U32.pack_into(data, array_ptr + 4 * index, buf_ptr + offset)
        data[buf_ptr : buf_ptr + len(blob)] = blob
        return SUCCESS

    # -- clocks, randomness, scheduling, process ------------------------------------------

    def clock_res_get(self, clock_id: int, result_ptr: int) -> int:
        resolution = self._resolutions.get(clock_id)
        if resolution is None:
            return INVAL
        if not self._fits(result_ptr, 8):
            return FAULT
        U64.pack_into(self._data, result_ptr, resolution)
        return SUCCESS

    def clock_time_get(self, clock_id: int, precision: int, result_ptr: int) -> int:
        clock = self._clocks.get(clock_id)
        if clock is None:
            return INVAL
        if not self._fits(result_ptr, 8):
            return FAULT
        U64.pack_into(self._data, result_ptr, max(0, clock()) & _U64_MASK)
        return SUCCESS

    def random_get(self, buf_ptr: int, buf_len: int) -> int:
        if not self._fits(buf_ptr, buf_len):
            return FAULT
        if self._pay is not None:
            self._pay(buf_len * RANDOM_BYTE_COST)
        payload = self._random_bytes(buf_len)
        if len(payload) != buf_len:
            raise ValueError(f"random_bytes({buf_len}) returned {len(payload)} bytes")
        self._data[buf_ptr : buf_ptr + buf_len] = payload
        return SUCCESS

    def sched_yield(self) -> int:
        return SUCCESS  # one guest per process: there is no one to yield to

    def proc_exit(self, code: int) -> None:
        raise WasiExit(code)

    def proc_raise(self, signal: int) -> int:
        return NOTSUP

    # -- descriptors: the console ---------------------------------------------------------

    def fd_write(self, fd: int, iovs_ptr: int, iovs_len: int, nwritten_ptr: int) -> int:
        return self._write(fd, iovs_ptr, iovs_len, None, nwritten_ptr)

    def _write(
        self, fd: int, iovs_ptr: int, iovs_len: int, offset: int | None, nwritten_ptr: int
    ) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self._file_io(descriptor, True, iovs_ptr, iovs_len, offset, nwritten_ptr)
        if descriptor is None or not descriptor.writable:
            return BADF
        if offset is not None:
            return SPIPE
        if not descriptor.rights_base & _RIGHT_FD_WRITE:
            return NOTCAPABLE
        data = self._data
        iovecs = self._iovecs(iovs_ptr, iovs_len, nwritten_ptr)
        if iovecs is None:
            return FAULT
        chunks = []
        total = 0
        for buf, buf_len in iovecs:
            take = min(buf_len, MAX_IO_BYTES - total)
            if take:
                chunks.append(data[buf : buf + take])
                total += take
        if total:
            if self._pay is not None:
                self._pay(total)
            try:
                self._write_console(descriptor.stream.value, b"".join(chunks))
            except BrokenPipeError:
                return PIPE  # the host saw the reader go
        U32.pack_into(data, nwritten_ptr, total)
        return SUCCESS

    def _iovecs(
        self, iovs_ptr: int, iovs_len: int, result_ptr: int
    ) -> list[tuple[int, int]] | None:
        """The iovec array, every buffer in bounds (paid for with fuel); None: FAULT."""
        data = self._data
        size = len(data)
        if iovs_ptr + _CIOVEC_SIZE * iovs_len > size or result_ptr + 4 > size:
            return None
        if self._pay is not None:
            self._pay(ENTRY_COST * iovs_len)
        iovecs = list(CIOVEC.iter_unpack(data[iovs_ptr : iovs_ptr + _CIOVEC_SIZE * iovs_len]))
        if any(buf + buf_len > size for buf, buf_len in iovecs):
            return None
        return iovecs

    def _file_io(
        self,
        d: FileDescriptor,
        writing: bool,
        iovs_ptr: int,
        iovs_len: int,
        offset: int | None,
        result_ptr: int,
    ) -> int:
        """fd_read/fd_write/fd_pread/fd_pwrite on a file: the bytes moved at ``result_ptr``."""
        iovecs = self._iovecs(iovs_ptr, iovs_len, result_ptr)
        if iovecs is None:
            return FAULT
        if writing:
            chunks = [self._data[buf : buf + length] for buf, length in iovecs if length]
            errno, count = self.file_write(d, chunks, offset)
        else:
            errno, count = self.file_read(d, iovecs, offset)
        if errno == SUCCESS:
            U32.pack_into(self._data, result_ptr, count)
        return errno

    def fd_read(self, fd: int, iovs_ptr: int, iovs_len: int, nread_ptr: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self._file_io(descriptor, False, iovs_ptr, iovs_len, None, nread_ptr)
        if descriptor is None or not descriptor.readable:
            return BADF
        if not descriptor.rights_base & _RIGHT_FD_READ:
            return NOTCAPABLE
        data = self._data
        iovecs = self._iovecs(iovs_ptr, iovs_len, nread_ptr)
        if iovecs is None:
            return FAULT
        wanted = min(sum(buf_len for _, buf_len in iovecs), MAX_IO_BYTES)
        payload = b""
        if wanted and not self._stdin_at_end:
            payload = self._read_stdin(wanted)
            if len(payload) > wanted:
                raise ValueError(f"read_stdin({wanted}) returned {len(payload)} bytes")
            self._stdin_at_end = not payload
            if self._pay is not None:
                self._pay(len(payload))
        scatter(data, iovecs, payload)
        U32.pack_into(data, nread_ptr, len(payload))
        return SUCCESS

    def fd_close(self, fd: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self.file_close(fd, descriptor)
        if self._fds.pop(fd, None) is None:
            return BADF
        return SUCCESS

    def fd_renumber(self, fd: int, to: int) -> int:
        if fd not in self._fds or to not in self._fds:
            return BADF
        if fd != to:
            replaced = self._fds[to]
            if isinstance(replaced, FileDescriptor):
                self.file_close(to, replaced)  # the host lets go of what `to` held
            self._fds[to] = self._fds.pop(fd)
        return SUCCESS

    def fd_fdstat_get(self, fd: int, result_ptr: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self.file_fdstat(descriptor, result_ptr)
        if descriptor is None:
            return BADF
        if not self._fits(result_ptr, FDSTAT.size):
            return FAULT
        FDSTAT.pack_into(
            self._data,
            result_ptr,
            descriptor.filetype,
            descriptor.flags,
            descriptor.rights_base,
            descriptor.rights_inheriting,
        )
        return SUCCESS

    def fd_fdstat_set_flags(self, fd: int, flags: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self.file_set_flags(descriptor, flags)
        if descriptor is None:
            return BADF
        if not descriptor.rights_base & _RIGHT_SET_FLAGS:
            return NOTCAPABLE
        if flags & ~ALL_FDFLAGS:
            return INVAL
        if flags & FdFlags.NONBLOCK:
            # Reading stdin waits for the host, so non-blocking mode cannot be honoured.
            return NOTSUP
        # APPEND and the sync flags already hold: a console only appends, and every write
        # has been handed over by the time fd_write returns.
        descriptor.flags = flags
        return SUCCESS

    def fd_fdstat_set_rights(self, fd: int, rights_base: int, rights_inheriting: int) -> int:
        descriptor = self._fds.get(fd)
        if descriptor is None:
            return BADF
        if (
            rights_base & ~descriptor.rights_base
            or rights_inheriting & ~descriptor.rights_inheriting
        ):
            return NOTCAPABLE  # rights can only be dropped
        descriptor.rights_base = rights_base
        descriptor.rights_inheriting = rights_inheriting
        return SUCCESS

    def fd_filestat_get(self, fd: int, result_ptr: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self.file_filestat(descriptor, result_ptr)
        if descriptor is None:
            return BADF
        if not descriptor.rights_base & _RIGHT_FILESTAT_GET:
            return NOTCAPABLE
        if not self._fits(result_ptr, FILESTAT.size):
            return FAULT
        # dev, ino, filetype, nlink, size, atim, mtim, ctim: a device with no file behind it.
        FILESTAT.pack_into(self._data, result_ptr, 0, 0, descriptor.filetype, 1, 0, 0, 0, 0)
        return SUCCESS

    def fd_seek(self, fd: int, offset: int, whence: int, result_ptr: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self.file_seek(descriptor, offset, whence, result_ptr)
        if descriptor is None:
            return BADF
        if whence > Whence.END:
            return INVAL
        return SPIPE

    def fd_tell(self, fd: int, result_ptr: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self.file_seek(descriptor, 0, Whence.CUR, result_ptr)
        return BADF if descriptor is None else SPIPE

    def fd_pread(self, fd: int, iovs_ptr: int, iovs_len: int, offset: int, result_ptr: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            if not descriptor.rights_base & Rights.FD_SEEK and not descriptor.directory:
                return NOTCAPABLE
            return self._file_io(descriptor, False, iovs_ptr, iovs_len, offset, result_ptr)
        return BADF if descriptor is None or not descriptor.readable else SPIPE

    def fd_pwrite(self, fd: int, iovs_ptr: int, iovs_len: int, offset: int, result_ptr: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            if not descriptor.rights_base & Rights.FD_SEEK and not descriptor.directory:
                return NOTCAPABLE
            return self._file_io(descriptor, True, iovs_ptr, iovs_len, offset, result_ptr)
        return BADF if descriptor is None or not descriptor.writable else SPIPE

    # File operations: a console cannot do them (BADF whether or not the fd is open).
    def fd_advise(self, fd: int, offset: int, length: int, advice: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self.file_advise(descriptor, offset, length, advice)
        if descriptor is not None and advice >= ADVICE_COUNT:
            return INVAL
        return BADF

    def fd_allocate(self, fd: int, offset: int, length: int) -> int:
        return self._file_only(fd, Rights.FD_ALLOCATE, FileOp.ALLOCATE, [offset, length])

    def fd_datasync(self, fd: int) -> int:
        return self._file_only(fd, Rights.FD_DATASYNC, FileOp.DATASYNC)

    def fd_sync(self, fd: int) -> int:
        return self._file_only(fd, Rights.FD_SYNC, FileOp.SYNC)

    def fd_filestat_set_size(self, fd: int, size: int) -> int:
        return self._file_only(fd, Rights.FD_FILESTAT_SET_SIZE, FileOp.SET_SIZE, [size])

    def fd_filestat_set_times(self, fd: int, atim: int, mtim: int, fst_flags: int) -> int:
        if fd in self._fds and _bad_fstflags(fst_flags):
            return INVAL
        numbers = [atim, mtim, fst_flags]
        return self._file_only(fd, Rights.FD_FILESTAT_SET_TIMES, FileOp.SET_TIMES, numbers)

    def _file_only(self, fd: int, right: int, op: str, numbers: Sequence[int] = ()) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self.file_simple(descriptor, right, op, numbers)
        return BADF

    def fd_readdir(self, fd: int, buf_ptr: int, buf_len: int, cookie: int, result_ptr: int) -> int:
        descriptor = self._fds.get(fd)
        if isinstance(descriptor, FileDescriptor):
            return self.file_readdir(descriptor, buf_ptr, buf_len, cookie, result_ptr)
        return BADF

    # -- sockets: none exist ----------------------------------------------------------------

    def sock_accept(self, fd: int, flags: int, result_ptr: int) -> int:
        return self._not_a_socket(fd)

    def sock_recv(
        self, fd: int, iovs_ptr: int, iovs_len: int, ri_flags: int, size_ptr: int, flags_ptr: int
    ) -> int:
        return self._not_a_socket(fd)

    def sock_send(
        self, fd: int, iovs_ptr: int, iovs_len: int, si_flags: int, result_ptr: int
    ) -> int:
        return self._not_a_socket(fd)

    def sock_shutdown(self, fd: int, how: int) -> int:
        if fd in self._fds and how & ~ALL_SDFLAGS:
            return INVAL
        return self._not_a_socket(fd)

    def _not_a_socket(self, fd: int) -> int:
        return NOTSOCK if fd in self._fds else BADF

    # -- poll_oneoff ------------------------------------------------------------------------

    def poll_oneoff(self, in_ptr: int, out_ptr: int, nsubscriptions: int, nevents_ptr: int) -> int:
        """Wait for clock and console subscriptions.

        Console subscriptions are always ready (stdin reports readable with ``nbytes`` 1, or
        0 and ``HANGUP`` once its end was read; stdout/stderr writable): if any exist, the
        call returns at once with them and with the clock subscriptions already due.
        Otherwise it sleeps until the earliest clock subscription is due (at most
        ``max_sleep_ns``) and reports every clock subscription due by then. Like wasmtime, a
        subscription naming a bad descriptor fails the whole call with ``BADF``, and one with
        an unknown type, clock or flag with ``INVAL``; only realtime and monotonic clocks can
        be waited on.
        """
        if nsubscriptions == 0:
            return INVAL
        in_size = SUBSCRIPTION.size * nsubscriptions
        if not (
            self._fits(in_ptr, in_size)
            and self._fits(out_ptr, EVENT.size * nsubscriptions)
            and self._fits(nevents_ptr, 4)
        ):
            return FAULT
        if self._pay is not None:
            self._pay(ENTRY_COST * nsubscriptions)
        # In subscription order: (userdata, event type, nbytes, flags, nanoseconds until due).
        # Console events are due now; clock events when their timeout passes.
        pending: list[tuple[int, int, int, int, int]] = []
        console_ready = False
        for userdata, tag, ident, timeout, _precision, flags in SUBSCRIPTION.iter_unpack(
            self._data[in_ptr : in_ptr + in_size]
        ):
            if tag == _CLOCK_EVENT:
                if flags & ~SUBCLOCKFLAGS_ABSTIME or ident not in _SLEEP_CLOCKS:
                    return INVAL
                if flags & SUBCLOCKFLAGS_ABSTIME:
                    timeout -= self._clocks[ident]()
                pending.append((userdata, tag, 0, 0, max(0, timeout)))
            elif tag in (_FD_READ_EVENT, _FD_WRITE_EVENT):
                descriptor = self._fds.get(ident)
                if descriptor is None:
                    return BADF
                if not (descriptor.readable if tag == _FD_READ_EVENT else descriptor.writable):
                    return BADF
                if not descriptor.rights_base & _RIGHT_POLL:
                    return NOTCAPABLE
                if isinstance(descriptor, FileDescriptor):
                    pending.append((userdata, tag, 0, 0, 0))  # files are always ready
                elif tag == _FD_READ_EVENT and self._stdin_at_end:
                    pending.append((userdata, tag, 0, EVENTRWFLAGS_HANGUP, 0))
                else:
                    pending.append((userdata, tag, 1, 0, 0))
                console_ready = True
            else:
                return INVAL
        waited = 0
        if not console_ready:
            waited = min(entry[4] for entry in pending)
            if waited > 0:
                self._sleep_ns(min(waited, self._max_sleep_ns))
        data = self._data
        count = 0
        for userdata, event_type, nbytes, rw_flags, due in pending:
            if due <= waited:
                EVENT.pack_into(
                    data,
                    out_ptr + EVENT.size * count,
                    userdata,
                    SUCCESS,
                    event_type,
                    nbytes,
                    rw_flags,
                )
                count += 1
        U32.pack_into(data, nevents_ptr, count)
        return SUCCESS


def _bad_fstflags(fst_flags: int) -> bool:
    """Unknown bits, or a timestamp both given and set to now."""
    both_atim = FSTFLAGS_ATIM | FSTFLAGS_ATIM_NOW
    both_mtim = FSTFLAGS_MTIM | FSTFLAGS_MTIM_NOW
    return bool(
        fst_flags & ~ALL_FSTFLAGS
        or fst_flags & both_atim == both_atim
        or fst_flags & both_mtim == both_mtim
    )
