"""``Gate``: a function's concurrency limit and queue.

At most ``limit`` requests are served at once; up to ``queue`` more wait, first come first
served; one beyond that is ``Throttled`` at once (the gateway answers 429 with Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Throttled(Exception):
    """The function is serving its limit and its queue is full."""

    def __init__(self, function: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"{function}: all busy and the queue is full; retry after {retry_after} s")


class Gate:
    def __init__(self, name: str, limit: int, queue: int) -> None:
        self.name = name
        self.limit = limit
        self.queue = queue
        self.in_flight = 0
        self.waiting = 0
        self.throttled = 0
        self._slots = asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``limit`` slots for the body; ``Throttled`` if none is free and
        the queue is full."""
        if self._slots.locked():
            if self.waiting >= self.queue:
                self.throttled += 1
                raise Throttled(self.name, retry_after=1)
            self.waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._slots.release()
