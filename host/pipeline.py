"""Request pipelining: the requests a guest has been sent and has not answered yet.

::

    submit_load ─┐                       guest reads one request, answers it, reads the next
    submit_boot ─┼─▶ [Load, Boot, Invoke] ──────────────────────────────────────────────────▶
    submit_invoke┘    head: the one it works on; a final reply pops it and resolves its future

Requests go out at once, even before earlier ones are answered; the guest works through
them in order. The head of the queue is the request the guest is working on: frames that
belong to a request (``Console``, ``StdinRequest``, ``Code``) must name its id, and its final
reply must be one ``FINAL_REPLIES`` allows for its kind.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from protocol.messages import (
    Boot,
    Exited,
    GuestHello,
    HostHello,
    Invoke,
    LimitReached,
    Load,
    Loaded,
    LoadFailed,
    Message,
    Ready,
    Refused,
    Result,
    Trapped,
)

from .gueststate import GuestState

FINAL_REPLIES: dict[type[Message], tuple[type[Message], ...]] = {
    HostHello: (GuestHello,),
    Load: (Loaded, LoadFailed, LimitReached),
    Boot: (Ready, LoadFailed, LimitReached, Trapped, Exited),
    # LoadFailed: functions are translated on their first call.
    Invoke: (Result, Refused, Trapped, Exited, LimitReached, LoadFailed),
}
"""The replies that answer (and end) each kind of request."""
WORKING_STATE = {Load: GuestState.LOADING, Boot: GuestState.BOOTING, Invoke: GuestState.RUNNING}
"""What the guest is doing while it works on each kind of request."""
IDLE_STATE = {Load: GuestState.LOADED, Boot: GuestState.READY, Invoke: GuestState.READY}
"""Where the guest is once it has answered each kind of request (and goes on)."""
FILLS_CACHE = (Load, Boot)
"""Requests a guest may answer with ``Code`` frames first."""


@dataclass
class Request:
    """A request sent to the guest and not yet answered."""

    id: int
    kind: type[Message]
    future: asyncio.Future[Any]
    started: float = 0.0  # when the guest could begin on it (perf_counter); 0: not yet


class Pipeline:
    """The guest's outstanding requests, oldest (the one it works on) first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: deque[Request] = deque()
        self._last_id = 0

    def __bool__(self) -> bool:
        return bool(self._queue)

    def next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    @property
    def current(self) -> Request | None:
        """The request the guest is working on."""
        return self._queue[0] if self._queue else None

    def add(self, kind: type[Message], request_id: int) -> Request:
        """Queue a request; it is started now if the guest has nothing else to do."""
        idle = not self._queue
        request = Request(request_id, kind, self._loop.create_future())
        if idle:
            request.started = time.perf_counter()
        self._queue.append(request)
        return request

    def pop(self, now: float) -> tuple[Request, Request | None]:
        """The answered request, and the next one, which the guest starts on ``now``."""
        request = self._queue.popleft()
        following = self.current
        if following is not None:
            following.started = now
        return request, following

    def fail_all(self, error: BaseException) -> None:
        for request in self._queue:
            if not request.future.done():
                fail(request.future, error)
        self._queue.clear()


def fail(future: asyncio.Future[Any], error: BaseException) -> None:
    future.set_exception(error)
    future.exception()  # marked as retrieved: a pipelined request may never be awaited
