"""The guest process from the outside: its sandbox, its imports, its tie to the host."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from types import CodeType

import psutil
import pytest

from guestproc.engine import decode_module
from host.config import GuestConfig
from host.transport import Launcher
from protocol.limits import running_bound
from tests.framework.paths import REPO_ROOT, fixture
from tests.framework.proc import proc_limit
from tests.host.conftest import Guests, SpinningGuest

pytestmark = pytest.mark.slow  # real guest processes, and hosts killed under them


async def test_only_the_pipes_and_devnull_stdio_are_open(spinning_guest: SpinningGuest) -> None:
    stray = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(stray, True)  # as if the host had inherited it from its own parent
    try:
        p = (await spinning_guest()).process
        fds = {
            fd: os.readlink(f"/proc/{p.pid}/fd/{fd}")
            for fd in map(int, os.listdir(f"/proc/{p.pid}/fd"))
        }
    finally:
        os.close(stray)
    assert set(fds) == {0, 1, 2, 3, 4}, fds
    assert fds[0] == fds[1] == fds[2] == "/dev/null"
    assert fds[3].startswith("pipe:") and fds[4].startswith("pipe:")


async def test_environment_holds_only_the_import_path(spinning_guest: SpinningGuest) -> None:
    env = (await spinning_guest()).process.environ()
    # and, from a host running as root, the uid to drop to (host.uids)
    expected = {"PYTHONPATH", "KINDLING_GUEST_UID"} if os.geteuid() == 0 else {"PYTHONPATH"}
    assert set(env) == expected, env


async def test_rlimits_and_process_group(spinning_guest: SpinningGuest) -> None:
    p = (await spinning_guest(cpu=30, memory=5 * 1024 * 1024)).process
    found = {
        "fsize": proc_limit(p.pid, "Max file size"),
        "core": proc_limit(p.pid, "Max core file size"),
        "nofile": proc_limit(p.pid, "Max open files"),
        "data": proc_limit(p.pid, "Max data size"),
        "cpu": proc_limit(p.pid, "Max cpu time"),
        "nproc": proc_limit(p.pid, "Max processes"),
        "pgid": os.getpgid(p.pid),
        "pid": p.pid,
        "no_new_privs": _status_field(p.pid, "NoNewPrivs"),
        "data_now": p.memory_info().data,
    }
    assert found["fsize"] == (0, 0)
    assert found["core"] == (0, 0)
    assert found["nofile"] == (16, 16)
    soft, hard = found["data"]
    assert soft == hard != resource.RLIM_INFINITY
    # The running bound (protocol.limits) as address space, and an eighth of the budget that
    # linear memory may reserve: all of an exec'd guest's address space is its own.
    code_size = decode_module(fixture("infinite_loop").read_bytes()).code_size()
    assert soft == running_bound(5 * 1024 * 1024, code_size) + 5 * 1024 * 1024 // 8
    assert found["data_now"] < soft
    cpu_soft, cpu_hard = found["cpu"]
    assert 30 <= cpu_soft <= 32 and cpu_hard == cpu_soft + 1
    assert found["nproc"] == (0, 0)
    assert found["pgid"] == found["pid"]
    assert found["no_new_privs"] == "1"


def _status_field(pid: int, name: str) -> str:
    with open(f"/proc/{pid}/status") as status:
        return status.read().split(f"{name}:")[1].split()[0]


async def test_no_cpu_limit_unless_asked(spinning_guest: SpinningGuest) -> None:
    cpu = proc_limit((await spinning_guest()).process.pid, "Max cpu time")
    assert cpu[0] == resource.RLIM_INFINITY


def test_the_guest_imports_only_msgpack_the_engine_and_the_standard_library() -> None:
    launcher = Launcher.default()
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import guestproc.guest, guestproc.session, guestproc.__main__\n"
        "roots = sorted({m.split('.')[0] for m in set(sys.modules) - before})\n"
        "print(' '.join(roots))\n"
        "print(' '.join(sorted(sys.stdlib_module_names)))\n"
    )
    out = subprocess.run(
        [launcher.argv[0], "-S", "-P", "-c", code],
        env=dict(launcher.env),
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout.splitlines()
    imported, stdlib = set(out[0].split()), set(out[1].split())
    ours = {"guestproc", "protocol", "msgpack", "cython_runtime"}  # msgpack's C extension
    others = {name for name in imported - ours - stdlib if not name.startswith("_")}
    assert others == set(), f"the guest imports {others}"
    assert not imported & {"pydantic", "pydantic_core", "click", "asyncio", "psutil", "host"}


def test_a_guest_dies_with_its_host() -> None:
    """A host killed with SIGKILL cannot clean up; its guest must go anyway."""
    script = (
        "import asyncio, sys\n"
        "from host.guest import Guest\n"
        "async def main():\n"
        "    guest = Guest()\n"
        "    guest.begin()\n"
        "    guest.submit_load(open(sys.argv[1], 'rb').read())\n"
        "    guest.submit_boot()\n"
        "    guest.submit_invoke('_start')\n"
        "    await guest.handshake()\n"
        "    print(guest.pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    host = subprocess.Popen(
        [sys.executable, "-c", script, str(fixture("infinite_loop"))],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert host.stdout is not None
        guest = psutil.Process(int(host.stdout.readline()))
        time.sleep(0.3)
        assert guest.is_running()
        host.kill()
        host.wait()
        _gone, alive = psutil.wait_procs([guest], timeout=10)
        assert not alive, "the guest outlived its host"
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        if host.stdout is not None:
            host.stdout.close()


async def test_deep_recursion_traps_without_crashing_the_process(new_guest: Guests) -> None:
    from host.errors import GuestTrapped

    guest = new_guest(GuestConfig(timeout=60))
    try:
        await guest.start()
        await guest.boot(fixture("trap_stack_exhausted").read_bytes())
        await guest.run_command()
    except GuestTrapped as trapped:
        assert trapped.ending.text == "trapped(call_stack_exhausted)"
    else:
        raise AssertionError("the recursion did not trap")


def test_precompiler_translates_what_will_run_first_and_skips_dead_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from guestproc.engine import compile_module, validate_module
    from guestproc.engine.text import parse_module
    from guestproc.precompiler import Precompiler

    module = parse_module(
        """(module
          (import "env" "f" (func $imported))
          (table 1 funcref)
          (elem (i32.const 0) $in_table)
          (func $dead)
          (func $callee)
          (func $in_table call $callee_of_table)
          (func $callee_of_table)
          (func $main (export "_start") call $callee call $imported)
          (func $other (export "other")))"""
    )
    validate_module(module)
    compiled = compile_module(module)
    translated: list[int] = []
    translate = compiled.function_code

    def recording(func_index: int) -> CodeType:
        translated.append(func_index)
        return translate(func_index)

    monkeypatch.setattr(compiled, "function_code", recording)
    precompiler = Precompiler(compiled)
    precompiler.run_until(lambda: False)
    # _start first, then the other export, then their callees; then the table and its callees.
    assert translated == [5, 6, 2, 3, 4]
    assert precompiler.done == 5 and precompiler.seconds > 0


def test_precompiler_stops_when_asked() -> None:
    from guestproc.engine import compile_module, decode_module
    from guestproc.precompiler import Precompiler

    precompiler = Precompiler(compile_module(decode_module(fixture("hello").read_bytes())))
    precompiler.run_until(lambda: True)
    assert precompiler.done == 1
    precompiler.run_until(lambda: precompiler.done >= 3)
    assert precompiler.done == 3
