"""The protocol layer between the transport (pipes) and the ``Guest`` (policy).

::

    GuestProcess.from_guest ──bytes──▶ FrameDecoder (cap: GUEST_FRAME_CAP) ──values──▶
        parse_guest_message (pydantic) ──models──▶ listener.message_received
    listener ──send(message)──▶ encode ──▶ write buffer ──▶ GuestProcess.to_guest

Nothing reaches the listener that has not passed the frame cap and the models. The first
problem -- an oversized, truncated or malformed frame, an unknown or ill-typed message -- is
reported once through ``listener.connection_broken(reason)`` and the connection stops
reading; what to do about it (kill the guest: ``protocol_error``) is the listener's call.

The pydantic models are imported when the first bytes arrive, so a caller can send its
first requests before paying for them.

Reading can be held (``hold``) while the host's own output is backed up, or while the host
has too many of the guests' file writes waiting for a worker: the guest then blocks on its
full pipe, which is the backpressure we want. Reading resumes when every holder has let go.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Protocol

from protocol.frames import FrameDecoder, FrameError, encode_frame
from protocol.messages import GUEST_FRAME_CAP, HOST_FRAME_CAP

from .transport import GuestProcess

if TYPE_CHECKING:
    from protocol.messages import GuestMessage, Message

READ_SIZE = 256 * 1024


class ConnectionListener(Protocol):
    def message_received(self, message: GuestMessage) -> None: ...

    def connection_broken(self, reason: str) -> None: ...

    def eof_received(self) -> None: ...


class GuestConnection:
    """Validated messages from one guest process, and frames to it, on the event loop."""

    def __init__(
        self,
        process: GuestProcess,
        listener: ConnectionListener,
        loop: asyncio.AbstractEventLoop,
        frame_cap: int = GUEST_FRAME_CAP,
    ) -> None:
        self._process = process
        self._listener = listener
        self._loop = loop
        self._decoder = FrameDecoder(frame_cap)
        self._outgoing = bytearray()
        self._corked = False  # frames are queued, not written (``cork``)
        self._reading = False
        self._writing = False
        self._broken = False
        self._eof = False
        self._done = False
        self._holders: set[str] = set()  # why reading is held (``hold``)
        self.frames_received = 0

    # -- reading -------------------------------------------------------------------------------

    def stop_reading(self) -> None:
        """Read and deliver nothing more, ever (the listener has heard all it needs)."""
        self._done = True
        self.pause_reading()

    def hold(self, holder: str) -> None:
        """Read nothing more until ``release(holder)`` (and every other holder's release)."""
        self._holders.add(holder)
        self.pause_reading()

    def release(self, holder: str) -> None:
        self._holders.discard(holder)
        self.resume_reading()

    def resume_reading(self) -> None:
        """Read the guest's frames as they come (unless reading is held, or done)."""
        if self._holders:
            return
        if not self._reading and not self._broken and not self._eof and not self._done:
            self._reading = True
            self._loop.add_reader(self._process.from_guest, self._on_readable)

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._process.from_guest)

    def _on_readable(self) -> None:
        self.read_available(limit=4)

    def read_available(self, limit: int | None = None) -> None:
        """Read and deliver what the pipe holds now (at most ``limit`` reads of READ_SIZE).

        With no limit it reads until the pipe is empty or at end of stream: used when the
        process has exited, to collect its last frames before judging how it ended.
        """
        reads = 0
        while not (self._broken or self._eof or self._done) and (limit is None or reads < limit):
            try:
                data = os.read(self._process.from_guest, READ_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:
                self._break(f"reading from the guest failed: {exc}")
                return
            reads += 1
            if not data:
                self._on_eof()
                return
            self._deliver(data)
            if not self._reading and limit is not None:
                return  # paused by the listener meanwhile

    def _deliver(self, data: bytes) -> None:
        try:
            values = self._decoder.feed(data)
        except FrameError as exc:
            self._break(str(exc))
            return
        # Imported at the first frame, not before: building the models takes a while, and
        # by now the requests are long on their way to the guest.
        from protocol.models import InvalidMessage, parse_guest_message

        for value in values:
            if self._broken or self._done:
                return
            try:
                message = parse_guest_message(value)
            except InvalidMessage as exc:
                self._break(f"invalid message: {exc}")
                return
            self.frames_received += 1
            self._listener.message_received(message)

    def _on_eof(self) -> None:
        self._eof = True
        self.pause_reading()
        try:
            self._decoder.finish()
        except FrameError as exc:
            self._break(str(exc))
            return
        self._listener.eof_received()

    def _break(self, reason: str) -> None:
        if self._broken:
            return
        self._broken = True
        self.pause_reading()
        self._listener.connection_broken(reason)

    # -- writing -------------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Queue one message for the guest. Writes happen as the pipe accepts them."""
        frame = encode_frame(message.wire(), HOST_FRAME_CAP)
        self._outgoing += frame
        self._flush()

    def cork(self) -> None:
        """Queue frames without writing them until ``uncork``."""
        self._corked = True

    def uncork(self) -> None:
        """Write what was queued, and from now on as it comes."""
        self._corked = False
        self._flush()

    def _flush(self) -> None:
        fd = self._process.to_guest
        if self._corked:
            return
        while self._outgoing and fd >= 0:
            try:
                written = os.write(fd, self._outgoing)
            except BlockingIOError:
                break
            except OSError:
                # The guest closed its end or is gone: what it did is judged by its exit.
                self._outgoing.clear()
                break
            del self._outgoing[:written]
        if self._outgoing and not self._writing:
            self._writing = True
            self._loop.add_writer(fd, self._on_writable)
        elif not self._outgoing and self._writing:
            self._writing = False
            self._loop.remove_writer(fd)

    def _on_writable(self) -> None:
        self._flush()

    def close(self) -> None:
        """Stop reading and writing (the transport closes the descriptors)."""
        self._done = True  # for good: no holder's release reads a closed pipe
        self.pause_reading()
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._process.to_guest)
        self._outgoing.clear()
