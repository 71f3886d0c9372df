"""``kindling bench spawn``: forks, invocations and reaping, measured through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

pytestmark = pytest.mark.slow  # the spawn benchmark itself: about 30-40 s


def test_spawn_bench_measures_and_leaves_nothing_behind() -> None:
    command = [sys.executable, "-m", "host.cli", "bench", "spawn", "--guests", "40"]
    done = subprocess.run(
        [*command, "--latency", "20", "--burst", "60", "--json"], capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["problems"] == []
    assert report["guests"] == report["invoked_ok"] == 40
    assert 0 < report["ready_p50_ms"] <= report["ready_p99_ms"]
    assert report["create_rate"] > 0 and report["uss_median_mib"] > 0
    # A forked guest copies pages to get ready and to answer: some, and far fewer than the
    # template has (tens of MiB), or it would not be sharing them.
    assert 50 < report["faults_ready_median"] < 2000
    assert 10 < report["faults_invoke_median"] < 2000
    assert report["leftover_processes"] == report["leftover_fds"] == 0
    burst = report["burst"]
    assert burst["launches"] == burst["ready"] == burst["answered"] == 60
    assert 0 < burst["launch_p50_ms"] <= burst["launch_p99_ms"]
    assert burst["launch_p99_ms"] <= burst["all_ready_seconds"] * 1000 + 1
    assert 3 <= burst["fds_per_guest"] < 3.2  # two pipe ends and a pidfd; the template's few
    assert not [p for p in psutil.Process().children(recursive=True) if p.is_running()]

    table = subprocess.run(
        [*command, "--latency", "5", "--templates", "1", "--burst", "10"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert table.returncode == 0, table.stderr
    assert "template -> ready p99 (ms)" in table.stdout and "1 template(s)" in table.stdout
    assert "launch -> ready p99 (ms)" in table.stdout
