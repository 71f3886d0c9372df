"""The guest's end of the protocol: blocking frame I/O on its two pipes.

The guest trusts the host, but still reads with a frame cap and checks the shape of every
message, so a host bug ends the guest with a clear status instead of undefined behaviour.
"""

from __future__ import annotations

from typing import Any

from protocol.frames import encode_frame, read_frame, write_all
from protocol.messages import GUEST_FRAME_CAP, HOST_FRAME_CAP, MessageType

FieldType = type | tuple[type, ...]

_TAGS = frozenset(tag.value for tag in MessageType)


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

    def send(self, message: dict[str, Any]) -> None:
        self.send_encoded(encode_frame(message, GUEST_FRAME_CAP))

    def send_encoded(self, frame: bytes) -> None:
        self.busy = True
        try:
            write_all(self.write_fd, frame)
        except BrokenPipeError:
            raise HostGone("the host closed the pipe") from None
        finally:
            self.busy = False

    def receive(self) -> dict[str, Any]:
        """The next message; ``HostGone`` at end of stream, ``HostProtocolError`` if bad."""
        try:
            message = read_frame(self.read_fd, HOST_FRAME_CAP)
        except EOFError:
            raise HostGone("the host closed the pipe") from None
        except Exception as exc:
            raise HostProtocolError(f"unreadable frame from the host: {exc}") from exc
        if not isinstance(message, dict):
            raise HostProtocolError(f"a message must be a map, got {type(message).__name__}")
        tag = message.get("type")
        request_id = message.get("id")
        if tag not in _TAGS or not isinstance(request_id, int):
            raise HostProtocolError(f"not a message: type {tag!r}, id {request_id!r}")
        return message

    def expect(self, tag: MessageType, **fields: FieldType) -> dict[str, Any]:
        """The next message, which must be ``tag`` with fields of the given types."""
        message = self.receive()
        if message["type"] != tag:
            raise HostProtocolError(f"expected {tag}, got {message['type']}")
        check_fields(message, fields)
        return message


def check_fields(message: dict[str, Any], fields: dict[str, FieldType]) -> None:
    """``HostProtocolError`` unless ``message`` has exactly ``type``, ``id`` and ``fields``."""
    expected = {"type", "id", *fields}
    if set(message) != expected:
        raise HostProtocolError(
            f"{message['type']} must have fields {sorted(expected)}, got {sorted(message)}"
        )
    for name, kind in fields.items():
        if not isinstance(message[name], kind):
            raise HostProtocolError(f"{message['type']}.{name} has the wrong type")
