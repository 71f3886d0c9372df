"""``kindling bench startup``: how long a guest takes to load a module, cold and cached.

::

    for each repeat, with a new empty code cache directory:
        guest 1: Load ── miss: decode, validate, compile every function, send the entry
        guest 2: Load ── hit: check the entry, unmarshal, decode the module without bodies

Each load is a real guest process, and each figure is what the guest reports for its own
work (``LoadTimings``), so process start-up is not in it: ``cold`` is decode + validate +
compile of every function (plus packing the entry), ``cached`` the whole load from an entry.
The table shows medians, and the targets the engine is held to.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from host.guest import Guest

from .table import guest_load_report

COLD_TARGET_MS = 100.0
CACHED_TARGET_MS = 10.0


@dataclass
class StartupRow:
    """Medians over ``repeats`` for one module, in milliseconds."""

    module: str
    module_bytes: int
    repeats: int
    decode_ms: float = 0.0
    validate_ms: float = 0.0
    compile_ms: float = 0.0
    cold_ms: float = 0.0
    cached_ms: float = 0.0
    cold_runs: list[float] = field(default_factory=list)
    cached_runs: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def _load_once(module: bytes, cache_dir: str) -> tuple[dict[str, float], str]:
    guest = Guest()
    try:
        guest.begin()
        timings = await guest.submit_load(module, cache_dir)
        return timings.model_dump(), guest.code_cache or ""
    finally:
        await guest.stop()


def measure(path: Path, repeats: int) -> StartupRow:
    module = path.read_bytes()
    row = StartupRow(str(path), len(module), repeats)
    decode, validate, compile_ = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="kindling-bench-") as cache_dir:
            cold, cold_status = asyncio.run(_load_once(module, cache_dir))
            cached, cached_status = asyncio.run(_load_once(module, cache_dir))
        if cold_status != "miss; stored" or cached_status != "hit":
            row.problems.append(
                f"expected a miss then a hit, got {cold_status!r}, {cached_status!r}"
            )
            break
        decode.append(cold["decode_ms"])
        validate.append(cold["validate_ms"])
        compile_.append(cold["compile_ms"])
        row.cold_runs.append(round(cold["decode_ms"] + cold["validate_ms"] + cold["compile_ms"], 3))
        row.cached_runs.append(cached["compile_ms"])
    if row.cold_runs:
        row.decode_ms = statistics.median(decode)
        row.validate_ms = statistics.median(validate)
        row.compile_ms = statistics.median(compile_)
        row.cold_ms = statistics.median(row.cold_runs)
        row.cached_ms = statistics.median(row.cached_runs)
    return row


def format_table(rows: list[StartupRow]) -> str:
    header = ["module", "KB", "decode", "validate", "compile", "cold ms", "cached ms", "ok"]
    table = [header]
    for r in rows:
        table.append(
            [
                Path(r.module).name,
                f"{r.module_bytes / 1000:.1f}",
                f"{r.decode_ms:.1f}",
                f"{r.validate_ms:.1f}",
                f"{r.compile_ms:.1f}",
                f"{r.cold_ms:.1f}",
                f"{r.cached_ms:.2f}",
                "ok" if r.ok else "FAILED",
            ]
        )
    notes = [
        "cold: decode + validate + compile every function (+ pack the cache entry); "
        f"target <= {COLD_TARGET_MS:g} ms for a 25 KB module",
        f"cached: the whole load from the code cache; target <= {CACHED_TARGET_MS:g} ms",
    ]
    problems = [f"{Path(r.module).name}: {p}" for r in rows for p in r.problems]
    return guest_load_report(table, rows[0].repeats if rows else 0, notes, problems)


def bench_startup_command(
    modules: list[Path], repeats: int, as_json: bool, out: TextIO | None = None
) -> int:
    out = out or sys.stdout
    rows = [measure(path, repeats) for path in modules]
    if as_json:
        document: dict[str, Any] = {
            "rows": [{**asdict(r), "ok": r.ok} for r in rows],
            "targets": {"cold_ms": COLD_TARGET_MS, "cached_ms": CACHED_TARGET_MS},
        }
        out.write(json.dumps(document, indent=1) + "\n")
    else:
        out.write(format_table(rows))
    return 0 if all(r.ok for r in rows) else 1
