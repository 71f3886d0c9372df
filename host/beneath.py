"""Resolving a guest's path beneath a directory: ``openat2`` with ``RESOLVE_BENEATH``.

::

    open_beneath(dirfd, b"a/b/c", flags)      one openat2 system call: the kernel walks the
        RESOLVE_BENEATH                       path and fails EXDEV if any step (``..``, an
        RESOLVE_NO_MAGICLINKS                 absolute path, a symlink's target) would leave
                                              dirfd, ELOOP on /proc/self/... magic links

Every path a guest names is resolved here, by the kernel, at the moment of use: there is no
check-then-use window (a directory swapped for a symlink between two calls is resolved
afresh, and beneath, on the second). Python has no ``openat2`` (3.11/3.12), so it is called
through ``syscall(2)`` with ctypes; ``utimensat`` likewise, for its ``UTIME_OMIT``.
Linux x86_64 only (system call 437, Linux 5.6), like the rest of Kindling's sandbox.
"""

from __future__ import annotations

import ctypes
import errno
import os

SYS_OPENAT2 = 437  # x86_64
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_SYMLINK_NOFOLLOW = 0x100


class EscapeError(OSError):
    """The path would leave the directory it is resolved beneath (the kernel's EXDEV)."""


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t)
_utimensat = _libc.utimensat
_utimensat.restype = ctypes.c_int
_utimensat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)


def _raise_errno(what: str) -> None:
    code = ctypes.get_errno()
    if code == errno.EXDEV:
        raise EscapeError(code, f"{what}: the path leaves its directory")
    raise OSError(code, f"{what}: {os.strerror(code)}")


def open_beneath(dirfd: int, path: bytes, flags: int, mode: int = 0) -> int:
    """A new descriptor for ``path`` resolved beneath ``dirfd`` (``O_CLOEXEC`` always);
    ``EscapeError`` if it would leave it, ``OSError`` as ``openat`` fails otherwise."""
    mode = mode if flags & os.O_CREAT else 0  # openat2 refuses a mode it would not use
    how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    fd = _syscall(SYS_OPENAT2, dirfd, path, ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        _raise_errno("openat2")
    return int(fd)


def set_times(
    dirfd: int,
    path: bytes | None,
    atime: int | None,
    mtime: int | None,
    *,
    follow: bool = True,
    now_atime: bool = False,
    now_mtime: bool = False,
) -> None:
    """``utimensat``: each time in nanoseconds, None to leave it, or ``now_*`` for the
    current time. ``path`` None: ``dirfd`` itself (any descriptor, even ``O_PATH``)."""
    times = (_Timespec * 2)()
    for slot, value, now in ((0, atime, now_atime), (1, mtime, now_mtime)):
        if now:
            times[slot].tv_sec, times[slot].tv_nsec = 0, UTIME_NOW
        elif value is None:
            times[slot].tv_sec, times[slot].tv_nsec = 0, UTIME_OMIT
        else:
            times[slot].tv_sec, times[slot].tv_nsec = divmod(value, 1_000_000_000)
    if path is None:
        # The descriptor itself, through its /proc link: the host's own, never a guest's.
        target, flags = f"/proc/self/fd/{dirfd}".encode(), 0
        result = _utimensat(-100, target, times, flags)  # AT_FDCWD
    else:
        result = _utimensat(dirfd, path, times, 0 if follow else AT_SYMLINK_NOFOLLOW)
    if result != 0:
        _raise_errno("utimensat")
