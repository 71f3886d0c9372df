"""``kindling bench files``: bytes through a preopen against stdin/stdout, and the host's
descriptors with guests holding preopens (issue 14.5 and 14.1). Sizes are tiny here: the
test checks that the command measures and reports, never how fast anything is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.framework.guest import kindling_environment

pytestmark = pytest.mark.slow  # a benchmark run through the CLI

COMMAND = [sys.executable, "-m", "host.cli", "bench", "files", "--size", "200000"]


def test_the_json_document_holds_every_run_and_the_descriptor_count() -> None:
    done = subprocess.run(
        [*COMMAND, "--repeat", "2", "--guests", "3", "--json"],
        capture_output=True,
        timeout=300,
        env=kindling_environment(),
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] and document["problems"] == []
    assert (document["size"], document["chunk"], document["target_ratio"]) == (200000, 65536, 2)
    ways = [(row["direction"], row["through"]) for row in document["rows"]]
    assert ways == [
        ("write", "preopen"),
        ("write", "stdout"),
        ("read", "preopen"),
        ("read", "stdin"),
    ]
    for row in document["rows"]:
        assert len(row["runs_ms"]) == 2 and all(ms > 0 for ms in row["runs_ms"])
        assert row["median_ms"] > 0 and row["mib_per_s"] > 0
    assert set(document["ratios"]) == {"write", "read"}
    assert all(ratio > 0 for ratio in document["ratios"].values())
    fds = document["descriptors"]
    assert (fds["guests"], fds["alive_having_read"], fds["exited_ok"]) == (3, 3, 3)
    assert fds["fds_before"] < fds["fds_alive"] < fds["fd_limit"]
    assert fds["fds_after"] == fds["fds_before"]
    assert fds["brokered_files_open"] == 0  # each guest closed its file before waiting
    assert fds["directories_open"] == 1  # one, shared by the three guests


def test_the_table_shows_the_ratio_against_its_target() -> None:
    done = subprocess.run(
        [*COMMAND, "--repeat", "1", "--guests", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env=kindling_environment(),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["direction", "through", "MiB", "run", "ms", "MiB/s", "x", "stdio"]
    assert [line.split()[:2] for line in lines[2:6]] == [
        ["write", "preopen"],
        ["write", "stdout"],
        ["read", "preopen"],
        ["read", "stdin"],
    ]
    assert len(lines[2].split()) == len(lines[4].split()) == 6  # the preopen rows: a ratio
    assert "target <= 2" in done.stdout
    assert "host descriptors, all guests alive" in done.stdout
    assert "!!" not in done.stdout
