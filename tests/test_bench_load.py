"""``kindling bench load``: pathological modules loaded in real guest processes, and wasmtime."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from host.bench.loadshapes import SHAPES

pytestmark = pytest.mark.slow  # benchmark runs through the CLI

COMMAND = [sys.executable, "-m", "host.cli", "bench", "load", "--size", "30", "--repeat", "1"]


def test_every_shape_loads_runs_and_is_reported() -> None:
    done = subprocess.run([*COMMAND, "--json"], capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["target_load_ms"] == 1000.0
    rows = document["rows"]
    assert [row["shape"] for row in rows] == list(SHAPES)
    for row in rows:
        assert row["ok"] and row["problems"] == [], row
        assert row["size"] == 30 and len(row["load_runs"]) == 1
        assert row["module_bytes"] == len(SHAPES[row["shape"]].build(30))
        assert row["compile_ms"] > 0 and row["load_ms"] >= row["compile_ms"]
        assert row["wasmtime_status"] in ("measured", "not installed"), row
        assert (row["wasmtime_ms"] is not None) == (row["wasmtime_status"] == "measured")


def test_the_table_and_the_choice_of_shapes() -> None:
    shapes = ["--shape", "nested_ifs", "--shape", "many_locals", "--no-wasmtime"]
    table = subprocess.run([*COMMAND, *shapes], capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["module", "KB", "decode"]
    assert lines[2].startswith("30 nested ifs") and "not requested" in lines[2]
    assert lines[3].startswith("100 functions declaring 30 locals each")
    assert "target <= 1000 ms" in table.stdout

    wrong = subprocess.run([*COMMAND, "--shape", "nope"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "'nope' is not one of" in wrong.stderr
