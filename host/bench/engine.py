"""``kindling bench engine``: how fast our engine runs guest code, against plain CPython.

::

    suite folder (README.md table, wasm/, py/, expected.json)
        │ discover_programs
        ▼
    Program ──▶ for each repeat, alternating fresh processes:
                  python -m guestproc.benchrun MODULE [--invoke EXPORT] ARGS   our engine
                  python -m guestproc.benchrun MODULE --fuel N ...   metered (with --fuel)
                  python -m guestproc.benchrun wasm/simd128/NAME.wasm ...  its SIMD build
                  python -m host.bench.engine --port-runner PORT [--call F] ARGS   the port
                  python -m host.bench.engine --pywasm-runner MODULE ...          pywasm
                each prints one JSON line: run_seconds, output
        │ medians, outputs checked against expected.json
        ▼
    Row ──▶ format_table / rows_to_json

**Suites.** A suite is a folder laid out like ``benchmarks/engine`` (and the shared reference
``bench`` folder): ``README.md`` holds a Markdown table with at least the columns ``program``,
``small arg`` and ``large arg`` (arguments separated by spaces); ``wasm/NAME.wasm`` is the
module, ``py/NAME.py`` its Python port, and ``expected.json`` maps ``"NAME/SIZE"`` to the exact
output. A module that exports ``_start`` is a WASI command (arguments go to ``argv[1:]``);
otherwise it is a kernel: its exported function is called with the arguments as numbers, and
its output is the result list as ``kindling run --invoke`` prints it (``[75025]``). The export
is found by asking ``guestproc.benchrun --exports`` (the host never decodes a module itself);
the port defines a function of the same name.

**What is timed.** Only the run phase, in every runner: our engine's load stages
(decode, validate, compile every function, instantiate) are timed apart and reported as
``load_seconds``; the port is imported before its ``main`` (or kernel function) is timed;
pywasm instantiates before its clock starts. Every measurement is a fresh process, and the
runners alternate within a program so machine noise hits them alike; a row shows medians.

**SIMD builds.** A program may also have ``wasm/simd128/NAME.wasm``: the same source built
with ``-msimd128`` (``benchmarks/engine/simd``). Our engine then runs it too, alternating with
the other runners, and the row gives its time and ``simd_ratio``, the SIMD build's time over
the scalar build's (below 1.0 the SIMD build is faster). Both builds must print the same
expected output.

**pywasm** is about 500 times slower than the port, so by default it runs only at ``small``;
a run stopped at ``pywasm_timeout`` is reported as a lower bound (``>``), and a program whose
first pywasm run took longer than ``PYWASM_REPEAT_BUDGET`` seconds is not run again.

**Fuel** (``fuel=True``): our engine also runs each program compiled with metering and a
budget it cannot reach (``UNREACHABLE_FUEL``), alternating with the other runners; the row
gives that time, the overhead over the unmetered run, and the fuel the run used.

A program that cannot be measured (missing file, load failure, wrong output, timeout) gives a
row with ``ok`` false and the reasons in ``problems``; it never stops the other programs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .table import render

SIZES = ("small", "large")
REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 900.0
"""Seconds one run of our engine or of a port may take before it counts as failed."""
UNREACHABLE_FUEL = 1 << 62
"""The budget of a metered run: what metering costs is measured, never running out."""
PYWASM_TIMEOUT = 60.0
PYWASM_REPEAT_BUDGET = 20.0
"""A program whose first pywasm run took longer than this is measured by pywasm only once."""

Progress = Callable[[str], None]


class BenchSuiteError(Exception):
    """A suite folder is not laid out as documented; the message names the file and the fault."""


class RunFailed(Exception):
    """One measurement could not be taken (the message says why)."""


@dataclass(frozen=True)
class Program:
    """One benchmark program of a suite, as the README table and the folder describe it."""

    suite: Path
    name: str
    module: Path
    port: Path
    args: dict[str, list[str]]  # size -> arguments
    expected: dict[str, str]  # size -> exact output
    simd_module: Path | None = None  # the same source built with -msimd128, if any


@dataclass
class Row:
    """The measurements of one program at one size. Times are medians, in seconds.

    ``ratio`` is kindling over port (lower is better; 1.0 would be the port's speed) and
    ``pywasm_ratio`` pywasm over kindling (how many times faster we are). ``pywasm_status`` is
    ``"measured"``, ``"lower bound"`` (a run hit the time limit, so the real time and ratio
    are larger), ``"skipped at large size"``, ``"not requested"``, ``"not installed"``,
    ``"wrong output"`` or ``"failed"``. ``ok`` means our engine and the port both ran and both
    printed exactly the expected output (and, when metered runs were asked for, those too);
    otherwise ``problems`` says what went wrong. ``fuel_overhead`` is the metered run's time
    over the unmetered one, minus one (0.1 is 10% slower); ``fuel_used`` is what it spent.
    ``simd_seconds`` is our engine's time on the program's SIMD build and ``simd_ratio`` that
    over ``kindling_seconds`` (the scalar build's time): below 1.0 the SIMD build is faster.
    """

    suite: str
    program: str
    size: str
    args: list[str]
    export: str | None
    repeats: int
    kindling_seconds: float | None = None
    port_seconds: float | None = None
    ratio: float | None = None
    pywasm_seconds: float | None = None
    pywasm_ratio: float | None = None
    pywasm_status: str = "not requested"
    fuel_seconds: float | None = None
    fuel_overhead: float | None = None
    fuel_used: int | None = None
    load_seconds: float | None = None
    simd_seconds: float | None = None
    simd_ratio: float | None = None
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    kindling_runs: list[float] = field(default_factory=list)
    port_runs: list[float] = field(default_factory=list)
    pywasm_runs: list[float] = field(default_factory=list)
    fuel_runs: list[float] = field(default_factory=list)
    simd_runs: list[float] = field(default_factory=list)


# -- suites ------------------------------------------------------------------------------------


def default_suite() -> Path:
    """Kindling's own suite, ``benchmarks/engine`` in the repository."""
    return REPO_ROOT / "benchmarks" / "engine"


def default_suites() -> list[Path]:
    """What ``kindling bench engine`` runs without folders: our suite and its SIMD kernels."""
    return [default_suite(), default_suite() / "simd"]


def _cells(line: str) -> list[str]:
    return [cell.strip().strip("`").strip() for cell in line.strip().strip("|").split("|")]


def readme_table(readme: Path) -> list[dict[str, str]]:
    """The rows of the first Markdown table whose header has program / small arg / large arg."""
    try:
        lines = readme.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BenchSuiteError(f"cannot read {readme}: {exc.strerror}") from exc
    for at, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            continue
        header = [cell.lower() for cell in _cells(line)]
        if not {"program", "small arg", "large arg"} <= set(header):
            continue
        rows = []
        for row_line in lines[at + 2 :]:
            if not row_line.lstrip().startswith("|"):
                break
            cells = _cells(row_line)
            if len(cells) != len(header):
                raise BenchSuiteError(
                    f"{readme}: table row {row_line.strip()!r} has {len(cells)} cells, "
                    f"the header has {len(header)}"
                )
            rows.append(dict(zip(header, cells, strict=True)))
        return rows
    raise BenchSuiteError(
        f"{readme}: no Markdown table with the columns 'program', 'small arg' and 'large arg'"
    )


def discover_programs(suite: Path) -> list[Program]:
    """The programs of ``suite``, in README table order.

    Raises ``BenchSuiteError`` when README.md or expected.json is missing or malformed, when a
    listed program has no module, no port or no expected output, or when a module in
    ``wasm/`` has no row (so a program cannot be forgotten silently).
    """
    suite = suite.resolve()
    if not suite.is_dir():
        raise BenchSuiteError(f"{suite} is not a directory")
    expected_path = suite / "expected.json"
    try:
        expected = json.loads(expected_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BenchSuiteError(f"cannot read {expected_path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise BenchSuiteError(f"{expected_path} is not valid JSON: {exc}") from exc
    if not isinstance(expected, dict) or not all(isinstance(v, str) for v in expected.values()):
        raise BenchSuiteError(f"{expected_path} must map 'NAME/SIZE' to output text")

    programs = []
    for row in readme_table(suite / "README.md"):
        name = row["program"]
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise BenchSuiteError(f"{suite / 'README.md'}: bad program name {name!r}")
        module = suite / "wasm" / f"{name}.wasm"
        port_cell = row.get("python port", "")
        port = suite / port_cell if port_cell.endswith(".py") else suite / "py" / f"{name}.py"
        for path, what in ((module, "module"), (port, "Python port")):
            if not path.is_file():
                raise BenchSuiteError(f"{suite.name}/{name}: the {what} {path} does not exist")
        args = {size: row[f"{size} arg"].split() for size in SIZES}
        outputs = {}
        for size in SIZES:
            key = f"{name}/{size}"
            if key not in expected:
                raise BenchSuiteError(f"{expected_path} has no entry {key!r}")
            outputs[size] = expected[key]
        simd = suite / "wasm" / "simd128" / f"{name}.wasm"
        simd_module = simd if simd.is_file() else None
        programs.append(Program(suite, name, module, port, args, outputs, simd_module))
    listed = {p.name for p in programs}
    modules = [*(suite / "wasm").glob("*.wasm"), *(suite / "wasm" / "simd128").glob("*.wasm")]
    unlisted = sorted({m.stem for m in modules if m.stem not in listed})
    if unlisted:
        raise BenchSuiteError(
            f"{suite / 'README.md'} has no table row for {', '.join(unlisted)} (in wasm/)"
        )
    return programs


# -- runners (each measurement is a fresh process) ------------------------------------------


def subprocess_environment() -> dict[str, str]:
    """This environment, with this checkout importable (for ``python -m host...``)."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    return env


def run_measured(
    command: list[str], timeout: float, what: str, stdin: Any = subprocess.DEVNULL
) -> subprocess.CompletedProcess[bytes]:
    """Run one of the bench's processes (this checkout importable), its output captured;
    ``RunFailed`` naming ``what`` if it is not done within ``timeout`` seconds."""
    try:
        return subprocess.run(
            command,
            stdin=stdin,
            capture_output=True,
            timeout=timeout,
            env=subprocess_environment(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RunFailed(f"{what}: no result within {timeout:g} s") from exc


def _run_json(command: list[str], timeout: float, what: str) -> dict[str, Any]:
    """Run ``command``; return the JSON object on the last line of its stdout."""
    done = run_measured(command, timeout, what)
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = reason[-1] if reason else f"exit status {done.returncode}, no output"
        raise RunFailed(f"{what}: {detail}")
    try:
        record = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise RunFailed(f"{what}: unreadable result line {lines[-1][:200]!r}") from exc
    if not isinstance(record, dict) or not isinstance(record.get("run_seconds"), int | float):
        raise RunFailed(f"{what}: result without run_seconds: {lines[-1][:200]!r}")
    return record


def find_export(module: Path, readme_hint: str = "") -> str | None:
    """``None`` for a WASI command (exports ``_start``), else the kernel's export name.

    Raises ``RunFailed`` when the module does not decode or its kernel is ambiguous.
    """
    record = subprocess.run(
        [sys.executable, "-m", "guestproc.benchrun", "--exports", str(module)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        env=subprocess_environment(),
        check=False,
    )
    if record.returncode != 0:
        raise RunFailed(record.stderr.decode("utf-8", "replace").strip() or "cannot list exports")
    exports = json.loads(record.stdout)["exports"]
    if "_start" in exports:
        return None
    if len(exports) == 1:
        return str(next(iter(exports)))
    hinted = [name for name in exports if f"{name}(" in readme_hint]
    if len(hinted) == 1:
        return str(hinted[0])
    raise RunFailed(
        f"{module.name} has no _start and {len(exports)} exported functions "
        f"({', '.join(sorted(exports)) or 'none'}); name one in the README's kind column"
    )


def _kindling_command(
    module: Path, export: str | None, args: list[str], fuel: int | None = None
) -> list[str]:
    invoke = ["--invoke", export] if export else []
    metered = ["--fuel", str(fuel)] if fuel is not None else []
    return [sys.executable, "-m", "guestproc.benchrun", str(module), *invoke, *metered, *args]


def _port_command(program: Program, export: str | None, args: list[str]) -> list[str]:
    call = ["--call", export] if export else []
    return [
        sys.executable,
        "-m",
        "host.bench.engine",
        "--port-runner",
        str(program.port),
        *call,
        *args,
    ]


def _pywasm_command(program: Program, export: str | None, args: list[str]) -> list[str]:
    invoke = ["--invoke", export] if export else []
    return [
        sys.executable,
        "-m",
        "host.bench.engine",
        "--pywasm-runner",
        str(program.module),
        *invoke,
        *args,
    ]


def pywasm_installed() -> bool:
    return importlib.util.find_spec("pywasm") is not None


# -- measuring ---------------------------------------------------------------------------------


def _check_output(row: Row, runner: str, record: dict[str, Any], expected: str) -> bool:
    output = record.get("output")
    if output == expected:
        return True
    ending = record.get("ending")
    how = f" ({ending})" if ending not in (None, "exited(0)", "returned") else ""
    row.problems.append(f"MISMATCH {runner}{how}: expected {expected!r}, got {str(output)[:500]!r}")
    return False


def _measure(
    program: Program,
    size: str,
    repeats: int,
    pywasm: bool,
    pywasm_timeout: float,
    progress: Progress,
    fuel: bool = False,
) -> Row:
    args = program.args[size]
    expected = program.expected[size]
    row = Row(program.suite.name, program.name, size, args, None, repeats)
    try:
        hint = (program.suite / "README.md").read_text(encoding="utf-8")
        row.export = find_export(program.module, hint)
    except (RunFailed, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
        row.problems.append(f"cannot inspect {program.module.name}: {exc}")
        return row
    loads: list[float] = []
    runners = ("kindling", "port", *(["metered"] if fuel else []))
    if program.simd_module is not None:
        runners = (*runners, "simd")
    outputs_ok = dict.fromkeys(runners, True)
    runs = {
        "kindling": row.kindling_runs,
        "port": row.port_runs,
        "metered": row.fuel_runs,
        "simd": row.simd_runs,
    }
    failed: set[str] = set()
    pywasm_active = pywasm
    for attempt in range(repeats):
        progress(f"{row.suite}/{row.program} {size} run {attempt + 1}/{repeats}")
        for runner in runners:
            if runner in failed:
                continue
            if runner == "port":
                command = _port_command(program, row.export, args)
            elif runner == "simd" and program.simd_module is not None:
                command = _kindling_command(program.simd_module, row.export, args)
            else:
                budget = UNREACHABLE_FUEL if runner == "metered" else None
                command = _kindling_command(program.module, row.export, args, budget)
            try:
                record = _run_json(command, RUN_TIMEOUT, runner)
            except RunFailed as exc:
                row.problems.append(str(exc))
                failed.add(runner)
                continue
            outputs_ok[runner] &= _check_output(row, runner, record, expected)
            runs[runner].append(float(record["run_seconds"]))
            if runner == "metered" and isinstance(record.get("fuel_used"), int):
                row.fuel_used = record["fuel_used"]
            if runner == "kindling":
                loads.append(
                    sum(
                        float(record.get(k, 0.0))
                        for k in (
                            "decode_seconds",
                            "validate_seconds",
                            "compile_seconds",
                            "instantiate_seconds",
                        )
                    )
                )
        if pywasm_active:
            pywasm_active = _measure_pywasm(row, program, pywasm_timeout, expected)
    if row.kindling_runs:
        row.kindling_seconds = statistics.median(row.kindling_runs)
        row.load_seconds = statistics.median(loads)
    if row.port_runs:
        row.port_seconds = statistics.median(row.port_runs)
    if row.kindling_seconds and row.port_seconds:
        row.ratio = row.kindling_seconds / row.port_seconds
    if row.fuel_runs:
        row.fuel_seconds = statistics.median(row.fuel_runs)
        if row.kindling_seconds:
            row.fuel_overhead = row.fuel_seconds / row.kindling_seconds - 1
    if row.simd_runs:
        row.simd_seconds = statistics.median(row.simd_runs)
        if row.kindling_seconds:
            row.simd_ratio = row.simd_seconds / row.kindling_seconds
    if row.pywasm_runs:
        row.pywasm_seconds = statistics.median(row.pywasm_runs)
        if row.kindling_seconds:
            row.pywasm_ratio = row.pywasm_seconds / row.kindling_seconds
    row.ok = not failed and all(outputs_ok.values())
    return row


def _measure_pywasm(row: Row, program: Program, timeout: float, expected: str) -> bool:
    """One pywasm run into ``row``; returns whether another run is worth taking."""
    command = _pywasm_command(program, row.export, row.args)
    try:
        record = _run_json(command, timeout, "pywasm")
    except RunFailed as exc:
        if "no result within" in str(exc):
            row.pywasm_status = "lower bound"
            row.pywasm_runs = [timeout]
        else:
            row.pywasm_status = "failed"
            row.problems.append(str(exc))
        return False
    seconds = float(record["run_seconds"])
    if record.get("output") != expected:
        row.pywasm_status = "wrong output"
        row.problems.append(
            f"pywasm printed {str(record.get('output'))[:200]!r}, expected {expected!r}"
        )
        return False
    row.pywasm_status = "measured"
    row.pywasm_runs.append(seconds)
    return seconds <= PYWASM_REPEAT_BUDGET


def run_engine_bench(
    suites: Sequence[Path],
    size: str = "small",
    repeats: int = 3,
    include_pywasm: bool | None = None,
    *,
    programs: Collection[str] | None = None,
    pywasm_timeout: float = PYWASM_TIMEOUT,
    progress: Progress | None = None,
    fuel: bool = False,
) -> list[Row]:
    """Measure every program of ``suites`` at ``size``; one ``Row`` per program.

    ``include_pywasm`` None means "at small size only" (it is far too slow at large);
    it is ignored, with the row saying so, when pywasm is not installed. ``programs`` limits
    the run to those names. ``progress`` gets a short line before each round of runs.
    ``fuel`` adds a metered run of our engine to each round.
    Raises ``BenchSuiteError`` for a malformed suite and ``ValueError`` for a bad size,
    repeat count or program name, before anything runs.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    found = [program for suite in suites for program in discover_programs(suite)]
    if programs is not None:
        unknown = sorted(set(programs) - {p.name for p in found})
        if unknown:
            raise ValueError(f"no program named {', '.join(unknown)} in the suites given")
        found = [p for p in found if p.name in programs]
    want_pywasm = size == "small" if include_pywasm is None else include_pywasm
    installed = pywasm_installed()
    rows = []
    for program in found:
        row = _measure(
            program,
            size,
            repeats,
            want_pywasm and installed,
            pywasm_timeout,
            progress or (lambda _line: None),
            fuel,
        )
        if not want_pywasm:
            row.pywasm_status = (
                "skipped at large size" if include_pywasm is None else "not requested"
            )
        elif not installed:
            row.pywasm_status = "not installed"
        rows.append(row)
    return rows


# -- reporting ---------------------------------------------------------------------------------


def geomean(values: Sequence[float]) -> float | None:
    """The geometric mean of positive ``values``, or None when there are none."""
    positive = [v for v in values if v > 0]
    if not positive:
        return None
    return math.exp(sum(math.log(v) for v in positive) / len(positive))


def summary(rows: Sequence[Row]) -> dict[str, Any]:
    """Geomeans over the rows that count: ``ok`` rows for kindling/port; rows where pywasm
    ran for pywasm/kindling (a lower bound when any of them hit the time limit); ``ok``
    metered rows for the fuel overhead (the geomean of metered over unmetered, minus one);
    ``ok`` rows with a SIMD build for the SIMD build's time over the scalar build's."""
    ratios = [r.ratio for r in rows if r.ok and r.ratio is not None]
    pywasm = [r for r in rows if r.pywasm_ratio is not None]
    metered = [1 + r.fuel_overhead for r in rows if r.ok and r.fuel_overhead is not None]
    slowdown = geomean(metered)
    simd = [r.simd_ratio for r in rows if r.ok and r.simd_ratio is not None]
    return {
        "geomean_simd_over_scalar": geomean(simd),
        "simd_programs_in_geomean": len(simd),
        "geomean_fuel_overhead": None if slowdown is None else slowdown - 1,
        "fuel_programs_in_geomean": len(metered),
        "geomean_kindling_over_port": geomean(ratios),
        "programs_in_geomean": len(ratios),
        "geomean_pywasm_over_kindling": geomean([r.pywasm_ratio for r in pywasm if r.pywasm_ratio]),
        "pywasm_programs_in_geomean": len(pywasm),
        "pywasm_geomean_is_lower_bound": any(r.pywasm_status == "lower bound" for r in pywasm),
        "all_ok": bool(rows) and all(r.ok for r in rows),
    }


def rows_to_json(rows: Sequence[Row]) -> dict[str, Any]:
    """Everything measured, JSON-ready: ``rows`` (every ``Row`` field) plus ``summary``."""
    return {"rows": [asdict(r) for r in rows], "summary": summary(rows)}


def _seconds(value: float | None, bound: bool = False) -> str:
    if value is None:
        return "-"
    return (">" if bound else "") + f"{value:.3g}"


def _times(value: float | None, bound: bool = False) -> str:
    if value is None:
        return "-"
    return (">" if bound else "") + (f"{value:.2f}x" if value < 100 else f"{value:.0f}x")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.0f}%"


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table of ``rows`` with the geomeans and, below, every problem found."""
    if not rows:
        return "no programs\n"
    several_suites = len({r.suite for r in rows}) > 1
    metered = any(r.fuel_runs for r in rows)
    simd = any(r.simd_runs for r in rows)
    header = [
        "program",
        "kindling s",
        "port s",
        "kindling/port",
        "pywasm s",
        "pywasm/kindling",
        *(["fuel s", "fuel cost"] if metered else []),
        *(["simd s", "simd/scalar"] if simd else []),
        "load s",
        "ok",
    ]
    table = [header]
    for r in rows:
        bound = r.pywasm_status == "lower bound"
        pywasm_cell = _seconds(r.pywasm_seconds, bound)
        if r.pywasm_seconds is None:
            pywasm_cell = {
                "skipped at large size": "skipped",
                "not installed": "n/a",
                "not requested": "-",
            }.get(r.pywasm_status, r.pywasm_status)
        table.append(
            [
                f"{r.suite}/{r.program}" if several_suites else r.program,
                _seconds(r.kindling_seconds),
                _seconds(r.port_seconds),
                _times(r.ratio),
                pywasm_cell,
                _times(r.pywasm_ratio, bound),
                *([_seconds(r.fuel_seconds), _percent(r.fuel_overhead)] if metered else []),
                *([_seconds(r.simd_seconds), _times(r.simd_ratio)] if simd else []),
                _seconds(r.load_seconds),
                "ok"
                if r.ok
                else "MISMATCH"
                if any("MISMATCH" in p for p in r.problems)
                else "FAILED",
            ]
        )
    facts = summary(rows)
    table.append(
        [
            "geomean",
            "",
            "",
            _times(facts["geomean_kindling_over_port"]),
            "",
            _times(facts["geomean_pywasm_over_kindling"], facts["pywasm_geomean_is_lower_bound"]),
            *(["", _percent(facts["geomean_fuel_overhead"])] if metered else []),
            *(["", _times(facts["geomean_simd_over_scalar"])] if simd else []),
            "",
            "",
        ]
    )
    lines = render(table, rules_after=(0, len(table) - 2))
    first = rows[0]
    notes = [
        f"size {first.size}, median of {first.repeats} run(s), run phase only "
        "(load s: our decode + validate + compile + instantiate, not in kindling s)",
        "kindling/port: our engine's time over the Python port's (lower is better); "
        "pywasm/kindling: how many times faster than pywasm we are",
    ]
    if metered:
        notes.append(
            "fuel s: the same code compiled metered, with a budget it never reaches; "
            "fuel cost: how much slower that is"
        )
    if simd:
        notes.append(
            "simd s: our engine on the same source built with -msimd128; simd/scalar: that "
            "over kindling s (below 1.00x the SIMD build is faster)"
        )
    statuses = {r.pywasm_status for r in rows}
    if "skipped at large size" in statuses:
        notes.append(
            "pywasm: skipped at size large (far too slow); ask for it explicitly to run it"
        )
    if "not installed" in statuses:
        notes.append("pywasm: not installed (pip install pywasm), so not measured")
    if "lower bound" in statuses:
        notes.append(
            "pywasm: '>' marks a run stopped at its time limit; its ratio is a lower bound"
        )
    problems = [f"!! {r.suite}/{r.program}: {p}" for r in rows for p in r.problems]
    return "\n".join([*lines, "", *notes, *problems]) + "\n"


def bench_engine_command(
    folders: Sequence[Path],
    size: str = "small",
    repeats: int = 3,
    as_json: bool = False,
    include_pywasm: bool | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    fuel: bool = False,
    pywasm_timeout: float = PYWASM_TIMEOUT,
    programs: Collection[str] | None = None,
) -> int:
    """What ``kindling bench engine [FOLDER...] [--size] [--repeat N] [--json]`` does.

    No folders means Kindling's own suites (``default_suites``). Prints progress on ``err`` and the table (or the
    JSON document) on ``out``; returns the exit status: 0 when every program ran and printed
    its expected output, 1 otherwise, 2 for a malformed suite or bad arguments.
    """
    out = out or sys.stdout
    err = err or sys.stderr

    def progress(line: str) -> None:
        err.write(f"bench: {line}\n")
        err.flush()

    try:
        rows = run_engine_bench(
            list(folders) or default_suites(),
            size,
            repeats,
            include_pywasm,
            progress=progress,
            fuel=fuel,
            pywasm_timeout=pywasm_timeout,
            programs=programs,
        )
    except (BenchSuiteError, ValueError) as exc:
        err.write(f"kindling bench engine: {exc}\n")
        return 2
    if as_json:
        out.write(json.dumps(rows_to_json(rows), indent=1) + "\n")
    else:
        out.write(format_table(rows))
    return 0 if rows and all(r.ok for r in rows) else 1


# -- the runners' process side ---------------------------------------------------------------


def _numbers(args: Sequence[str]) -> list[int | float]:
    numbers: list[int | float] = []
    for text in args:
        try:
            numbers.append(int(text, 0))
        except ValueError:
            numbers.append(float(text))
    return numbers


def format_results(values: Sequence[Any]) -> str:
    """A result list as ``kindling run --invoke`` prints it: ``[1, -2, 0.5]`` and a newline."""
    shown = []
    for value in values:
        if value is None:
            shown.append("null")
        elif isinstance(value, float):
            shown.append(repr(value) if math.isfinite(value) else str(value))
        else:
            shown.append(str(value))
    return "[" + ", ".join(shown) + "]\n"


def _port_runner(argv: list[str]) -> dict[str, Any]:
    """Import a port and time its ``main(ARGS)``, or ``FUNC(*numbers)`` with ``--call FUNC``."""
    port = Path(argv[0])
    rest = argv[1:]
    func = None
    if rest[:1] == ["--call"]:
        func, rest = rest[1], rest[2:]
    sys.path.insert(0, str(port.parent))
    spec = importlib.util.spec_from_file_location(f"bench_port_{port.stem}", port)
    if spec is None or spec.loader is None:
        raise RunFailed(f"cannot import {port}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target = getattr(module, func or "main", None)
    if not callable(target):
        raise RunFailed(f"{port} defines no function {func or 'main'!r}")
    call_args: list[Any] = _numbers(rest) if func else [list(rest)]
    captured = io.StringIO()
    ending = "returned" if func else "exited(0)"
    with contextlib.redirect_stdout(captured):
        start = time.perf_counter()
        try:
            result = target(*call_args)
        except SystemExit as exit_:
            result = exit_.code
        elapsed = time.perf_counter() - start
    if func:
        values = list(result) if isinstance(result, tuple) else [result]
        output = format_results(values)
    else:
        output = captured.getvalue()
        if result not in (None, 0):
            ending = f"exited({result})"
    return {"run_seconds": elapsed, "output": output, "ending": ending}


def _pywasm_runner(argv: list[str]) -> dict[str, Any]:
    """Run a module with pywasm: a WASI command's ``_start``, or ``--invoke EXPORT NUMBERS``."""
    import pywasm  # type: ignore[import-untyped]

    module = argv[0]
    rest = argv[1:]
    export = None
    if rest[:1] == ["--invoke"]:
        export, rest = rest[1], rest[2:]
    runtime = pywasm.core.Runtime()
    stdout = io.BytesIO()
    wasi = None
    if export is None:
        wasi = pywasm.wasi.Preview1([module, *rest], {}, {})
        wasi.fd[1].pipe = stdout
        wasi.fd[2].pipe = io.BytesIO()
        wasi.bind(runtime)
    instance = runtime.instance_from_file(module)
    start = time.perf_counter()
    if wasi is not None:
        code = wasi.main(runtime, instance)
        elapsed = time.perf_counter() - start
        output = stdout.getvalue().decode("utf-8", "backslashreplace")
        return {"run_seconds": elapsed, "output": output, "ending": f"exited({code})"}
    results = runtime.invocate(instance, export, _numbers(rest))
    elapsed = time.perf_counter() - start
    return {"run_seconds": elapsed, "output": format_results(results), "ending": "returned"}


RUNNERS = {"--port-runner": _port_runner, "--pywasm-runner": _pywasm_runner}


def main(argv: list[str]) -> int:
    """``python -m host.bench.engine [FOLDER...] [--size S] [--repeat N] [--json] [--pywasm]``;
    also the entry of the runner processes (``--port-runner``, ``--pywasm-runner``)."""
    if argv and argv[0] in RUNNERS:
        if len(argv) < 2:
            sys.stderr.write(f"usage: python -m host.bench.engine {argv[0]} FILE [...]\n")
            return 2
        try:
            record = RUNNERS[argv[0]](argv[1:])
        except RunFailed as exc:
            sys.stderr.write(f"{argv[0][2:]}: {exc}\n")
            return 2
        sys.stdout.write(json.dumps(record) + "\n")
        return 0
    import argparse

    parser = argparse.ArgumentParser(prog="python -m host.bench.engine")
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--pywasm", action=argparse.BooleanOptionalAction, default=None)
    options = parser.parse_args(argv)
    return bench_engine_command(
        options.folders, options.size, options.repeat, options.json, options.pywasm
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
