"""Issue 12, point 2: templates never run module code. A start function runs in a throwaway
hardened guest, and only what it left as data reaches the template and its guests.

The start function here is attacker Python (``tests/guests/subverted.py``: an export named
``python-start:SRC`` runs SRC where the start function runs). It reports through the
instance's own state, an exported mutable global ``status``, which is what travels to the
template; the guests forked from it read ``status`` back, or run a payload of their own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from host.errors import GuestEnded
from host.supervisor import Host
from tests.guests import subverted
from tests.security.test_other_processes import Console

pytestmark = pytest.mark.slow  # every test here starts guests


def module(start_source: str) -> bytes:
    """A module with a start function and ``start_source`` run where it runs."""
    name = "python-start:" + start_source
    quoted = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f"""(module
      (global $status (export "status") (mut i32) (i32.const 0))
      (func $start)
      (start $start)
      (func (export "{quoted}"))
      (func (export "status_value") (result i32) (global.get $status)))""".encode()


def reporting(source: str) -> str:
    """``source``, then its ``outcome`` (an int) set as the instance's ``status``."""
    return source + "\ninstance.exports['status'].value = outcome"


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    async with Host(cache=False, launcher=subverted()) as host:
        yield host


async def test_the_start_function_runs_in_another_process_than_the_template(host: Host) -> None:
    sandbox = await host.launch(module(reporting("import os\noutcome = os.getpid()")))
    try:
        (template,) = host.templates()
        ran_in = (await sandbox.invoke("status_value"))[0]
        assert ran_in not in (template.pid, sandbox.pid, os.getpid())
        assert isinstance(ran_in, int) and ran_in > 1
    finally:
        await sandbox.stop()


async def test_the_start_function_runs_under_the_running_filter(host: Host) -> None:
    """In the template it ran under the loader's filter, which lets a process open files
    to read; the throwaway guest runs it under the running one, which opens nothing."""
    source = """
import os
try:
    os.close(os.open('/etc/hostname', os.O_RDONLY))
    outcome = 1
except PermissionError:
    outcome = 2
except OSError:
    outcome = 3"""
    sandbox = await host.launch(module(reporting(source)))
    try:
        assert await sandbox.invoke("status_value") == [2]
    finally:
        await sandbox.stop()


async def test_code_a_start_function_leaves_behind_reaches_no_guest(host: Host) -> None:
    """A start function that patched the engine in its process: had it run in the
    template, every guest forked from it would run the patch."""
    planted = """
import sys
sys.modules['guestproc'].PLANTED = 'by the start function'
outcome = 7"""
    console = Console()
    sandbox = await host.launch(module(reporting(planted)), console=console)
    try:
        assert await sandbox.invoke("status_value") == [7]  # the data came through
        look = "import sys\nresult = getattr(sys.modules['guestproc'], 'PLANTED', 'clean')"
        assert await sandbox.invoke("python:" + look) == []
        await asyncio.sleep(0.05)  # the console frame goes before the Result; let it land
        assert console.text == "clean"
    finally:
        await sandbox.stop()


async def test_a_forged_snapshot_is_refused_by_the_template(host: Host) -> None:
    """The throwaway guest is the attacker's: what it sends is checked against the module
    (here, a table index the module does not have), and the launch fails, naming why."""
    forged = """
import msgpack
from guestproc import snapshots
def forged(instance, wasi):
    state = {'format': 1, 'descriptors': wasi.descriptor_state(),
             'instance': {'memories': [], 'globals': [[0, 1]], 'tables': [[1, [99]]],
                          'dropped_data': [], 'dropped_elements': []}}
    return [msgpack.packb(state)]
snapshots.pieces = forged"""
    with pytest.raises(GuestEnded) as raised:
        await host.launch(module(forged))
    assert raised.value.ending.text == "load_failure(snapshot)"
    assert "tables must have 0 entries, not 1" in raised.value.ending.reason()
    assert host.templates() == []


async def test_a_start_function_that_crashes_its_guest_fails_the_launch(host: Host) -> None:
    with pytest.raises(GuestEnded) as raised:
        await host.launch(module("import os\nos._exit(9)"))
    assert raised.value.ending.text == "protocol_error"
    assert "exit status 9" in raised.value.ending.reason()
    assert host.templates() == []
