"""``kindling bench fuel``: programs and bulk loops in guests, measured through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

from host.bench.fuel import FuelRow, bulk_workloads, format_table, worst

pytestmark = pytest.mark.slow  # benchmark runs through the CLI

BULK_FUEL = 100_000


def test_fuel_bench_measures_programs_and_every_bulk_operation() -> None:
    command = [sys.executable, "-m", "host.cli", "bench", "fuel", "--repeat", "1"]
    options = ["--program", "wat_orbit", "--program", "sha256", "--bulk-fuel", str(BULK_FUEL)]
    done = subprocess.run([*command, *options, "--json"], capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = {row["name"]: row for row in report["rows"]}
    assert {"engine/wat_orbit 800000", "engine/sha256 120000"} < set(rows)
    assert {w.name for w in bulk_workloads()} < set(rows)
    for operation in ("memory.fill", "memory.copy", "memory.init", "table.fill", "table.copy"):
        assert any(name.startswith(operation + " ") for name in rows), operation
    for name, row in rows.items():
        assert row["ok"] and row["problems"] == [], (name, row["problems"])
        assert row["cpu_seconds"] > 0 and row["us_per_unit"] > 0, name
        if row["kind"] == "bulk" and row["ending"] == "limit(fuel)":
            assert row["fuel_used"] == BULK_FUEL, name  # spent to the last unit, no further
    assert rows["engine/sha256 120000"]["ending"] == "exited(0)"
    assert rows["engine/wat_orbit 800000"]["ending"] == "returned"
    summary = report["summary"]
    assert summary["all_ok"]
    assert summary["worst_us_per_unit"] == max(row["us_per_unit"] for row in rows.values())
    assert rows[summary["worst"]]["us_per_unit"] == summary["worst_us_per_unit"]

    fields = set(FuelRow.__dataclass_fields__)
    table = format_table(
        [FuelRow(**{k: v for k, v in row.items() if k in fields}) for row in rows.values()]
    )
    assert "us/unit" in table and f"worst: {summary['worst']}" in table
    assert worst([]) is None
    assert not [p for p in psutil.Process().children(recursive=True) if p.is_running()]


def test_fuel_bench_refuses_an_unknown_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "host.cli", "bench", "fuel", "--program", "nonesuch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no program named nonesuch" in done.stderr
