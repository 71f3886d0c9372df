"""A guest's calls to the host's file broker, with writes sent ahead of their answers.

::

    fd_write(5, ...)  ──▶ write_ahead ──▶ FileCall(write)        no wait: counted whole
    fd_write(5, ...)  ──▶ write_ahead ──▶ FileCall(write)        (at most MAX_FILE_CALLS
    fd_seek(5, ...)   ──▶ call ──▶ settle ◀── FileAnswer x 2     unanswered at once)
                                 ──▶ FileCall(seek) ◀── FileAnswer

A write to a regular file that streams through a preopen would otherwise wait a round trip
through a host worker thread per 64 KiB, twice as slow as stdout, which needs no answer. So
such a write is sent and counted as written; the host serves a guest's calls one at a time
in the order they came and writes each such write whole (or answers why not). An answer is
read when the window is full, or before any call whose answer the program needs, and before
the request's reply, so every write is on the host's disk when the program has ended.

A write sent ahead that failed (``ENOSPC``, ``EFBIG``, ``EIO``) is reported by the next
write, sync or close of the same descriptor, as a kernel reports a failed write-back at the
next ``fsync`` or ``close``. Writes with ``O_SYNC``-like flags are not sent ahead
(``guestproc.wasi.files``).
"""

from __future__ import annotations

from collections import deque

from protocol import messages as msg

from .channel import Channel, HostProtocolError

_LATE_ERRORS_REPORTED_BY = frozenset(
    {msg.FileOp.WRITE, msg.FileOp.PWRITE, msg.FileOp.SYNC, msg.FileOp.DATASYNC}
)
"""Calls that report, instead of doing anything, an earlier write's failure on their handle
(a close reports it too, but closes all the same)."""


class FileCalls:
    """``FileCall`` frames for the request being served (``request_id``), and their answers."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self.request_id = 0
        # Handles of the writes sent ahead, oldest first (``Replies.send`` looks before settling).
        self.ahead: deque[int] = deque()
        self._failed: dict[int, int] = {}  # handle: errno of a write sent ahead that failed

    def call(
        self,
        op: str,
        handle: int,
        path: bytes,
        handle2: int,
        path2: bytes,
        numbers: list[int],
        data: bytes,
    ) -> tuple[int, list[int], bytes]:
        """WASI's ``call_files``: one ``FileCall`` and its answer (errno, numbers, data)."""
        file_op = msg.FileOp(op)
        self.settle()
        late = self._failed.pop(handle, 0) if file_op in _LATE_ERRORS_REPORTED_BY else 0
        if late:
            return late, [], b""
        self._channel.send(
            msg.FileCall(
                id=self.request_id,
                op=file_op,
                handle=handle,
                path=path,
                handle2=handle2,
                path2=path2,
                numbers=_unsigned(numbers),
                data=data,
            )
        )
        reply = self._answer()
        if file_op is msg.FileOp.CLOSE:
            late = self._failed.pop(handle, 0)
            if late:
                return late, [], b""  # closed, and its last writes did not all land
        return reply.errno, reply.numbers, reply.data

    def write_ahead(self, op: str, handle: int, numbers: list[int], data: bytes) -> int:
        """WASI's ``write_ahead``: send a write (or pwrite) to a regular file and count it
        whole without waiting for its answer; the errno of an earlier write to ``handle``
        that failed instead (this one is not sent then)."""
        late = self._failed.pop(handle, 0)
        if late:
            return late
        call = msg.FileCall(
            id=self.request_id,
            op=msg.FileOp(op),
            handle=handle,
            numbers=_unsigned(numbers),
            data=data,
        )
        self._channel.send(call)
        self.ahead.append(handle)
        if len(self.ahead) >= msg.MAX_FILE_CALLS:
            self._take_ahead()
        return 0

    def settle(self) -> None:
        """Take the answers to every write sent ahead (the host has done them all then)."""
        while self.ahead:
            self._take_ahead()

    def _take_ahead(self) -> None:
        handle = self.ahead.popleft()
        errno = self._answer().errno
        if errno:
            self._failed.setdefault(handle, errno)

    def _answer(self) -> msg.FileAnswer:
        reply = self._channel.expect(msg.FileAnswer)
        if reply.id != self.request_id:
            raise HostProtocolError("FileAnswer does not answer the FileCall")
        return reply


def _unsigned(numbers: list[int]) -> list[int]:
    return [n & msg.U64_MAX for n in numbers]
