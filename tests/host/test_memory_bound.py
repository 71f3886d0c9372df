"""The memory bound (``protocol.limits``) holds for every guest, exec'd or forked.

Each claim against real guest processes, measured from outside:

- a recursion of 49,999-local frames (400 KB each) ends ``limit(memory)``, and the guest's
  own memory (USS, sampled from /proc) stays within its bound -- through ``kindling run``
  and through ``Host.launch`` (a forked guest), with and without a 40 MiB custom section;
- a guest's ``RLIMIT_DATA`` once booted does not grow with a huge custom section, and a
  forked guest's is its running bound, not its template's loading allowance;
- the watchdog ends a ``kindling run`` guest whose own memory passes its bound when nothing
  else stops it -- with the host as root and as an ordinary user.

(That a guest cannot map memory the bound would not count, ``MAP_SHARED`` or
``MAP_GROWSDOWN``, is in ``test_hardening``.)
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from guestproc.engine import decode_module
from host.errors import GuestEnded
from host.supervisor import Host
from protocol.limits import loading_bound, running_bound
from tests.framework.binary import name, section, uleb, vec
from tests.framework.factory import GuestFactory
from tests.framework.paths import REPO_ROOT
from tests.framework.proc import proc_limit

from .conftest import Run, misbehaving

pytestmark = pytest.mark.slow  # real guests recursing to their memory bound

MIB = 1024 * 1024
BUDGET = 5 * MIB
CUSTOM = 40 * MIB
LOCALS = 49_999


# -- modules, built here ----------------------------------------------------------------------


def module(
    export: str, params: Sequence[bytes], results: Sequence[bytes], body: bytes, custom: int
) -> bytes:
    """One function, exported; ``body`` is its locals declaration and code; a custom section
    of ``custom`` zero bytes at the end."""
    padding = section(0, name("padding") + bytes(custom)) if custom else b""
    return (
        b"\0asm\1\0\0\0"
        + section(1, vec(b"\x60" + vec(*params) + vec(*results)))
        + section(3, vec(b"\x00"))
        + section(7, vec(name(export) + b"\x00\x00"))
        + section(10, vec(uleb(len(body)) + body))
        + padding
    )


def recursive(custom: int = 0, local_count: int = LOCALS) -> bytes:
    """``rec(n)``: n + rec(n - 1) calls deep, each frame with ``local_count`` i64/i32 locals."""
    i64s = local_count // 2
    declared = vec(uleb(i64s) + b"\x7e", uleb(local_count - i64s) + b"\x7f")
    code = (
        b"\x20\x00\x45\x04\x7f"  # local.get 0, i32.eqz, if (result i32)
        b"\x41\x00"  # i32.const 0
        b"\x05\x20\x00\x41\x01\x6b\x10\x00\x41\x01\x6a"  # else rec(n - 1) + 1
        b"\x0b\x0b"
    )
    return module("rec", (b"\x7f",), (b"\x7f",), declared + code, custom)


def spinning(custom: int = 0) -> bytes:
    """``spin()``: loops for ever."""
    return module("spin", (), (), b"\x00\x03\x40\x0c\x00\x0b\x0b", custom)


# -- measuring from outside -------------------------------------------------------------------

DATA = "Max data size"  # RLIMIT_DATA, as /proc/PID/limits names it


def own_memory(pid: int) -> int:
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return sum(
        int(line.split()[1]) * 1024 for line in text.splitlines() if line.startswith("Private_")
    )


class Peaks(threading.Thread):
    """Samples a process's USS every millisecond until it is gone (or ``stop()``): the
    peak while it loaded (its RLIMIT_DATA not yet set for good) and while it ran."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.loading = self.running = 0
        self.samples = 0
        self._done = threading.Event()

    def start(self) -> None:
        # One sample now: the thread may not run before a short-lived process is gone.
        self._sample()
        super().start()

    def run(self) -> None:
        while not self._done.is_set() and self._sample():
            time.sleep(0.001)

    def _sample(self) -> bool:
        """Take one sample; False once the process is gone."""
        try:
            soft, hard = proc_limit(self.pid, DATA)
            uss = own_memory(self.pid)
        except (OSError, KeyError, ValueError, IndexError):
            return False
        self.samples += 1
        if soft == hard != resource.RLIM_INFINITY:
            self.running = max(self.running, uss)
        else:
            self.loading = max(self.loading, uss)
        return True

    def stop(self) -> None:
        self._done.set()
        self.join(10)


def bound_of(wasm: bytes) -> int:
    return running_bound(BUDGET, decode_module(wasm).code_size())


# -- 49,999 locals, 4,000 calls deep: 1.6 GB of frames --------------------------------------


@pytest.mark.parametrize("custom", [CUSTOM, 0], ids=["40MiB-custom-section", "no-custom-section"])
def test_deep_recursion_of_huge_frames_ends_within_the_bound_in_kindling_run(
    guest_factory: GuestFactory, tmp_path: Path, custom: int
) -> None:
    wasm_path = _write(tmp_path, recursive(custom))
    wasm = wasm_path.read_bytes()
    guest = guest_factory.build(wasm_path, ["4000"], memory="5MiB", invoke="rec")
    guest.spawn()
    peaks = Peaks(guest.wait_for_guest_process().pid)
    peaks.start()
    guest.wait()
    peaks.stop()
    guest.assert_ending("limit(memory)")
    assert peaks.samples > 10
    assert peaks.running <= bound_of(wasm), f"{peaks.running / MIB:.1f} MiB while running"
    assert peaks.loading <= loading_bound(len(wasm)), f"{peaks.loading / MIB:.1f} MiB loading"


@pytest.mark.parametrize("custom", [CUSTOM, 0], ids=["40MiB-custom-section", "no-custom-section"])
async def test_deep_recursion_of_huge_frames_ends_within_the_bound_in_a_forked_guest(
    host: Host, custom: int
) -> None:
    wasm = recursive(custom)
    try:
        sandbox = await host.launch(wasm, memory="5MiB")
    except GuestEnded as exc:
        # Compiling 49,999 locals takes 80 MiB for a moment: over the template's
        # loading bound for a small module, which ends it the same way.
        assert custom == 0 and exc.ending.text == "limit(memory)", exc.ending
        return
    assert sandbox.pid is not None
    soft, hard = proc_limit(sandbox.pid, DATA)
    assert soft == hard  # its own, for good
    peaks = Peaks(sandbox.pid)
    peaks.start()
    with pytest.raises(GuestEnded) as ended:
        await sandbox.invoke("rec", 4000)
    peaks.stop()
    assert ended.value.ending.text == "limit(memory)"
    assert "call depth x frame size" in ended.value.ending.message
    assert peaks.samples > 0 and peaks.running <= bound_of(wasm)


async def test_a_recursion_of_big_frames_ends_the_same_way_in_both_paths(
    guest_factory: GuestFactory, host: Host, tmp_path: Path
) -> None:
    # 4,000 locals: cheap to compile, 32 KB frames. The engine's charge ends it, not the
    # kernel: the same ending and message, exec'd or forked, every time.
    wasm = recursive(0, 4000)
    path = _write(tmp_path, wasm)
    guest = guest_factory.run(path, ["4000"], invoke="rec")
    guest.assert_ending("limit(memory)")
    assert b"call depth x frame size" in guest.stderr

    sandbox = await host.launch(wasm)
    with pytest.raises(GuestEnded) as ended:
        await sandbox.invoke("rec", 4000)
    assert "call depth x frame size" in ended.value.ending.reason()
    shallow = guest_factory.run(path, ["300"], invoke="rec")
    shallow.assert_ending("exited(0)")  # 300 x 32 KB is well within the charge
    assert shallow.stdout == b"[300]\n"


# -- RLIMIT_DATA does not grow with custom sections; a forked guest has its own ------------


def _running_data_limit(pid: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        soft, hard = proc_limit(pid, DATA)
        if soft == hard != resource.RLIM_INFINITY:
            return soft
        time.sleep(0.01)
    raise AssertionError(f"guest {pid} never set its RLIMIT_DATA for good")


def test_rlimit_data_after_boot_does_not_grow_with_a_custom_section(
    guest_factory: GuestFactory, tmp_path: Path
) -> None:
    limits = []
    for custom in (0, CUSTOM):
        wasm = spinning(custom)
        guest = guest_factory.build(_write(tmp_path, wasm), invoke="spin", timeout=60)
        guest.spawn()
        limits.append(_running_data_limit(guest.wait_for_guest_process().pid))
        guest.kill()
        guest.wait()
    plain, padded = limits
    assert padded == plain  # the same bound: custom sections count for nothing
    assert plain <= running_bound(5 * MIB, decode_module(spinning()).code_size()) + MIB


async def test_a_forked_guest_gets_its_own_rlimit_data(host: Host) -> None:
    # Not the template's loading allowance (10 GiB for a 40 MiB custom section): what the
    # guest inherited plus its running bound, the same with or without the custom section.
    room = []
    for custom in (0, CUSTOM):
        wasm = spinning(custom)
        sandbox = await host.launch(wasm)
        assert sandbox.pid is not None
        limit = _running_data_limit(sandbox.pid)
        room.append(limit - data_in_use(sandbox.pid))
        allowed = bound_of(wasm) + BUDGET // 8
        assert allowed - 4 * MIB < room[-1] <= allowed
    plain, padded = room
    assert abs(padded - plain) < 4 * MIB


def data_in_use(pid: int) -> int:
    """``VmData`` of ``pid``, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmData line")


# -- the watchdog ----------------------------------------------------------------------------


async def test_the_watchdog_ends_a_kindling_run_guest_over_its_bound(run: Run) -> None:
    # The guest takes memory past its bound (64 MiB with a zero budget) with no kernel limit
    # in the way; only the watchdog that run_guest -- kindling run -- runs can stop it.
    report = await run(b"", launcher=misbehaving("outgrow"), memory=0, timeout=30)
    assert report.ending.text == "limit(memory)", report.ending
    message = report.ending.message
    assert message.startswith("the watchdog saw") and "(USS)" in message, message
    seen, bound = (int(word) for word in re.findall(r"(\d+) KiB", message))
    assert bound * 1024 == running_bound(0, 0)
    assert bound < seen < bound + 256 * 1024  # it caught it on the way, far from the 1 GiB


ORDINARY_UID = 4242


def _ordinary_python() -> str | None:
    """A Python 3.11 an unprivileged user can run (the test's own may be under /root)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    check = "import os, sys; sys.exit(not os.access(sys.executable, os.X_OK))"
    for candidate in (sys.executable, f"/usr/bin/{version}", shutil.which(version)):
        if candidate and _runs_as_ordinary_user([candidate, "-c", check]):
            return candidate
    return None


def _runs_as_ordinary_user(argv: list[str]) -> bool:
    try:
        done = subprocess.run(_as_ordinary_user(argv), capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _as_ordinary_user(argv: list[str]) -> list[str]:
    uid = str(ORDINARY_UID)
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root")
def test_the_watchdog_holds_with_the_host_as_an_ordinary_user() -> None:
    python = _ordinary_python()
    if python is None:
        pytest.skip("no Python an unprivileged user can run")
    site = next(p for p in sys.path if p.endswith("site-packages"))
    script = (
        "from host.api import run\n"
        "from host.config import GuestConfig\n"
        "from tests.guests import misbehaving\n"
        "launcher = misbehaving('outgrow')\n"
        "report = run(b'', GuestConfig(memory=0, timeout=30), launcher=launcher)\n"
        "print(report.ending.text, report.ending.message)\n"
    )
    done = subprocess.run(
        _as_ordinary_user([python, "-c", script]),
        env={"PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{site}", "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("limit(memory) the watchdog saw"), done.stdout
    assert "(USS)" in done.stdout  # it could read the guest's smaps_rollup


def _write(folder: Path, wasm: bytes) -> Path:
    """``wasm`` in a file of its own (the factory's guests take paths)."""
    path = folder / f"module-{len(wasm)}.wasm"
    path.write_bytes(wasm)
    return path
