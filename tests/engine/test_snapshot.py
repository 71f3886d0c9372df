"""Snapshots: what a start function left, taken from one instance and installed in a fresh
one that never ran it, behaves as the original; a state that does not fit is refused whole."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from guestproc.engine import Instance, compile_module, parse_module
from guestproc.engine.snapshot import CHUNK, SnapshotError, capture, install

START = """(module
  (memory 1 8)
  (table $t 2 10 funcref)
  (global $count (mut i32) (i32.const 0))
  (global $wide (mut i64) (i64.const 0))
  (global $single (mut f32) (f32.const 0))
  (global $double (mut f64) (f64.const 0))
  (global $fn (mut funcref) (ref.null func))
  (global $fixed i32 (i32.const 5))
  (data $passive "passive bytes")
  (data (i32.const 16) "active")
  (elem $later func $seven)
  (func $seven (result i32) (i32.const 7))
  (func $eight (result i32) (i32.const 8))
  (func $start
    (global.set $count (i32.const 41))
    (global.set $wide (i64.const -2))
    (global.set $single (f32.reinterpret_i32 (i32.const 0x7fa00001)))
    (global.set $double (f64.const -0.5))
    (global.set $fn (ref.func $eight))
    (drop (memory.grow (i32.const 2)))
    (i32.store (i32.const 0x2fffc) (i32.const 0x01020304))
    (i32.store8 (i32.const 16) (i32.const 0x41))
    (drop (table.grow $t (ref.func $seven) (i32.const 3)))
    (table.set $t (i32.const 0) (ref.func $eight))
    (data.drop $passive)
    (elem.drop $later))
  (start $start)
  (func (export "count") (result i32) (global.get $count))
  (func (export "bump") (result i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1))) (global.get $count))
  (func (export "wide") (result i64) (global.get $wide))
  (func (export "single_bits") (result i32) (i32.reinterpret_f32 (global.get $single)))
  (func (export "double") (result f64) (global.get $double))
  (func (export "pages") (result i32) (memory.size))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "size") (result i32) (table.size $t))
  (func (export "call") (param i32) (result i32) (call_indirect (result i32) (local.get 0)))
  (func (export "init_passive") (memory.init $passive (i32.const 0) (i32.const 0) (i32.const 1)))
  (func (export "init_later") (table.init $t $later (i32.const 0) (i32.const 0) (i32.const 1)))
  (func (export "fixed") (result i32) (global.get $fixed))
  (func (export "fn_is_null") (result i32) (ref.is_null (global.get $fn))))"""


def _instances(text: str = START) -> tuple[Instance, Instance]:
    """One instance that ran its start function, one fresh that did not."""
    compiled = compile_module(parse_module(text))
    return compiled.instantiate({}), compiled.instantiate({}, run_start=False)


def _observe(instance: Instance) -> list[Any]:
    seen: list[Any] = []
    for name, args in [
        ("count", ()),
        ("wide", ()),
        ("single_bits", ()),
        ("double", ()),
        ("pages", ()),
        ("load", (0x2FFFC,)),
        ("load8", (16,)),
        ("load8", (17,)),
        ("size", ()),
        ("call", (0,)),
        ("call", (4,)),
        ("fixed", ()),
        ("fn_is_null", ()),
        ("init_passive", ()),
        ("init_later", ()),
        ("bump", ()),
    ]:
        try:
            seen.append(instance.invoke(name, *args))
        except Exception as exc:  # a trap is what some of these must give
            seen.append(type(exc).__name__ + ": " + str(exc))
    return seen


def test_a_fresh_instance_given_the_state_behaves_as_the_one_that_ran_the_start() -> None:
    started, fresh = _instances()
    assert fresh.invoke("count") == [0]  # its start function did not run
    state = capture(started)
    install(fresh, copy.deepcopy(state))
    expected = _observe(started)
    assert _observe(fresh) == expected
    assert expected[:5] == [[41], [(1 << 64) - 2], [0x7FA00001], [-0.5], [3]]
    assert expected[9:11] == [[8], [7]]
    assert "out of bounds" in expected[13] and "out of bounds" in expected[14]


def test_the_state_holds_only_the_chunks_that_are_not_zero() -> None:
    started, _ = _instances()
    ((pages, pieces),) = capture(started)["memories"]
    assert pages == 3
    assert [offset for offset, _ in pieces] == [0, 2 * CHUNK]


def test_nan_payloads_travel_as_bits() -> None:
    text = """(module (global $f (mut f64) (f64.const 0)) (global $s (mut f32) (f32.const 0))
      (func $start (global.set $f (f64.reinterpret_i64 (i64.const 0x7ff0000000000123)))
                   (global.set $s (f32.reinterpret_i32 (i32.const 0xff800321))))
      (start $start)
      (func (export "f") (result i64) (i64.reinterpret_f64 (global.get $f)))
      (func (export "s") (result i32) (i32.reinterpret_f32 (global.get $s))))"""
    started, fresh = _instances(text)
    state = capture(started)
    install(fresh, state)
    assert fresh.invoke("f") == [0x7FF0000000000123]
    assert fresh.invoke("s") == [0xFF800321]


def _broken(change: Any) -> dict[str, Any]:
    started, _ = _instances()
    state: dict[str, Any] = capture(started)
    change(state)
    return state


BROKEN_STATES = {
    "not a map": lambda s: s.clear(),
    "an extra part": lambda s: s.update(code=[b"marshal"]),
    "memory past its maximum": lambda s: s["memories"][0].__setitem__(0, 9),
    "memory shrunk": lambda s: s["memories"][0].__setitem__(0, 0),
    "a piece past the end": lambda s: s["memories"][0][1].append([3 * CHUNK, bytes(CHUNK)]),
    "a piece out of step": lambda s: s["memories"][0][1].append([CHUNK + 1, bytes(CHUNK)]),
    "a short piece": lambda s: s["memories"][0][1].__setitem__(0, [0, b"x"]),
    "a piece as text": lambda s: s["memories"][0][1].__setitem__(0, [0, "x" * CHUNK]),
    "a piece twice": lambda s: s["memories"][0][1].append(s["memories"][0][1][0]),
    "an immutable global": lambda s: s["globals"].__setitem__(0, [5, 1]),
    "a global twice": lambda s: s["globals"].__setitem__(1, s["globals"][0]),
    "an i32 too wide": lambda s: s["globals"].__setitem__(0, [0, 1 << 32]),
    "a negative i64": lambda s: s["globals"].__setitem__(1, [1, -1]),
    "a float as a float": lambda s: s["globals"].__setitem__(3, [3, 0.5]),
    "a bool for an int": lambda s: s["globals"].__setitem__(0, [0, True]),
    "a function past the end": lambda s: s["globals"].__setitem__(4, [4, 10_000]),
    "a global missing": lambda s: s["globals"].pop(),
    "a table shrunk": lambda s: s["tables"][0].__setitem__(0, 1),
    "a table over its maximum": lambda s: s["tables"][0].__setitem__(0, 11),
    "elements that do not match the size": lambda s: s["tables"][0][1].pop(),
    "an element that is no function": lambda s: s["tables"][0][1].__setitem__(0, -1),
    "an element as text": lambda s: s["tables"][0][1].__setitem__(0, "f"),
    "a segment that does not exist": lambda s: s["dropped_data"].append(2),
    "a memory too many": lambda s: s["memories"].append([1, []]),
}


@pytest.mark.parametrize("change", BROKEN_STATES.values(), ids=BROKEN_STATES.keys())
def test_a_state_that_does_not_fit_is_refused_and_changes_nothing(change: Any) -> None:
    state = _broken(change)
    _, fresh = _instances()
    before = _observe(_instances()[1])
    with pytest.raises(SnapshotError):
        install(fresh, state)
    assert _observe(fresh) == before


def test_a_table_holding_another_instances_function_cannot_be_captured() -> None:
    started, fresh = _instances()
    started.tables[0].elements[1] = fresh.functions[0]
    with pytest.raises(SnapshotError, match="table 0"):
        capture(started)
