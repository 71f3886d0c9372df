"""The frames that belong to the request being served: its reply, and what goes before it.

::

    Session.handle(request) ──▶ Replies.start(id)    the console's frames and the
                                                      out-of-memory frame get this id
      during the request    ──▶ Console              (ConsoleWriter, batched)
                            ──▶ Code                 (Replies.send_during: a cache entry)
                            ──▶ StdinRequest ◀── StdinData   (Replies.read_stdin, for WASI;
                                                      none when the request brought its stdin)
                            ──▶ FileCall ◀── FileAnswer      (Replies.files, for WASI;
                                                      writes sent ahead: ``filecalls``)
      its reply             ──▶ Replies.send(reply)  the console is flushed first
                                Replies.end(reply)   ... and the guest stops serving

One request is served at a time, and every frame that belongs to it carries its id
(``protocol.messages``). ``end`` raises ``StopServing`` after the reply: the guest process
exits once ``Session.handle`` has caught it.

Running out of memory anywhere -- a ``MemoryError``, a frame CPython could not allocate, big
frames past the engine's charge -- is ``LimitReached(memory)``. That frame is encoded when the
request starts, because when memory runs out there may be none left to encode it;
``guest.serve_requests`` sends it then.
"""

from __future__ import annotations

import struct
from typing import NoReturn

from protocol import messages as msg
from protocol.frames import encode_frame
from protocol.messages import REQUEST_ID_MAX, Limit, Message

from .channel import Channel, HostGone, HostProtocolError
from .console import ConsoleWriter
from .filecalls import FileCalls

PASS_THROUGH = (MemoryError, HostProtocolError, HostGone)
"""Exceptions that are not about the module or the program: no reply answers them, they
end the guest process (``guest.serve_requests``)."""


class StopServing(Exception):
    """The request ended the guest's work (the reply has been sent)."""


class Replies:
    """The request being served (its id) and the frames that answer it."""

    def __init__(self, channel: Channel, console: ConsoleWriter) -> None:
        self.channel = channel
        self.console = console
        self.files = FileCalls(channel)
        self.request_id = 0
        # The stdin the request brought (``Invoke.stdin``), and how much of it was read;
        # None: reads ask the host.
        self._stdin: bytes | None = None
        self._stdin_read = 0
        # Encoded ahead of time: when memory runs out there may be none left to encode it.
        self.out_of_memory_frame = bytearray()
        self._out_of_memory, self._out_of_memory_id = _out_of_memory_frame()

    def start(self, request_id: int) -> None:
        """A new request is being served: what follows belongs to ``request_id``."""
        self.console.flush()  # what was written before belongs to the request before
        self.console.request_id = request_id
        self.request_id = request_id
        self.files.request_id = request_id
        self._stdin = None
        # The id written into the frame made once: encoding it again per request touched
        # its map, keys and enums, pages a forked guest copied on its first request.
        _ID.pack_into(self._out_of_memory, self._out_of_memory_id, request_id)
        self.out_of_memory_frame = self._out_of_memory

    def send(self, message: Message) -> None:
        """The request's reply; the console output it produced goes first, and every file
        write it sent ahead has been done."""
        if self.files.ahead:  # a call less per request where no write was sent ahead
            self.files.settle()
        self.console.flush()
        self.channel.send(message)

    def end(self, message: Message) -> NoReturn:
        """The request's reply, after which the guest stops serving (``StopServing``)."""
        self.send(message)
        raise StopServing

    def send_during(self, message: Message) -> None:
        """A frame that belongs to the request but does not answer it (``Code``)."""
        self.channel.send(message)

    def given_stdin(self, data: bytes) -> None:
        """The request brought its whole stdin: reads take from ``data``, then see the end."""
        self._stdin = data
        self._stdin_read = 0

    def read_stdin(self, size: int) -> bytes:
        """WASI's ``read_stdin``: up to ``size`` bytes of the stdin the request brought, or
        else asked of the host (waiting for them)."""
        if self._stdin is not None:
            start = self._stdin_read
            self._stdin_read = start + size
            return self._stdin[start : start + size]
        self.console.flush()  # the program may be waiting for its prompt to be seen
        self.files.settle()  # their answers come first
        wanted = min(size, msg.MAX_STDIN_REQUEST)
        self.channel.send(msg.StdinRequest(id=self.request_id, max=wanted))
        reply = self.channel.expect(msg.StdinData)
        if reply.id != self.request_id or len(reply.data) > size:
            raise HostProtocolError("StdinData does not answer the StdinRequest")
        return reply.data


_ID = struct.Struct(">Q")  # msgpack's uint 64: a reader takes any width of an integer


def _out_of_memory_frame() -> tuple[bytearray, int]:
    """The out-of-memory frame with a placeholder id, and where that id's 8 bytes begin."""
    frame = bytearray(
        encode_frame(
            msg.LimitReached(
                id=REQUEST_ID_MAX,
                resource=Limit.MEMORY,
                message="the guest process ran out of memory (its RLIMIT_DATA)",
            ).wire()
        )
    )
    placeholder = b"\xcf" + _ID.pack(REQUEST_ID_MAX)
    if REQUEST_ID_MAX < 1 << 32 or frame.count(placeholder) != 1:
        raise AssertionError("the id is not a uint 64 of its own in the frame")
    return frame, frame.index(placeholder) + 1
