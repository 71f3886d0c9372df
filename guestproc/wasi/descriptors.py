"""The guest's file descriptor table: the console and nothing else.

A Kindling guest has no filesystem and no network, so the only descriptors that ever exist are
the three console streams it starts with (0 stdin, 1 stdout, 2 stderr). The guest may close
them, renumber them and drop rights from them; it can never open new ones.

Each console descriptor is a character device that cannot seek or tell. That is exactly what
wasi-libc's ``isatty`` tests, so stdout is line-buffered as on a terminal and an interactive
guest's output appears line by line.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .abi import FileType, Rights


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
