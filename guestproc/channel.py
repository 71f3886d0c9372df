"""The guest's end of the protocol: blocking frame I/O on its two pipes.

The guest trusts the host, but still reads with a frame cap and checks every message
against its declaration (``protocol.schema``, the same one the host's models come from), so
a host bug ends the guest with a clear status instead of undefined behaviour.
"""

from __future__ import annotations

import select
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from protocol.frames import encode_frame, read_frame, write_all
from protocol.messages import (
    GUEST_FRAME_CAP,
    HOST_FRAME_CAP,
    HOST_TO_GUEST,
    ConsoleClosed,
    Message,
    read_message,
)
from protocol.schema import SchemaError

M = TypeVar("M", bound=Message)


class HostProtocolError(Exception):
    """The host sent something the protocol does not allow here."""


class HostGone(Exception):
    """The host closed its end of the pipe: nobody is listening any more."""


class Channel:
    """Frames to and from the host over two blocking descriptors.

    ``busy`` is true while a frame is being written, so a signal handler that wants to send
    (the console's flush timer) knows to wait rather than interleave bytes.
    """

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.busy = False
        # Console streams nobody reads any more (``ConsoleClosed``), noted whenever it came.
        self.closed_streams: set[int] = set()
        self._early: deque[Message] = deque()  # read by ``poll`` before they were wanted
        # A template's generated reader (``schema.tag_reader``), tried before the checker.
        self.read_tagged: Callable[[Any], Message | None] | None = None

    def send(self, message: Message) -> None:
        self.send_encoded(encode_frame(message.wire(), GUEST_FRAME_CAP))

    def send_encoded(self, frame: bytes | bytearray) -> None:
        self.busy = True
        try:
            write_all(self.write_fd, frame)
        except BrokenPipeError:
            raise HostGone("the host closed the pipe") from None
        finally:
            self.busy = False

    def receive(self) -> Message:
        """The next message (a ``ConsoleClosed`` is noted, not returned); ``HostGone`` at end
        of stream, ``HostProtocolError`` if it is unreadable or not a message the host may
        send."""
        if self._early:
            return self._early.popleft()
        message = self._read()
        while isinstance(message, ConsoleClosed):
            self.closed_streams.add(message.stream.value)
            message = self._read()
        return message

    def poll(self) -> None:
        """Take note of a ``ConsoleClosed`` the host sent, without waiting for one: a frame
        already there is read now (any other message is kept for ``receive``)."""
        if not select.select([self.read_fd], [], [], 0)[0]:
            return
        message = self._read()
        if isinstance(message, ConsoleClosed):
            self.closed_streams.add(message.stream.value)
        else:
            self._early.append(message)

    def _read(self) -> Message:
        try:
            value = read_frame(self.read_fd, HOST_FRAME_CAP)
        except EOFError:
            raise HostGone("the host closed the pipe") from None
        except Exception as exc:
            raise HostProtocolError(f"unreadable frame from the host: {exc}") from exc
        if self.read_tagged is not None:
            message = self.read_tagged(value)
            if message is not None:
                return message
        try:
            return read_message(HOST_TO_GUEST, value)
        except SchemaError as exc:
            raise HostProtocolError(str(exc)) from None

    def expect(self, kind: type[M]) -> M:
        """The next message, which must be a ``kind``."""
        message = self.receive()
        if not isinstance(message, kind):
            raise HostProtocolError(f"expected {kind.TYPE}, got {message.TYPE}")
        return message
