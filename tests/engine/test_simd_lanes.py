"""i32x4 lanes (``simd_lowering.lane_mode``): a function whose vector arithmetic is all i32x4
keeps its v128 locals as four int locals and works on lanes. Each result is checked against
the same function compiled with vectors as one int (the spec suite's lowering)."""

from __future__ import annotations

import random
import struct

import pytest

from guestproc.engine import compile_module, parse_module
from guestproc.engine import opcodes as op
from guestproc.engine.compiler import FunctionCompiler
from guestproc.engine.instance import CompiledModule, Instance
from guestproc.engine.module import Instr
from guestproc.engine.simd_lowering import _FOLD, lane_binary, lane_mode, shuffle_lanes
from guestproc.engine.validator import validate_module

M32 = 0xFFFFFFFF
EDGES = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, M32, 0x12345678]

CHAIN = """(module (memory 1)
  (func (export "chain") (param v128 v128 i32) (result v128) (local v128 v128 v128)
    (local.set 3 (i32x4.add (local.get 0) (local.get 1)))
    (local.set 4 (i32x4.sub (i32x4.mul (local.get 3) (local.get 0)) (local.get 1)))
    (local.set 5 (v128.and (i32x4.splat (local.get 2)) (local.get 4)))
    (local.set 3 (v128.andnot (v128.not (v128.xor (local.get 5) (local.get 3))) (local.get 1)))
    (local.set 4 (i8x16.shuffle 16 1 2 3 17 5 6 7 18 9 10 11 19 13 14 15
      (local.tee 5 (v128.const i32x4 0 0 0 0)) (local.get 3)))
    (local.set 3 (i8x16.shuffle 4 5 6 7 20 21 22 23 0 0 8 9 31 30 29 28
      (local.get 3) (local.get 4)))
    (i32x4.replace_lane 2
      (v128.or (i32x4.add (local.get 3) (v128.const i32x4 -1 7 0x80000000 0))
               (i32x4.mul (local.get 4) (v128.const i32x4 3 0 1 -2)))
      (i32.add (i32x4.extract_lane 1 (local.get 3)) (i32x4.extract_lane 3 (local.get 5)))))
  (func (export "sum") (param i32) (result v128) (local v128 v128 v128 v128)
    (local.set 1 (v128.const i32x4 0 1 2 3))
    (block (loop
      (br_if 1 (i32.eqz (local.get 0)))
      (v128.store (i32.const 16) (local.get 2))
      (local.set 2 (i32x4.add (local.get 2)
        (i32x4.mul (local.get 1) (v128.load32_splat (i32.const 16)))))
      (local.set 3 (i32x4.add (local.get 3) (v128.load (i32.const 16))))
      (local.set 1 (i32x4.add (local.get 1) (local.tee 4 (v128.const i32x4 4 4 4 4))))
      (local.set 4 (i32x4.add (local.get 4) (local.get 4)))
      (local.set 4 (v128.const i32x4 9 8 7 6))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br 0)))
    (i32x4.add (local.get 4) (i32x4.add (local.get 2) (local.get 3))))
  (func (export "maybe") (param i32 v128) (result v128) (local v128)
    (if (local.get 0) (then (local.set 2 (v128.const i32x4 1 2 3 4))))
    (i32x4.add (local.get 1) (local.get 2)))
  (func (export "mulsub") (param v128 v128) (result v128) (local v128)
    (local.set 2 (i32x4.mul (local.get 0) (local.get 1)))
    (i32x4.add (local.get 2) (i32x4.sub (local.get 2) (local.get 1))))
  (func (export "masks") (param v128 v128) (result v128) (local v128)
    (local.set 2 (v128.and (i32x4.sub (local.get 0) (local.get 1))
      (local.tee 2 (v128.const i32x4 255 0xFFFF 0xFFFFFFFF 0x80000001))))
    (v128.xor (local.get 2) (v128.and (i32x4.mul (i32x4.add (local.get 0) (local.get 1))
      (local.get 1)) (v128.const i32x4 0xFFFFFFFF 0 1 0x7FFFFFFF)))))"""


def _instance(text: str, lanes: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Instance, str]:
    monkeypatch.setattr(FunctionCompiler, "vector_lanes", lanes)
    module = parse_module(text)
    validate_module(module)
    compiled: CompiledModule = compile_module(module)
    compiled.compile_all()  # now, while ``vector_lanes`` is as asked (else: at first call)
    source = "".join(compiled.source(i) for i in compiled.defined_indices())
    return compiled.instantiate({}), source


def _vector(rng: random.Random) -> int:
    return sum(rng.choice([*EDGES, rng.getrandbits(32)]) << (32 * k) for k in range(4))


def test_a_chain_of_i32x4_instructions_on_lanes_gives_the_whole_int_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    on, source = _instance(CHAIN, True, monkeypatch)
    off, plain = _instance(CHAIN, False, monkeypatch)
    assert "l3_0" in source and "l3_0" not in plain  # the locals did become lanes
    rng = random.Random(15)
    for _ in range(300):
        args = (_vector(rng), _vector(rng), rng.choice([*EDGES, rng.getrandbits(32)]))
        assert on.invoke("chain", *args) == off.invoke("chain", *args)
        assert on.invoke("mulsub", *args[:2]) == off.invoke("mulsub", *args[:2])
        assert on.invoke("masks", *args[:2]) == off.invoke("masks", *args[:2])
    for flag in (0, 1):  # a constant set on one path only: the local starts at zero
        assert on.invoke("maybe", flag, 5 << 32) == off.invoke("maybe", flag, 5 << 32)
    for count in (0, 1, 2, 7, 100):
        assert on.invoke("sum", count) == off.invoke("sum", count)


def test_other_vector_shapes_keep_whole_ints() -> None:
    def body(*names: str) -> list[Instr]:
        return [Instr(op.BY_NAME[name], None, 0) for name in names]

    assert lane_mode(body("v128.const", "i32x4.add", "v128.and", "i8x16.shuffle"))
    assert not lane_mode(body("v128.const", "v128.and"))  # nothing to gain: no arithmetic
    assert not lane_mode(body("i32x4.add", "i8x16.add"))
    assert not lane_mode(body("i32x4.mul", "f32x4.add"))


@pytest.mark.parametrize("name", ["add", "sub", "mul", "and", "or", "xor", "andnot"])
def test_one_lane_of_each_binary_instruction_wraps_like_the_lane(name: str) -> None:
    exact = _FOLD[name]  # checked against the plain Python operators below
    assert exact(6, 3) == {"add": 9, "sub": 3, "mul": 18, "and": 2, "or": 7, "xor": 5}.get(name, 4)
    rng = random.Random(name)
    values = EDGES + [rng.getrandbits(32) for _ in range(6)]
    for a in values:
        for b in values:
            want = exact(a, b) & M32
            # Variables, and each side a constant (folded at compile time).
            for x, y in (("a", "b"), (str(a), "b"), ("a", str(b)), (str(a), str(b))):
                got = eval(lane_binary(name, x, y), {"a": a, "b": b})
                assert got == want, (name, x, y, a, b)


def test_a_shuffle_builds_each_lane_from_the_bytes_it_picks() -> None:
    rng = random.Random(4)
    for _ in range(200):
        first, second = _vector(rng), _vector(rng)
        indices = tuple(rng.choice([rng.randrange(32), 0, 16, 4, 20]) for _ in range(16))
        data = first.to_bytes(16, "little") + second.to_bytes(16, "little")
        want = struct.unpack("<4I", bytes(data[i] for i in indices))
        names = {"x": first, "y": second}
        names |= {f"x{k}": first >> (32 * k) & M32 for k in range(4)}
        names |= {f"y{k}": second >> (32 * k) & M32 for k in range(4)}
        x_lanes, y_lanes = tuple(f"x{k}" for k in range(4)), tuple(f"y{k}" for k in range(4))
        # Each operand as one int, as four lane names, or as a literal.
        for sources in (("x", "y"), (x_lanes, "y"), (x_lanes, y_lanes), (str(first), y_lanes)):
            lanes = shuffle_lanes(sources, indices)
            assert tuple(eval(lane, names) for lane in lanes) == want, (sources, indices)
