"""Preopened directories through ``Host.launch`` (issue 14.1): guests forked from a template
reach the directories their configuration names, through the host's broker."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host import filebroker
from host.supervisor import Host
from tests.framework.paths import fixture

PROBE = Path(__file__).parents[1] / "security" / "data" / "fileprobe.wat"
THROUGHPUT = fixture("file_throughput")
NOTCAPABLE = 76
ENFILE = 41


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_forked_guests_read_and_write_a_preopen(host: Host, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"from the host\n")
    reader = await host.launch(PROBE, args=["o", "file"], dirs=[f"{tmp_path}::data"])
    assert str(await reader.run()) == "exited(0)"
    assert reader.stdout == b"from the host\n"
    writer = await host.launch(PROBE, args=["w", "made"], dirs=[f"{tmp_path}::data"])
    assert str(await writer.run()) == "exited(0)"
    assert (tmp_path / "made").read_bytes() == b"x"


async def test_a_read_only_preopen_through_launch(host: Host, tmp_path: Path) -> None:
    sandbox = await host.launch(PROBE, args=["w", "made"], ro_dirs=[str(tmp_path)])
    assert str(await sandbox.run()) == f"exited({NOTCAPABLE})"
    assert not (tmp_path / "made").exists()


async def test_ended_guests_give_their_descriptors_back(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    before = open_fds()
    async with Host(cache=False) as host:
        for _ in range(3):
            sandbox = await host.launch(PROBE, args=["o", "file"], dirs=[str(tmp_path)])
            assert str(await sandbox.run()) == "exited(0)"
    assert open_fds() == before


async def test_guests_holding_a_preopen_cost_the_host_no_descriptor_each() -> None:
    """Issue 14.1: 50 guests alive at once, each having read a file through its --ro-dir
    preopen, hold as many host descriptors as 50 without one, but for the directory's one
    descriptor that they all share (``kindling bench files --guests 5000`` is the full
    measure)."""
    from host.bench.files import measure_descriptors

    plain = await measure_descriptors(50, preopen=False)
    given = await measure_descriptors(50, preopen=True)
    assert plain.exited_ok == given.exited_ok == given.alive_having_read == 50
    assert given.brokered_files_open == 0
    assert given.fds_alive - given.fds_before == plain.fds_alive - plain.fds_before + 1
    assert given.fds_after == given.fds_before


async def test_more_guests_than_max_files_each_open_read_and_close_a_file(
    host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 guests open, read and close a file at once, in a host that may hold 2: reads and
    closes go before new opens, and an open waits for room, so none fails ENFILE."""
    monkeypatch.setattr(filebroker, "MAX_FILES", 2)
    (tmp_path / "data").write_bytes(b"k" * 4096)
    launches = (
        host.launch(THROUGHPUT, args=["r", "4096"], ro_dirs=[str(tmp_path)]) for _ in range(30)
    )
    sandboxes = await asyncio.gather(*launches)
    endings = await asyncio.gather(*(sandbox.run() for sandbox in sandboxes))
    assert [str(ending) for ending in endings] == ["exited(0)"] * 30


async def test_an_open_past_max_files_fails_enfile_once_it_has_waited(
    host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guest that keeps its file open holds the host's one slot: another guest's open
    waits OPEN_WAIT for it, then fails ENFILE, and so does the holder's second open; the
    bound holds."""
    monkeypatch.setattr(filebroker, "MAX_FILES", 1)
    monkeypatch.setattr(filebroker, "OPEN_WAIT", 0.2)
    (tmp_path / "file").write_bytes(b"held\n")
    release = asyncio.Event()

    async def held_stdin() -> AsyncIterator[bytes]:
        await release.wait()
        yield b"x"

    holder = await host.launch(
        PROBE, args=["S", "file"], ro_dirs=[str(tmp_path)], stdin=held_stdin()
    )
    holding = asyncio.ensure_future(holder.run())
    while filebroker.OPEN_FILES.count == 0:
        await asyncio.sleep(0.01)
    other = await host.launch(PROBE, args=["o", "file"], ro_dirs=[str(tmp_path)])
    assert str(await other.run()) == f"exited({ENFILE})"
    release.set()  # the holder opens the file again, its first still open: no room either
    assert str(await holding) == f"exited({ENFILE})"
    assert holder.stdout == b"held\n"
