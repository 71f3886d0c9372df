"""What one invocation returns: a ``Response`` with its ``Report`` (Lambda's REPORT line, as
data)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class Report:
    """One invocation, for the log line and the metrics.

    ``start``: ``cold`` when the function's template (or a pool guest) had to be built for
    it, else ``warm``. ``fork_ms``: getting the guest (forking it, or taking one from the
    pool); ``init_ms``: building the template first (loading, the start function, ``init``),
    0 when warm. ``memory``: the guest's own memory (USS: not the template's pages it shares)
    when the request ended; linear memory never shrinks, so this is close to its peak. It is
    read within the last second: a pool guest's own figure, or in command mode the figure of
    the function's guest read last (reading costs 0.1-0.5 ms of host CPU per guest, a third
    of a command request: ``MEMORY_SAMPLE_SECONDS``); ``memory_sampled`` is true when the
    figure is another guest's. ``fuel``: fuel
    it used, when metered and known."""

    request_id: str
    function: str
    mode: str
    status: int = 0
    ending: str = ""
    duration_ms: float = 0.0
    fork_ms: float = 0.0
    init_ms: float = 0.0
    start: str = "warm"
    memory: int | None = None
    memory_sampled: bool = False
    fuel: int | None = None
    guest: int | None = None

    def json_line(self) -> str:
        # Its fields are plain values: the dict itself, not ``asdict``'s deep copy (measured:
        # 29 us a line against 168 us, on the gateway's path of every request).
        return json.dumps(self.__dict__, separators=(",", ":"))


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    report: Report | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None
