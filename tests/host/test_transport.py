"""The transport: spawning, descriptors, exit statuses, reaping."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from host.transport import GUEST_READ_FD, GUEST_WRITE_FD, GuestProcess, Launcher

# A stand-in guest: reports its open descriptors and argv on its write pipe, then exits
# with the status given as its first argument.
REPORTER = """
import os, sys, json
fds = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in map(int, os.listdir("/proc/self/fd"))
       if os.path.exists(f"/proc/self/fd/{fd}")}
out = int(sys.argv[-1])
os.write(out, json.dumps({"fds": fds, "argv": sys.argv[1:], "env": dict(os.environ),
                          "pgid": os.getpgid(0), "pid": os.getpid()}).encode())
sys.exit(int(sys.argv[1]))
"""


def reporter(status: int = 0) -> Launcher:
    return Launcher((sys.executable, "-S", "-c", REPORTER, str(status)), {"ONLY": "this"})


def read_all(fd: int) -> bytes:
    os.set_blocking(fd, True)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_the_child_gets_devnull_stdio_and_two_pipes() -> None:
    """(Descriptors the host inherited as inheritable may reach the child too: the guest
    closes them first thing, see test_guest_process.py.)"""
    import json

    process = GuestProcess.spawn(reporter())
    try:
        report = json.loads(read_all(process.from_guest))
    finally:
        status = process.close()
    fds = {int(k): v for k, v in report["fds"].items()}
    assert fds[0] == fds[1] == fds[2] == "/dev/null"
    assert fds[GUEST_READ_FD].startswith("pipe:") and fds[GUEST_WRITE_FD].startswith("pipe:")
    assert report["argv"][-2:] == [str(GUEST_READ_FD), str(GUEST_WRITE_FD)]
    assert report["env"] == {"ONLY": "this"} or set(report["env"]) <= {"ONLY", "LC_CTYPE"}
    assert report["pgid"] == report["pid"], "the guest must lead its own process group"
    assert status.code == 0 and status.signal is None


def test_exit_code_and_resource_usage() -> None:
    process = GuestProcess.spawn(reporter(7))
    read_all(process.from_guest)
    status = asyncio.run(process.wait())
    assert status.code == 7 and status.signal is None
    assert status.max_rss > 1024 * 1024
    assert status.cpu_seconds >= 0
    process.close()
    assert process.status is status


def test_signal_and_close_reaps() -> None:
    process = GuestProcess.spawn(
        Launcher((sys.executable, "-S", "-c", "import time; time.sleep(60)"))
    )
    pid = process.pid
    process.send_signal(signal.SIGTERM)
    status = process.close()
    assert status.signal == signal.SIGTERM
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left
    process.kill()  # after reaping: nothing happens
    assert process.to_guest == process.from_guest == -1


def test_close_kills_a_running_process() -> None:
    process = GuestProcess.spawn(
        Launcher((sys.executable, "-S", "-c", "import time; time.sleep(60)"))
    )
    assert process.poll() is None
    assert process.close().signal == signal.SIGKILL


def test_spawn_failure_leaks_nothing() -> None:
    with pytest.raises(OSError):
        GuestProcess.spawn(Launcher(("/nonexistent/python",)))


def test_default_launcher_runs_guestproc_without_site_or_cwd() -> None:
    launcher = Launcher.default()
    assert launcher.argv[1:] == ("-S", "-P", "-m", "guestproc")
    expected = {"PYTHONPATH", "KINDLING_GUEST_UID"} if os.geteuid() == 0 else {"PYTHONPATH"}
    assert set(launcher.env) == expected
