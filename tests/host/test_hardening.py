"""Hardening: each step proven on its own by a forbidden action that fails, the whole in force
in real guests (exec'd and forked), and ``kindling doctor`` reporting it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from host.supervisor import Sandbox
from host.transport import Launcher
from host.uids import DEFAULT_GUEST_UIDS
from tests.framework.guest import kindling_command, kindling_environment
from tests.framework.paths import REPO_ROOT
from tests.framework.proc import proc_limit

from .conftest import SpinningGuest

pytestmark = pytest.mark.slow  # every test here starts a guest or a probe process

ROOT = os.geteuid() == 0


def _kernel_allows(step: str) -> str | None:
    """None when this machine's kernel allows ``step`` (per ``kindling doctor``), else why not."""
    from host.doctor import available

    verdict = available()[step]
    return None if verdict.startswith("yes") else verdict


NO_NAMESPACES = _kernel_allows("namespaces")
NO_SECCOMP = _kernel_allows("seccomp")
needs_namespaces = pytest.mark.skipif(
    NO_NAMESPACES is not None, reason=f"the kernel allows no new namespaces: {NO_NAMESPACES}"
)
needs_seccomp = pytest.mark.skipif(
    NO_SECCOMP is not None, reason=f"seccomp filters are unavailable: {NO_SECCOMP}"
)


def probe(*args: str) -> dict[str, Any]:
    base = Launcher.default()
    done = subprocess.run(
        [*base.with_module("guestproc.doctor", *args).argv],
        env=dict(base.env),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_rlimits_alone_stop_file_writes() -> None:
    assert probe("--step", "rlimits") == {"write to an open file": "blocked: File too large"}


@needs_namespaces
def test_namespaces_alone_cut_the_network() -> None:
    report = probe("--step", "namespaces")
    assert report["step"].startswith("on: ")
    assert report["before"] == "ALLOWED"  # the same connection worked a moment earlier
    assert report["reach the host's network"].startswith("blocked: ")


@pytest.mark.skipif(not ROOT, reason="the uid drop applies only to a host running as root")
def test_the_uid_drop_alone_stops_root_only_files_and_root() -> None:
    report = probe("--step", "uid")
    assert report["step"].startswith("on: uid ")
    assert int(report["step"].split()[2].rstrip(",")) in DEFAULT_GUEST_UIDS  # never nobody
    assert report["read a root-only file"] == "blocked: Permission denied"
    assert report["become root"].startswith("blocked: ")


@needs_seccomp
def test_seccomp_alone_stops_sockets_and_processes() -> None:
    report = probe("--step", "seccomp")
    assert report["step"].startswith("on: ")
    assert report["open a socket"] == "blocked: Operation not permitted"
    assert report["create a process"] == "blocked: Operation not permitted"


@needs_seccomp
def test_seccomp_alone_refuses_memory_that_would_not_count_as_the_guests() -> None:
    # Attacker Python in a guest, mapping memory that RLIMIT_DATA does not count and whose
    # pages USS would not count either: MAP_SHARED|MAP_ANONYMOUS (through the mmap module,
    # and straight through libc), and MAP_GROWSDOWN. Private memory is still allowed.
    report = probe("--step", "seccomp")
    assert report["before"] == "ALLOWED"  # the same mapping worked a moment earlier
    assert report["map private memory"] == "ALLOWED"
    for action in ("map shared memory", "map shared via libc", "map grow-down"):
        assert report[action] == "blocked: Operation not permitted", action


def test_no_new_privs_is_set_by_the_start_up_sandbox() -> None:
    assert probe("--step", "no_new_privs") == {"step": "on"}


@needs_namespaces
@needs_seccomp
def test_everything_together_blocks_every_forbidden_action() -> None:
    report = probe()
    assert len(report["forbidden"]) == 18
    assert all(v.startswith("blocked: ") for v in report["forbidden"].values()), report
    assert report["steps"]["running filter"].startswith("on: ")
    assert set(report["steps"]["new namespaces"].split(", ")) >= {"net", "ipc", "mnt"}


def guest_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()[0] if value.split() else ""
    fields["net"] = os.readlink(f"/proc/{pid}/ns/net")
    fields["nproc"] = str(proc_limit(pid, "Max processes"))
    fields["fsize"] = str(proc_limit(pid, "Max file size"))
    return fields


def check_hardened(status: dict[str, str]) -> None:
    assert status["Seccomp"] == "2"  # filter mode
    assert int(status["Seccomp_filters"]) >= 2  # loader + running
    assert status["NoNewPrivs"] == "1"
    assert status["nproc"] == status["fsize"] == "(0, 0)"
    assert status["net"] != os.readlink("/proc/self/ns/net")
    if ROOT:
        assert int(status["Uid"]) in DEFAULT_GUEST_UIDS


@needs_namespaces
@needs_seccomp
async def test_an_execd_guest_is_hardened_while_it_runs(spinning_guest: SpinningGuest) -> None:
    check_hardened(guest_status((await spinning_guest()).process.pid))


@needs_namespaces
@needs_seccomp
async def test_a_forked_guest_is_hardened_while_it_runs(sandbox: Sandbox) -> None:
    assert sandbox.pid is not None
    status = guest_status(sandbox.pid)
    assert await sandbox.invoke("add", 1, 2) == [3]  # and still works
    check_hardened(status)


@needs_namespaces
@needs_seccomp
def test_kindling_doctor_reports_availability_and_what_is_in_force() -> None:
    done = subprocess.run(
        [*kindling_command(), "doctor", "--json"],
        capture_output=True,
        env=kindling_environment(),
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["all_blocked"] is True
    assert set(document["available"]) >= {"namespaces", "uid drop", "no_new_privs", "seccomp"}
    assert set(document["steps"]) >= {"namespaces", "uid", "no_new_privs", "seccomp"}
    # a real template, asked to run a start function itself, refuses (issue 12, point 2)
    assert document["forbidden"]["start in template"].startswith("blocked: ")
    assert document["forbidden"]["name a pid outside"].startswith("blocked: ")  # point 3
    table = subprocess.run(
        [*kindling_command(), "doctor"],
        capture_output=True,
        text=True,
        env=kindling_environment(),
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert table.returncode == 0
    assert "every forbidden action was blocked" in table.stdout
    assert "signal the host" in table.stdout and "trace the host" in table.stdout
