"""``kindling bench serve``: a short run gives every row, no errors, and a JSON document."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.framework.guest import kindling_command, kindling_environment

pytestmark = pytest.mark.slow

OPTIONS = ("--duration", "1", "--cold", "1", "--concurrency", "4", "--json")


def test_a_short_run_measures_every_target() -> None:
    done = subprocess.run(
        [*kindling_command(), "bench", "serve", *OPTIONS],
        env=kindling_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["ok"] and report["problems"] == []
    rows = {(load["target"], load["tool"]) for load in report["loads"]}
    assert {("command", "kindling"), ("export", "kindling"), ("hello", "kindling")} <= rows
    for load in report["loads"]:
        assert load["requests"] > 0 and load["rps"] > 0 and load["p99_ms"] >= load["p50_ms"]
    assert set(report["cold_ms"]) == {"command", "export"}
    assert len(report["verdicts"]) == 2
