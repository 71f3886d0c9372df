"""``kindling bench fuel``: how much CPU time one unit of fuel buys, workload by workload.

::

    benchmark programs (suite folders, read as            bulk loops (WAT text made here): one
    ``kindling bench engine`` reads them)                 bulk operation of one length, repeated
              │                                                       │
              └──────────── for each repeat, one hardened guest ──────┘
                  Load, Boot (metered; code from a warm code cache)
                  CPU so far (/proc/PID/schedstat) ── Invoke ── stop; CPU at exit (wait4)
                                          │ medians
                                          ▼
                  FuelRow: fuel used, CPU seconds, µs per unit ──▶ format_table / rows_to_json

**Programs** run with a budget they never reach: their rows say what ordinary code costs per
unit. **Bulk loops** repeat one operation until a budget of ``bulk_fuel`` units is spent
(ending ``limit(fuel)``); the grow loops stop earlier once the memory or table is full. Bulk
operations pay for their length as well as for their instruction, at rates chosen so that a
unit of bulk work costs about what a unit of instructions does: these rows check that.

**What is timed** is the guest's CPU time (user + system) from when it is booted to when it
has exited: ``/proc/PID/schedstat`` before the invocation (a guest is one thread), the
``wait4`` figure at the end. Each workload's code comes from a code cache that an unmeasured
first guest fills, so no function is compiled while the clock runs. ``us/unit`` is CPU seconds
per million units; the worst row bounds a budget: N units cost at most about N times it.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import sys
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .. import codecache
from ..config import DEFAULT_MEMORY_BYTES, GuestConfig
from ..endings import EndingKind, Limit
from ..errors import GuestEnded, GuestError
from ..guest import Guest, Number
from ..stdio import CapturedConsole
from ..watchdog import cpu_seconds
from .engine import (
    SIZES,
    UNREACHABLE_FUEL,
    BenchSuiteError,
    Program,
    default_suite,
    discover_programs,
    readme_table,
)
from .table import render

BULK_FUEL = 20_000_000
"""The budget each bulk loop spends (about half a second of CPU)."""
MEMORY_LENGTHS = (16, 4096, 1 << 20)
"""Bytes per operation in the memory loops (and ``random_get``)."""
TABLE_LENGTHS = (4, 256, 65536)
"""Elements per operation in the table loops."""
GROW_PAGES = (1, 16)
GROW_ELEMENTS = (16, 1024)
EMPTY_IOVECS = 1024
"""``fd_write`` with this many empty iovecs: work that moves no bytes at all."""
BULK_MEMORY = 64 * 1024 * 1024
"""The memory budget of a bulk loop's guest: what the grow loops fill."""
RUN_TIMEOUT = 900.0
"""Seconds of wall-clock time one measured guest may take."""

_KERNEL = re.compile(r"export\s+`?([A-Za-z_][A-Za-z0-9_]*)\s*\(")


@dataclass(frozen=True)
class Workload:
    """One thing to measure: a module (binary or WAT), what to call, and with what budget.

    ``export`` is ``"_start"`` for a WASI command (``args`` are its argv) or a kernel's export
    (``args`` are numbers); ``expected`` is the exact output, when it is known."""

    name: str
    kind: str  # "program" or "bulk"
    module: bytes
    export: str
    args: tuple[str, ...] = ()
    budget: int = UNREACHABLE_FUEL
    memory: int = DEFAULT_MEMORY_BYTES
    expected: str | None = None


@dataclass
class FuelRow:
    """The measurements of one workload: medians over ``repeats`` guests.

    ``fuel_used`` is the same in every run (metering is deterministic; a difference is a
    problem). ``us_per_unit`` is ``cpu_seconds`` per million units of ``fuel_used``.
    ``ending`` is how the runs ended (``exited(0)``, ``limit(fuel)``, ...)."""

    name: str
    kind: str
    repeats: int
    fuel_used: int | None = None
    cpu_seconds: float | None = None
    us_per_unit: float | None = None
    ending: str | None = None
    cpu_runs: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.us_per_unit is not None


# -- workloads ---------------------------------------------------------------------------------


def program_workloads(
    suites: Sequence[Path], size: str, programs: Collection[str] | None = None
) -> list[Workload]:
    """The benchmark programs of ``suites`` at ``size``, each with a budget it never reaches.

    A program is a kernel when the README's ``kind`` column names its export (``export
    `fib(i32) -> i32```), else a WASI command. Raises ``BenchSuiteError`` for a malformed
    suite and ``ValueError`` for a bad size or an unknown program name."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    found: list[tuple[Program, str]] = []
    for suite in suites:
        kinds = {row["program"]: row.get("kind", "") for row in readme_table(suite / "README.md")}
        found += [(p, kinds.get(p.name, "")) for p in discover_programs(suite)]
    if programs is not None:
        unknown = sorted(set(programs) - {p.name for p, _ in found})
        if unknown:
            raise ValueError(f"no program named {', '.join(unknown)} in the suites given")
        found = [(p, kind) for p, kind in found if p.name in programs]
    workloads = []
    for program, kind in found:
        kernel = _KERNEL.search(kind)
        workloads.append(
            Workload(
                name=f"{program.suite.name}/{program.name} {' '.join(program.args[size])}",
                kind="program",
                module=program.module.read_bytes(),
                export=kernel.group(1) if kernel else "_start",
                args=tuple(program.args[size]),
                expected=program.expected[size],
            )
        )
    return workloads


def _wasi(name: str, params: str) -> str:
    return (
        f'(import "wasi_snapshot_preview1" "{name}" (func ${name} (param {params}) (result i32)))'
    )


# A loop body per operation, ``{n}`` its length, and what else its module needs (``{data}``:
# a data segment of ``n`` bytes; ``{n}`` elements of ``$f`` for the element segment).
MEMORY_LOOPS = [
    ("memory.fill", "(memory.fill (i32.const 0) (i32.const 7) (i32.const {n}))", ""),
    ("memory.copy", "(memory.copy (i32.const {n}) (i32.const 0) (i32.const {n}))", ""),
    ("memory.init", "(memory.init 0 (i32.const 0) (i32.const 0) (i32.const {n}))", "{data}"),
    (
        "random_get",
        "(drop (call $random_get (i32.const 0) (i32.const {n})))",
        _wasi("random_get", "i32 i32"),
    ),
]
TABLE_LOOPS = [
    (
        "table.fill",
        "(table.fill (i32.const 0) (ref.func $f) (i32.const {n}))",
        "(elem declare func $f)",
    ),
    ("table.copy", "(table.copy (i32.const {n}) (i32.const 0) (i32.const {n}))", ""),
    ("table.init", "(table.init 0 (i32.const 0) (i32.const 0) (i32.const {n}))", "{elements}"),
]
# Loops that end by themselves once the memory (BULK_MEMORY) or the table is full.
GROW_LOOPS = [
    ("memory.grow", "pages", GROW_PAGES, "(memory 0)", "(memory.grow (i32.const {n}))"),
    (
        "table.grow",
        "el",
        GROW_ELEMENTS,
        "(table 0 funcref)",
        "(table.grow (ref.null func) (i32.const {n}))",
    ),
]
# WASI calls with little or nothing to move: one that pays only for its call instruction, and
# a write of EMPTY_IOVECS iovecs of nothing (every iovec is 8 zero bytes of memory).
CALL_LOOPS = [
    (
        "clock_time_get",
        "(drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 0)))",
        _wasi("clock_time_get", "i32 i64 i32"),
    ),
    (
        f"fd_write {EMPTY_IOVECS} empty iovecs",
        f"(drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const {EMPTY_IOVECS})"
        f" (i32.const {8 * EMPTY_IOVECS})))",
        _wasi("fd_write", "i32 i32 i32 i32"),
    ),
]


def _module(declarations: str, run: str) -> bytes:
    """A module with an empty function ``$f`` and ``run``, which runs ``run``'s body."""
    return f'(module {declarations} (func $f) (func (export "run") {run}))\n'.encode()


def _data_strings(length: int) -> str:
    """``length`` bytes of data as strings of at most 4 KiB: the text parser's pattern for a
    string needs memory in proportion to the string's length, hundreds of MiB for one MiB."""
    sizes = [min(4096, length - at) for at in range(0, length, 4096)]
    return " ".join('"' + "k" * size + '"' for size in sizes)


def _memory(length: int) -> str:
    """Memory for two ``length`` stretches, exported (WASI functions reach only that one)."""
    return f'(memory (export "memory") {(2 * length) // 65536 + 1})'


def bulk_workloads(bulk_fuel: int = BULK_FUEL) -> list[Workload]:
    """A loop per bulk operation and length, each spending ``bulk_fuel`` units (or filling the
    memory or table, for the grow loops)."""
    loops: list[tuple[str, bytes]] = []
    for lengths, unit, table in ((MEMORY_LENGTHS, "B", False), (TABLE_LENGTHS, "el", True)):
        for n in lengths:
            for name, body, needs in TABLE_LOOPS if table else MEMORY_LOOPS:
                declarations = needs.format(
                    data=f"(data {_data_strings(n)})", elements=f"(elem func{' $f' * n})"
                )
                space = f"(table {2 * n} funcref)" if table else _memory(n)
                loop = f"(loop $again {body.format(n=n)} (br $again))"
                loops.append((f"{name} {n} {unit}", _module(f"{declarations} {space}", loop)))
    for name, unit, counts, space, grow in GROW_LOOPS:
        for n in counts:
            loop = f"(loop $again (br_if $again (i32.ne {grow.format(n=n)} (i32.const -1))))"
            loops.append((f"{name} {n} {unit}", _module(space, loop)))
    for name, body, needs in CALL_LOOPS:
        loops.append((name, _module(f"{needs} {_memory(0)}", f"(loop $again {body} (br $again))")))
    return [
        Workload(name, "bulk", module, "run", budget=bulk_fuel, memory=BULK_MEMORY)
        for name, module in loops
    ]


# -- measuring ----------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """The CPU time a live process has used: nanoseconds from ``schedstat`` (a guest has one
    thread), else clock ticks from ``stat``."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as schedstat:
            return int(schedstat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return cpu_seconds(pid)


@dataclass
class _Run:
    ending: str
    fuel_used: int | None
    cpu_seconds: float | None
    output: str


def _number(text: str) -> Number:
    try:
        return int(text, 0)
    except ValueError:
        return float(text)


async def _run_once(workload: Workload, cache_dir: str, measure: bool) -> _Run:
    """One guest: load and boot ``workload``; with ``measure``, invoke it and time it."""
    config = GuestConfig(
        fuel=workload.budget,
        timeout=RUN_TIMEOUT,
        args=list(workload.args) if workload.export == "_start" else [],
        memory=workload.memory,
    )
    console = CapturedConsole()
    guest = Guest(config, console=console)
    ending = "stopped"
    fuel: int | None = None
    start: float | None = None
    results: list[Any] | None = None
    try:
        guest.begin()
        guest.submit_load(workload.module, cache_dir)
        booted = guest.submit_boot(workload.name.split()[0])
        await guest.handshake()
        await booted
        if not measure:
            return _Run("booted", None, None, "")
        assert guest.pid is not None
        start = _cpu_seconds(guest.pid)
        numbers = [_number(a) for a in workload.args] if workload.export != "_start" else []
        try:
            results = await guest.invoke(workload.export, numbers)
            ending = "returned" if workload.export != "_start" else "exited(0)"
            fuel = guest.fuel_used
        except GuestEnded as ended:
            ending = ended.ending.text
            if ended.ending.kind is EndingKind.LIMIT and ended.ending.detail == Limit.FUEL:
                fuel = workload.budget  # every unit of it: the guest could not pay for more
    except GuestError as exc:
        ending = f"failed: {exc}"
    finally:
        final = await guest.stop()
    if ending == "stopped":
        ending = final.text
    status = guest.exit_status
    cpu = status.cpu_seconds - start if status is not None and start is not None else None
    if results is not None and workload.export != "_start":
        output = "[" + ", ".join(value.display() for value in results) + "]\n"
    else:
        output = console.stdout.decode("utf-8", "backslashreplace")
    return _Run(ending, fuel, cpu, output)


def measure(workload: Workload, repeats: int) -> FuelRow:
    """``repeats`` measured guests of ``workload`` after one that fills the code cache."""
    row = FuelRow(workload.name, workload.kind, repeats)
    fuels: set[int | None] = set()
    with tempfile.TemporaryDirectory(prefix="kindling-bench-fuel-") as directory:
        cache_dir = codecache.prepare(Path(directory))
        warm = asyncio.run(_run_once(workload, cache_dir, measure=False))
        if warm.ending != "booted":
            row.problems.append(f"the module did not boot: {warm.ending}")
            return row
        for _ in range(repeats):
            run = asyncio.run(_run_once(workload, cache_dir, measure=True))
            row.ending = run.ending
            fuels.add(run.fuel_used)
            if run.fuel_used is None or run.cpu_seconds is None:
                row.problems.append(f"no fuel figure or CPU time (the guest ended {run.ending})")
                return row
            if workload.expected is not None and run.output != workload.expected:
                row.problems.append(
                    f"MISMATCH: expected {workload.expected[:200]!r}, got {run.output[:200]!r}"
                )
            row.cpu_runs.append(run.cpu_seconds)
    if len(fuels) > 1:
        row.problems.append(f"the fuel used differed between runs: {sorted(map(str, fuels))}")
    row.fuel_used = max(f for f in fuels if f is not None)
    row.cpu_seconds = statistics.median(row.cpu_runs)
    if row.fuel_used:
        row.us_per_unit = row.cpu_seconds / row.fuel_used * 1e6
    return row


def fuel_workloads(
    suites: Sequence[Path],
    size: str = "small",
    *,
    programs: Collection[str] | None = None,
    bulk: bool = True,
    bulk_fuel: int = BULK_FUEL,
) -> list[Workload]:
    """The programs of ``suites`` at ``size``, then (with ``bulk``) the bulk loops.

    Raises ``BenchSuiteError`` for a malformed suite and ``ValueError`` for a bad size or
    program name."""
    workloads = program_workloads(suites, size, programs)
    return workloads + bulk_workloads(bulk_fuel) if bulk else workloads


# -- reporting ----------------------------------------------------------------------------------


def worst(rows: Sequence[FuelRow]) -> FuelRow | None:
    """The measured row with the most CPU time per unit of fuel."""
    measured = [r for r in rows if r.ok and r.us_per_unit is not None]
    return max(measured, key=lambda r: r.us_per_unit or 0.0, default=None)


def summary(rows: Sequence[FuelRow]) -> dict[str, Any]:
    """The worst row, and the medians of µs per unit over programs and over bulk loops."""
    top = worst(rows)

    def median(kind: str) -> float | None:
        values = [r.us_per_unit for r in rows if r.ok and r.kind == kind and r.us_per_unit]
        return statistics.median(values) if values else None

    return {
        "worst": top.name if top else None,
        "worst_us_per_unit": top.us_per_unit if top else None,
        "median_program_us_per_unit": median("program"),
        "median_bulk_us_per_unit": median("bulk"),
        "all_ok": bool(rows) and all(r.ok for r in rows),
    }


def rows_to_json(rows: Sequence[FuelRow]) -> dict[str, Any]:
    """Every row (all ``FuelRow`` fields and ``ok``) and the ``summary``."""
    return {"rows": [{**asdict(r), "ok": r.ok} for r in rows], "summary": summary(rows)}


def _micro(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_table(rows: Sequence[FuelRow]) -> str:
    """A plain-text table of ``rows``, the worst one called out, and every problem."""
    if not rows:
        return "nothing measured\n"
    top = worst(rows)
    table = [["workload", "fuel used", "CPU s", "us/unit", "ending", "ok"]]
    for r in rows:
        table.append(
            [
                r.name,
                "-" if r.fuel_used is None else f"{r.fuel_used:,}",
                "-" if r.cpu_seconds is None else f"{r.cpu_seconds:.3f}",
                _micro(r.us_per_unit) + (" <- worst" if r is top else ""),
                r.ending or "-",
                "ok" if r.ok else "FAILED",
            ]
        )
    facts = summary(rows)
    lines = render(table)
    lines += [
        "",
        f"median of {rows[0].repeats} run(s), each a new guest; CPU s: user + system from boot "
        "to exit (code from the code cache); us/unit: CPU s per million fuel units",
        f"median us/unit: programs {_micro(facts['median_program_us_per_unit'])}, "
        f"bulk loops {_micro(facts['median_bulk_us_per_unit'])}",
    ]
    if top is not None:
        lines.append(
            f"worst: {top.name}, {_micro(top.us_per_unit)} us per unit: a fuel budget of N "
            f"units is at most about N x {_micro(top.us_per_unit)} us of CPU"
        )
    lines += [f"!! {r.name}: {p}" for r in rows for p in r.problems]
    return "\n".join(lines) + "\n"


def bench_fuel_command(
    folders: Sequence[Path],
    size: str = "small",
    repeats: int = 3,
    as_json: bool = False,
    *,
    programs: Collection[str] | None = None,
    bulk: bool = True,
    bulk_fuel: int = BULK_FUEL,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """What ``kindling bench fuel`` does. No folders means Kindling's own suite. Progress goes
    to ``err``, the table (or JSON) to ``out``; the exit status is 0 when every workload was
    measured (and every program printed what it should), 1 otherwise, 2 for bad arguments or
    a malformed suite."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        workloads = fuel_workloads(
            list(folders) or [default_suite()],
            size,
            programs=programs,
            bulk=bulk,
            bulk_fuel=bulk_fuel,
        )
    except (BenchSuiteError, ValueError) as exc:
        err.write(f"kindling bench fuel: {exc}\n")
        return 2
    rows = []
    for workload in workloads:
        err.write(f"bench: {workload.name}: {repeats} run(s)\n")
        err.flush()
        rows.append(measure(workload, repeats))
    out.write(json.dumps(rows_to_json(rows), indent=1) + "\n" if as_json else format_table(rows))
    return 0 if rows and all(r.ok for r in rows) else 1
