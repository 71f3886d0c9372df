"""Preopened directories and the files in them: preview1's file functions, brokered.

::

    path_open(3, "a/b", ...) ──▶ rights checked here ──▶ call_files(FileOp.OPEN, handle, ...)
                                                            │  a FileCall frame; the host
    fd 5 = FileDescriptor(handle 7) ◀── errno, numbers ◀────┘  resolves beneath the preopen

The guest process cannot open a path (its seccomp filter has no ``openat``), so the host
does every file operation for it (``host.filebroker``), through the ``call_files`` callable
the guest process supplies. What is checked here -- descriptors, rights, enum values,
addresses -- is checked for the program's sake, in the order ``environment`` gives; the host
checks again whatever confinement rests on (paths beneath the preopen, read-only), since it
trusts nothing a guest says.

Rights follow preview1: a preopen has every directory right (without those that change
anything, when read-only), and what ``path_open`` opens gets the rights asked for that its
directory may hand on (``rights_inheriting``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .abi import (
    ADVICE_COUNT,
    ALL_FDFLAGS,
    ALL_OFLAGS,
    FDSTAT,
    FILESTAT,
    PRESTAT,
    U32,
    U64,
    Errno,
    FdFlags,
    FileType,
    OFlags,
    Rights,
    Whence,
)
from .descriptors import DIRECTORY_RIGHTS, FILE_RIGHTS, ConsoleDescriptor, FileDescriptor


class FileOp:
    """The host's file operations by name: the values of ``protocol.messages.FileOp``, which
    says what each takes and gives (this package imports no protocol; a test checks that the
    two agree)."""

    OPEN = "open"
    CLOSE = "close"
    READ = "read"
    PREAD = "pread"
    WRITE = "write"
    PWRITE = "pwrite"
    SEEK = "seek"
    SET_FLAGS = "set_flags"
    FILESTAT = "filestat"
    SET_SIZE = "set_size"
    SET_TIMES = "set_times"
    ADVISE = "advise"
    ALLOCATE = "allocate"
    SYNC = "sync"
    DATASYNC = "datasync"
    READDIR = "readdir"
    PATH_FILESTAT = "path_filestat"
    PATH_SET_TIMES = "path_set_times"
    MKDIR = "mkdir"
    RMDIR = "rmdir"
    UNLINK = "unlink"
    RENAME = "rename"
    LINK = "link"
    SYMLINK = "symlink"
    READLINK = "readlink"


FILE_CHUNK = 64 * 1024
"""The most bytes one call reads or writes (``protocol.messages.FILE_CHUNK``)."""

CallFiles = Callable[[str, int, bytes, int, bytes, list[int], bytes], tuple[int, list[int], bytes]]
"""``call_files(op, handle, path, handle2, path2, numbers, data)`` -> ``(errno, numbers,
data)``: one call to the host's file broker (a ``FileCall`` frame)."""

WriteAhead = Callable[[str, int, list[int], bytes], int]
"""``write_ahead(op, handle, numbers, data)`` -> errno: a write or pwrite to a regular file
sent without waiting for its answer and counted whole, or the errno of an earlier one to
``handle`` that failed (then nothing is sent)."""

_SYNCED_WRITES = FdFlags.DSYNC | FdFlags.RSYNC | FdFlags.SYNC


SUCCESS = Errno.SUCCESS.value
BADF = Errno.BADF.value
FAULT = Errno.FAULT.value
INVAL = Errno.INVAL.value
NOTCAPABLE = Errno.NOTCAPABLE.value
NOTDIR = Errno.NOTDIR.value
ISDIR = Errno.ISDIR.value
NAMETOOLONG = Errno.NAMETOOLONG.value
SPIPE = Errno.SPIPE.value
MFILE = Errno.MFILE.value

MAX_DESCRIPTORS = 1024
"""The most descriptors a guest's table holds (the host holds fewer files open for it)."""

_WRITE_ACCESS = Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE
_READ_ACCESS = Rights.FD_READ | Rights.FD_READDIR


def scatter(data: bytearray, iovecs: Sequence[tuple[int, int]], payload: bytes) -> None:
    """Copy ``payload`` into the buffers ``iovecs`` (in bounds) name, in order."""
    position = 0
    for buf, buf_len in iovecs:
        if position == len(payload):
            break
        count = min(buf_len, len(payload) - position)
        data[buf : buf + count] = payload[position : position + count]
        position += count


def _no_files(*_: object) -> tuple[int, list[int], bytes]:
    return BADF, [], b""


Descriptor = ConsoleDescriptor | FileDescriptor


class BrokeredFiles:
    """The file side of ``WasiEnvironment`` (its base): the methods named ``file_*`` serve
    a preview1 function for a ``FileDescriptor``; the ``path_*`` functions are here whole."""

    _fds: dict[int, Descriptor]
    _data: bytearray
    _pay: Callable[[int], object] | None
    _call_files: CallFiles
    _write_ahead: WriteAhead | None

    def _fits(self, address: int, size: int) -> bool:
        return address + size <= len(self._data)

    def _install_preopens(self, preopens: Sequence[tuple[bytes, bool]]) -> None:
        from .descriptors import preopened_directory

        for handle, (name, read_only) in enumerate(preopens):
            self._fds[3 + handle] = preopened_directory(handle, name, read_only)

    def _call(
        self,
        op: str,
        handle: int,
        path: bytes = b"",
        numbers: Sequence[int] = (),
        data: bytes = b"",
        handle2: int = 0,
        path2: bytes = b"",
    ) -> tuple[int, list[int], bytes]:
        return self._call_files(op, handle, path, handle2, path2, list(numbers), data)

    def _put_counted(
        self, answer: tuple[int, list[int], bytes], buf_ptr: int, count_ptr: int, limit: int
    ) -> int:
        """A call's bytes (at most ``limit``) at ``buf_ptr`` and their count at
        ``count_ptr`` (both in bounds), if it succeeded; its errno."""
        errno, _, payload = answer
        if errno == SUCCESS:
            payload = payload[:limit]
            self._data[buf_ptr : buf_ptr + len(payload)] = payload
            U32.pack_into(self._data, count_ptr, len(payload))
        return errno

    def _new_fd(self) -> int | None:
        if len(self._fds) >= MAX_DESCRIPTORS:
            return None
        fd = 0
        while fd in self._fds:
            fd += 1
        return fd

    def _path(self, ptr: int, length: int) -> bytes | None:
        if not self._fits(ptr, length):
            return None
        return bytes(self._data[ptr : ptr + length])

    def _directory(self, fd: int, right: int) -> FileDescriptor | int:
        """The directory ``fd`` names, or the errno: BADF, NOTDIR, NOTCAPABLE."""
        descriptor = self._fds.get(fd)
        if not isinstance(descriptor, FileDescriptor):
            return BADF  # a console, as wasmtime answers for its stdio
        if not descriptor.directory:
            return NOTDIR
        if not descriptor.rights_base & right:
            return NOTCAPABLE
        return descriptor

    def _path_call(
        self,
        fd: int,
        right: int,
        op: str,
        path_ptr: int,
        path_len: int,
        numbers: Sequence[int] = (),
    ) -> tuple[int, list[int], bytes]:
        directory = self._directory(fd, right)
        if isinstance(directory, int):
            return directory, [], b""
        path = self._path(path_ptr, path_len)
        if path is None:
            return FAULT, [], b""
        return self._call(op, directory.handle, path, numbers)

    # -- preopens -------------------------------------------------------------------------------

    def fd_prestat_get(self, fd: int, result_ptr: int) -> int:
        descriptor = self._fds.get(fd)
        if not isinstance(descriptor, FileDescriptor) or descriptor.preopen is None:
            return BADF  # wasi-libc's preopen scan stops at the first BADF
        if not self._fits(result_ptr, PRESTAT.size):
            return FAULT
        PRESTAT.pack_into(self._data, result_ptr, 0, len(descriptor.preopen))
        return SUCCESS

    def fd_prestat_dir_name(self, fd: int, path_ptr: int, path_len: int) -> int:
        descriptor = self._fds.get(fd)
        if not isinstance(descriptor, FileDescriptor) or descriptor.preopen is None:
            return BADF
        name = descriptor.preopen
        if path_len < len(name):
            return NAMETOOLONG
        if not self._fits(path_ptr, len(name)):
            return FAULT
        self._data[path_ptr : path_ptr + len(name)] = name
        return SUCCESS

    # -- descriptors that are files or directories ---------------------------------------------

    def file_close(self, fd: int, descriptor: FileDescriptor) -> int:
        del self._fds[fd]
        if descriptor.preopen is None:
            self._call(FileOp.CLOSE, descriptor.handle)
        return SUCCESS

    def file_read(
        self, d: FileDescriptor, iovecs: list[tuple[int, int]], offset: int | None
    ) -> tuple[int, int]:
        """Read into ``iovecs`` (checked in bounds); (errno, bytes read)."""
        if d.directory:
            return ISDIR, 0
        if not d.rights_base & Rights.FD_READ:
            return NOTCAPABLE, 0
        wanted = min(sum(length for _, length in iovecs), FILE_CHUNK)
        if offset is None:
            errno, _, payload = self._call(FileOp.READ, d.handle, numbers=[wanted])
        else:
            errno, _, payload = self._call(FileOp.PREAD, d.handle, numbers=[wanted, offset])
        if errno:
            return errno, 0
        payload = payload[:wanted]
        if self._pay is not None:
            self._pay(len(payload))
        scatter(self._data, iovecs, payload)
        return SUCCESS, len(payload)

    def file_write(
        self, d: FileDescriptor, chunks: Sequence[bytes | bytearray], offset: int | None
    ) -> tuple[int, int]:
        if d.directory:
            return ISDIR, 0
        if not d.rights_base & Rights.FD_WRITE:
            return NOTCAPABLE, 0
        data = b"".join(chunks)[:FILE_CHUNK]
        if self._pay is not None:
            self._pay(len(data))
        if (
            self._write_ahead is not None
            and d.filetype is FileType.REGULAR_FILE
            and not d.flags & _SYNCED_WRITES
        ):
            op, numbers = (FileOp.WRITE, []) if offset is None else (FileOp.PWRITE, [offset])
            errno = self._write_ahead(op, d.handle, numbers, data)
            return (errno, 0) if errno else (SUCCESS, len(data))
        if offset is None:
            errno, numbers, _ = self._call(FileOp.WRITE, d.handle, data=data)
        else:
            errno, numbers, _ = self._call(FileOp.PWRITE, d.handle, numbers=[offset], data=data)
        return (errno, 0) if errno else (SUCCESS, numbers[0])

    def file_fdstat(self, d: FileDescriptor, result_ptr: int) -> int:
        if not self._fits(result_ptr, FDSTAT.size):
            return FAULT
        FDSTAT.pack_into(
            self._data, result_ptr, d.filetype, d.flags, d.rights_base, d.rights_inheriting
        )
        return SUCCESS

    def file_set_flags(self, d: FileDescriptor, flags: int) -> int:
        if not d.rights_base & Rights.FD_FDSTAT_SET_FLAGS:
            return NOTCAPABLE
        if flags & ~ALL_FDFLAGS:
            return INVAL
        errno, _, _ = self._call(FileOp.SET_FLAGS, d.handle, numbers=[flags])
        if errno == SUCCESS:
            d.flags = flags
        return errno

    def file_filestat(self, d: FileDescriptor, result_ptr: int) -> int:
        if not d.rights_base & Rights.FD_FILESTAT_GET:
            return NOTCAPABLE
        if not self._fits(result_ptr, FILESTAT.size):
            return FAULT
        errno, numbers, _ = self._call(FileOp.FILESTAT, d.handle)
        if errno == SUCCESS:
            FILESTAT.pack_into(self._data, result_ptr, *numbers)
        return errno

    def file_seek(self, d: FileDescriptor, offset: int, whence: int, result_ptr: int) -> int:
        needed = Rights.FD_TELL if offset == 0 and whence == Whence.CUR else Rights.FD_SEEK
        if d.directory:
            return BADF
        if not d.rights_base & needed:
            return NOTCAPABLE
        if whence > Whence.END:
            return INVAL
        if not self._fits(result_ptr, 8):
            return FAULT
        errno, numbers, _ = self._call(FileOp.SEEK, d.handle, numbers=[offset, whence])
        if errno == SUCCESS:
            U64.pack_into(self._data, result_ptr, numbers[0])
        return errno

    def file_simple(
        self, d: FileDescriptor, right: int, op: str, numbers: Sequence[int] = ()
    ) -> int:
        """An operation with no result but its errno, after its right."""
        if not d.rights_base & right:
            return NOTCAPABLE
        return self._call(op, d.handle, numbers=numbers)[0]

    def file_advise(self, d: FileDescriptor, offset: int, length: int, advice: int) -> int:
        if not d.rights_base & Rights.FD_ADVISE:
            return NOTCAPABLE
        if advice >= ADVICE_COUNT:
            return INVAL
        return self._call(FileOp.ADVISE, d.handle, numbers=[offset, length, advice])[0]

    def file_readdir(
        self, d: FileDescriptor, buf_ptr: int, buf_len: int, cookie: int, result_ptr: int
    ) -> int:
        if not d.directory:
            return NOTDIR
        if not d.rights_base & Rights.FD_READDIR:
            return NOTCAPABLE
        if not (self._fits(buf_ptr, buf_len) and self._fits(result_ptr, 4)):
            return FAULT
        size = min(buf_len, FILE_CHUNK)
        answer = self._call(FileOp.READDIR, d.handle, numbers=[cookie, size])
        return self._put_counted(answer, buf_ptr, result_ptr, size)

    # -- paths -----------------------------------------------------------------------------------

    def path_open(
        self,
        fd: int,
        dirflags: int,
        path_ptr: int,
        path_len: int,
        oflags: int,
        rights_base: int,
        rights_inheriting: int,
        fdflags: int,
        result_ptr: int,
    ) -> int:
        directory = self._directory(fd, Rights.PATH_OPEN)
        if isinstance(directory, int):
            return directory
        if oflags & OFlags.CREAT and not directory.rights_base & Rights.PATH_CREATE_FILE:
            return NOTCAPABLE
        if oflags & OFlags.TRUNC and not directory.rights_base & Rights.PATH_FILESTAT_SET_SIZE:
            return NOTCAPABLE
        if oflags & ~ALL_OFLAGS or fdflags & ~ALL_FDFLAGS:
            return INVAL
        path = self._path(path_ptr, path_len)
        if path is None or not self._fits(result_ptr, 4):
            return FAULT
        new_fd = self._new_fd()
        if new_fd is None:
            return MFILE
        base = rights_base & directory.rights_inheriting
        inheriting = rights_inheriting & directory.rights_inheriting
        write = bool(base & _WRITE_ACCESS or fdflags & FdFlags.APPEND)
        read = bool(base & _READ_ACCESS)
        errno, numbers, _ = self._call(
            FileOp.OPEN,
            directory.handle,
            path,
            numbers=[dirflags, oflags, fdflags, int(read), int(write)],
        )
        if errno:
            return errno
        handle, filetype = numbers
        kind = FileType(filetype) if filetype < len(FileType) else FileType.UNKNOWN
        mask = DIRECTORY_RIGHTS if kind is FileType.DIRECTORY else FILE_RIGHTS
        self._fds[new_fd] = FileDescriptor(handle, kind, base & mask, inheriting, fdflags)
        U32.pack_into(self._data, result_ptr, new_fd)
        return SUCCESS

    def path_create_directory(self, fd: int, path_ptr: int, path_len: int) -> int:
        return self._path_call(fd, Rights.PATH_CREATE_DIRECTORY, FileOp.MKDIR, path_ptr, path_len)[
            0
        ]

    def path_remove_directory(self, fd: int, path_ptr: int, path_len: int) -> int:
        return self._path_call(fd, Rights.PATH_REMOVE_DIRECTORY, FileOp.RMDIR, path_ptr, path_len)[
            0
        ]

    def path_unlink_file(self, fd: int, path_ptr: int, path_len: int) -> int:
        return self._path_call(fd, Rights.PATH_UNLINK_FILE, FileOp.UNLINK, path_ptr, path_len)[0]

    def path_filestat_get(
        self, fd: int, flags: int, path_ptr: int, path_len: int, result_ptr: int
    ) -> int:
        if not self._fits(result_ptr, FILESTAT.size):
            return FAULT
        errno, numbers, _ = self._path_call(
            fd, Rights.PATH_FILESTAT_GET, FileOp.PATH_FILESTAT, path_ptr, path_len, [flags & 1]
        )
        if errno == SUCCESS:
            FILESTAT.pack_into(self._data, result_ptr, *numbers)
        return errno

    def path_filestat_set_times(
        self,
        fd: int,
        flags: int,
        path_ptr: int,
        path_len: int,
        atim: int,
        mtim: int,
        fst_flags: int,
    ) -> int:
        from .environment import _bad_fstflags

        if _bad_fstflags(fst_flags):
            return INVAL
        numbers = [flags & 1, atim, mtim, fst_flags]
        right = Rights.PATH_FILESTAT_SET_TIMES
        return self._path_call(fd, right, FileOp.PATH_SET_TIMES, path_ptr, path_len, numbers)[0]

    def path_readlink(
        self, fd: int, path_ptr: int, path_len: int, buf_ptr: int, buf_len: int, result_ptr: int
    ) -> int:
        if not (self._fits(buf_ptr, buf_len) and self._fits(result_ptr, 4)):
            return FAULT
        answer = self._path_call(fd, Rights.PATH_READLINK, FileOp.READLINK, path_ptr, path_len)
        return self._put_counted(answer, buf_ptr, result_ptr, buf_len)

    def _two_paths(
        self,
        op: str,
        fd: int,
        source_right: int,
        old: tuple[int, int],
        new_fd: int,
        target_right: int,
        new: tuple[int, int],
        numbers: Sequence[int] = (),
    ) -> int:
        source = self._directory(fd, source_right)
        if isinstance(source, int):
            return source
        target = self._directory(new_fd, target_right)
        if isinstance(target, int):
            return target
        old_path = self._path(*old)
        new_path = self._path(*new)
        if old_path is None or new_path is None:
            return FAULT
        return self._call(
            op, source.handle, old_path, numbers, handle2=target.handle, path2=new_path
        )[0]

    def path_rename(
        self,
        fd: int,
        old_path_ptr: int,
        old_path_len: int,
        new_fd: int,
        new_path_ptr: int,
        new_path_len: int,
    ) -> int:
        return self._two_paths(
            FileOp.RENAME,
            fd,
            Rights.PATH_RENAME_SOURCE,
            (old_path_ptr, old_path_len),
            new_fd,
            Rights.PATH_RENAME_TARGET,
            (new_path_ptr, new_path_len),
        )

    def path_link(
        self,
        old_fd: int,
        old_flags: int,
        old_path_ptr: int,
        old_path_len: int,
        new_fd: int,
        new_path_ptr: int,
        new_path_len: int,
    ) -> int:
        return self._two_paths(
            FileOp.LINK,
            old_fd,
            Rights.PATH_LINK_SOURCE,
            (old_path_ptr, old_path_len),
            new_fd,
            Rights.PATH_LINK_TARGET,
            (new_path_ptr, new_path_len),
            [old_flags & 1],
        )

    def path_symlink(
        self, old_path_ptr: int, old_path_len: int, fd: int, new_path_ptr: int, new_path_len: int
    ) -> int:
        directory = self._directory(fd, Rights.PATH_SYMLINK)
        if isinstance(directory, int):
            return directory
        text = self._path(old_path_ptr, old_path_len)
        path = self._path(new_path_ptr, new_path_len)
        if text is None or path is None:
            return FAULT
        return self._call(FileOp.SYMLINK, directory.handle, path, path2=text)[0]
