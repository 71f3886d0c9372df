"""Issue 12, point 6: ``kindling spec`` and ``kindling bench engine`` run module code in
hardened processes with a memory bound, as a guest is run. (Before: no seccomp, no uid drop,
no limits; one ``memory.grow`` took the spec runner to 1 GiB of RSS.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host.transport import Launcher
from host.uids import DEFAULT_GUEST_UIDS
from tests.framework.guest import kindling_command, kindling_environment
from tests.framework.paths import fixture

pytestmark = pytest.mark.slow  # every test here starts runner processes

GROW_A_GIBIBYTE = """
(module
  (memory 1)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
(assert_return (invoke "grow" (i32.const 16384)) (i32.const -1))
"""

SPIN = """
(module (func (export "spin") (loop (br 0))))
(invoke "spin")
"""


def test_a_script_cannot_grow_the_runner_past_its_budget(tmp_path: Path) -> None:
    """The grow is refused (-1, as past a guest's budget), and the runner stays small: its
    peak RSS, read by a parent process of its own so no other test's children count."""
    script = tmp_path / "grow.wast"
    script.write_text(GROW_A_GIBIBYTE)
    measure = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", measure, *kindling_command(), "spec", str(script)],
        env=kindling_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    status, peak_kib = map(int, done.stdout.split())
    assert status == 0  # the assertion passed: the grow returned -1
    assert peak_kib < 256 * 1024, f"{peak_kib / 1024:.0f} MiB"


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()[0] if value.split() else ""
    return fields


@pytest.mark.parametrize("runner", ["spec", "bench"])
def test_the_runners_are_hardened_while_they_run(runner: str) -> None:
    """``kindling spec``'s script runner and ``kindling bench engine``'s measuring process,
    each running a module that loops forever: hardened as a guest is."""
    launcher = Launcher.default()
    if runner == "spec":
        argv = [*launcher.with_module("guestproc.spectest").argv, "spin.wast"]
        given = SPIN.encode()
    else:
        spin = fixture("infinite_loop")
        argv = [*launcher.with_module("guestproc.benchrun").argv, str(spin)]
        given = b""
    process = subprocess.Popen(
        argv,
        env=dict(launcher.env),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdin is not None
        process.stdin.write(given)
        process.stdin.close()
        deadline = time.monotonic() + 20
        status = _status(process.pid)
        while int(status.get("Seccomp_filters", "0")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            status = _status(process.pid)
        assert status["Seccomp"] == "2" and int(status["Seccomp_filters"]) >= 2
        assert status["NoNewPrivs"] == "1"
        if os.geteuid() == 0:
            assert int(status["Uid"]) in DEFAULT_GUEST_UIDS
        assert os.readlink(f"/proc/{process.pid}/ns/net") != os.readlink("/proc/self/ns/net")
    finally:
        process.kill()
        process.wait()
