"""Issue 12, point 3: a subverted guest cannot touch other processes -- not a sibling guest
forked from the same template, not the host.

Each attack is attacker Python running inside a real, fully hardened guest where module code
runs (``tests/guests/subverted.py``: the hole an engine bug would open). The payloads are the
ones the security review demonstrated on the guests of the time: setting a sibling's
``RLIMIT_CPU`` to zero, and aiming ``SIGKILL`` at it through ``F_SETOWN``/``F_SETSIG`` and
``O_ASYNC`` on one of the attacker's own pipes.
"""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import AsyncIterator

import pytest

from host.supervisor import Host, Sandbox
from host.uids import DEFAULT_GUEST_UIDS, SubordinateIds, find_subordinate_ids
from tests.framework.paths import fixture
from tests.guests import subverted

pytestmark = pytest.mark.slow  # every test here starts guests

F_SETOWN, F_SETSIG = 8, 10


class Console:
    """Collects what the payload reports (its ``result``, written to stdout)."""

    def __init__(self) -> None:
        self.text = ""
        self.backed_up = False

    def write(self, stream: int, data: bytes) -> None:
        self.text += data.decode()

    async def drain(self) -> None:
        return None


async def attack(host: Host, source: str) -> str:
    """Run ``source`` in a fresh subverted guest; what its ``result`` was (or the exception
    it raised, as ``Type: text``)."""
    console = Console()
    attacker = await host.launch(fixture("exports").read_bytes(), console=console)
    try:
        assert await attacker.invoke("python:" + source) == []
        await asyncio.sleep(0.05)  # the console frame goes before the Result; let it land
    finally:
        await attacker.stop()
    return console.text


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    async with Host(cache=False, launcher=subverted()) as host:
        yield host


@pytest.fixture
async def victim(host: Host) -> Sandbox:
    return await host.launch(fixture("exports").read_bytes())


def cpu_limit(pid: int) -> str:
    with open(f"/proc/{pid}/limits") as limits:
        return next(line for line in limits if line.startswith("Max cpu time"))


async def test_the_subverted_guest_does_run_attacker_python(host: Host) -> None:
    """The harness itself: the payload runs, inside the guest (its pid is not ours)."""
    pid = int(await attack(host, "import os; result = os.getpid()"))
    assert pid != os.getpid()


async def test_a_guest_cannot_change_a_sibling_guests_limits(host: Host, victim: Sandbox) -> None:
    assert victim.pid is not None
    before = cpu_limit(victim.pid)
    outcome = await attack(
        host,
        f"import resource; resource.prlimit({victim.pid}, resource.RLIMIT_CPU, (0, 0))",
    )
    assert outcome == "PermissionError: [Errno 1] Operation not permitted"
    assert cpu_limit(victim.pid) == before
    assert await victim.invoke("add", 2, 3) == [5]


async def test_a_guest_cannot_read_another_processes_limits(host: Host, victim: Sandbox) -> None:
    outcome = await attack(
        host, f"import resource; result = resource.prlimit({victim.pid}, resource.RLIMIT_CPU)"
    )
    assert outcome == "PermissionError: [Errno 1] Operation not permitted"


async def test_a_guest_cannot_change_the_hosts_limits(host: Host) -> None:
    """A forked guest's parent is the host (CLONE_PARENT), though in its own PID namespace
    ``getppid()`` no longer names it: the payload is given the host's pid, as if it had
    learned it some other way."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    outcome = await attack(
        host,
        f"import resource; resource.prlimit({os.getpid()}, resource.RLIMIT_NOFILE, (3, 3))",
    )
    assert outcome == "PermissionError: [Errno 1] Operation not permitted"
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before


@pytest.mark.parametrize(("command", "name"), [(F_SETOWN, "F_SETOWN"), (F_SETSIG, "F_SETSIG")])
async def test_a_guest_cannot_aim_signals_at_another_process(
    host: Host, victim: Sandbox, command: int, name: str
) -> None:
    """``F_SETOWN`` names who gets SIGIO for a descriptor (``O_ASYNC``), ``F_SETSIG`` which
    signal that is: together, SIGKILL for any process of the same uid."""
    outcome = await attack(
        host,
        "import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
        f"argument = {victim.pid} if {command} == {F_SETOWN} else 9; "
        f"done = libc.fcntl(4, {command}, argument); "
        "result = f'{done} {ctypes.get_errno()}'",
    )
    assert outcome == "-1 1", name  # EPERM
    assert await victim.invoke("add", 2, 3) == [5]


async def test_a_guest_keeps_the_descriptor_commands_it_needs(host: Host) -> None:
    """Reading a descriptor's flags (``F_GETFL``), duplicating it (``F_DUPFD_CLOEXEC``), and
    reading and setting its own limits (pid 0) still work."""
    outcome = await attack(
        host,
        "import os, resource; os.close(os.dup(4)); "
        "soft, hard = resource.getrlimit(resource.RLIMIT_CORE); "
        "resource.setrlimit(resource.RLIMIT_CORE, (soft, hard)); result = os.get_blocking(4)",
    )
    assert outcome == "True"


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("Uid:"))
    return int(line.split()[1])


async def test_each_templates_guests_have_a_uid_of_their_own(host: Host) -> None:
    """Issue 12, point 3: as root, not nobody shared by all, not the host's; the guests of
    one template share its uid, those of another template have another. As an ordinary
    user, its subordinate uids (``test_guest_ids.py``); without them, the host cannot give
    uids: its guests keep its own (``kindling doctor`` says so)."""
    exports = fixture("exports").read_bytes()
    first, sibling = await host.launch(exports), await host.launch(exports)
    other = await host.launch(exports, memory="6MiB")  # another configuration, template
    try:
        uids = {s.name: uid_of(s.pid) for s in (first, sibling, other) if s.pid is not None}
        subordinate = find_subordinate_ids()
        if os.geteuid() != 0 and not isinstance(subordinate, SubordinateIds):
            assert set(uids.values()) == {os.geteuid()}
            return
        expected = subordinate.uids if isinstance(subordinate, SubordinateIds) else None
        assert uids[first.name] == uids[sibling.name]
        assert uids[other.name] != uids[first.name]
        assert all(uid in (expected or DEFAULT_GUEST_UIDS) for uid in uids.values())
        assert {template.pid and uid_of(template.pid) for template in host.templates()} == {
            uids[first.name],
            uids[other.name],
        }
    finally:
        for sandbox in (first, sibling, other):
            await sandbox.stop()


def test_a_uid_range_that_holds_root_nobody_or_the_host_is_refused() -> None:
    for uids in (range(0, 10), range(65530, 65540), range(os.getuid(), os.getuid() + 1)):
        with pytest.raises(ValueError, match="must leave out root"):
            Host(guest_uids=uids)


async def test_a_forked_guest_can_name_no_process_outside_its_templates_namespace(
    host: Host,
) -> None:
    """Issue 12, point 3: the guests of a template live in a PID namespace of their own
    (its holder is process 1), so no pid they can name is the host's, the template's or
    another template's guest's; the parent, the host, is outside: getppid() is 0."""
    outcome = await attack(host, "import os\nresult = (os.getpid(), os.getppid())")
    pid, parent = (int(part) for part in outcome.strip("()").split(", "))
    assert parent == 0 and 1 < pid < 100, outcome
    (template,) = host.templates()
    assert template.holder is not None and template.pid is not None
    with open(f"/proc/{template.holder.pid}/status") as status:
        assert next(line for line in status if line.startswith("NSpid:")).split()[-1] == "1"
