"""Snapshots between processes (``guestproc.snapshots``): encoded where the start function
ran, read back with every length bounded and every part checked, WASI descriptors included."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from guestproc import snapshots
from guestproc.booting import start_problem
from guestproc.engine import Instance, compile_module, parse_module
from guestproc.engine.snapshot import SnapshotError
from guestproc.loading import LoadedModule
from guestproc.wasi import WasiEnvironment
from protocol import messages as m

CLOSES_STDIN = """(module
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i64) (i64.const 0))
  (func $start (drop (call $close (i32.const 0))) (global.set $g (i64.const 9)))
  (start $start)
  (func (export "g") (result i64) (global.get $g)))"""


def _wasi() -> WasiEnvironment:
    return WasiEnvironment([b"prog"], [], write_console=lambda *_: None, read_stdin=bytes)


def _pair(text: str = CLOSES_STDIN) -> tuple[Instance, WasiEnvironment, Instance, WasiEnvironment]:
    compiled = compile_module(parse_module(text))
    ran, fresh = _wasi(), _wasi()
    started = compiled.instantiate(ran.imports())
    return started, ran, compiled.instantiate(fresh.imports(), run_start=False), fresh


def test_what_the_start_function_left_travels_with_the_descriptors() -> None:
    started, ran, instance, wasi = _pair()
    assert [fd for fd, *_ in ran.descriptor_state()] == [1, 2]
    snapshots.restore(instance, wasi, lambda: encoded(started, ran))
    assert instance.invoke("g") == [9]
    assert wasi.descriptor_state() == ran.descriptor_state()


def encoded(instance: Instance, wasi: WasiEnvironment) -> bytes:
    """The snapshot as the guest sends it, joined."""
    return b"".join(snapshots.pieces(instance, wasi))


def _encoded(**changes: Any) -> bytes:
    started, ran, _, _ = _pair()
    state = {"format": 1, "instance": capture_of(started), "descriptors": ran.descriptor_state()}
    state.update(changes)
    return bytes(msgpack.packb(state))


def capture_of(instance: Instance) -> Any:
    from guestproc.engine.snapshot import capture

    return capture(instance)


REFUSED = {
    "garbage": b"\xc1\xc1",
    "truncated": _encoded()[:-3],
    "a list": msgpack.packb([1, 2, 3]),
    "deep nesting": b"\x91" * 100_000 + b"\xc0",
    "another format": _encoded(format=2),
    "an extra key": _encoded(code=b"x"),
    "a long text key": msgpack.packb({"x" * 1000: 1}),
    "a list longer than any table": msgpack.packb([None] * 100_000),
    "a stream open twice": _encoded(descriptors=[[1, 1, 0, 0, 0], [2, 1, 0, 0, 0]]),
    "rights it never had": _encoded(descriptors=[[1, 1, 0xFFFF_FFFF, 0, 0]]),
    "flags nobody knows": _encoded(descriptors=[[1, 1, 0, 0, 1 << 10]]),
    "a descriptor of text": _encoded(descriptors=[["1", 1, 0, 0, 0]]),
}


@pytest.mark.parametrize("data", REFUSED.values(), ids=REFUSED.keys())
def test_a_snapshot_that_does_not_fit_is_refused_and_changes_nothing(data: bytes) -> None:
    _, _, instance, wasi = _pair()
    descriptors = wasi.descriptor_state()
    with pytest.raises(SnapshotError):
        snapshots.restore(instance, wasi, lambda: data)
    assert instance.invoke("g") == [0]
    assert wasi.descriptor_state() == descriptors


def test_bad_descriptors_leave_the_instance_as_it_was_and_bad_state_the_descriptors() -> None:
    started, ran, instance, wasi = _pair()
    state = msgpack.unpackb(encoded(started, ran))
    state["instance"]["globals"] = [[0, -1]]
    with pytest.raises(SnapshotError, match="global 0"):
        snapshots.restore(instance, wasi, lambda: msgpack.packb(state))
    assert [fd for fd, *_ in wasi.descriptor_state()] == [0, 1, 2]


def _loaded(text: str) -> LoadedModule:
    return LoadedModule(compile_module(parse_module(text)), code_size=1)


LIMITS = m.BootLimits(memory_bytes=65536, cpu_seconds=None, call_depth=100, fuel=None)


@pytest.mark.parametrize(
    ("template", "start", "snapshot", "has_start", "problem"),
    [
        (True, None, None, False, "a template runs no module code"),
        (True, m.StartMode.SNAPSHOT, None, True, "a template runs no module code"),
        (True, m.StartMode.RESTORE, None, True, "exactly when the module has a start"),
        (True, m.StartMode.RESTORE, b"x", False, "exactly when the module has a start"),
        (False, None, b"x", True, "a snapshot only comes to restore"),
        (True, m.StartMode.RESTORE, b"x", True, None),
        (True, m.StartMode.RESTORE, None, False, None),
        (False, m.StartMode.SNAPSHOT, None, True, None),
        (False, None, None, True, None),
    ],
)
def test_boot_says_what_to_do_with_the_start_function(
    template: bool,
    start: m.StartMode | None,
    snapshot: bytes | None,
    has_start: bool,
    problem: str | None,
) -> None:
    text = "(module (func $s) (start $s))" if has_start else "(module)"
    boot = m.Boot(id=1, args=[], env=[], limits=LIMITS, start=start, snapshot=snapshot)
    found = start_problem(boot, _loaded(text), template)
    assert found == problem if problem is None else problem in (found or "")
