"""``kindling bench files``: bytes through a preopened directory against stdin/stdout, and
what preopens cost the host in descriptors.

::

    throughput   REPEAT rounds, the four runs of a round back to back (interleaved, so the
                 load of a shared machine drifts alike for all four):
        write    kindling run --dir TMP::/ file_throughput.wasm w SIZE     the file TMP/data
                 kindling run --max-output SIZE file_throughput.wasm o SIZE  stdout, a pipe
        read     kindling run --dir TMP::/ file_throughput.wasm r SIZE     the file, back
                 kindling run file_throughput.wasm i SIZE < TMP/data        stdin, a file
    descriptors  GUESTS launched at once through the Host API, each given --ro-dir: each
                 reads a file through it, closes it and waits on stdin, so all are alive at
                 once; the host's open descriptors then, against its RLIMIT_NOFILE

The guest (``tests/fixtures/wat/file_throughput.wat``) moves SIZE bytes in calls of 64 KiB
and does nothing else. Each figure is the ``run_ms`` of ``kindling run --report``: the
host's time from starting the program to its exit, so process start-up, load and boot are
not in it. Every run is checked: exit 0, SIZE bytes on stdout, a file of SIZE bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..endings import Ending
from ..filebroker import MAX_FILES, OPEN_FILES, SHARED_DIRECTORIES
from .engine import REPO_ROOT, RunFailed, run_measured
from .table import render

MODULE = REPO_ROOT / "tests" / "fixtures" / "wasm" / "file_throughput.wasm"
CHUNK = 64 * 1024
"""Bytes per fd_read / fd_write call of the guest (``file_throughput.wat``)."""
TARGET_RATIO = 2.0
"""Issue 14.5: through a preopen within 2x of the time through stdin/stdout."""
RUN_TIMEOUT = 300.0
HELD_FILE_BYTES = 4096
"""The file each guest of the descriptor phase reads."""
MIB = 1024 * 1024

# (direction, through, the guest's mode letter), in the order a round runs them: the
# preopen write makes the file the other three read or match.
RUNS = (
    ("write", "preopen", "w"),
    ("write", "stdout", "o"),
    ("read", "preopen", "r"),
    ("read", "stdin", "i"),
)


@dataclass
class ThroughputRow:
    """One way of moving the bytes: medians over the rounds."""

    direction: str
    through: str
    runs_ms: list[float] = field(default_factory=list)
    median_ms: float = 0.0
    mib_per_s: float = 0.0


@dataclass
class DescriptorReport:
    """The descriptor phase (``guests`` 0: not run)."""

    guests: int = 0
    alive_having_read: int = 0
    fds_before: int = 0
    fds_alive: int = 0
    fds_per_guest: float = 0.0
    brokered_files_open: int = 0
    directories_open: int = 0  # the broker's descriptors for preopened directories
    fd_limit: int = 0
    exited_ok: int = 0
    fds_after: int = 0


@dataclass
class FilesReport:
    size: int
    repeats: int
    chunk: int = CHUNK
    rows: list[ThroughputRow] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)  # preopen / stdio, per direction
    descriptors: DescriptorReport = field(default_factory=DescriptorReport)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- throughput -------------------------------------------------------------------------------


def _kindling_run(options: list[str], mode: str, size: int) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from host.cli import main; sys.exit(main())",
        "run",
        "--report",
        *options,
        str(MODULE),
        mode,
        str(size),
    ]


def run_once(through: str, mode: str, size: int, directory: Path) -> float:
    """One ``kindling run`` of the guest; its ``run_ms``, once its work is checked."""
    data = directory / "data"
    options = {
        "preopen": ["--dir", f"{directory}::/"],
        "stdout": ["--max-output", str(size + CHUNK)],
        "stdin": [],
    }[through]
    stdin_path = data if through == "stdin" else os.devnull
    with open(stdin_path, "rb") as stdin:
        done = run_measured(
            _kindling_run(options, mode, size), RUN_TIMEOUT, f"{mode} {through}", stdin
        )
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        report = {}
    what = f"{through} ({mode} {size})"
    if done.returncode != 0 or report.get("ending") != "exited(0)":
        raise RunFailed(f"{what}: {lines[-1] if lines else f'exit status {done.returncode}'}")
    if through == "stdout" and len(done.stdout) != size:
        raise RunFailed(f"{what}: {len(done.stdout)} bytes on stdout, not {size}")
    if mode == "w" and data.stat().st_size != size:
        raise RunFailed(f"{what}: the file has {data.stat().st_size} bytes, not {size}")
    return float(report["run_ms"])


def measure_throughput(size: int, repeats: int, report: FilesReport) -> None:
    rows = {(d, t): ThroughputRow(d, t) for d, t, _ in RUNS}
    report.rows = list(rows.values())
    with tempfile.TemporaryDirectory(prefix="kindling-bench-files-") as name:
        directory = Path(name)
        try:
            run_once("stdout", "o", 0, directory)  # fills the code cache: no round pays for it
            for _ in range(repeats):
                for direction, through, mode in RUNS:
                    elapsed = run_once(through, mode, size, directory)
                    rows[direction, through].runs_ms.append(elapsed)
        except RunFailed as exc:
            report.problems.append(str(exc))
            return
    for row in report.rows:
        row.median_ms = statistics.median(row.runs_ms)
        row.mib_per_s = size / MIB / (row.median_ms / 1000) if row.median_ms else 0.0
    for direction, stdio in (("write", "stdout"), ("read", "stdin")):
        preopen = rows[direction, "preopen"].median_ms
        plain = rows[direction, stdio].median_ms
        report.ratios[direction] = round(preopen / plain, 3) if plain else 0.0


# -- descriptors ------------------------------------------------------------------------------


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def measure_descriptors(guests: int, preopen: bool = True) -> DescriptorReport:
    """Launch ``guests`` at once, each (with ``preopen``) reading a file through its
    ``ro_dirs`` preopen, then waiting on stdin; count this process's descriptors while all
    are alive, let them go, and count again once the Host is closed."""
    from ..supervisor import Host

    report = DescriptorReport(guests=guests)
    report.fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    waiting = 0
    all_waiting = asyncio.Event()
    release = asyncio.Event()

    async def held_stdin() -> AsyncIterator[bytes]:
        # Asked for once the guest has read its file: it waits here until released, then
        # sees the end of its input.
        nonlocal waiting
        waiting += 1
        if waiting == guests:
            all_waiting.set()
        await release.wait()
        return
        yield b""  # an async generator that yields nothing

    with tempfile.TemporaryDirectory(prefix="kindling-bench-fds-") as name:
        (Path(name) / "data").write_bytes(b"k" * HELD_FILE_BYTES)
        settings: dict[str, Any] = (
            {"args": ["h", str(HELD_FILE_BYTES)], "ro_dirs": [f"{name}::/"]}
            if preopen
            else {"args": ["i", "0"]}
        )
        module = MODULE.read_bytes()
        report.fds_before = open_descriptors()
        async with Host() as host:
            report.fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            sandboxes = await asyncio.gather(
                *(host.launch(module, stdin=held_stdin(), **settings) for _ in range(guests))
            )
            runs = [asyncio.ensure_future(sandbox.run()) for sandbox in sandboxes]
            with contextlib.suppress(TimeoutError):  # counted, and reported by the caller
                await asyncio.wait_for(all_waiting.wait(), RUN_TIMEOUT)
            report.alive_having_read = waiting
            report.fds_alive = open_descriptors()
            report.brokered_files_open = OPEN_FILES.count
            report.directories_open = SHARED_DIRECTORIES.count
            release.set()
            endings = await asyncio.gather(*runs, return_exceptions=True)
            report.exited_ok = sum(
                1 for ending in endings if isinstance(ending, Ending) and ending.succeeded
            )
        report.fds_after = open_descriptors()
    report.fds_per_guest = (report.fds_alive - report.fds_before) / max(1, guests)
    return report


# -- the command ------------------------------------------------------------------------------


def format_report(report: FilesReport) -> str:
    lines: list[str] = []
    if report.rows:
        table = [["direction", "through", "MiB", "run ms", "MiB/s", "x stdio"]]
        for row in report.rows:
            ratio = report.ratios.get(row.direction) if row.through == "preopen" else None
            table.append(
                [
                    row.direction,
                    row.through,
                    f"{report.size / MIB:g}",
                    f"{row.median_ms:.1f}",
                    f"{row.mib_per_s:.1f}",
                    "" if ratio is None else f"{ratio:.2f}",
                ]
            )
        lines += render(table)
        lines += [
            "",
            f"medians of {report.repeats} round(s), the four runs of a round back to back; "
            f"calls of {report.chunk // 1024} KiB",
            "run ms: kindling run --report's run_ms (program start to exit, as the host saw "
            "it); x stdio: preopen / stdout or stdin, "
            f"target <= {TARGET_RATIO:g}",
        ]
    fds = report.descriptors
    if fds.guests:
        rows = [
            ("guests alive at once, each with --ro-dir", f"{fds.guests}", ""),
            ("... each having read a file through it", f"{fds.alive_having_read}", ""),
            ("host descriptors before", f"{fds.fds_before}", ""),
            ("host descriptors, all guests alive", f"{fds.fds_alive}", f"< {fds.fd_limit}"),
            ("host descriptors per guest", f"{fds.fds_per_guest:.2f}", ""),
            ("... the broker's: preopened directories", f"{fds.directories_open}", ""),
            ("... the broker's: files open", f"{fds.brokered_files_open}", f"<= {MAX_FILES}"),
            (
                "worst case, every brokered file slot taken",
                f"{fds.fds_alive - fds.brokered_files_open + MAX_FILES}",
                f"< {fds.fd_limit}",
            ),
            ("guests that exited 0 once let go", f"{fds.exited_ok}", f"= {fds.guests}"),
            ("host descriptors after", f"{fds.fds_after}", f"= {fds.fds_before}"),
        ]
        if lines:
            lines.append("")
        lines += render([("descriptors", "value", "bound"), *rows])
        lines += [
            "",
            "the limit is this process's RLIMIT_NOFILE (ulimit -n, raised to its hard limit); "
            "a guest costs the host 3 (two pipes, a pidfd), a preopened directory 1 shared by "
            "every guest given it, an open file 1 (at most 1,024 in the host)",
        ]
    lines += [f"!! {problem}" for problem in report.problems]
    return "\n".join(lines) + "\n"


def measure(size: int, repeats: int, guests: int) -> FilesReport:
    report = FilesReport(size, repeats)
    if repeats:
        measure_throughput(size, repeats, report)
    if guests:
        try:
            report.descriptors = asyncio.run(measure_descriptors(guests))
        except Exception as exc:  # a launch or a run that failed: say so, not a traceback
            report.problems.append(f"descriptors: {type(exc).__name__}: {exc}")
            return report
        fds = report.descriptors
        if fds.alive_having_read != guests:
            report.problems.append(
                f"descriptors: {fds.alive_having_read} of {guests} guests read their file "
                f"within {RUN_TIMEOUT:g} s"
            )
        if fds.exited_ok != guests:
            report.problems.append(f"descriptors: {guests - fds.exited_ok} guests did not exit 0")
        if fds.fds_alive >= fds.fd_limit:
            report.problems.append("descriptors: the host reached its descriptor limit")
        if fds.fds_after != fds.fds_before:
            report.problems.append(
                f"descriptors: {fds.fds_after - fds.fds_before} descriptors left open"
            )
    return report


def bench_files_command(
    size: int, repeats: int, guests: int, as_json: bool, out: TextIO | None = None
) -> int:
    out = out or sys.stdout
    report = measure(size, repeats, guests)
    if as_json:
        document: dict[str, Any] = {
            **asdict(report),
            "ok": report.ok,
            "target_ratio": TARGET_RATIO,
        }
        out.write(json.dumps(document, indent=1) + "\n")
    else:
        out.write(format_report(report))
    return 0 if report.ok else 1
