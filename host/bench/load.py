"""``kindling bench load``: how long modules shaped to be expensive take to load, and wasmtime.

::

    for each shape of host.bench.loadshapes (the module written here, by the host):
        for each repeat, a new guest process, with a new empty code cache directory:
            Load ── decode, validate, compile every function (and pack the cache entry)
            Boot ── instantiate
            Invoke run(x) ── the result checked against the shape's
        python -m host.bench.load --wasmtime-runner SHAPE SIZE REPEATS
            ── wasmtime.Module(engine, bytes), timed in its own process (when installed)

Each figure is what the guest timed for its own work, as ``kindling bench startup`` reports
it, so process start-up is not in it; ``load`` is decode + validate + compile + instantiate.
Rows show medians. The engine is held to loading each of these in under a second
(``LOAD_TARGET_MS``): load time must follow the module's size, not its nesting depth or
local count (issue 10, item 6). A row is ``ok`` when every guest loaded the module and ran
it right; whether it met the target is shown, not judged (the machine may be busy).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .loadshapes import SHAPES, Shape
from .table import guest_load_report

LOAD_TARGET_MS = 1000.0
ARGUMENT = 5  # what ``run`` is called with (a shape's result depends on it)
WASMTIME_TIMEOUT = 600.0


@dataclass
class LoadRow:
    """Medians over ``repeats`` for one shape at one size, in milliseconds."""

    shape: str
    what: str
    size: int
    module_bytes: int
    repeats: int
    decode_ms: float = 0.0
    validate_ms: float = 0.0
    compile_ms: float = 0.0
    instantiate_ms: float = 0.0
    load_ms: float = 0.0
    load_runs: list[float] = field(default_factory=list)
    wasmtime_ms: float | None = None
    wasmtime_status: str = "not requested"  # "measured", "not installed", "failed: ..."
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def within_target(self) -> bool:
        return self.ok and self.load_ms <= LOAD_TARGET_MS


async def _load_once(module: bytes, shape: Shape, cache_dir: str) -> tuple[dict[str, Any], object]:
    """One guest: load, boot, run; its timings and what ``run`` returned."""
    from host.guest import Guest

    guest = Guest()
    try:
        guest.begin()
        loaded = guest.submit_load(module, cache_dir)
        booted = guest.submit_boot("load.wasm")
        timings = {**(await loaded).model_dump(), **(await booted).model_dump()}
        (result,) = await guest.invoke("run", [ARGUMENT] if shape.takes_argument else [])
        return timings, result.value
    finally:
        await guest.stop()


def measure(shape: Shape, size: int, repeats: int, wasmtime: bool) -> LoadRow:
    module = shape.build(size)
    row = LoadRow(shape.name, shape.what.format(size=f"{size:,}"), size, len(module), repeats)
    stages: dict[str, list[float]] = {
        "decode": [],
        "validate": [],
        "compile": [],
        "instantiate": [],
    }
    expected = shape.expect(size, ARGUMENT)
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="kindling-bench-load-") as cache_dir:
            try:
                timings, result = asyncio.run(_load_once(module, shape, cache_dir))
            except Exception as exc:  # a guest that failed is the row's finding, not a crash
                row.problems.append(f"{type(exc).__name__}: {exc}")
                break
        if result != expected:
            row.problems.append(f"run returned {result}, expected {expected}")
            break
        for stage, runs in stages.items():
            runs.append(timings[f"{stage}_ms"])
        row.load_runs.append(round(sum(timings[f"{stage}_ms"] for stage in stages), 3))
    if row.load_runs:
        row.decode_ms = statistics.median(stages["decode"])
        row.validate_ms = statistics.median(stages["validate"])
        row.compile_ms = statistics.median(stages["compile"])
        row.instantiate_ms = statistics.median(stages["instantiate"])
        row.load_ms = statistics.median(row.load_runs)
    if wasmtime:
        _measure_wasmtime(row, repeats)
    return row


def wasmtime_installed() -> bool:
    return importlib.util.find_spec("wasmtime") is not None


def _measure_wasmtime(row: LoadRow, repeats: int) -> None:
    if not wasmtime_installed():
        row.wasmtime_status = "not installed"
        return
    command = [sys.executable, "-m", "host.bench.load", "--wasmtime-runner"]
    command += [row.shape, str(row.size), str(repeats)]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=WASMTIME_TIMEOUT,
            check=False,
            cwd=Path(__file__).resolve().parents[2],  # where ``-m host.bench.load`` is found
        )
        runs = json.loads(done.stdout.strip().splitlines()[-1])["compile_ms"]
        row.wasmtime_ms = statistics.median(runs)
        row.wasmtime_status = "measured"
    except subprocess.TimeoutExpired:
        row.wasmtime_status = f"failed: no result within {WASMTIME_TIMEOUT:g} s"
    except (IndexError, KeyError, ValueError, TypeError):
        row.wasmtime_status = f"failed: {done.stderr.strip()[-200:]}"


def _wasmtime_runner(shape: str, size: int, repeats: int) -> int:
    """Time ``wasmtime.Module`` on the shape; print ``{"compile_ms": [...]}``."""
    import wasmtime

    module = SHAPES[shape].build(size)
    runs = []
    for _ in range(repeats):
        engine = wasmtime.Engine()  # a new one each time: nothing compiled is reused
        started = time.perf_counter()
        wasmtime.Module(engine, module)
        runs.append(round((time.perf_counter() - started) * 1000, 3))
    sys.stdout.write(json.dumps({"compile_ms": runs}) + "\n")
    return 0


def format_table(rows: list[LoadRow]) -> str:
    header = ["module", "KB", "decode", "validate", "compile", "inst.", "load ms"]
    header += ["wasmtime ms", "ok"]
    table = [header]
    for r in rows:
        wasmtime = f"{r.wasmtime_ms:.1f}" if r.wasmtime_ms is not None else r.wasmtime_status
        table.append(
            [
                r.what,
                f"{r.module_bytes / 1000:.1f}",
                f"{r.decode_ms:.1f}",
                f"{r.validate_ms:.1f}",
                f"{r.compile_ms:.1f}",
                f"{r.instantiate_ms:.1f}",
                f"{r.load_ms:.1f}" + ("" if r.within_target or not r.ok else " !"),
                wasmtime,
                "ok" if r.ok else "FAILED",
            ]
        )
    notes = [
        "load: decode + validate + compile every function (+ pack the cache entry) + "
        f"instantiate; target <= {LOAD_TARGET_MS:g} ms each ('!' marks a miss)",
        "wasmtime: wasmtime.Module() on the same bytes, in its own process",
    ]
    problems = [f"{r.shape}: {p}" for r in rows for p in r.problems]
    return guest_load_report(table, rows[0].repeats if rows else 0, notes, problems)


def bench_load_command(
    shapes: list[str],
    size: int | None,
    repeats: int,
    as_json: bool,
    wasmtime: bool = True,
    out: TextIO | None = None,
) -> int:
    """Measure ``shapes`` (all when empty), at ``size`` or each shape's own; print a table or
    JSON. The exit status is 0 when every shape loaded and ran right."""
    out = out or sys.stdout
    chosen = [SHAPES[name] for name in shapes] if shapes else list(SHAPES.values())
    rows = [measure(shape, size or shape.size, repeats, wasmtime) for shape in chosen]
    if as_json:
        document: dict[str, Any] = {
            "rows": [{**asdict(r), "ok": r.ok, "within_target": r.within_target} for r in rows],
            "target_load_ms": LOAD_TARGET_MS,
        }
        out.write(json.dumps(document, indent=1) + "\n")
    else:
        out.write(format_table(rows))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":  # the wasmtime runner (see the module docstring)
    if len(sys.argv) == 5 and sys.argv[1] == "--wasmtime-runner":
        sys.exit(_wasmtime_runner(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    sys.stderr.write("usage: python -m host.bench.load --wasmtime-runner SHAPE SIZE REPEATS\n")
    sys.exit(2)
