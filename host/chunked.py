"""A payload a guest sends in pieces (``Code`` for the code cache, ``Snapshot`` for what a
start function left), held to the rules both share: every piece but the last is a full
``CODE_CHUNK``, and all of them together stay under a cap.
"""

from __future__ import annotations

from protocol.messages import CODE_CHUNK


class ChunkedPayload:
    """The pieces of one payload so far; ``kind`` names the frame in problems."""

    def __init__(self, kind: str, cap: int) -> None:
        self.kind = kind
        self.cap = cap
        self._pieces: list[bytes] = []
        self._size = 0

    def take(self, data: bytes) -> str | None:
        """Keep a piece; a protocol violation's description if it is one too many."""
        if self._pieces and len(self._pieces[-1]) < CODE_CHUNK:
            return f"a {self.kind} frame after a short one ({len(self._pieces[-1])} bytes)"
        self._size += len(data)
        if self._size > self.cap:
            return f"a {self.kind} payload over {self.cap} bytes"
        self._pieces.append(data)
        return None

    @property
    def empty(self) -> bool:
        return not self._pieces

    def join(self) -> bytes:
        """The payload, joined; the pieces are let go."""
        data = b"".join(self._pieces)
        self._pieces, self._size = [], 0
        return data
