"""The console gate: what a guest may write, how much and how fast, and where it goes.

::

    Console frame ──▶ quota (max_output) ──▶ ConsoleSink.write
    (its rate: framebudget)  │ over: limit(output), the part
                             │ that fits is still written
                             └──▶ sink backed up: pause reading the guest's
                                  pipe until it drains

Pausing the pipe is the backpressure: the guest blocks on its full pipe while the host's own
output (a slow terminal, a full pipe of ours) catches up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from protocol.messages import CONSOLE_CHUNK, Console

from .endings import Ending, Limit
from .stdio import ConsoleSink


class OutputGate:
    """Passes one guest's console frames to ``sink`` within its quota.

    ``pause`` / ``resume`` stop and restart reading the guest's frames; ``spawn`` runs a
    coroutine for as long as the guest lives (the drain).
    """

    def __init__(
        self,
        sink: ConsoleSink,
        max_output: Callable[[], int],
        loop: asyncio.AbstractEventLoop,
        pause: Callable[[], None],
        resume: Callable[[], None],
        spawn: Callable[[Any], None],
    ) -> None:
        self.sink = sink
        self._max_output = max_output
        self._loop = loop
        self._pause, self._resume, self._spawn = pause, resume, spawn
        self.bytes_written = 0
        self._draining = False
        self.closed = False

    def write(self, message: Console) -> Ending | None:
        """Pass on one frame; the ending it earns, if it breaks a limit (then nothing more
        should be written)."""
        data = message.data
        if len(data) > CONSOLE_CHUNK:  # the models cap it; the cap is the gate's to hold too
            return Ending.limit(
                Limit.OUTPUT,
                f"a console frame of {len(data)} bytes is over the per-frame cap of "
                f"{CONSOLE_CHUNK} bytes",
            )
        quota = self._max_output()
        room = quota - self.bytes_written
        if len(data) > room:
            if room > 0:
                self.sink.write(message.stream, data[:room])
                self.bytes_written += room
            return Ending.limit(Limit.OUTPUT, f"wrote more than its output quota of {quota} bytes")
        self.bytes_written += len(data)
        self.sink.write(message.stream, data)
        if self.sink.backed_up and not self._draining:
            self._draining = True
            self._pause()
            self._spawn(self._drain())
        return None

    async def _drain(self) -> None:
        try:
            await self.sink.drain()
        finally:
            self._draining = False
        if not self.closed:
            self._resume()
