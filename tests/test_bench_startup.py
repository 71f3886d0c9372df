"""``kindling bench startup``: cold and cached loads, measured in real guest processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.framework.paths import fixture

pytestmark = pytest.mark.slow  # a benchmark run through the CLI


def test_cold_then_cached_loads_are_measured_and_reported() -> None:
    module = fixture("qsort_fnptr")
    command = [sys.executable, "-m", "host.cli", "bench", "startup", "--repeat", "2"]
    done = subprocess.run([*command, "--json", str(module)], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["rows"]
    assert row["ok"] and row["problems"] == []
    assert row["module_bytes"] == module.stat().st_size
    assert len(row["cold_runs"]) == len(row["cached_runs"]) == 2
    # A hit skips decoding, validating and compiling: it must cost less than all three.
    assert row["decode_ms"] > 0 and row["validate_ms"] > 0 and row["compile_ms"] > 0
    assert 0 < row["cached_ms"] < row["cold_ms"]

    table = subprocess.run([*command, str(module)], capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr
    assert table.stdout.split("\n")[0].split() == [
        "module",
        "KB",
        "decode",
        "validate",
        "compile",
        "cold",
        "ms",
        "cached",
        "ms",
        "ok",
    ]
    assert "qsort_fnptr.wasm" in table.stdout and "target <= 10 ms" in table.stdout
