"""Run one module in one guest, start to finish: what ``kindling run`` does, as a function.

::

    run_guest(guest, module) ── start ── boot ── _start (or invoke EXPORT ARGS) ── stop
                                   └── the watchdog, from start to stop            │
                                                RunReport(ending, results, timings, memory)

The run's ending is how the *program* ended: ``exited(0)`` when ``_start`` returns or an
invoked export returns, ``exited(n)`` for ``proc_exit(n)``, ``trapped(kind)``,
``load_failure(stage)`` (``export`` when there is no such function to call), a limit,
``protocol_error``, ``signalled(n)``, or ``stopped`` (interrupted, or the call was refused
because the arguments do not fit the export: then ``refused`` says why). The guest is always
stopped and reaped before ``run_guest`` returns, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol.messages import LoadStage, RefusalReason, ResultValue

from .config import GuestConfig
from .endings import Ending
from .errors import GuestEnded, GuestTrapped, InvokeRefused
from .guest import Guest, Number
from .stdio import ConsoleSink, StdinSource
from .transport import GuestProcess, Launcher
from .watchdog import Watchdog

TIMING_KEYS = (
    "spawn_ms",
    "decode_ms",
    "validate_ms",
    "compile_ms",
    "precompile_ms",
    "precompiled",
    "instantiate_ms",
    "run_ms",
)


@dataclass
class RunReport:
    """What one run came to. ``peak_memory`` is the guest process's peak RSS in bytes (from
    the kernel, at reaping); ``timings`` are milliseconds (``*_ms``)."""

    ending: Ending
    results: list[ResultValue] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    peak_memory: int | None = None
    cpu_seconds: float | None = None
    output_bytes: int = 0
    code_cache: str | None = None
    refused: str | None = None  # the arguments did not fit the export: why, naming which

    def as_dict(self) -> dict[str, Any]:
        """The ``--report`` object: ending, exit code, CLI status, reason, timings, memory."""
        report: dict[str, Any] = {
            "ending": self.ending.text,
            "exit_code": self.ending.exit_code,
            "status": self.ending.status,
            "reason": self.ending.reason(),
        }
        if self.ending.backtrace:
            report["backtrace"] = list(self.ending.backtrace)
        for key in TIMING_KEYS:
            if key in self.timings:
                report[key] = self.timings[key]
        for key, value in self.timings.items():
            report.setdefault(key, value)
        report["peak_memory"] = self.peak_memory
        report["cpu_ms"] = None if self.cpu_seconds is None else round(self.cpu_seconds * 1000, 3)
        report["output_bytes"] = self.output_bytes
        report["code_cache"] = self.code_cache
        return report


async def run_guest(
    guest: Guest,
    module: bytes,
    *,
    program_name: str = "module.wasm",
    invoke: str | None = None,
    args: Sequence[Number] = (),
    process: GuestProcess | None = None,
    cache_dir: str | None = None,
) -> RunReport:
    """Run ``module`` in ``guest``: its ``_start``, or ``invoke(*args)``.

    The guest may already have begun (``Guest.begin``) and even have been sent the module
    (``Guest.submit_load``): ``kindling run`` does both before its configuration is
    validated. Otherwise ``process`` may be a guest process spawned ahead of time (see
    ``Guest.begin``). Raises only ``GuestStartError`` (no guest process could be started) and ``ValueError`` /
    ``TypeError`` for arguments that are not numbers; every other outcome is in the report.
    """
    run_ending: Ending | None = None
    results: list[ResultValue] | None = None
    refused: str | None = None
    watchdog = Watchdog()
    watching: asyncio.Task[None] | None = None
    try:
        # Pipelined: the guest works through these in order while we wait for the answers.
        if not guest.started:
            guest.begin(process)
        watchdog.watch(guest)
        watching = asyncio.get_running_loop().create_task(watchdog.run())
        if not guest.load_submitted:
            guest.submit_load(module, cache_dir)
        booted = guest.submit_boot(program_name)
        called = guest.submit_invoke(invoke or "_start", args)
        await guest.handshake()
        await booted
        results = await called
        run_ending = Ending.exited(0)
        if invoke is None:
            results = None  # a command's results (none) are not printed
    except (GuestEnded, GuestTrapped) as exc:
        run_ending = exc.ending
    except InvokeRefused as exc:
        if exc.reason is RefusalReason.ARGUMENTS:
            refused = str(exc)
            run_ending = Ending.stopped(f"the call was refused: {exc}")
        else:
            run_ending = Ending.load_failure(LoadStage.EXPORT, str(exc))
    finally:
        final = await guest.stop()
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    status = guest.exit_status
    return RunReport(
        ending=run_ending or final,
        results=results,
        timings=dict(guest.timings),
        peak_memory=status.max_rss if status is not None else None,
        cpu_seconds=status.cpu_seconds if status is not None else None,
        output_bytes=guest.output_bytes,
        code_cache=guest.code_cache,
        refused=refused,
    )


def run(
    module: bytes,
    config: GuestConfig | None = None,
    *,
    program_name: str = "module.wasm",
    invoke: str | None = None,
    args: Sequence[Number] = (),
    console: ConsoleSink | None = None,
    stdin: StdinSource | None = None,
    launcher: Launcher | None = None,
    cache_dir: str | None = None,
) -> RunReport:
    """``run_guest`` in a fresh event loop, for code that is not async.

    Output is captured unless ``console`` is given (``CapturedConsole`` has ``stdout`` and
    ``stderr``); stdin is empty unless ``stdin`` is given.
    """

    async def main() -> RunReport:
        guest = Guest(config, console=console, stdin=stdin, launcher=launcher)
        return await run_guest(
            guest, module, program_name=program_name, invoke=invoke, args=args, cache_dir=cache_dir
        )

    return asyncio.run(main())
