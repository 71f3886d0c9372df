"""Console output of a guest, batched into ``Console`` frames.

WASI's ``fd_write`` hands over whatever the program wrote (C stdio line-buffers a console,
so usually one line). A frame per call would cost the host a validation per line; the
writer collects output instead and sends it

- as soon as ``CONSOLE_CHUNK`` bytes have collected (frames never carry more);
- when the other stream is written, so stdout and stderr keep their relative order;
- before the guest blocks reading stdin, and when the request ends (``flush``);
- at the latest ``FLUSH_DELAY`` seconds after the first unsent byte, from a one-shot
  ``SIGALRM`` timer -- so a program that prints and then computes for a long time, or
  forever, still shows its output promptly.

The timer's handler runs in the main thread between bytecodes (there are no threads). It
never sends while a frame is being written (``Channel.busy``) or the buffer is changing
(``_busy``); it re-arms itself instead.
"""

from __future__ import annotations

import signal
from types import FrameType

from protocol.messages import CONSOLE_CHUNK, Console, Stream

from .channel import Channel

FLUSH_DELAY = 0.01
"""Seconds unsent output may wait for more before it is sent anyway."""

RETRY_DELAY = 0.001


class ConsoleWriter:
    """Buffers console output of the running request and sends it in frames."""

    def __init__(self, channel: Channel, delay: float = FLUSH_DELAY) -> None:
        self._channel = channel
        self._delay = delay
        self.request_id = 0  # output is attributed to it (``Replies.start`` sets it)
        self._stream: int = Stream.STDOUT
        self._buffer = bytearray()
        self._busy = False
        self._armed = False
        self._sent_since_poll = False
        signal.signal(signal.SIGALRM, self._on_alarm)

    def write(self, stream: int, data: bytes) -> None:
        """Queue ``data`` for ``stream`` (1 stdout, 2 stderr); may send frames right away.
        ``BrokenPipeError`` once the host has said nobody reads ``stream`` any more -- after
        the data is queued all the same, so that the output quota still ends a program that
        writes on regardless."""
        if self._sent_since_poll:
            # The host says a stream is closed only in answer to output: look when some
            # was sent since the last look (a select per write cost 1-4 us, about 20%).
            self._sent_since_poll = False
            self._channel.poll()
        self._queue(stream, data)
        if stream in self._channel.closed_streams:
            raise BrokenPipeError(f"nobody reads stream {stream} any more")

    def _queue(self, stream: int, data: bytes) -> None:
        self._busy = True
        try:
            if self._buffer and stream != self._stream:
                self._send_buffer()
            self._stream = stream
            self._buffer += data
            if len(self._buffer) >= CONSOLE_CHUNK:
                self._send_buffer()
            elif not self._armed:
                self._arm(self._delay)
        finally:
            self._busy = False

    def flush(self) -> None:
        """Send everything buffered now."""
        if not self._buffer and not self._armed:
            return  # most requests print nothing: no more code for a forked guest to copy
        self._busy = True
        try:
            self._disarm()
            self._send_buffer()
        finally:
            self._busy = False

    def _send_buffer(self) -> None:
        while self._buffer:
            chunk = bytes(self._buffer[:CONSOLE_CHUNK])
            del self._buffer[:CONSOLE_CHUNK]
            self._channel.send(Console(id=self.request_id, stream=Stream(self._stream), data=chunk))
            self._sent_since_poll = True

    def _arm(self, delay: float) -> None:
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, delay)

    def _disarm(self) -> None:
        if self._armed:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        self._armed = False
        if not self._buffer:
            return
        if self._busy or self._channel.busy:
            self._arm(RETRY_DELAY)
            return
        self.flush()
