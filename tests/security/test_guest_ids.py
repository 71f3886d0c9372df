"""Issue 12, point 3: each template's guests have a uid and gid of their own, never the host's.

A root host hands out uids of ``Host(guest_uids=)``; a host running as an ordinary user
hands out its subordinate ids (``/etc/subuid``, ``/etc/subgid``), which it maps into each
guest's user namespace with ``newuidmap`` and ``newgidmap`` before answering its Hello
(``host.idmap``). Without subordinate ids an ordinary user's guests share its uid. Checked
from outside, as the kernel sees the processes. ``test_unprivileged_host.py`` runs this file
as the user ``kindling-test``, to whom it grants subordinate ids.
"""

from __future__ import annotations

import os
import shutil

import psutil
import pytest

from host.errors import GuestEnded
from host.guest import Guest
from host.supervisor import Host
from host.transport import Launcher
from host.uids import DEFAULT_GUEST_UIDS, SubordinateIds, find_subordinate_ids
from protocol.messages import SUBORDINATE_IDS_VARIABLE
from tests.framework.paths import fixture

pytestmark = pytest.mark.slow  # every test here starts guests

ROOT = os.geteuid() == 0


def ids_of(pid: int | None) -> tuple[int, int]:
    assert pid is not None
    process = psutil.Process(pid)
    uids, gids = process.uids(), process.gids()
    assert uids.real == uids.effective == uids.saved, uids  # no way back to another uid
    assert gids.real == gids.effective == gids.saved, gids
    return uids.real, gids.real


def expected_ranges() -> tuple[range, range]:
    """Where a template's ids must come from in this host mode."""
    if ROOT:
        return DEFAULT_GUEST_UIDS, DEFAULT_GUEST_UIDS
    found = find_subordinate_ids()
    if not isinstance(found, SubordinateIds):
        pytest.skip(f"no subordinate ids for this user ({found}); .ci/run grants them")
    return found.uids, found.gids


async def test_each_template_has_ids_of_its_own() -> None:
    uids, gids = expected_ranges()
    module = fixture("exports").read_bytes()
    async with Host(cache=False) as host:
        first = await host.launch(module)
        second = await host.launch(module, memory="6MiB")  # another config: another template
        try:
            assert await first.invoke("add", 2, 3) == [5]
            assert await second.invoke("add", 4, 5) == [9]
            templates = host.templates()
            assert len(templates) == 2
            seen = [ids_of(first.pid), ids_of(second.pid)]
            for template in templates:
                uid, gid = ids_of(template.pid)
                assert (uid, gid) in seen  # a template and its guests share theirs
            assert seen[0] != seen[1]
            for uid, gid in seen:
                assert uid in uids and gid in gids
                assert uid not in (0, 65534, os.getuid()) and gid not in (0, 65534, os.getgid())
        finally:
            await first.stop()
            await second.stop()


async def test_without_subordinate_ids_an_ordinary_users_guests_share_its_uid() -> None:
    """``Host(subordinate_ids=False)`` as an ordinary user: the fallback the doctor names.
    A root host drops root all the same."""
    async with Host(cache=False, subordinate_ids=False) as host:
        sandbox = await host.launch(fixture("exports").read_bytes())
        try:
            assert await sandbox.invoke("add", 2, 3) == [5]
            uid, _ = ids_of(sandbox.pid)
            if ROOT:
                assert uid in DEFAULT_GUEST_UIDS
            else:
                assert uid == os.getuid()
        finally:
            await sandbox.stop()


@pytest.mark.skipif(shutil.which("newuidmap") is None, reason="newuidmap (uidmap) is missing")
async def test_ids_the_helpers_refuse_to_map_end_the_guest_before_it_loads() -> None:
    """Ids outside the user's subordinate ranges (root has none): the guest waits in its user namespace for the host's Hello; if its ids cannot be
    mapped it is ended, naming why, and never runs a step of its hardening unmapped."""
    launcher = Launcher.default().with_ids({SUBORDINATE_IDS_VARIABLE: "1234567:1234567"})
    guest = Guest(launcher=launcher)
    with pytest.raises(GuestEnded) as raised:
        await guest.start()
        await guest.submit_load(fixture("exports").read_bytes())
    message = raised.value.ending.message or ""
    assert message.startswith("its subordinate ids were not mapped: newuidmap"), message
    assert "1234567" in message
    await guest.stop()
