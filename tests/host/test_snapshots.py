"""Snapshots on the host: the throwaway guest of a start function sends what it left in
``Snapshot`` frames, held to the same rules as every frame; a template installs it."""

from __future__ import annotations

import asyncio

import pytest

from host.errors import GuestEnded
from host.supervisor import Host
from protocol.messages import StartMode

from .conftest import Guests, misbehaving

COUNTER = b"""(module
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))
  (func $start
    (global.set $count (i32.const 40))
    (i32.store (i32.const 1024) (i32.const 0xabcdef)))
  (start $start)
  (func (export "bump") (result i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (global.get $count))
  (func (export "stored") (result i32) (i32.load (i32.const 1024))))"""


async def test_every_guest_starts_from_what_the_start_function_left(host: Host) -> None:
    """The template installed the start function's work, once; each guest changes only
    its own copy."""
    first = await host.launch(COUNTER)
    second = await host.launch(COUNTER)
    try:
        assert await first.invoke("bump") == [41]
        assert await first.invoke("bump") == [42]
        assert await second.invoke("bump") == [41]
        assert await second.invoke("stored") == [0xABCDEF]
        assert len(host.templates()) == 1
    finally:
        await first.stop()
        await second.stop()


async def test_a_module_without_a_start_function_needs_no_throwaway_guest(host: Host) -> None:
    """Nothing to run, nothing to snapshot: the template boots straight away."""
    no_start = COUNTER.replace(b"(start $start)", b"")
    sandbox = await host.launch(no_start)
    try:
        assert await sandbox.invoke("bump") == [1]
        assert await sandbox.invoke("stored") == [0]
    finally:
        await sandbox.stop()


@pytest.mark.parametrize(
    ("mode", "start", "problem"),
    [
        ("snapshot_unasked", None, "a Snapshot frame, but no Boot asked for one"),
        (
            "snapshot_before_starting",
            StartMode.SNAPSHOT,
            "a Snapshot frame before the module's code started",
        ),
        ("snapshot_dribble", StartMode.SNAPSHOT, "a Snapshot frame after a short one (2 bytes)"),
        ("snapshot_flood", StartMode.SNAPSHOT, "a Snapshot payload over 67108864 bytes"),
        ("ready_without_snapshot", StartMode.SNAPSHOT, "Ready without the snapshot its Boot"),
    ],
)
async def test_snapshot_frames_out_of_their_place_are_protocol_errors(
    new_guest: Guests, mode: str, start: StartMode | None, problem: str
) -> None:
    guest = new_guest(launcher=misbehaving(mode))
    await guest.start()
    guest.submit_load(b"\0asm\1\0\0\0")
    with pytest.raises(GuestEnded) as raised:
        await asyncio.wait_for(guest.submit_boot(start=start), 30)
    assert raised.value.ending.text == "protocol_error"
    assert problem in raised.value.ending.message


def filled(pages: int) -> bytes:
    """A module whose start function fills ``pages`` pages of memory with non-zero bytes."""
    return f"""(module
      (memory {pages})
      (func $start (memory.fill (i32.const 0) (i32.const 0x11) (i32.const {pages * 65536})))
      (start $start)
      (func (export "at") (param i32) (result i32) (i32.load8_u (local.get 0))))""".encode()


async def test_a_snapshot_of_60_mib_reaches_the_guests(host: Host) -> None:
    """The throwaway guest packs it chunk by chunk and the template makes room for it: a
    start function that fills 60 MiB works under a 64 MiB budget (it did not before)."""
    sandbox = await host.launch(filled(960), memory="64MiB")
    try:
        assert await sandbox.invoke("at", 960 * 65536 - 1) == [0x11]
    finally:
        await sandbox.stop()


async def test_a_snapshot_over_its_limit_ends_the_launch_naming_it(host: Host) -> None:
    with pytest.raises(GuestEnded) as raised:
        await host.launch(filled(1100), memory="80MiB")
    assert raised.value.ending.text == "limit(memory)"
    assert "over the snapshot limit of 67108864" in raised.value.ending.reason()
