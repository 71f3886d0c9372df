"""``kindling bench spawn``: how fast templates fork ready guests, and what an idle one costs.

::

    start T templates of MODULE (one per core by default)
    latency   N_LAT guests one after another: fork request -> the guest's Hello (ready),
              as the guest timed it (CLOCK_MONOTONIC, the same clock in every process)
    churn     CHURN guests created and stopped, at most 256 alive: the sustained creation
              rate, memory recycled as guests come and go; then CHURN more that each
              answer one invocation before they are stopped
    mass      N guests at once, forks spread over the templates, WINDOW in flight:
              creation rate, then USS of a sample and memory in use per guest,
              one invocation each (all must answer), then every guest shut down and reaped;
              the page faults a guest took to be ready, and to answer its first invocation
              (each is mostly a page it shares with its template, copied: what it costs)
    burst     BURST launches at once through the Host API, unpaced (``bench.burst``):
              time to all ready, p50 / p99 per launch, BURST invocations at once,
              descriptors per guest, time to leave the Host
    check     no child process and no descriptor of this process is left over

Targets (issue 5): p50 <= 2 ms and p99 <= 6 ms template -> ready; >= 800 guests/s; an idle
guest <= 1.5 MiB USS; 5,000 guests at once, each answering, all reaped. Issue 10: 5,000
launches issued at once all become ready and answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psutil  # type: ignore[import-untyped]

from ..config import GuestConfig
from ..guest import Guest
from ..supervisor import raise_descriptor_limit
from ..template import Template
from ..watchdog import Watchdog, own_memory, stat_fields
from .burst import BurstReport, measure_burst, percentile
from .table import render

MIB = 1024 * 1024
USS_SAMPLE = 100
"""Guests whose USS is read (psutil reads smaps_rollup: too slow to do for thousands)."""


@dataclass
class SpawnReport:
    module: str
    templates: int
    guests: int
    template_start_ms: float = 0.0
    ready_p50_ms: float = 0.0
    ready_p99_ms: float = 0.0
    host_ready_p50_ms: float = 0.0  # fork request -> the host has processed the Hello
    churn_guests: int = 0
    churn_rate: float = 0.0  # guests created (and reaped) per second, sustained
    churn_invoke_rate: float = 0.0  # the same with one invocation answered by each
    create_seconds: float = 0.0
    create_rate: float = 0.0
    uss_median_mib: float = 0.0
    faults_ready_median: float = 0.0  # minor page faults from fork to idle, per guest
    faults_invoke_median: float = 0.0  # ... while answering its first invocation
    uss_max_mib: float = 0.0
    memory_per_guest_mib: float = 0.0  # the drop in the system's available memory, per guest
    watchdog_sweep_ms: float = 0.0  # one pass of the host's watchdog over every guest
    uss_sweep_ms: float = 0.0  # reading every guest's USS instead (what RSS first spares)
    invoked_ok: int = 0
    invoke_seconds: float = 0.0
    reap_seconds: float = 0.0
    burst: BurstReport = field(default_factory=BurstReport)
    leftover_processes: int = 0
    leftover_fds: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def _fork_ready(template: Template) -> tuple[Guest, float]:
    started = time.perf_counter()
    guest = await template.fork()
    await guest.handshake()
    return guest, (time.perf_counter() - started) * 1000


async def _churn(
    pool: list[Template], total: int, alive: int, window: int, export: str | None
) -> tuple[float, int]:
    """Create ``total`` guests, each (with ``export``) answering one invocation, and stop
    them, with at most ``alive`` in existence; (guests per second, how many were fine)."""
    forks = asyncio.Semaphore(window)
    living = asyncio.Semaphore(alive)
    answered = 0

    async def cycle(index: int) -> None:
        nonlocal answered
        async with living:
            async with forks:
                guest, _ = await _fork_ready(pool[index % len(pool)])
            try:
                if export is None or (await guest.invoke(export, [2, 3]))[0].signed() == 5:
                    answered += 1
            finally:
                await guest.stop()

    started = time.perf_counter()
    await asyncio.gather(*(cycle(i) for i in range(total)), return_exceptions=True)
    return total / (time.perf_counter() - started), answered


async def measure(
    module_path: Path,
    guests: int,
    latency_samples: int,
    templates: int,
    window: int,
    export: str,
    churn: int = 0,
    burst: int = 0,
) -> SpawnReport:
    module = module_path.read_bytes()
    report = SpawnReport(str(module_path), templates, guests)
    me = psutil.Process()
    children_before = {p.pid for p in me.children()}
    fds_before = set(os.listdir("/proc/self/fd"))
    raise_descriptor_limit()
    config = GuestConfig()
    started = time.perf_counter()
    pool = await asyncio.gather(*(Template.start(module, config) for _ in range(templates)))
    report.template_start_ms = (time.perf_counter() - started) * 1000
    live: list[Guest] = []
    try:
        # Latency: one at a time, so each fork has the machine to itself.
        ready, host_ready = [], []
        for index in range(latency_samples):
            guest, elapsed = await _fork_ready(pool[index % templates])
            ready.append(guest.timings["spawn_ms"])
            host_ready.append(elapsed)
            await guest.stop()
        report.ready_p50_ms = statistics.median(ready)
        report.ready_p99_ms = percentile(ready, 0.99)
        report.host_ready_p50_ms = statistics.median(host_ready)

        if churn:
            report.churn_guests = churn
            report.churn_rate, created = await _churn(pool, churn, 256, window, None)
            report.churn_invoke_rate, answered = await _churn(pool, churn, 256, window, export)
            if created != churn or answered != churn:
                report.problems.append(f"churn: {2 * churn - created - answered} guests failed")

        # Mass creation: WINDOW forks in flight, spread over the templates.
        available_before = psutil.virtual_memory().available
        semaphore = asyncio.Semaphore(window)

        async def create(index: int) -> Guest:
            async with semaphore:
                guest, _ = await _fork_ready(pool[index % templates])
                return guest

        started = time.perf_counter()
        results = await asyncio.gather(*(create(i) for i in range(guests)), return_exceptions=True)
        report.create_seconds = time.perf_counter() - started
        live = [g for g in results if isinstance(g, Guest)]
        failures = [r for r in results if not isinstance(r, Guest)]
        if failures:
            report.problems.append(f"{len(failures)} guests failed to start: {failures[0]!r}")
        report.create_rate = len(live) / report.create_seconds
        await asyncio.sleep(0.2)  # let the last ones settle into idle
        step = max(1, len(live) // USS_SAMPLE)
        uss = []
        for guest in live[::step][:USS_SAMPLE]:
            try:
                uss.append(psutil.Process(guest.pid).memory_full_info().uss / MIB)
            except psutil.Error:
                continue
        if uss:
            report.uss_median_mib = statistics.median(uss)
            report.uss_max_mib = max(uss)
        if live:
            memory_used = available_before - psutil.virtual_memory().available
            report.memory_per_guest_mib = memory_used / len(live) / MIB
            watchdog = Watchdog()
            for guest in live:
                watchdog.watch(guest)
            sweeps, full = [], []
            for _ in range(3):
                started = time.perf_counter()
                if watchdog.sweep():
                    report.problems.append("the watchdog ended an idle guest")
                sweeps.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                seen = [own_memory(g.pid) for g in live if g.pid is not None]
                full.append((time.perf_counter() - started) * 1000)
                if None in seen:
                    report.problems.append("the watchdog could not read a live guest")
            report.watchdog_sweep_ms = statistics.median(sweeps)
            report.uss_sweep_ms = statistics.median(full)

        # Every guest answers an invocation.
        faults_ready = [_minor_faults(g.pid) for g in live]
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(g.invoke(export, [2, 3]) for g in live), return_exceptions=True
        )
        report.invoke_seconds = time.perf_counter() - started
        faults_invoked = [_minor_faults(g.pid) for g in live]
        counted = [
            (ready, invoked - ready)
            for ready, invoked in zip(faults_ready, faults_invoked, strict=True)
            if ready is not None and invoked is not None
        ]
        if counted:
            report.faults_ready_median = statistics.median(ready for ready, _ in counted)
            report.faults_invoke_median = statistics.median(invoke for _, invoke in counted)
        report.invoked_ok = sum(
            1 for a in answers if isinstance(a, list) and a and a[0].signed() == 5
        )
        if report.invoked_ok != len(live):
            wrong = next(a for a in answers if not (isinstance(a, list) and a))
            report.problems.append(
                f"{len(live) - report.invoked_ok} guests did not answer: {wrong!r}"
            )
    finally:
        started = time.perf_counter()
        await asyncio.gather(*(g.stop() for g in live), return_exceptions=True)
        report.reap_seconds = time.perf_counter() - started
        for template in pool:
            await template.close()
            await template.release()
    if burst:
        report.burst = await measure_burst(module, burst, export)
        report.problems += [f"burst: {problem}" for problem in report.burst.problems]
    leftover = [p for p in me.children() if p.pid not in children_before]
    report.leftover_processes = len(leftover)
    report.leftover_fds = len(set(os.listdir("/proc/self/fd")) - fds_before)
    if leftover:
        report.problems.append(f"{len(leftover)} processes left behind")
    if report.leftover_fds:
        report.problems.append(f"{report.leftover_fds} descriptors left open")
    return report


def _minor_faults(pid: int | None) -> int | None:
    """The minor page faults a process has taken (``/proc/PID/stat``, field 10), or None
    once it is gone."""
    fields = stat_fields(pid)
    return int(fields[7]) if fields is not None else None


def format_report(report: SpawnReport) -> str:
    rows = [
        ("templates started (ms, all at once)", f"{report.template_start_ms:.0f}", ""),
        ("template -> ready p50 (ms)", f"{report.ready_p50_ms:.2f}", "<= 2"),
        ("template -> ready p99 (ms)", f"{report.ready_p99_ms:.2f}", "<= 6"),
        ("fork request -> host sees ready, p50 (ms)", f"{report.host_ready_p50_ms:.2f}", ""),
        ("guests created and stopped, twice (churn)", f"{report.churn_guests}", ""),
        ("sustained creation, <= 256 alive (guests/s)", f"{report.churn_rate:.0f}", ">= 800"),
        ("... each answering an invocation (guests/s)", f"{report.churn_invoke_rate:.0f}", ""),
        ("guests created at once", f"{report.guests}", ""),
        ("creation rate, all at once (guests/s)", f"{report.create_rate:.0f}", ""),
        ("time to launch all (s)", f"{report.create_seconds:.2f}", ""),
        ("USS per idle guest, median (MiB)", f"{report.uss_median_mib:.2f}", "<= 1.5"),
        ("USS per idle guest, max of sample (MiB)", f"{report.uss_max_mib:.2f}", ""),
        ("memory in use per guest (MiB)", f"{report.memory_per_guest_mib:.2f}", ""),
        ("page faults to be ready, per guest (median)", f"{report.faults_ready_median:.0f}", ""),
        ("... to answer a first invocation", f"{report.faults_invoke_median:.0f}", ""),
        ("watchdog sweep over all guests (ms)", f"{report.watchdog_sweep_ms:.0f}", ""),
        ("... reading every guest's USS instead (ms)", f"{report.uss_sweep_ms:.0f}", ""),
        ("guests that answered an invocation", f"{report.invoked_ok}", f"= {report.guests}"),
        ("time to invoke all (s)", f"{report.invoke_seconds:.2f}", ""),
        ("time to stop and reap all (s)", f"{report.reap_seconds:.2f}", ""),
        *_burst_rows(report.burst),
        (
            "processes / descriptors left over",
            f"{report.leftover_processes} / {report.leftover_fds}",
            "0 / 0",
        ),
    ]
    lines = render([("measure", "value", "target"), *rows])
    lines.append("")
    lines.append(f"module {report.module}, {report.templates} template(s)")
    lines += [f"!! {problem}" for problem in report.problems]
    return "\n".join(lines) + "\n"


def _burst_rows(burst: BurstReport) -> list[tuple[str, str, str]]:
    if not burst.launches:
        return []
    return [
        ("Host.launch issued at once (burst)", f"{burst.launches}", ""),
        ("launches ready", f"{burst.ready}", f"= {burst.launches}"),
        ("time to all ready (s)", f"{burst.all_ready_seconds:.2f}", ""),
        ("launch -> ready p50 (ms)", f"{burst.launch_p50_ms:.0f}", ""),
        ("launch -> ready p99 (ms)", f"{burst.launch_p99_ms:.0f}", ""),
        ("invocations issued at once, answered", f"{burst.answered}", f"= {burst.launches}"),
        ("time to all answered (s)", f"{burst.all_answered_seconds:.2f}", ""),
        ("host descriptors per guest (templates' too)", f"{burst.fds_per_guest:.2f}", ""),
        ("time to leave the Host (s)", f"{burst.close_seconds:.2f}", ""),
    ]


def bench_spawn_command(
    module: Path,
    guests: int,
    latency_samples: int,
    templates: int,
    window: int,
    export: str,
    as_json: bool,
    out: TextIO | None = None,
    churn: int = 0,
    burst: int = 0,
) -> int:
    out = out or sys.stdout
    report = asyncio.run(
        measure(module, guests, latency_samples, templates, window, export, churn, burst)
    )
    if as_json:
        document: dict[str, Any] = {**asdict(report), "ok": report.ok}
        out.write(json.dumps(document, indent=1) + "\n")
    else:
        out.write(format_report(report))
    return 0 if report.ok else 1
