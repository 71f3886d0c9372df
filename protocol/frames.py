"""Frames: how the host and a guest cut a pipe's byte stream into messages.

::

    ┌────────────────────┬─────────────────────────────────────────┐
    │ length: u32, BE    │ body: exactly one msgpack value          │
    │ (4 bytes)          │ (length bytes)                           │
    └────────────────────┴─────────────────────────────────────────┘

Every reader has a cap on ``length``. The cap is checked as soon as the four header bytes
are in, *before* any of the body is read or buffered, so a peer can never make the reader
wait for or allocate more than the cap.

Bodies are decoded strictly: strings must be UTF-8, bytes stay ``bytes``, map keys must be
strings, arrays become lists, msgpack extension types (including timestamps) are refused,
and a body must hold exactly one value with no trailing bytes. Anything else is a
``MalformedFrame``.

Two ways to read frames:

- ``FrameDecoder`` is incremental: feed it whatever bytes arrived (the host's event loop
  does this with non-blocking pipes) and it hands back complete frames;
- ``read_frame`` / ``write_frame`` are blocking, for the guest, which has nothing else to do
  while it waits.

This module imports only msgpack and the standard library: the guest imports it.

Errors::

    FrameError               the byte stream is not a valid sequence of frames
    ├── FrameTooLarge        a header announced more than the reader's cap
    ├── TruncatedFrame       the stream ended inside a frame
    └── MalformedFrame       the body is not exactly one acceptable msgpack value
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import Any

import msgpack  # type: ignore[import-untyped]

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size
MAX_LENGTH = 0xFFFFFFFF  # what the header can express


class FrameError(Exception):
    """The byte stream is not a valid sequence of frames."""


class FrameTooLarge(FrameError):
    """A frame is longer than the reader (or writer) allows; ``length`` and ``cap`` say how."""

    def __init__(self, length: int, cap: int) -> None:
        self.length = length
        self.cap = cap
        super().__init__(f"a frame of {length} bytes is over the cap of {cap} bytes")


class TruncatedFrame(FrameError):
    """The stream ended after ``received`` of ``expected`` bytes of a frame."""

    def __init__(self, received: int, expected: int) -> None:
        self.received = received
        self.expected = expected
        super().__init__(f"the stream ended inside a frame ({received} of {expected} bytes)")


class MalformedFrame(FrameError):
    """The body is not exactly one msgpack value of the accepted kinds."""


def _refuse_extension(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


# msgpack decodes the timestamp extension (-1) itself, without asking ``ext_hook``; these
# hooks see every array and map as it is built and refuse one that holds a timestamp.
_TIMESTAMP = msgpack.Timestamp


def _refuse_timestamps(items: Iterable[Any]) -> None:
    for item in items:
        if type(item) is _TIMESTAMP:
            raise ValueError("msgpack timestamps are not allowed")


def _check_list(items: list[Any]) -> list[Any]:
    _refuse_timestamps(items)
    return items


def _check_map(mapping: dict[str, Any]) -> dict[str, Any]:
    _refuse_timestamps(mapping.values())  # the values as they are: no list made per map
    return mapping


def encode_frame(value: Any, cap: int = MAX_LENGTH) -> bytes:
    """Header plus msgpack body for ``value``; ``FrameTooLarge`` if the body is over ``cap``.

    ``value`` may hold None, bools, ints (-2**63 .. 2**64-1), floats, str, bytes, lists and
    dicts with str keys; anything else raises ``TypeError`` (``OverflowError`` for an int out
    of range).
    """
    body: bytes = msgpack.packb(value, use_bin_type=True)
    if len(body) > cap or len(body) > MAX_LENGTH:
        raise FrameTooLarge(len(body), min(cap, MAX_LENGTH))
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> Any:
    """The one msgpack value in ``body``; ``MalformedFrame`` (with the cause) otherwise."""
    try:
        value = msgpack.unpackb(
            body,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_refuse_extension,
            timestamp=0,
            list_hook=_check_list,
            object_hook=_check_map,
        )
        if type(value) is _TIMESTAMP:
            raise ValueError("msgpack timestamps are not allowed")
        return value
    except msgpack.ExtraData as exc:
        raise MalformedFrame("the frame holds more than one msgpack value") from exc
    except Exception as exc:  # msgpack reports bad input with several exception types
        why = str(exc) or type(exc).__name__
        raise MalformedFrame(f"the frame body is not valid msgpack ({why})") from exc


class FrameDecoder:
    """Cuts an incoming byte stream into frames, checking each length against ``cap``.

    ``feed(data)`` returns the values of the frames completed by ``data`` (possibly none).
    The first frame error is raised from ``feed`` and the decoder is then broken: every
    later call raises it again. ``finish()`` says whether the stream may end here: it raises
    ``TruncatedFrame`` when bytes of an incomplete frame are pending.
    """

    def __init__(self, cap: int) -> None:
        if not 0 <= cap <= MAX_LENGTH:
            raise ValueError(f"a frame cap must be between 0 and {MAX_LENGTH}, got {cap}")
        self.cap = cap
        self._buffer = bytearray()
        self._expected: int | None = None  # body length of the frame being assembled
        self._error: FrameError | None = None

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Any]:
        if self._error is not None:
            raise self._error
        self._buffer += data
        values: list[Any] = []
        try:
            while True:
                if self._expected is None:
                    if len(self._buffer) < HEADER_SIZE:
                        break
                    (length,) = HEADER.unpack_from(self._buffer)
                    if length > self.cap:
                        raise FrameTooLarge(length, self.cap)
                    self._expected = length
                    del self._buffer[:HEADER_SIZE]
                if len(self._buffer) < self._expected:
                    break
                body = bytes(self._buffer[: self._expected])
                del self._buffer[: self._expected]
                self._expected = None
                values.append(decode_body(body))
        except FrameError as exc:
            self._error = exc
            self._buffer.clear()
            raise
        return values

    def finish(self) -> None:
        """Declare the end of the stream; ``TruncatedFrame`` if a frame was cut short."""
        if self._error is not None:
            raise self._error
        if self._expected is not None:
            raise TruncatedFrame(len(self._buffer) + HEADER_SIZE, self._expected + HEADER_SIZE)
        if self._buffer:
            raise TruncatedFrame(len(self._buffer), HEADER_SIZE)


def _read_exactly(fd: int, count: int, already: int, expected: int) -> bytes:
    chunks: list[bytes] = []
    remaining = count
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            received = already + count - remaining
            raise TruncatedFrame(received, expected)
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, cap: int) -> Any:
    """Read one frame from the blocking descriptor ``fd`` and return its value.

    Raises ``EOFError`` at a clean end of stream (between frames), ``FrameTooLarge`` before reading a body over ``cap``, ``TruncatedFrame`` if the stream
    ends inside a frame, ``MalformedFrame`` for a bad body.
    """
    first = os.read(fd, HEADER_SIZE)
    if not first:
        raise EOFError("the peer closed the stream")
    header = first
    if len(header) < HEADER_SIZE:
        header += _read_exactly(fd, HEADER_SIZE - len(header), len(header), HEADER_SIZE)
    (length,) = HEADER.unpack(header)
    if length > cap:
        raise FrameTooLarge(length, cap)
    body = _read_exactly(fd, length, HEADER_SIZE, HEADER_SIZE + length)
    return decode_body(body)


def write_all(fd: int, data: bytes | bytearray) -> None:
    """Write all of ``data`` to the blocking descriptor ``fd`` (retrying short writes)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_frame(fd: int, value: Any, cap: int = MAX_LENGTH) -> None:
    """Encode ``value`` as one frame and write it to the blocking descriptor ``fd``."""
    write_all(fd, encode_frame(value, cap))
