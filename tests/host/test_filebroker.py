"""The host's file broker on its own: what it refuses whatever a guest claims, and its fds.

A guest's own rights checks (``guestproc.wasi.files``) are for the program's sake; the
guest may be subverted, so these tests send ``FileCall``s straight to a ``FileTable`` as a
lying guest would (write access on a read-only preopen, paths out of it) and count the
host's descriptors.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guestproc.wasi import Errno
from guestproc.wasi import files as guest_files
from host import filebroker
from host.filebroker import WASI_ERRNO, FileTable, PreopenDirectory
from protocol.messages import FILE_CHUNK, MAX_FILE_CALLS, FileAnswer, FileCall, FileOp
from tests.framework.trees import tree_state

ROFS, NOTCAPABLE = Errno.ROFS.value, Errno.NOTCAPABLE.value


def call(table: FileTable, op: FileOp, handle: int = 0, **fields: Any) -> FileAnswer:
    fields.setdefault("numbers", [])
    return table.call(FileCall(id=1, op=op, handle=handle, **fields))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def granted(tmp_path: Path) -> Path:
    (tmp_path / "dir").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_bytes(b"data")
    (tmp_path / "link").symlink_to("file")
    return tmp_path


@pytest.fixture
def read_only(granted: Path) -> Iterator[FileTable]:
    table = FileTable([PreopenDirectory(str(granted), "/", read_only=True)])
    yield table
    table.close()


def test_the_errno_numbers_are_preview1s() -> None:
    expected = {e.name.replace("TOO_BIG", "2BIG"): e.value for e in Errno}
    assert expected == WASI_ERRNO


def test_the_guest_names_the_operations_the_protocol_declares() -> None:
    names = {value for name, value in vars(guest_files.FileOp).items() if name.isupper()}
    assert names == {op.value for op in FileOp}
    assert guest_files.FILE_CHUNK == FILE_CHUNK


CHANGES_BY_PATH = [
    (FileOp.OPEN, {"path": b"file", "numbers": [1, 0, 0, 1, 1]}),  # read and write
    (FileOp.OPEN, {"path": b"new", "numbers": [1, 1, 0, 1, 0]}),  # create
    (FileOp.OPEN, {"path": b"file", "numbers": [1, 8, 0, 1, 0]}),  # truncate
    (FileOp.OPEN, {"path": b"file", "numbers": [1, 0, 1, 1, 0]}),  # append
    (FileOp.MKDIR, {"path": b"made"}),
    (FileOp.RMDIR, {"path": b"empty"}),
    (FileOp.UNLINK, {"path": b"file"}),
    (FileOp.RENAME, {"path": b"file", "path2": b"moved"}),
    (FileOp.LINK, {"path": b"file", "path2": b"linked", "numbers": [0]}),
    (FileOp.SYMLINK, {"path": b"planted", "path2": b"file"}),
    (FileOp.PATH_SET_TIMES, {"path": b"file", "numbers": [1, 0, 0, 10]}),
]


@pytest.mark.parametrize(("op", "fields"), CHANGES_BY_PATH, ids=lambda v: str(v))
def test_a_read_only_preopen_refuses_a_change_whatever_the_guest_claims(
    read_only: FileTable, granted: Path, op: FileOp, fields: dict[str, Any]
) -> None:
    before = tree_state(granted)
    assert call(read_only, op, **fields).errno == ROFS
    assert tree_state(granted) == before


CHANGES_BY_FD = [
    (FileOp.WRITE, {"data": b"x"}),
    (FileOp.PWRITE, {"data": b"x", "numbers": [0]}),
    (FileOp.SET_SIZE, {"numbers": [0]}),
    (FileOp.SET_TIMES, {"numbers": [0, 0, 10]}),
    (FileOp.ALLOCATE, {"numbers": [0, 100]}),
    (FileOp.SET_FLAGS, {"numbers": [1]}),  # append
]


@pytest.mark.parametrize(("op", "fields"), CHANGES_BY_FD, ids=lambda v: str(v))
def test_what_is_opened_in_a_read_only_preopen_is_read_only(
    read_only: FileTable, granted: Path, op: FileOp, fields: dict[str, Any]
) -> None:
    opened = call(read_only, FileOp.OPEN, path=b"file", numbers=[1, 0, 0, 1, 0])
    assert opened.errno == 0
    assert call(read_only, op, opened.numbers[0], **fields).errno == ROFS
    assert (granted / "file").read_bytes() == b"data"


@pytest.mark.parametrize("path", [b"../x", b"/etc/passwd", b"dir/../../x", b"..", b"dir/../.."])
@pytest.mark.parametrize("op", [FileOp.PATH_FILESTAT, FileOp.READLINK])
def test_no_path_leaves_the_preopen_at_the_broker(
    read_only: FileTable, op: FileOp, path: bytes
) -> None:
    numbers = [1] if op is FileOp.PATH_FILESTAT else []
    assert call(read_only, op, path=path, numbers=numbers).errno == NOTCAPABLE


def test_a_guest_holds_a_bounded_number_of_files(granted: Path) -> None:
    table = FileTable([PreopenDirectory(str(granted), "/", read_only=False)])
    before = open_fds()
    handles = []
    for _ in range(filebroker.MAX_FILES_PER_GUEST):
        answer = call(table, FileOp.OPEN, path=b"file", numbers=[1, 0, 0, 1, 0])
        assert answer.errno == 0
        handles.append(answer.numbers[0])
    refused = call(table, FileOp.OPEN, path=b"file", numbers=[1, 0, 0, 1, 0])
    assert refused.errno == Errno.MFILE.value
    assert call(table, FileOp.CLOSE, handles[0]).errno == 0
    assert call(table, FileOp.OPEN, path=b"file", numbers=[1, 0, 0, 1, 0]).errno == 0
    table.close()
    assert open_fds() == before
    assert filebroker.OPEN_FILES.count == 0


def test_guests_given_one_directory_share_its_descriptor(granted: Path) -> None:
    before = open_fds()
    tables = [FileTable([PreopenDirectory(str(granted), "/", read_only=False)]) for _ in range(50)]
    for table in tables:
        assert call(table, FileOp.PATH_FILESTAT, path=b"file", numbers=[1]).errno == 0
    assert open_fds() == before + 1
    for table in tables:
        table.close()
    assert open_fds() == before


def test_a_closed_table_answers_badf(granted: Path) -> None:
    table = FileTable([PreopenDirectory(str(granted), "/", read_only=False)])
    table.close()
    answer = call(table, FileOp.PATH_FILESTAT, path=b"file", numbers=[1])
    assert answer.errno == Errno.BADF.value


def read_call(handle: int, size: int, offset: int | None = None) -> FileCall:
    if offset is None:
        return FileCall(id=1, op=FileOp.READ, handle=handle, numbers=[size])
    return FileCall(id=1, op=FileOp.PREAD, handle=handle, numbers=[size, offset])


def test_a_read_of_a_cached_regular_file_is_answered_at_once(read_only: FileTable) -> None:
    """read_now (on the event loop, RWF_NOWAIT) gives what the worker's read would: the
    bytes at the position, which it moves, or at an offset, which it does not."""
    handle = call(read_only, FileOp.OPEN, path=b"file", numbers=[1, 0, 0, 1, 0]).numbers[0]
    first = read_only.read_now(read_call(handle, 2))
    assert first is not None and (first.errno, first.data) == (0, b"da")
    at = read_only.read_now(read_call(handle, 100, offset=1))
    assert at is not None and at.data == b"ata"
    rest = read_only.read_now(read_call(handle, 100))
    assert rest is not None and rest.data == b"ta"
    end = read_only.read_now(read_call(handle, 100))
    assert end is not None and end.data == b""


def test_what_read_now_leaves_to_a_worker(read_only: FileTable, granted: Path) -> None:
    """A directory, a FIFO (its read could wait), an unknown handle, any other call: None."""
    os.mkfifo(granted / "fifo")
    writer = os.open(granted / "fifo", os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(writer, b"ready")  # readable now, but a FIFO's reads go to a worker
        fifo = call(read_only, FileOp.OPEN, path=b"fifo", numbers=[1, 0, 4, 1, 0])  # nonblock
        assert fifo.errno == 0
        assert read_only.read_now(read_call(fifo.numbers[0], 10)) is None
    finally:
        os.close(writer)
    assert read_only.read_now(read_call(0, 10)) is None  # the preopen: a directory
    assert read_only.read_now(read_call(99, 10)) is None
    seek = FileCall(id=1, op=FileOp.SEEK, handle=0, numbers=[0, 0])
    assert read_only.read_now(seek) is None


class Broker:
    """A ``FileBroker`` on the running event loop over a writable preopen, and what it did:
    the answers it sent and when it held the guest's pipe."""

    def __init__(self, granted: Path) -> None:
        loop = asyncio.get_running_loop()
        self.answers: list[FileAnswer] = []
        self.holds: list[bool] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.broker = filebroker.FileBroker(
            [PreopenDirectory(str(granted), "/", read_only=False)],
            self.answers.append,
            lambda _: True,
            lambda work: self.tasks.add(loop.create_task(work)),
            self.holds.append,
        )

    async def answered(self, count: int) -> list[FileAnswer]:
        while len(self.answers) < count:
            await asyncio.wait(self.tasks, timeout=5)
        return self.answers

    async def open(self, name: bytes) -> int:
        """A new file's handle (created, write-only)."""
        self.answers.clear()
        open_call = FileCall(
            id=1, op=FileOp.OPEN, handle=0, path=name, numbers=[0, filebroker.OFLAGS_CREAT, 0, 0, 1]
        )
        assert self.broker.request(open_call) is None
        [answer] = await self.answered(1)
        assert answer.errno == 0
        self.answers.clear()
        return answer.numbers[0]

    def write(self, handle: int, data: bytes) -> str | None:
        return self.broker.request(
            FileCall(id=1, op=FileOp.WRITE, handle=handle, numbers=[], data=data)
        )


async def test_writes_sent_together_are_done_and_answered_in_order(granted: Path) -> None:
    files = Broker(granted)
    handle = await files.open(b"new")
    parts = [b"part %d," % n * (n + 1) for n in range(MAX_FILE_CALLS)]
    for part in parts:
        assert files.write(handle, part) is None
    assert files.write(handle, b"one more") == f"more than {MAX_FILE_CALLS} FileCalls unanswered"
    answers = await files.answered(MAX_FILE_CALLS)
    assert [(a.errno, a.numbers) for a in answers] == [(0, [len(part)]) for part in parts]
    assert (granted / "new").read_bytes() == b"".join(parts)
    files.broker.close()


async def test_a_guest_is_held_while_the_host_has_too_many_writes_waiting(
    granted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = Broker(granted)
    handle = await files.open(b"new")
    monkeypatch.setattr(filebroker, "WAITING_BYTES_CAP", 3)
    assert files.write(handle, b"four") is None  # none of its own waits: not held
    assert files.holds == []
    assert files.write(handle, b"more") is None
    assert files.holds == [True]  # its pipe is not read ...
    await files.answered(2)
    assert files.holds == [True, False]  # ... until the worker has taken its writes
    assert (granted / "new").read_bytes() == b"fourmore"
    files.broker.close()
