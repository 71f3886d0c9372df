"""The guest's file descriptor table: the console, and the directories and files the host
holds for it.

The three console streams (0 stdin, 1 stdout, 2 stderr) cannot seek or tell; each is a
character device when it reaches a terminal (what wasi-libc's ``isatty`` tests) and of
unknown type otherwise, as in wasmtime. A ``FileDescriptor`` is a preopened directory, or
what ``path_open`` opened beneath one: the host's file broker holds it under ``handle``.
The guest may close, renumber and drop rights from any of them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .abi import ALL_FDFLAGS, FileType, Rights


class ConsoleStream(enum.IntEnum):
    """Which console stream a descriptor reads or writes. The value is the POSIX fd number
    the stream starts on, and what ``write_console`` is told (1 or 2)."""

    STDIN = 0
    STDOUT = 1
    STDERR = 2


_COMMON_RIGHTS = Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_FILESTAT_GET | Rights.POLL_FD_READWRITE
# No FD_SEEK or FD_TELL: their absence is what makes wasi-libc's isatty() answer yes.
STDIN_RIGHTS = int(Rights.FD_READ | _COMMON_RIGHTS)
OUTPUT_RIGHTS = int(Rights.FD_WRITE | _COMMON_RIGHTS)


@dataclass(slots=True)
class ConsoleDescriptor:
    """One open descriptor. ``rights_base`` only ever shrinks (``fd_fdstat_set_rights``)."""

    stream: ConsoleStream
    rights_base: int
    rights_inheriting: int = 0  # nothing can be opened through a console
    flags: int = 0  # fdflags as last set by fd_fdstat_set_flags
    filetype: FileType = FileType.CHARACTER_DEVICE

    @property
    def readable(self) -> bool:
        return self.stream is ConsoleStream.STDIN

    @property
    def writable(self) -> bool:
        return self.stream is not ConsoleStream.STDIN


def standard_descriptors() -> dict[int, ConsoleDescriptor]:
    """A fresh table with stdin, stdout and stderr open on fds 0, 1 and 2."""
    return {
        0: ConsoleDescriptor(ConsoleStream.STDIN, STDIN_RIGHTS),
        1: ConsoleDescriptor(ConsoleStream.STDOUT, OUTPUT_RIGHTS),
        2: ConsoleDescriptor(ConsoleStream.STDERR, OUTPUT_RIGHTS),
    }


_STREAM_RIGHTS = {
    ConsoleStream.STDIN: STDIN_RIGHTS,
    ConsoleStream.STDOUT: OUTPUT_RIGHTS,
    ConsoleStream.STDERR: OUTPUT_RIGHTS,
}
_MAX_FD = 0xFFFFFFFF


def table_state(table: dict[int, ConsoleDescriptor]) -> list[list[int]]:
    """The table as plain data, for a snapshot: ``[fd, stream, rights, inheriting, flags]``."""
    return [
        [fd, d.stream.value, d.rights_base, d.rights_inheriting, d.flags]
        for fd, d in sorted(table.items())
    ]


def table_from_state(entries: object) -> dict[int, ConsoleDescriptor]:
    """The table ``table_state`` describes, if a guest could have made it from the standard
    one (each stream open at most once, rights only dropped, known flags); ``ValueError``."""
    if not isinstance(entries, list) or len(entries) > len(_STREAM_RIGHTS):
        raise ValueError("descriptors must be a list of at most three entries")
    table: dict[int, ConsoleDescriptor] = {}
    seen: set[ConsoleStream] = set()
    for entry in entries:
        if (
            not isinstance(entry, list)
            or len(entry) != 5
            or not all(type(part) is int and part >= 0 for part in entry)
        ):
            raise ValueError(f"a descriptor must be five unsigned integers, not {entry!r}")
        fd, stream_number, rights_base, rights_inheriting, flags = entry
        if fd > _MAX_FD or fd in table or stream_number not in _STREAM_RIGHTS:
            raise ValueError(f"descriptor {fd} on stream {stream_number} cannot exist")
        stream = ConsoleStream(stream_number)
        if stream in seen:
            raise ValueError(f"stream {stream.name} is open twice")
        if rights_base & ~_STREAM_RIGHTS[stream] or rights_inheriting or flags & ~ALL_FDFLAGS:
            raise ValueError(f"descriptor {fd} has rights or flags its stream never had")
        seen.add(stream)
        table[fd] = ConsoleDescriptor(stream, rights_base, rights_inheriting, flags)
    return table


# What a directory or a regular file can ever do (wasmtime gives the same sets).
DIRECTORY_RIGHTS = int(
    Rights.FD_FDSTAT_SET_FLAGS
    | Rights.FD_SYNC
    | Rights.FD_DATASYNC
    | Rights.PATH_CREATE_DIRECTORY
    | Rights.PATH_CREATE_FILE
    | Rights.PATH_LINK_SOURCE
    | Rights.PATH_LINK_TARGET
    | Rights.PATH_OPEN
    | Rights.FD_READDIR
    | Rights.PATH_READLINK
    | Rights.PATH_RENAME_SOURCE
    | Rights.PATH_RENAME_TARGET
    | Rights.PATH_FILESTAT_GET
    | Rights.PATH_FILESTAT_SET_SIZE
    | Rights.PATH_FILESTAT_SET_TIMES
    | Rights.FD_FILESTAT_GET
    | Rights.FD_FILESTAT_SET_TIMES
    | Rights.PATH_SYMLINK
    | Rights.PATH_REMOVE_DIRECTORY
    | Rights.PATH_UNLINK_FILE
)
FILE_RIGHTS = int(
    Rights.FD_DATASYNC
    | Rights.FD_READ
    | Rights.FD_SEEK
    | Rights.FD_FDSTAT_SET_FLAGS
    | Rights.FD_SYNC
    | Rights.FD_TELL
    | Rights.FD_WRITE
    | Rights.FD_ADVISE
    | Rights.FD_ALLOCATE
    | Rights.FD_FILESTAT_GET
    | Rights.FD_FILESTAT_SET_SIZE
    | Rights.FD_FILESTAT_SET_TIMES
    | Rights.POLL_FD_READWRITE
)
# What changes a directory or file: a read-only preopen, and all beneath it, never has it.
CHANGE_RIGHTS = int(
    Rights.FD_WRITE
    | Rights.FD_ALLOCATE
    | Rights.FD_FILESTAT_SET_SIZE
    | Rights.FD_FILESTAT_SET_TIMES
    | Rights.PATH_CREATE_DIRECTORY
    | Rights.PATH_CREATE_FILE
    | Rights.PATH_LINK_SOURCE
    | Rights.PATH_LINK_TARGET
    | Rights.PATH_RENAME_SOURCE
    | Rights.PATH_RENAME_TARGET
    | Rights.PATH_FILESTAT_SET_SIZE
    | Rights.PATH_FILESTAT_SET_TIMES
    | Rights.PATH_SYMLINK
    | Rights.PATH_REMOVE_DIRECTORY
    | Rights.PATH_UNLINK_FILE
)


@dataclass(slots=True)
class FileDescriptor:
    """A directory or file the host holds for the guest (``handle``, its file broker's
    number for it). ``preopen``: the name a preopened directory is known by."""

    handle: int
    filetype: FileType
    rights_base: int
    rights_inheriting: int
    flags: int = 0
    preopen: bytes | None = None

    @property
    def directory(self) -> bool:
        return self.filetype is FileType.DIRECTORY

    @property
    def readable(self) -> bool:
        return bool(self.rights_base & Rights.FD_READ)

    @property
    def writable(self) -> bool:
        return bool(self.rights_base & Rights.FD_WRITE)


def preopened_directory(handle: int, name: bytes, read_only: bool) -> FileDescriptor:
    """A preopened directory's descriptor: every directory right and, for what is opened
    in it, every right (without the ones that change anything, when it is read-only)."""
    keep = ~CHANGE_RIGHTS if read_only else -1
    return FileDescriptor(
        handle,
        FileType.DIRECTORY,
        DIRECTORY_RIGHTS & keep,
        (DIRECTORY_RIGHTS | FILE_RIGHTS) & keep,
        preopen=name,
    )
