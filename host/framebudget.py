"""How many frames a guest may send while it works on a request, and how fast.

Every frame that belongs to a request but does not answer it -- ``Console``, ``Code``,
``StdinRequest``, ``Starting`` -- takes a token from one bucket per guest: ``FRAME_BURST``
at most, refilled at ``FRAME_RATE`` a second. A guest past it floods, and ends
``protocol_error``. (A final reply needs no token: each answers a request the host sent.)
Frames cost the host a decode and a validation each whatever their size, so the byte caps
alone do not bound its work: four million 2-byte ``Code`` frames once cost 15 s of host CPU.
"""

from __future__ import annotations

import asyncio

FRAME_RATE = 2000.0
"""Frames per second a guest may send on average besides its replies (it batches output)."""
FRAME_BURST = 4000.0
"""Frames a guest may send in a burst besides its replies."""


class FrameBudget:
    """One guest's token bucket."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._tokens = FRAME_BURST
        self._tokens_at = loop.time()

    def take(self) -> str | None:
        """Count one frame; what is wrong if the guest is over its rate."""
        now = self._loop.time()
        self._tokens = min(FRAME_BURST, self._tokens + (now - self._tokens_at) * FRAME_RATE)
        self._tokens_at = now
        if self._tokens < 1.0:
            return f"frame flood: more than {FRAME_RATE:g} frames per second"
        self._tokens -= 1.0
        return None

    def refund(self) -> None:
        """A stdin read flushes the program's prompt first: that frame is free."""
        self._tokens = min(FRAME_BURST, self._tokens + 1.0)
