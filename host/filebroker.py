"""The file broker: a guest's preopened directories, reached only through the host.

::

    guest process (no open(2): seccomp)        host event loop           worker thread
    ───────────────────────────────────        ───────────────           ─────────────
    path_open(3, "a/b", ...) ──▶ FileCall ──▶  FileBroker.request ──▶   FileTable.call:
                                                                          openat2 beneath the
                             ◀── FileAnswer ◀── (in order)         ◀──    preopen's fd, then the
                                                                          *at call, pread, ...

A guest cannot open a path itself (its running seccomp filter has no ``openat`` and its root
is an empty tmpfs), so every file operation in a preopened directory is a ``FileCall`` the
host answers. The host resolves every path with ``openat2(RESOLVE_BENEATH |
RESOLVE_NO_MAGICLINKS)`` beneath the directory's descriptor (``host.beneath``), and then acts
on one path component only, never following a symlink there: ``..``, absolute paths,
symlinks out, magic links and a directory swapped for a symlink all fail in the kernel.
A read-only preopen, and everything opened beneath it, refuses every change with ``EROFS``
here, whatever rights the guest claims.

The work runs in a small thread pool shared by all guests (``WORKERS``), never on the event
loop. A guest's calls are served one at a time in the order they came, so one guest occupies
at most one worker; it may have ``MAX_FILE_CALLS`` unanswered (more is a protocol error),
because it sends writes to a regular file ahead of their answers, as it streams stdout, and
the host writes such a write whole or answers why not. A call's frame is counted against
the guest's frame budget like a stdin request (``host.framebudget``). Which call a worker
takes next is decided on the event loop (``_Dispatcher``): calls on files guests have open
before opens of new ones, and an open only while there is room under ``MAX_FILES`` (or once
it has waited ``OPEN_WAIT``).

Descriptors: one per preopened directory, shared by every guest given the same directory
(``_SharedDirectories``, reference-counted), plus the files and directories guests hold open:
at most ``MAX_FILES_PER_GUEST`` per guest and ``MAX_FILES`` in the whole host (``EMFILE`` and
``ENFILE`` past them), so 5,000 guests (three descriptors each: two pipes and a pidfd, 15,000
of the 20,000 this machine allows) still fit under the host's ``RLIMIT_NOFILE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import os
import stat
import struct
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from protocol.messages import FILE_CHUNK, MAX_FILE_CALLS, FileAnswer, FileCall, FileOp

from .beneath import EscapeError, open_beneath, set_times

T = TypeVar("T")

WORKERS = 4
"""Threads doing brokered file I/O for all guests of a host process."""
MAX_FILES_PER_GUEST = 64
"""Files and directories one guest may hold open through the broker (then ``EMFILE``)."""
MAX_FILES = 1024
"""Brokered files open at once in the whole host process (then, after ``OPEN_WAIT``,
``ENFILE``)."""
WAITING_BYTES_CAP = 64 * 1024 * 1024
"""Bytes of writes the whole host keeps waiting for a worker: past it, a guest that sends
one more call while some of its own wait has its pipe left unread until they are done (each
guest may have ``MAX_FILE_CALLS`` unanswered, up to 8 x 64 KiB; 5,000 of them would hold
2.5 GiB)."""
OPEN_WAIT = 2.0
"""Seconds an open waits for a brokered file to be closed while the host holds
``MAX_FILES``, before it fails ``ENFILE``."""

# WASI preview1 errno numbers, in the witx order (``guestproc.wasi.abi.Errno``; a test
# checks that the two agree), keyed by the host's errno names.
_WASI_ERRNO_NAMES = tuple(
    [
        "SUCCESS",
        "2BIG",
        "ACCES",
        "ADDRINUSE",
        "ADDRNOTAVAIL",
        "AFNOSUPPORT",
        "AGAIN",
        "ALREADY",
        "BADF",
        "BADMSG",
        "BUSY",
        "CANCELED",
        "CHILD",
        "CONNABORTED",
        "CONNREFUSED",
        "CONNRESET",
        "DEADLK",
        "DESTADDRREQ",
        "DOM",
        "DQUOT",
        "EXIST",
        "FAULT",
        "FBIG",
        "HOSTUNREACH",
        "IDRM",
        "ILSEQ",
        "INPROGRESS",
        "INTR",
        "INVAL",
        "IO",
        "ISCONN",
        "ISDIR",
        "LOOP",
        "MFILE",
        "MLINK",
        "MSGSIZE",
        "MULTIHOP",
        "NAMETOOLONG",
        "NETDOWN",
        "NETRESET",
        "NETUNREACH",
        "NFILE",
        "NOBUFS",
        "NODEV",
        "NOENT",
        "NOEXEC",
        "NOLCK",
        "NOLINK",
        "NOMEM",
        "NOMSG",
        "NOPROTOOPT",
        "NOSPC",
        "NOSYS",
        "NOTCONN",
        "NOTDIR",
        "NOTEMPTY",
        "NOTRECOVERABLE",
        "NOTSOCK",
        "NOTSUP",
        "NOTTY",
        "NXIO",
        "OVERFLOW",
        "OWNERDEAD",
        "PERM",
        "PIPE",
        "PROTO",
        "PROTONOSUPPORT",
        "PROTOTYPE",
        "RANGE",
        "ROFS",
        "SPIPE",
        "SRCH",
        "STALE",
        "TIMEDOUT",
        "TXTBSY",
        "XDEV",
        "NOTCAPABLE",
    ]
)
WASI_ERRNO = {name: number for number, name in enumerate(_WASI_ERRNO_NAMES)}
_FROM_HOST = {
    getattr(errno, "E" + ("2BIG" if name == "2BIG" else name)): number
    for name, number in WASI_ERRNO.items()
    if hasattr(errno, "E" + name)
}
_FROM_HOST[errno.EOPNOTSUPP] = WASI_ERRNO["NOTSUP"]
_FROM_HOST[errno.EWOULDBLOCK] = WASI_ERRNO["AGAIN"]
NOTCAPABLE = WASI_ERRNO["NOTCAPABLE"]
ROFS = WASI_ERRNO["ROFS"]
BADF = WASI_ERRNO["BADF"]
INVAL = WASI_ERRNO["INVAL"]
NOENT = WASI_ERRNO["NOENT"]

# preview1 vocabularies the broker reads (``guestproc.wasi.abi``)
LOOKUP_SYMLINK_FOLLOW = 1
OFLAGS_CREAT, OFLAGS_DIRECTORY, OFLAGS_EXCL, OFLAGS_TRUNC = 1, 2, 4, 8
FDFLAGS_APPEND, FDFLAGS_DSYNC, FDFLAGS_NONBLOCK, FDFLAGS_RSYNC, FDFLAGS_SYNC = 1, 2, 4, 8, 16
FSTFLAGS_ATIM, FSTFLAGS_ATIM_NOW, FSTFLAGS_MTIM, FSTFLAGS_MTIM_NOW = 1, 2, 4, 8
FILETYPE_UNKNOWN, FILETYPE_BLOCK, FILETYPE_CHAR, FILETYPE_DIRECTORY = 0, 1, 2, 3
FILETYPE_REGULAR, FILETYPE_SOCKET_STREAM, FILETYPE_SYMLINK = 4, 6, 7
DIRENT = struct.Struct("<QQIB3x")  # d_next, d_ino, d_namlen, d_type
_ADVICE = (
    os.POSIX_FADV_NORMAL,
    os.POSIX_FADV_SEQUENTIAL,
    os.POSIX_FADV_RANDOM,
    os.POSIX_FADV_WILLNEED,
    os.POSIX_FADV_DONTNEED,
    os.POSIX_FADV_NOREUSE,
)
_U64 = (1 << 64) - 1


_OPEN_FLAGS = (
    (OFLAGS_CREAT, os.O_CREAT),
    (OFLAGS_DIRECTORY, os.O_DIRECTORY),
    (OFLAGS_EXCL, os.O_EXCL),
    (OFLAGS_TRUNC, os.O_TRUNC),
)
_FD_FLAGS = (
    (FDFLAGS_APPEND, os.O_APPEND),
    (FDFLAGS_DSYNC, os.O_DSYNC),
    (FDFLAGS_NONBLOCK, os.O_NONBLOCK),
    (FDFLAGS_RSYNC, os.O_RSYNC),
    (FDFLAGS_SYNC, os.O_SYNC),
)


def _host_flags(wasi_flags: int, table: tuple[tuple[int, int], ...]) -> int:
    """The ``open(2)`` flags for preview1 flag bits."""
    return sum(flag for bit, flag in table if wasi_flags & bit)


class WasiError(Exception):
    """A call fails with this WASI errno."""

    def __init__(self, number: int) -> None:
        super().__init__(number)
        self.number = number


def wasi_errno(exc: OSError) -> int:
    """The WASI errno for a host error: escaping a preopen is ``NOTCAPABLE``."""
    if isinstance(exc, EscapeError):
        return NOTCAPABLE
    return _FROM_HOST.get(exc.errno or 0, WASI_ERRNO["IO"])


_FILETYPES = {
    stat.S_IFREG: FILETYPE_REGULAR,
    stat.S_IFDIR: FILETYPE_DIRECTORY,
    stat.S_IFLNK: FILETYPE_SYMLINK,
    stat.S_IFCHR: FILETYPE_CHAR,
    stat.S_IFBLK: FILETYPE_BLOCK,
    stat.S_IFSOCK: FILETYPE_SOCKET_STREAM,
}


def filetype_of(mode: int) -> int:
    """preview1's ``filetype`` for a ``st_mode`` (a FIFO is ``unknown``, as in wasmtime)."""
    return _FILETYPES.get(stat.S_IFMT(mode), FILETYPE_UNKNOWN)


def filestat_numbers(info: os.stat_result) -> list[int]:
    """dev, ino, filetype, nlink, size, atim, mtim, ctim: preview1's ``filestat``."""
    return [
        info.st_dev & _U64,
        info.st_ino & _U64,
        filetype_of(info.st_mode),
        info.st_nlink,
        info.st_size,
        info.st_atime_ns & _U64,
        info.st_mtime_ns & _U64,
        info.st_ctime_ns & _U64,
    ]


@dataclass(frozen=True)
class PreopenDirectory:
    """A host directory a guest is given: ``host_path`` (absolute), the WASI ``name`` the
    guest sees, and whether every change in it is refused."""

    host_path: str
    name: str
    read_only: bool


class _SharedDirectories:
    """One descriptor per preopened host directory, shared by every guest given it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, list[int]] = {}  # path -> [fd, references]

    def acquire(self, path: str) -> int:
        with self._lock:
            entry = self._open.get(path)
            if entry is None:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                entry = self._open[path] = [fd, 0]
            entry[1] += 1
            return entry[0]

    @property
    def count(self) -> int:
        """Directories open now (one descriptor each)."""
        return len(self._open)

    def release(self, path: str) -> None:
        with self._lock:
            entry = self._open[path]
            entry[1] -= 1
            if entry[1] == 0:
                del self._open[path]
                os.close(entry[0])


class _FileCount:
    """Brokered files open in this process, against ``MAX_FILES``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def take(self) -> None:
        with self._lock:
            if self.count >= MAX_FILES:
                raise WasiError(WASI_ERRNO["NFILE"])
            self.count += 1

    def give_back(self) -> None:
        with self._lock:
            self.count -= 1


SHARED_DIRECTORIES = _SharedDirectories()
OPEN_FILES = _FileCount()
_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="kindling-files")
    return _executor


@dataclass
class _Ticket:
    turn: asyncio.Future[None]  # done when the call may have a worker
    deadline: float  # an open: when it goes ahead even with no room (time.monotonic)


class _Dispatcher:
    """Which guest's call the workers take next: calls on what guests have open (read,
    write, close, ...) before opens of new files, and an open only while the host holds
    fewer than ``MAX_FILES`` (or once it has waited ``OPEN_WAIT``). Guests that open, read
    and close a file all at once then each get their file: first come, first served, 3,000
    such guests had opened 1,024 files before the first read, and 1,976 of them failed
    ``ENFILE`` (``kindling bench files --guests``). Runs on the event loop."""

    def __init__(self) -> None:
        self._calls: deque[_Ticket] = deque()
        self._opens: deque[_Ticket] = deque()
        self._running = 0  # calls given a worker, at most WORKERS
        self.waiting_bytes = 0  # data of the calls guests wait to be given one
        self._opening = 0  # ... of them opens, not yet counted in OPEN_FILES

    async def run(self, work: Callable[[], T], opening: bool) -> T:
        loop = asyncio.get_running_loop()
        ticket = _Ticket(loop.create_future(), time.monotonic() + OPEN_WAIT)
        if opening:
            self._opens.append(ticket)
            # Just past the deadline: the loop may run a timer a clock tick early.
            loop.call_later(OPEN_WAIT + 0.01, self._pump)
        else:
            self._calls.append(ticket)
        self._pump()
        try:
            await ticket.turn
        except asyncio.CancelledError:
            if ticket.turn.done() and not ticket.turn.cancelled():
                self._finish(opening)  # given a worker just as it was cancelled
            raise
        try:
            return await loop.run_in_executor(executor(), work)
        finally:
            self._finish(opening)

    def _finish(self, opening: bool) -> None:
        self._running -= 1
        self._opening -= opening
        self._pump()

    def _pump(self) -> None:
        while self._running < WORKERS:
            ticket, opening = self._next()
            if ticket is None:
                return
            self._running += 1
            self._opening += opening
            ticket.turn.set_result(None)

    def _next(self) -> tuple[_Ticket | None, bool]:
        while self._calls:
            ticket = self._calls.popleft()
            if _waiting(ticket):
                return ticket, False
        while self._opens:
            ticket = self._opens[0]
            if not _waiting(ticket):
                self._opens.popleft()
                continue
            room = OPEN_FILES.count + self._opening < MAX_FILES
            if not room and time.monotonic() < ticket.deadline:
                return None, False
            return self._opens.popleft(), True
        return None, False


def _waiting(ticket: _Ticket) -> bool:
    """Whether the call still waits (not cancelled, its event loop not closed)."""
    return not ticket.turn.done() and not ticket.turn.get_loop().is_closed()


# One per event loop: a loop closed with calls in flight (a test's) leaves its count behind
# with it, never in the next loop's way.
_DISPATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Dispatcher] = (
    weakref.WeakKeyDictionary()
)


def dispatcher() -> _Dispatcher:
    """The running event loop's dispatcher."""
    loop = asyncio.get_running_loop()
    found = _DISPATCHERS.get(loop)
    if found is None:
        found = _DISPATCHERS[loop] = _Dispatcher()
    return found


@dataclass
class _Handle:
    fd: int
    read_only: bool
    directory: bool
    preopen: str | None = None  # the shared directory's path, for a preopen
    regular: bool = False  # a regular file: reads of it may be tried without blocking


def _split(path: bytes) -> tuple[bytes, bytes]:
    """``path`` as (its parent, its last component); a trailing slash stays with the name's
    caller to judge. Absolute paths escape: ``NOTCAPABLE``."""
    if not path:
        raise WasiError(NOENT)
    if path.startswith(b"/"):
        raise WasiError(NOTCAPABLE)
    if b"\0" in path:
        raise WasiError(INVAL)
    stripped = path.rstrip(b"/")
    parent, _, name = stripped.rpartition(b"/")
    return parent or b".", name


class FileTable:
    """One guest's handles: its preopens (handles 0..n-1), then what it opened. Methods run
    in worker threads, one at a time per table (``_lock``)."""

    def __init__(self, preopens: Sequence[PreopenDirectory]) -> None:
        self._preopens = list(preopens)
        self._handles: dict[int, _Handle] = {}
        self._next = len(self._preopens)
        self._opened = 0
        self._lock = threading.Lock()
        self._closed = False

    # -- the handles ---------------------------------------------------------------------------

    def _handle(self, number: int) -> _Handle:
        handle = self._handles.get(number)
        if handle is None and number < len(self._preopens):
            preopen = self._preopens[number]
            fd = SHARED_DIRECTORIES.acquire(preopen.host_path)
            handle = self._handles[number] = _Handle(fd, preopen.read_only, True, preopen.host_path)
        if handle is None:
            raise WasiError(BADF)
        return handle

    def _writable(self, number: int) -> _Handle:
        handle = self._handle(number)
        if handle.read_only:
            raise WasiError(ROFS)
        return handle

    def close(self) -> None:
        """Close everything; the table answers nothing after this."""
        with self._lock:
            self._closed = True
            for number in list(self._handles):
                self._release(number)

    def try_close(self) -> bool:
        """``close`` if no call is running now; whether it did."""
        if not self._lock.acquire(blocking=False):
            return False
        self._lock.release()
        self.close()
        return True

    def _release(self, number: int) -> None:
        handle = self._handles.pop(number)
        if handle.preopen is not None:
            SHARED_DIRECTORIES.release(handle.preopen)
        else:
            os.close(handle.fd)
            self._opened -= 1
            OPEN_FILES.give_back()

    # -- one call -------------------------------------------------------------------------------

    def call(self, message: FileCall) -> FileAnswer:
        """Do what ``message`` asks; its answer (an errno for whatever fails)."""
        with self._lock:
            if self._closed:
                return FileAnswer(id=message.id, errno=BADF, numbers=[])
            try:
                numbers, data = _OPERATIONS[message.op](self, message)
            except WasiError as exc:
                return FileAnswer(id=message.id, errno=exc.number, numbers=[])
            except OSError as exc:
                return FileAnswer(id=message.id, errno=wasi_errno(exc), numbers=[])
            except (ValueError, OverflowError, IndexError):
                return FileAnswer(id=message.id, errno=INVAL, numbers=[])
            return FileAnswer(id=message.id, errno=0, numbers=numbers, data=data)

    def call_each(self, messages: Sequence[FileCall]) -> list[FileAnswer]:
        """``call`` each of ``messages`` in turn; their answers."""
        return [self.call(message) for message in messages]

    def read_now(self, message: FileCall) -> FileAnswer | None:
        """A read of a regular file answered without waiting: ``preadv2`` with
        ``RWF_NOWAIT`` takes only what is in the page cache, and fails ``EAGAIN`` rather
        than wait for the disk. None when it cannot be done so (not a read of a regular
        file, not cached, a call of the table running): a worker does it then."""
        if message.op not in (FileOp.READ, FileOp.PREAD):
            return None
        if not self._lock.acquire(blocking=False):
            return None
        try:
            handle = self._handles.get(message.handle)
            if self._closed or handle is None or not handle.regular:
                return None
            offset = -1 if message.op is FileOp.READ else message.numbers[1]  # -1: at the position
            buffer = bytearray(min(message.numbers[0], FILE_CHUNK))
            try:
                count = os.preadv(handle.fd, [buffer], offset, os.RWF_NOWAIT)
            except (OSError, OverflowError, ValueError):
                return None  # EAGAIN (not cached), EOPNOTSUPP...: the worker's answer counts
            return FileAnswer(id=message.id, errno=0, numbers=[], data=bytes(buffer[:count]))
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def _parent(self, number: int, path: bytes, writing: bool) -> Iterator[tuple[int, bytes]]:
        """A descriptor for ``path``'s parent, resolved beneath handle ``number``, and the
        last component, to act on with one ``*at`` call that follows no symlink."""
        handle = self._writable(number) if writing else self._handle(number)
        parent, name = _split(path)
        if name == b"..":
            # Acting on ".." of the parent: first make sure the whole path stays beneath.
            os.close(open_beneath(handle.fd, path, os.O_PATH))
        fd = open_beneath(handle.fd, parent, os.O_PATH | os.O_DIRECTORY)
        try:
            yield fd, name
        finally:
            os.close(fd)

    def _resolved(self, number: int, path: bytes, follow: bool) -> int:
        """An ``O_PATH`` descriptor for ``path`` itself (the caller closes it)."""
        handle = self._handle(number)
        _split(path)  # the same refusals
        return open_beneath(handle.fd, path, os.O_PATH | (0 if follow else os.O_NOFOLLOW))

    def _fd(self, message: FileCall) -> int:
        return self._handle(message.handle).fd

    # -- operations: (numbers, data) --------------------------------------------------------------

    def open(self, m: FileCall) -> tuple[list[int], bytes]:
        lookup, oflags, fdflags, read, write = m.numbers
        handle = self._handle(m.handle)
        changes = write or oflags & (OFLAGS_CREAT | OFLAGS_TRUNC) or fdflags & FDFLAGS_APPEND
        if handle.read_only and changes:
            raise WasiError(ROFS)
        if self._opened >= MAX_FILES_PER_GUEST:
            raise WasiError(WASI_ERRNO["MFILE"])
        flags = os.O_NOCTTY
        flags |= os.O_RDWR if read and write else os.O_WRONLY if write else os.O_RDONLY
        flags |= _host_flags(oflags, _OPEN_FLAGS) | _host_flags(fdflags, _FD_FLAGS)
        if not lookup & LOOKUP_SYMLINK_FOLLOW:
            flags |= os.O_NOFOLLOW
        _split(m.path)
        OPEN_FILES.take()
        try:
            try:
                fd = open_beneath(handle.fd, m.path, flags, 0o666)
            except OSError as exc:
                if exc.errno != errno.EACCES or read or write or flags & os.O_CREAT:
                    raise
                fd = open_beneath(handle.fd, m.path, os.O_PATH | (flags & os.O_NOFOLLOW))
            try:
                kind = filetype_of(os.fstat(fd).st_mode)
            except OSError:
                os.close(fd)
                raise
        except BaseException:
            OPEN_FILES.give_back()
            raise
        number = self._next
        self._next += 1
        self._opened += 1
        self._handles[number] = _Handle(
            fd, handle.read_only, kind == FILETYPE_DIRECTORY, regular=kind == FILETYPE_REGULAR
        )
        return [number, kind], b""

    def close_handle(self, m: FileCall) -> tuple[list[int], bytes]:
        self._handle(m.handle)
        self._release(m.handle)
        return [], b""

    def read(self, m: FileCall) -> tuple[list[int], bytes]:
        return [], os.read(self._fd(m), min(m.numbers[0], FILE_CHUNK))

    def pread(self, m: FileCall) -> tuple[list[int], bytes]:
        size, offset = m.numbers
        return [], os.pread(self._fd(m), min(size, FILE_CHUNK), offset)

    def write(self, m: FileCall) -> tuple[list[int], bytes]:
        handle = self._writable(m.handle)
        if not handle.regular:
            return [os.write(handle.fd, m.data)], b""
        return [_write_all(m.data, lambda view, _: os.write(handle.fd, view))], b""

    def pwrite(self, m: FileCall) -> tuple[list[int], bytes]:
        handle, offset = self._writable(m.handle), m.numbers[0]
        if not handle.regular:
            return [os.pwrite(handle.fd, m.data, offset)], b""
        return [
            _write_all(m.data, lambda view, done: os.pwrite(handle.fd, view, offset + done))
        ], b""

    def seek(self, m: FileCall) -> tuple[list[int], bytes]:
        offset, whence = m.numbers
        if offset >= 1 << 63:
            offset -= 1 << 64
        handle = self._handle(m.handle)
        if handle.directory:
            raise WasiError(BADF)
        return [os.lseek(handle.fd, offset, whence)], b""

    def set_flags(self, m: FileCall) -> tuple[list[int], bytes]:
        fd = self._fd(m)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        flags &= ~(os.O_APPEND | os.O_NONBLOCK)
        if m.numbers[0] & FDFLAGS_APPEND:
            if self._handle(m.handle).read_only:
                raise WasiError(ROFS)
            flags |= os.O_APPEND
        if m.numbers[0] & FDFLAGS_NONBLOCK:
            flags |= os.O_NONBLOCK
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        return [], b""

    def filestat(self, m: FileCall) -> tuple[list[int], bytes]:
        return filestat_numbers(os.fstat(self._fd(m))), b""

    def set_size(self, m: FileCall) -> tuple[list[int], bytes]:
        os.ftruncate(self._writable(m.handle).fd, m.numbers[0])
        return [], b""

    def set_times(self, m: FileCall) -> tuple[list[int], bytes]:
        atim, mtim, fst = m.numbers
        _apply_times(self._writable(m.handle).fd, None, atim, mtim, fst, follow=True)
        return [], b""

    def advise(self, m: FileCall) -> tuple[list[int], bytes]:
        offset, length, advice = m.numbers
        os.posix_fadvise(self._fd(m), offset, length, _ADVICE[advice])
        return [], b""

    def allocate(self, m: FileCall) -> tuple[list[int], bytes]:
        offset, length = m.numbers
        os.posix_fallocate(self._writable(m.handle).fd, offset, length)
        return [], b""

    def sync(self, m: FileCall) -> tuple[list[int], bytes]:
        os.fsync(self._fd(m))
        return [], b""

    def datasync(self, m: FileCall) -> tuple[list[int], bytes]:
        os.fdatasync(self._fd(m))
        return [], b""

    def readdir(self, m: FileCall) -> tuple[list[int], bytes]:
        cookie, size = m.numbers
        size = min(size, FILE_CHUNK)
        handle = self._handle(m.handle)
        if not handle.directory:
            raise WasiError(WASI_ERRNO["NOTDIR"])
        own = os.fstat(handle.fd).st_ino
        entries: list[tuple[int, int, bytes]] = [
            (own, FILETYPE_DIRECTORY, b"."),
            (own, FILETYPE_DIRECTORY, b".."),
        ]
        with os.scandir(handle.fd) as listing:
            for entry in listing:
                entries.append((entry.inode(), _entry_type(entry), os.fsencode(entry.name)))
        out = bytearray()
        for index in range(cookie, len(entries)):
            inode, kind, name = entries[index]
            out += DIRENT.pack(index + 1, inode & _U64, len(name), kind) + name
            if len(out) >= size:
                break
        return [], bytes(out[:size])

    def path_filestat(self, m: FileCall) -> tuple[list[int], bytes]:
        fd = self._resolved(m.handle, m.path, bool(m.numbers[0] & LOOKUP_SYMLINK_FOLLOW))
        try:
            return filestat_numbers(os.fstat(fd)), b""
        finally:
            os.close(fd)

    def path_set_times(self, m: FileCall) -> tuple[list[int], bytes]:
        lookup, atim, mtim, fst = m.numbers
        self._writable(m.handle)
        fd = self._resolved(m.handle, m.path, bool(lookup & LOOKUP_SYMLINK_FOLLOW))
        try:
            _apply_times(fd, None, atim, mtim, fst, follow=True)
        finally:
            os.close(fd)
        return [], b""

    def mkdir(self, m: FileCall) -> tuple[list[int], bytes]:
        with self._parent(m.handle, m.path, writing=True) as (parent, name):
            os.mkdir(name, 0o777, dir_fd=parent)
        return [], b""

    def rmdir(self, m: FileCall) -> tuple[list[int], bytes]:
        with self._parent(m.handle, m.path, writing=True) as (parent, name):
            os.rmdir(name, dir_fd=parent)
        return [], b""

    def unlink(self, m: FileCall) -> tuple[list[int], bytes]:
        with self._parent(m.handle, m.path, writing=True) as (parent, name):
            if m.path.endswith(b"/"):
                # unlink("file/") is ENOTDIR (or EISDIR for a directory), as wasmtime says.
                kind = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
                raise WasiError(WASI_ERRNO["ISDIR" if stat.S_ISDIR(kind) else "NOTDIR"])
            os.unlink(name, dir_fd=parent)
        return [], b""

    def rename(self, m: FileCall) -> tuple[list[int], bytes]:
        with (
            self._parent(m.handle, m.path, writing=True) as (old_parent, old_name),
            self._parent(m.handle2, m.path2, writing=True) as (new_parent, new_name),
        ):
            _check_trailing_slashes(old_parent, old_name, m.path, m.path2)
            os.rename(old_name, new_name, src_dir_fd=old_parent, dst_dir_fd=new_parent)
        return [], b""

    def link(self, m: FileCall) -> tuple[list[int], bytes]:
        follow = bool(m.numbers[0] & LOOKUP_SYMLINK_FOLLOW) if m.numbers else False
        with (
            self._parent(m.handle, m.path, writing=True) as (old_parent, old_name),
            self._parent(m.handle2, m.path2, writing=True) as (new_parent, new_name),
        ):
            if m.path.endswith(b"/") or m.path2.endswith(b"/"):
                raise WasiError(WASI_ERRNO["NOENT"])
            if not follow:
                os.link(
                    old_name,
                    new_name,
                    src_dir_fd=old_parent,
                    dst_dir_fd=new_parent,
                    follow_symlinks=False,
                )
                return [], b""
            source = self._resolved(m.handle, m.path, follow=True)
            try:
                # The host's own /proc link to what was resolved beneath: linkat(AT_FDCWD, ...).
                link = f"/proc/self/fd/{source}"
                os.link(link, new_name, dst_dir_fd=new_parent, follow_symlinks=True)
            finally:
                os.close(source)
        return [], b""

    def symlink(self, m: FileCall) -> tuple[list[int], bytes]:
        try:
            with self._parent(m.handle, m.path, writing=True) as (parent, name):
                if m.path.endswith(b"/"):
                    os.stat(name, dir_fd=parent, follow_symlinks=False)  # ENOENT if not there
                    raise WasiError(WASI_ERRNO["EXIST"])
                if m.path2.startswith(b"/"):
                    raise WasiError(NOTCAPABLE)  # a link out is refused when it is made, too
                os.symlink(m.path2, name, dir_fd=parent)
        except FileNotFoundError:
            raise WasiError(NOENT) from None
        return [], b""

    def readlink(self, m: FileCall) -> tuple[list[int], bytes]:
        with self._parent(m.handle, m.path, writing=False) as (parent, name):
            target = os.readlink(name, dir_fd=parent)
        return [], os.fsencode(target)[:FILE_CHUNK]


def _write_all(data: bytes, write: Callable[[memoryview, int], int]) -> int:
    """Write all of ``data`` to a regular file, or fail. A guest sends such writes ahead of
    their answers and counts them whole, so a short write (a disk filling up) must not pass
    as success: writing the rest gives the reason (``ENOSPC``, ``EFBIG``)."""
    view, done = memoryview(data), 0
    while done < len(data):
        done += write(view[done:], done)
    return done


def _ignore(_: bool) -> None:
    pass


def _check_trailing_slashes(parent: int, old_name: bytes, old: bytes, new: bytes) -> None:
    """rename with a trailing slash on either side needs a directory to rename."""
    if old.endswith(b"/") or new.endswith(b"/"):
        mode = os.stat(old_name, dir_fd=parent, follow_symlinks=False).st_mode
        if not stat.S_ISDIR(mode):
            raise WasiError(WASI_ERRNO["NOTDIR"])


def _entry_type(entry: os.DirEntry[str]) -> int:
    try:
        return filetype_of(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return FILETYPE_UNKNOWN


def _apply_times(fd: int, path: bytes | None, atim: int, mtim: int, fst: int, follow: bool) -> None:
    if fst & ~15 or (
        fst & (FSTFLAGS_ATIM | FSTFLAGS_ATIM_NOW) == FSTFLAGS_ATIM | FSTFLAGS_ATIM_NOW
        or fst & (FSTFLAGS_MTIM | FSTFLAGS_MTIM_NOW) == FSTFLAGS_MTIM | FSTFLAGS_MTIM_NOW
    ):
        raise WasiError(INVAL)
    set_times(
        fd,
        path,
        atim if fst & FSTFLAGS_ATIM else None,
        mtim if fst & FSTFLAGS_MTIM else None,
        follow=follow,
        now_atime=bool(fst & FSTFLAGS_ATIM_NOW),
        now_mtime=bool(fst & FSTFLAGS_MTIM_NOW),
    )


_Operation = Callable[[FileTable, FileCall], tuple[list[int], bytes]]
_OPERATIONS: dict[FileOp, _Operation] = {
    FileOp.OPEN: FileTable.open,
    FileOp.CLOSE: FileTable.close_handle,
    FileOp.READ: FileTable.read,
    FileOp.PREAD: FileTable.pread,
    FileOp.WRITE: FileTable.write,
    FileOp.PWRITE: FileTable.pwrite,
    FileOp.SEEK: FileTable.seek,
    FileOp.SET_FLAGS: FileTable.set_flags,
    FileOp.FILESTAT: FileTable.filestat,
    FileOp.SET_SIZE: FileTable.set_size,
    FileOp.SET_TIMES: FileTable.set_times,
    FileOp.ADVISE: FileTable.advise,
    FileOp.ALLOCATE: FileTable.allocate,
    FileOp.SYNC: FileTable.sync,
    FileOp.DATASYNC: FileTable.datasync,
    FileOp.READDIR: FileTable.readdir,
    FileOp.PATH_FILESTAT: FileTable.path_filestat,
    FileOp.PATH_SET_TIMES: FileTable.path_set_times,
    FileOp.MKDIR: FileTable.mkdir,
    FileOp.RMDIR: FileTable.rmdir,
    FileOp.UNLINK: FileTable.unlink,
    FileOp.RENAME: FileTable.rename,
    FileOp.LINK: FileTable.link,
    FileOp.SYMLINK: FileTable.symlink,
    FileOp.READLINK: FileTable.readlink,
}
_ARITY = {
    FileOp.OPEN: 5,
    FileOp.READ: 1,
    FileOp.PREAD: 2,
    FileOp.PWRITE: 1,
    FileOp.SEEK: 2,
    FileOp.SET_FLAGS: 1,
    FileOp.SET_SIZE: 1,
    FileOp.SET_TIMES: 3,
    FileOp.ADVISE: 3,
    FileOp.ALLOCATE: 2,
    FileOp.READDIR: 2,
    FileOp.PATH_FILESTAT: 1,
    FileOp.PATH_SET_TIMES: 4,
}


class FileBroker:
    """Answers one guest's ``FileCall``s off the event loop: one at a time, in the order they
    came (up to ``MAX_FILE_CALLS`` wait, the writes a guest sent ahead of their answers).

    ``answer(message)`` sends the reply if the request is still the one being served
    (``still_wanted(request_id)``); ``spawn`` runs the work as a task of the guest;
    ``hold_reading(True)`` stops reading the guest's frames while the host has too many
    writes waiting (``WAITING_BYTES_CAP``), and ``hold_reading(False)`` starts again.
    ``close()`` gives back every descriptor (at once, or when the running call returns).
    """

    def __init__(
        self,
        preopens: Sequence[PreopenDirectory],
        answer: Callable[[FileAnswer], None],
        still_wanted: Callable[[int], bool],
        spawn: Callable[[Any], None],
        hold_reading: Callable[[bool], None],
    ) -> None:
        self._table = FileTable(preopens)
        self._answer = answer
        self._still_wanted = still_wanted
        self._spawn = spawn
        self._hold_reading = hold_reading
        self._held = False
        self._board: _Dispatcher | None = None  # the event loop's, from the first call on
        self._waiting: deque[FileCall] = deque()  # calls not yet given to a worker
        self._unanswered = 0  # ... and the one a worker has, if any

    @property
    def outstanding(self) -> bool:
        """Whether a call is unanswered."""
        return self._unanswered > 0

    def request(self, message: FileCall) -> str | None:
        """Start serving ``message``; a protocol violation's description if it is not
        allowed now."""
        if self._unanswered >= MAX_FILE_CALLS:
            return f"more than {MAX_FILE_CALLS} FileCalls unanswered"
        arity = _ARITY.get(message.op, 0)
        if len(message.numbers) != arity and message.op is not FileOp.LINK:
            return f"FileCall {message.op} carries {len(message.numbers)} numbers, not {arity}"
        if not self._unanswered:
            # Each call is otherwise a round trip through a worker thread: a read from the
            # page cache on the event loop costs none (16 MiB in 64 KiB reads: see README,
            # Files). Never past calls still waiting: answers go in order.
            answer = self._table.read_now(message)
            if answer is not None:
                self._answer(answer)
                return None
        board = self._board = self._board or dispatcher()
        if self._waiting and board.waiting_bytes > WAITING_BYTES_CAP and not self._held:
            self._held = True
            self._hold_reading(True)
        self._waiting.append(message)
        board.waiting_bytes += len(message.data)
        self._unanswered += 1
        if self._unanswered == 1:
            self._spawn(self._serve())
        return None

    def _take_waiting(self) -> list[FileCall]:
        """The next calls a worker does in one turn: those that came together (writes sent
        ahead), or an open alone (opens wait their own turn: ``_Dispatcher``)."""
        calls = [self._waiting.popleft()]
        if calls[0].op is not FileOp.OPEN:
            while self._waiting and self._waiting[0].op is not FileOp.OPEN:
                calls.append(self._waiting.popleft())
        self._taken(calls)
        return calls

    def _taken(self, calls: Iterable[FileCall]) -> None:
        assert self._board is not None  # set with the first call that waited
        self._board.waiting_bytes -= sum(len(call.data) for call in calls)
        if self._held and not self._waiting:
            self._held = False
            self._hold_reading(False)

    async def _serve(self) -> None:
        """Serve the waiting calls in turn, until none is left: those that came together
        (writes sent ahead) in one worker's turn, which costs one trip to a thread."""
        assert self._board is not None
        try:
            while self._waiting:
                calls = self._take_waiting()
                work = functools.partial(self._table.call_each, calls)
                answers = await self._board.run(work, opening=calls[0].op is FileOp.OPEN)
                if not self._still_wanted(calls[0].id):
                    return  # the guest ended, or moved on, meanwhile
                for answer in answers:
                    self._unanswered -= 1
                    self._answer(answer)
        finally:
            if self._waiting or self._unanswered:  # not served to the end
                self._drop_waiting()

    def _drop_waiting(self) -> None:
        waiting, self._waiting = self._waiting, deque()
        self._taken(waiting)
        self._unanswered = 0

    def close(self) -> None:
        self._hold_reading = _ignore  # the guest has ended: its pipe is closed
        if self._waiting:
            self._drop_waiting()
        self._unanswered = 0
        if not self._table.try_close():
            executor().submit(self._table.close)
