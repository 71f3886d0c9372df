"""The numbers and memory layouts of WASI preview1 (``wasi_snapshot_preview1``).

A leaf module: everything here comes from the preview1 witx files (``typenames.witx`` and
``wasi_snapshot_preview1.witx``) as lowered to core WebAssembly by ``clang --target=wasm32-wasi``.
Nothing in it imports the engine except ``FuncType``/``ValType`` for ``SIGNATURES``.

Layouts are little-endian, with the alignment the witx gives (the ``struct`` formats below spell
the padding out so their sizes match the ``_Static_assert``s in wasi-libc's ``wasi/api.h``).
"""

from __future__ import annotations

import enum
import struct

from guestproc.engine.types import FuncType, ValType

MODULE_NAME = "wasi_snapshot_preview1"


class Errno(enum.IntEnum):
    """Error codes (witx ``errno``, a u16 returned as the i32 result of every function)."""

    SUCCESS = 0
    TOO_BIG = 1  # witx name: 2big
    ACCES = 2
    ADDRINUSE = 3
    ADDRNOTAVAIL = 4
    AFNOSUPPORT = 5
    AGAIN = 6
    ALREADY = 7
    BADF = 8
    BADMSG = 9
    BUSY = 10
    CANCELED = 11
    CHILD = 12
    CONNABORTED = 13
    CONNREFUSED = 14
    CONNRESET = 15
    DEADLK = 16
    DESTADDRREQ = 17
    DOM = 18
    DQUOT = 19
    EXIST = 20
    FAULT = 21
    FBIG = 22
    HOSTUNREACH = 23
    IDRM = 24
    ILSEQ = 25
    INPROGRESS = 26
    INTR = 27
    INVAL = 28
    IO = 29
    ISCONN = 30
    ISDIR = 31
    LOOP = 32
    MFILE = 33
    MLINK = 34
    MSGSIZE = 35
    MULTIHOP = 36
    NAMETOOLONG = 37
    NETDOWN = 38
    NETRESET = 39
    NETUNREACH = 40
    NFILE = 41
    NOBUFS = 42
    NODEV = 43
    NOENT = 44
    NOEXEC = 45
    NOLCK = 46
    NOLINK = 47
    NOMEM = 48
    NOMSG = 49
    NOPROTOOPT = 50
    NOSPC = 51
    NOSYS = 52
    NOTCONN = 53
    NOTDIR = 54
    NOTEMPTY = 55
    NOTRECOVERABLE = 56
    NOTSOCK = 57
    NOTSUP = 58
    NOTTY = 59
    NXIO = 60
    OVERFLOW = 61
    OWNERDEAD = 62
    PERM = 63
    PIPE = 64
    PROTO = 65
    PROTONOSUPPORT = 66
    PROTOTYPE = 67
    RANGE = 68
    ROFS = 69
    SPIPE = 70
    SRCH = 71
    STALE = 72
    TIMEDOUT = 73
    TXTBSY = 74
    XDEV = 75
    NOTCAPABLE = 76


class ClockId(enum.IntEnum):
    REALTIME = 0
    MONOTONIC = 1
    PROCESS_CPUTIME_ID = 2
    THREAD_CPUTIME_ID = 3


class FileType(enum.IntEnum):
    UNKNOWN = 0
    BLOCK_DEVICE = 1
    CHARACTER_DEVICE = 2
    DIRECTORY = 3
    REGULAR_FILE = 4
    SOCKET_DGRAM = 5
    SOCKET_STREAM = 6
    SYMBOLIC_LINK = 7


class Whence(enum.IntEnum):
    SET = 0
    CUR = 1
    END = 2


class EventType(enum.IntEnum):
    CLOCK = 0
    FD_READ = 1
    FD_WRITE = 2


class Rights(enum.IntFlag):
    """Capabilities of a file descriptor (witx ``rights``, u64)."""

    FD_DATASYNC = 1 << 0
    FD_READ = 1 << 1
    FD_SEEK = 1 << 2
    FD_FDSTAT_SET_FLAGS = 1 << 3
    FD_SYNC = 1 << 4
    FD_TELL = 1 << 5
    FD_WRITE = 1 << 6
    FD_ADVISE = 1 << 7
    FD_ALLOCATE = 1 << 8
    PATH_CREATE_DIRECTORY = 1 << 9
    PATH_CREATE_FILE = 1 << 10
    PATH_LINK_SOURCE = 1 << 11
    PATH_LINK_TARGET = 1 << 12
    PATH_OPEN = 1 << 13
    FD_READDIR = 1 << 14
    PATH_READLINK = 1 << 15
    PATH_RENAME_SOURCE = 1 << 16
    PATH_RENAME_TARGET = 1 << 17
    PATH_FILESTAT_GET = 1 << 18
    PATH_FILESTAT_SET_SIZE = 1 << 19
    PATH_FILESTAT_SET_TIMES = 1 << 20
    FD_FILESTAT_GET = 1 << 21
    FD_FILESTAT_SET_SIZE = 1 << 22
    FD_FILESTAT_SET_TIMES = 1 << 23
    PATH_SYMLINK = 1 << 24
    PATH_REMOVE_DIRECTORY = 1 << 25
    PATH_UNLINK_FILE = 1 << 26
    POLL_FD_READWRITE = 1 << 27
    SOCK_SHUTDOWN = 1 << 28
    SOCK_ACCEPT = 1 << 29


class FdFlags(enum.IntFlag):
    """File descriptor flags (witx ``fdflags``, u16)."""

    APPEND = 1 << 0
    DSYNC = 1 << 1
    NONBLOCK = 1 << 2
    RSYNC = 1 << 3
    SYNC = 1 << 4


class OFlags(enum.IntFlag):
    """``path_open``'s open flags (witx ``oflags``, u16)."""

    CREAT = 1 << 0
    DIRECTORY = 1 << 1
    EXCL = 1 << 2
    TRUNC = 1 << 3


LOOKUP_SYMLINK_FOLLOW = 1 << 0  # witx ``lookupflags``
ALL_OFLAGS = (1 << 4) - 1
ALL_FDFLAGS = (1 << 5) - 1
ALL_FSTFLAGS = (1 << 4) - 1  # atim, atim_now, mtim, mtim_now
FSTFLAGS_ATIM = 1 << 0
FSTFLAGS_ATIM_NOW = 1 << 1
FSTFLAGS_MTIM = 1 << 2
FSTFLAGS_MTIM_NOW = 1 << 3
ALL_SDFLAGS = (1 << 2) - 1  # rd, wr
ADVICE_COUNT = 6  # normal, sequential, random, willneed, dontneed, noreuse
SUBCLOCKFLAGS_ABSTIME = 1 << 0
EVENTRWFLAGS_HANGUP = 1 << 0

# Memory layouts. Padding is spelled out so that ``size`` equals the witx size.
CIOVEC = struct.Struct("<II")  # buf, buf_len (iovec has the same layout)
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
FDSTAT = struct.Struct("<BxHxxxxQQ")  # filetype, flags, rights_base, rights_inheriting
FILESTAT = struct.Struct("<QQB7xQQQQQ")  # dev, ino, filetype, nlink, size, atim, mtim, ctim
PRESTAT = struct.Struct("<B3xI")  # tag (0: a directory), the directory name's length
DIRENT_SIZE = 24  # d_next u64, d_ino u64, d_namlen u32, d_type u8, padding
# subscription: userdata, tag, then the union at offset 16. For clock: id, timeout, precision,
# flags; for fd_read/fd_write the fd sits where the clock id is.
SUBSCRIPTION = struct.Struct("<QB7xI4xQQH6x")
EVENT = struct.Struct("<QHB5xQH6x")  # userdata, error, type, fd_readwrite.nbytes, .flags


def _signature(params: str) -> FuncType:
    """``"iI"`` -> ``[i32 i64] -> [i32]``: every preview1 function returns an errno."""
    kinds = {"i": ValType.I32, "I": ValType.I64}
    return FuncType(tuple(kinds[c] for c in params), (ValType.I32,))


# The core Wasm type of every preview1 function, as clang lowers the witx: handles, sizes,
# pointers and small enums/flags are i32; u64 values (filesize, timestamp, rights, dircookie,
# filedelta) are i64; strings and arrays are (pointer, length); results go through pointers.
SIGNATURES: dict[str, FuncType] = {
    "args_get": _signature("ii"),
    "args_sizes_get": _signature("ii"),
    "environ_get": _signature("ii"),
    "environ_sizes_get": _signature("ii"),
    "clock_res_get": _signature("ii"),
    "clock_time_get": _signature("iIi"),
    "fd_advise": _signature("iIIi"),
    "fd_allocate": _signature("iII"),
    "fd_close": _signature("i"),
    "fd_datasync": _signature("i"),
    "fd_fdstat_get": _signature("ii"),
    "fd_fdstat_set_flags": _signature("ii"),
    "fd_fdstat_set_rights": _signature("iII"),
    "fd_filestat_get": _signature("ii"),
    "fd_filestat_set_size": _signature("iI"),
    "fd_filestat_set_times": _signature("iIIi"),
    "fd_pread": _signature("iiiIi"),
    "fd_prestat_get": _signature("ii"),
    "fd_prestat_dir_name": _signature("iii"),
    "fd_pwrite": _signature("iiiIi"),
    "fd_read": _signature("iiii"),
    "fd_readdir": _signature("iiiIi"),
    "fd_renumber": _signature("ii"),
    "fd_seek": _signature("iIii"),
    "fd_sync": _signature("i"),
    "fd_tell": _signature("ii"),
    "fd_write": _signature("iiii"),
    "path_create_directory": _signature("iii"),
    "path_filestat_get": _signature("iiiii"),
    "path_filestat_set_times": _signature("iiiiIIi"),
    "path_link": _signature("iiiiiii"),
    "path_open": _signature("iiiiiIIii"),
    "path_readlink": _signature("iiiiii"),
    "path_remove_directory": _signature("iii"),
    "path_rename": _signature("iiiiii"),
    "path_symlink": _signature("iiiii"),
    "path_unlink_file": _signature("iii"),
    "poll_oneoff": _signature("iiii"),
    "proc_exit": FuncType((ValType.I32,), ()),  # noreturn: no errno result
    "proc_raise": _signature("i"),
    "sched_yield": _signature(""),
    "random_get": _signature("ii"),
    "sock_accept": _signature("iii"),
    "sock_recv": _signature("iiiiii"),
    "sock_send": _signature("iiiii"),
    "sock_shutdown": _signature("ii"),
}
