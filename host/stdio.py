"""Where a guest's console goes and where its stdin comes from.

A ``ConsoleSink`` receives the guest's output in order (``write(stream, data)``, stream 1 is
stdout, 2 stderr) and may ask for backpressure: while ``backed_up`` is true the host stops
reading the guest's frames until ``drain()`` returns, so a guest can never make the host
buffer more than ``HIGH_WATER`` bytes of output.

- ``StdioConsole`` writes to the host's own stdout/stderr. Pipes and sockets are written
  without blocking (the event loop keeps enforcing the deadline even when the reader is
  slow); terminals and files, which do not block for long, are written directly. Output to
  a closed pipe (``kindling run ... | head -1``) is dropped from then on.
- ``CapturedConsole`` keeps everything in memory (the Python API's default).

A ``StdinSource`` answers the guest's ``StdinRequest`` frames: ``read(n)`` returns 1..n
bytes, or ``b""`` at the end of input.

- ``HostStdin`` reads the host's own fd 0, waiting for it on the event loop;
- ``BytesStdin`` serves fixed bytes; ``NoStdin`` is at end of input from the start;
- ``FileStdin`` reads a binary file object in a worker thread (a pipe may block);
- ``IteratorStdin`` serves the chunks of an async iterator of bytes.

``stdin_for`` turns what ``Host.launch(stdin=...)`` accepts into a source per guest.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import stat
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, BinaryIO, Protocol

HIGH_WATER = 1024 * 1024


class ConsoleSink(Protocol):
    def write(self, stream: int, data: bytes) -> None: ...

    @property
    def backed_up(self) -> bool: ...

    async def drain(self) -> None: ...


class StdinSource(Protocol):
    async def read(self, size: int) -> bytes: ...


class CapturedConsole:
    """Collects the guest's output in memory: ``stdout`` and ``stderr`` as bytes."""

    def __init__(self) -> None:
        self._streams = {1: bytearray(), 2: bytearray()}

    def write(self, stream: int, data: bytes) -> None:
        self._streams[stream] += data

    @property
    def backed_up(self) -> bool:
        return False

    async def drain(self) -> None:
        return None

    @property
    def stdout(self) -> bytes:
        return bytes(self._streams[1])

    @property
    def stderr(self) -> bytes:
        return bytes(self._streams[2])


def _can_wait_for(fd: int) -> bool:
    """Whether writes to ``fd`` may block for long and ``fd`` can be polled: pipes, sockets."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class StdioConsole:
    """Writes guest output to the host's descriptors 1 and 2, in the order it came."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fds: tuple[int, int] = (1, 2)) -> None:
        self._loop = loop
        self._fds = {1: fds[0], 2: fds[1]}
        self._queue: deque[tuple[int, memoryview]] = deque()
        self._queued = 0
        self._closed: set[int] = set()
        self._nonblocking: dict[int, bool] = {}
        self._waiting_fd: int | None = None
        self._drained: asyncio.Future[None] | None = None
        # Both descriptors may share one open file (2>&1): note every mode before changing any.
        waitable = [fd for fd in set(self._fds.values()) if _can_wait_for(fd)]
        self._nonblocking = {fd: os.get_blocking(fd) for fd in waitable}
        for fd in waitable:
            os.set_blocking(fd, False)

    def write(self, stream: int, data: bytes) -> None:
        fd = self._fds[stream]
        if fd in self._closed or not data:
            return
        self._queue.append((fd, memoryview(data)))
        self._queued += len(data)
        if self._waiting_fd is None:
            self._pump()

    @property
    def backed_up(self) -> bool:
        return self._queued >= HIGH_WATER

    @property
    def closed_streams(self) -> frozenset[int]:
        """The streams (1, 2) nobody reads any more: a write to them failed (``EPIPE``)."""
        return frozenset(stream for stream, fd in self._fds.items() if fd in self._closed)

    @property
    def pending(self) -> int:
        return self._queued

    async def drain(self) -> None:
        """Return once everything queued has been written (or dropped)."""
        if not self._queue:
            return
        if self._drained is None or self._drained.done():
            self._drained = self._loop.create_future()
        await asyncio.shield(self._drained)

    def _pump(self) -> None:
        while self._queue:
            fd, view = self._queue[0]
            if fd in self._closed:
                self._drop_head()
                continue
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                self._wait_writable(fd)
                return
            except InterruptedError:
                continue
            except OSError:
                # EPIPE and friends: nobody reads this stream any more; keep the guest going.
                self._closed.add(fd)
                self._drop_head()
                continue
            self._queued -= written
            if written == len(view):
                self._queue.popleft()
            else:
                self._queue[0] = (fd, view[written:])
        self._stop_waiting()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _drop_head(self) -> None:
        _, view = self._queue.popleft()
        self._queued -= len(view)

    def _wait_writable(self, fd: int) -> None:
        if self._waiting_fd != fd:
            self._stop_waiting()
            self._waiting_fd = fd
            self._loop.add_writer(fd, self._on_writable)

    def _on_writable(self) -> None:
        self._pump()

    def _stop_waiting(self) -> None:
        if self._waiting_fd is not None:
            self._loop.remove_writer(self._waiting_fd)
            self._waiting_fd = None

    def close(self) -> None:
        """Write whatever is still queued (blocking) and restore the descriptors' modes."""
        self._stop_waiting()
        for fd, blocking in self._nonblocking.items():
            with contextlib.suppress(OSError):
                os.set_blocking(fd, blocking)
        while self._queue:
            fd, view = self._queue.popleft()
            if fd in self._closed:
                continue
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                self._closed.add(fd)
        self._queued = 0
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)


class NoStdin:
    """Stdin at end of input from the start."""

    async def read(self, size: int) -> bytes:
        return b""


class BytesStdin:
    """Stdin holding fixed bytes, then end of input."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    async def read(self, size: int) -> bytes:
        chunk, self._data = self._data[:size], self._data[size:]
        return bytes(chunk)


class FileStdin:
    """A binary file object (``open(path, "rb")``, ``sys.stdin.buffer``, ``io.BytesIO``),
    read in a worker thread so that a pipe that blocks does not block the event loop."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._eof = False

    async def read(self, size: int) -> bytes:
        if self._eof:
            return b""
        read = getattr(self._file, "read1", self._file.read)  # no waiting for a full size
        data = await asyncio.to_thread(read, size)
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"stdin's file gave {type(data).__name__}, not bytes")
        if not data:
            self._eof = True
        return bytes(data)


class IteratorStdin:
    """The chunks of an async iterator of bytes, split to the sizes the guest asks for."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks: AsyncIterator[bytes] = aiter(chunks)
        self._left = b""
        self._eof = False

    async def read(self, size: int) -> bytes:
        while not self._left and not self._eof:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self._eof = True
                break
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(f"stdin's iterator gave {type(chunk).__name__}, not bytes")
            self._left = bytes(chunk)
        data, self._left = self._left[:size], self._left[size:]
        return data


def stdin_for(stdin: Any) -> Callable[[], StdinSource]:
    """What ``Host.launch(stdin=...)`` takes, as a maker of each guest's source: ``None``
    (end of input at once), bytes (each guest of the sandbox, a restarted one too, reads
    them from the start), a binary file object or an async iterator of bytes (read once:
    a restarted guest reads on from where the last one stopped), or a ``StdinSource``.
    ``TypeError`` for anything else."""
    if stdin is None:
        return NoStdin
    if isinstance(stdin, bytes | bytearray | memoryview):
        data = bytes(stdin)
        return lambda: BytesStdin(data)
    source: StdinSource
    if inspect.iscoroutinefunction(getattr(stdin, "read", None)):
        source = stdin
    elif callable(getattr(stdin, "read", None)):
        source = FileStdin(stdin)
    elif hasattr(stdin, "__aiter__"):
        source = IteratorStdin(stdin)
    else:
        raise TypeError(
            "stdin must be bytes, a binary file, an async iterator of bytes or a StdinSource, "
            f"not {type(stdin).__name__}"
        )
    return lambda: source


class HostStdin:
    """The host's own stdin (fd 0 by default), read only when the guest asks for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int = 0) -> None:
        self._loop = loop
        self._fd = fd
        self._eof = False

    async def read(self, size: int) -> bytes:
        if self._eof:
            return b""
        await self._readable()
        try:
            data = os.read(self._fd, size)
        except BlockingIOError:
            return await self.read(size)  # someone else took the data first
        except OSError:
            data = b""  # closed or unreadable stdin: the end of input
        if not data:
            self._eof = True
        return data

    async def _readable(self) -> None:
        ready: asyncio.Future[None] = self._loop.create_future()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        try:
            self._loop.add_reader(self._fd, on_readable)
        except (PermissionError, OSError, ValueError):
            return  # a regular file or /dev/null: never blocks, cannot be polled
        try:
            await ready
        finally:
            self._loop.remove_reader(self._fd)
