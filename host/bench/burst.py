"""The burst phase of ``kindling bench spawn``: N launches issued at once through the Host API.

::

    async with Host():
      gather(N x host.launch(MODULE))      time to all ready; p50 / p99 of each launch
      gather(N x sandbox.invoke(EXPORT))   time to all answered; every answer checked
      descriptors of this process per guest, while all N are alive
    leave the Host                         time to close; no process or descriptor left

This is what a user's ``asyncio.gather`` of launches does, so nothing here paces the launches:
the Host's own queueing (``FORKS_IN_FLIGHT`` per template) is what is measured.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field

from ..supervisor import Host, Sandbox


@dataclass
class BurstReport:
    launches: int = 0
    ready: int = 0
    all_ready_seconds: float = 0.0
    launch_p50_ms: float = 0.0
    launch_p99_ms: float = 0.0
    answered: int = 0
    all_answered_seconds: float = 0.0
    fds_per_guest: float = 0.0
    close_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank ``fraction`` percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure_burst(module: bytes, launches: int, export: str) -> BurstReport:
    """Launch ``launches`` sandboxes of ``module`` at once, invoke ``export(2, 3)`` on each
    at once (each must answer 5), and close the Host."""
    report = BurstReport(launches=launches)
    fds_before = len(os.listdir("/proc/self/fd"))
    async with Host() as host:
        try:
            await _launch_and_invoke(host, module, launches, export, report, fds_before)
        finally:
            leaving = time.perf_counter()
    report.close_seconds = time.perf_counter() - leaving
    return report


async def _launch_and_invoke(
    host: Host, module: bytes, launches: int, export: str, report: BurstReport, fds_before: int
) -> None:
    async def launch() -> tuple[Sandbox, float]:
        started = time.perf_counter()
        sandbox = await host.launch(module)
        return sandbox, (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    results = await asyncio.gather(*(launch() for _ in range(launches)), return_exceptions=True)
    report.all_ready_seconds = time.perf_counter() - started
    ready = [r for r in results if isinstance(r, tuple)]
    report.ready = len(ready)
    if len(ready) != launches:
        failure = next(r for r in results if not isinstance(r, tuple))
        report.problems.append(f"{launches - len(ready)} launches failed: {failure!r}")
    if not ready:
        return
    latencies = [elapsed for _, elapsed in ready]
    report.launch_p50_ms = statistics.median(latencies)
    report.launch_p99_ms = percentile(latencies, 0.99)
    report.fds_per_guest = (len(os.listdir("/proc/self/fd")) - fds_before) / len(ready)

    started = time.perf_counter()
    answers = await asyncio.gather(
        *(sandbox.invoke(export, 2, 3) for sandbox, _ in ready), return_exceptions=True
    )
    report.all_answered_seconds = time.perf_counter() - started
    report.answered = sum(1 for answer in answers if answer == [5])
    if report.answered != len(ready):
        wrong = next(answer for answer in answers if answer != [5])
        report.problems.append(f"{len(ready) - report.answered} did not answer 5: {wrong!r}")
