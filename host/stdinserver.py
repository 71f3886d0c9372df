"""Serving a guest's stdin: one ``StdinRequest`` at a time, answered from a ``StdinSource``.

The guest asks for up to ``max`` bytes (``StdinRequest``); the host reads at most
``STDIN_CHUNK`` of them from its source off the frame path and answers ``StdinData`` (b"" is
the end of input). A second request before the first is answered breaks the protocol, and
so does a final reply while one is outstanding (``StdinServer.outstanding``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol.messages import StdinData, StdinRequest

from .stdio import StdinSource

STDIN_CHUNK = 64 * 1024
"""The most bytes one ``StdinData`` answer carries."""


class StdinServer:
    """Answers one guest's stdin requests from ``source``.

    ``answer(message)`` sends the reply if the request is still the one being served
    (``still_wanted(request_id)``); ``spawn`` runs the read as a task of the guest.
    """

    def __init__(
        self,
        source: StdinSource,
        answer: Callable[[StdinData], None],
        still_wanted: Callable[[int], bool],
        spawn: Callable[[Any], None],
    ) -> None:
        self.source = source
        self._answer = answer
        self._still_wanted = still_wanted
        self._spawn = spawn
        self.outstanding = False

    def request(self, message: StdinRequest) -> str | None:
        """Start serving ``message``; a protocol violation's description if it is not
        allowed now (a request is already outstanding)."""
        if self.outstanding:
            return "a second StdinRequest before the first was answered"
        self.outstanding = True
        self._spawn(self._serve(message.id, min(message.max, STDIN_CHUNK)))
        return None

    async def _serve(self, request_id: int, size: int) -> None:
        try:
            data = await self.source.read(size)
        except OSError:
            data = b""  # unreadable stdin is the end of input
        if not self.outstanding or not self._still_wanted(request_id):
            return  # the guest ended, or moved on, meanwhile
        self.outstanding = False
        self._answer(StdinData(id=request_id, data=data[:size]))
