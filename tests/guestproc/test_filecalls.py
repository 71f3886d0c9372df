"""Writes sent ahead of their answers (``guestproc.filecalls``), over real pipes: the test
plays the host, reading the guest's ``FileCall`` frames and writing ``FileAnswer``s."""

from __future__ import annotations

import fcntl
import os
import termios
from collections.abc import Iterator

import pytest

from guestproc.channel import Channel
from guestproc.filecalls import FileCalls
from protocol import messages as msg
from protocol.frames import encode_frame, read_frame, write_all
from protocol.messages import GUEST_FRAME_CAP, MAX_FILE_CALLS, FileOp

NOSPC = 51  # WASI preview1's ENOSPC
REQUEST = 7


class Host:
    """The host's ends of the two pipes."""

    def __init__(self) -> None:
        self.guest_reads, self.to_guest = os.pipe()
        self.from_guest, self.guest_writes = os.pipe()
        os.set_blocking(self.from_guest, False)

    def answer(self, *errnos: int) -> None:
        """Queue an answer per errno, in order, before the guest asks for them."""
        for errno in errnos:
            answer = msg.FileAnswer(id=REQUEST, errno=errno, numbers=[] if errno else [1])
            write_all(self.to_guest, encode_frame(answer.wire()))

    def calls(self) -> list[tuple[FileOp, int]]:
        """The calls the guest has sent so far: (op, handle) each."""
        sent: list[tuple[FileOp, int]] = []
        while True:
            try:
                frame = read_frame(self.from_guest, GUEST_FRAME_CAP)
            except (BlockingIOError, EOFError):
                return sent
            sent.append((FileOp(frame["op"]), frame["handle"]))

    def unread_answers(self) -> int:
        """How many bytes of answers the guest has not read."""
        count = bytearray(4)
        fcntl.ioctl(self.guest_reads, termios.FIONREAD, count)
        return int.from_bytes(count, "little")

    def close(self) -> None:
        for fd in (self.guest_reads, self.to_guest, self.from_guest, self.guest_writes):
            os.close(fd)


@pytest.fixture
def host() -> Iterator[Host]:
    ends = Host()
    yield ends
    ends.close()


@pytest.fixture
def calls(host: Host) -> FileCalls:
    files = FileCalls(Channel(host.guest_reads, host.guest_writes))
    files.request_id = REQUEST
    return files


def test_writes_go_ahead_until_the_window_is_full(host: Host, calls: FileCalls) -> None:
    host.answer(*[0] * MAX_FILE_CALLS)
    waiting = host.unread_answers()
    for _ in range(MAX_FILE_CALLS - 1):
        assert calls.write_ahead(FileOp.WRITE, 5, [], b"data") == 0
    assert host.unread_answers() == waiting  # not one answer waited for
    assert calls.write_ahead(FileOp.WRITE, 5, [], b"data") == 0
    assert host.unread_answers() < waiting  # the window is full: the oldest answer is taken
    calls.settle()
    assert host.unread_answers() == 0
    assert host.calls() == [(FileOp.WRITE, 5)] * MAX_FILE_CALLS


def test_a_call_takes_the_answers_of_the_writes_before_it(host: Host, calls: FileCalls) -> None:
    host.answer(0, 0, 0)
    calls.write_ahead(FileOp.WRITE, 5, [], b"a")
    calls.write_ahead(FileOp.PWRITE, 5, [10], b"b")
    assert calls.call(FileOp.SEEK, 5, b"", 0, b"", [0, 1], b"") == (0, [1], b"")
    assert host.calls() == [(FileOp.WRITE, 5), (FileOp.PWRITE, 5), (FileOp.SEEK, 5)]


def test_a_failed_write_is_reported_by_the_next_write_of_its_descriptor(
    host: Host, calls: FileCalls
) -> None:
    host.answer(0, NOSPC, 0)
    for handle in (5, 5, 6):
        assert calls.write_ahead(FileOp.WRITE, handle, [], b"x") == 0
    calls.settle()
    assert host.calls() == [(FileOp.WRITE, 5), (FileOp.WRITE, 5), (FileOp.WRITE, 6)]
    host.answer(0)
    assert calls.write_ahead(FileOp.WRITE, 6, [], b"x") == 0  # another descriptor: unaffected
    assert calls.write_ahead(FileOp.WRITE, 5, [], b"x") == NOSPC
    calls.settle()
    assert host.calls() == [(FileOp.WRITE, 6)]  # the failing write sent nothing
    host.answer(0)
    assert calls.write_ahead(FileOp.WRITE, 5, [], b"x") == 0  # reported once
    calls.settle()


def test_sync_reports_a_failed_write_and_close_reports_it_having_closed(
    host: Host, calls: FileCalls
) -> None:
    host.answer(NOSPC, NOSPC)
    calls.write_ahead(FileOp.WRITE, 5, [], b"x")
    calls.write_ahead(FileOp.WRITE, 6, [], b"x")
    assert calls.call(FileOp.SYNC, 5, b"", 0, b"", [], b"")[0] == NOSPC
    assert host.calls() == [(FileOp.WRITE, 5), (FileOp.WRITE, 6)]  # no sync was sent
    host.answer(0)
    assert calls.call(FileOp.CLOSE, 6, b"", 0, b"", [], b"")[0] == NOSPC
    assert host.calls() == [(FileOp.CLOSE, 6)]  # closed all the same
