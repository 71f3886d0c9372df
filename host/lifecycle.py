"""The lifecycle of a supervised guest (a ``Sandbox``): one state enum, one transition table,
the restart policies, and the events every change emits.

::

    NOT_STARTED ─launch─▶ STARTING ─ready─▶ RUNNING ◀─resume── PAUSED
                            │  ▲               │ └──pause──────▶ │
                 start fails│  │retry          │ ended            │ ended
                            ▼  │               ▼                  ▼
                          BACKOFF ◀─restart─ (policy) ──no restart──▶ EXITED
                            │                  │               ▲
        start retries spent │   too many restarts    STOPPING ─┘ (stop(), kill(): never
                            ▼                  ▼                     restarted)
                          FATAL ◀──────────────┘

Restart policies follow supervisord's ``autorestart`` and Erlang's supervisors: ``never``;
``on-failure`` (restart unless the program ended with ``exited(0)`` or was stopped by the
host); ``always`` (restart unless stopped by the host). A restart waits in BACKOFF for
``initial_backoff`` seconds, doubling with each consecutive failure up to ``max_backoff``;
more than ``max_restarts`` restarts within ``window`` seconds (Erlang's intensity and
period), or ``start_retries`` failed starts in a row (supervisord's ``startretries``), end in
FATAL, where nothing is retried any more.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .endings import Ending
from .errors import IllegalAction

if TYPE_CHECKING:
    from .supervisor import Sandbox


class State(enum.Enum):
    NOT_STARTED = "not started"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    EXITED = "exited"
    BACKOFF = "backoff"
    FATAL = "fatal"

    @property
    def final(self) -> bool:
        """No further change will happen by itself (``wait`` returns)."""
        return self in (State.EXITED, State.FATAL)


S = State
TRANSITIONS: dict[State, frozenset[State]] = {
    S.NOT_STARTED: frozenset({S.STARTING, S.EXITED}),
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.STOPPING, S.EXITED, S.FATAL}),
    S.RUNNING: frozenset({S.PAUSED, S.STOPPING, S.BACKOFF, S.EXITED, S.FATAL}),
    S.PAUSED: frozenset({S.RUNNING, S.STOPPING, S.BACKOFF, S.EXITED, S.FATAL}),
    S.STOPPING: frozenset({S.EXITED}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPING, S.FATAL}),
    S.EXITED: frozenset({S.STARTING}),  # launch() again: a manual restart
    S.FATAL: frozenset(),
}


class LifecycleError(IllegalAction):
    """An action the sandbox's state does not allow (the text names both)."""


class RestartPolicy(enum.Enum):
    NEVER = "never"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


@dataclass(frozen=True)
class Restart:
    """When and how often a sandbox is restarted after its guest ends."""

    policy: RestartPolicy = RestartPolicy.NEVER
    initial_backoff: float = 0.1
    max_backoff: float = 10.0
    max_restarts: int = 5
    window: float = 60.0
    start_retries: int = 3

    def __post_init__(self) -> None:
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("backoff must satisfy 0 <= initial_backoff <= max_backoff")
        if self.max_restarts < 0 or self.start_retries < 0 or self.window <= 0:
            raise ValueError("max_restarts and start_retries must be >= 0, window > 0")

    def wants_restart(self, ending: Ending) -> bool:
        if self.policy is RestartPolicy.NEVER:
            return False
        if self.policy is RestartPolicy.ON_FAILURE:
            return not ending.succeeded
        return True


@dataclass
class RestartCounter:
    """Restarts within the window, and consecutive failed starts (for backoff)."""

    restart: Restart
    recent: deque[float] = field(default_factory=deque)
    failed_starts: int = 0

    def allow(self, now: float | None = None) -> bool:
        """Record a restart now; False when it would exceed the intensity (then: FATAL)."""
        now = time.monotonic() if now is None else now
        while self.recent and now - self.recent[0] > self.restart.window:
            self.recent.popleft()
        if len(self.recent) >= self.restart.max_restarts:
            return False
        self.recent.append(now)
        return True

    def backoff(self) -> float:
        """Seconds to wait before the next start: doubling with each failure in a row."""
        doublings = max(self.failed_starts, len(self.recent) - 1, 0)
        delay = self.restart.initial_backoff * float(2**doublings)
        return min(delay, self.restart.max_backoff)


@dataclass(frozen=True)
class Event:
    """One state change of one sandbox."""

    sandbox: Sandbox
    old: State
    new: State
    reason: str
    at: float  # time.monotonic()

    def __str__(self) -> str:
        return f"{self.sandbox.name}: {self.old.value} -> {self.new.value} ({self.reason})"


Listener = Callable[[Event], Any]
