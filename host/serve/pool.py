"""``Pool``: export mode's warm guests, forked from the function's template.

::

    take() ──▶ an idle guest (most recently used first: its pages are warm)
           └─▶ none idle: fork one (cold)          at most ``max`` guests, idle or busy
    give_back(guest) ──▶ idle again, or dropped if it ended (a trap leaves it usable; an
                         exit, a limit or a crash do not) and replaced in the background
    every idle/4 s: guests idle for ``idle`` s beyond ``min`` are stopped; back up to ``min``

One guest serves one request at a time, and a guest that dies fails only the request it was
serving (unlike ``ProcessPoolExecutor``'s ``BrokenProcessPool``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

from ..config import GuestConfig
from ..fleet import Fleet
from ..guest import Guest, GuestState
from .spec import PoolSpec


class Pool:
    def __init__(
        self,
        fleet: Fleet,
        module: bytes,
        config: GuestConfig,
        init: str | None,
        spec: PoolSpec,
        paused: set[int] | None = None,
    ) -> None:
        self._fleet = fleet
        self._paused = paused if paused is not None else set()  # pids not to hand out
        self._module = module
        self._config = config
        self._init = init
        self.spec = spec
        self._idle: list[tuple[Guest, float]] = []  # (guest, monotonic time it went idle)
        self._busy: set[Guest] = set()
        self._forking = 0
        self._closed = False
        self._keeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def alive(self) -> int:
        return len(self._idle) + len(self._busy)

    def guests(self) -> list[Guest]:
        return [guest for guest, _ in self._idle] + list(self._busy)

    def start(self) -> None:
        """Keep the pool at ``min`` and reap idle guests from now on."""
        if self._keeper is None:
            self._keeper = asyncio.get_running_loop().create_task(self._keep())

    async def take(self) -> tuple[Guest, bool]:
        """A guest to serve one request, and whether one had to be forked for it (cold).
        The caller's concurrency limit keeps it at most ``max`` (``FunctionSpec``)."""
        for index in range(len(self._idle) - 1, -1, -1):
            guest, _ = self._idle[index]
            if guest.pid in self._paused:
                continue
            del self._idle[index]
            if guest.ending is None and guest.state is GuestState.READY:
                self._busy.add(guest)
                return guest, False
            self._drop(guest)
        guest = await self._fork()
        self._busy.add(guest)
        return guest, True

    def give_back(self, guest: Guest) -> None:
        self._busy.discard(guest)
        if self._closed or guest.ending is not None or guest.state is not GuestState.READY:
            self._drop(guest)
            self._top_up()
            return
        self._idle.append((guest, time.monotonic()))

    async def _fork(self) -> Guest:
        self._forking += 1
        try:
            return await self._fleet.fork(self._module, self._config, None, None, self._init)
        finally:
            self._forking -= 1

    def _drop(self, guest: Guest) -> None:
        """A guest leaves the pool: stopped (if need be) and reaped in the background."""
        self._spawn(self._stop(guest))

    async def _stop(self, guest: Guest) -> None:
        with contextlib.suppress(Exception):
            await guest.stop()
        self._fleet.release(guest)

    def _top_up(self) -> None:
        missing = self.spec.min - self.alive - self._forking
        for _ in range(max(missing, 0)):
            self._spawn(self._add_idle())

    async def _add_idle(self) -> None:
        try:
            guest = await self._fork()
        except Exception:
            return  # the template cannot start: the next request says why
        if self._closed:
            self._drop(guest)
        else:
            self._idle.append((guest, time.monotonic()))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep(self) -> None:
        period = max(min(self.spec.idle / 4, 5.0), 0.05)
        while not self._closed:
            self._reap_idle()
            self._top_up()
            await asyncio.sleep(period)

    def _reap_idle(self) -> None:
        now = time.monotonic()
        keep: list[tuple[Guest, float]] = []
        # Oldest first; the most recently used stay (they are at the end).
        excess = self.alive - self.spec.min
        for guest, since in self._idle:
            if guest.ending is not None:
                self._drop(guest)
            elif excess > 0 and now - since >= self.spec.idle:
                excess -= 1
                self._drop(guest)
            else:
                keep.append((guest, since))
        self._idle = keep

    async def close(self) -> None:
        """Stop every guest (the busy ones are killed: call after draining)."""
        self._closed = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        for guest in self.guests():
            self._drop(guest)
        self._idle.clear()
        self._busy.clear()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
