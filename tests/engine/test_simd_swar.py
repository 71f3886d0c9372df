"""SIMD integer lanes computed on the whole int (comparisons, min/max, abs, add, sub, mul,
shifts, all_true) and constant shuffles lowered to masks and shifts agree, instruction by
instruction, with the same operation done lane by lane, on edge lanes and random vectors.

These run compiled code (``simd_lowering`` inlines some of them, ``simd`` helpers do the
rest), so both the templates and the helpers are checked; the spec suite checks fewer
values of each."""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable

import pytest

from guestproc.engine import compile_module, parse_module
from guestproc.engine.instance import Instance
from guestproc.engine.simd import shuffle
from guestproc.engine.simd_lowering import MAX_SHUFFLE_TERMS, shuffle_groups
from guestproc.engine.validator import validate_module

SHAPES = {"i8x16": 8, "i16x8": 16, "i32x4": 32, "i64x2": 64}
FORMATS = {8: "16B", 16: "8H", 32: "4I", 64: "2Q"}

Lanewise = Callable[[int, int, int], int]  # (x, y, bits) on unsigned lanes -> lane


def _signed(x: int, bits: int) -> int:
    return x - (1 << bits) if x >> (bits - 1) else x


def _test(holds: Callable[[int, int], bool]) -> Lanewise:
    return lambda x, y, bits: (1 << bits) - 1 if holds(x, y) else 0


def _signed_test(holds: Callable[[int, int], bool]) -> Lanewise:
    return lambda x, y, bits: (1 << bits) - 1 if holds(_signed(x, bits), _signed(y, bits)) else 0


BINARY: dict[str, Lanewise] = {
    "eq": _test(lambda x, y: x == y),
    "ne": _test(lambda x, y: x != y),
    "lt_u": _test(lambda x, y: x < y),
    "gt_u": _test(lambda x, y: x > y),
    "le_u": _test(lambda x, y: x <= y),
    "ge_u": _test(lambda x, y: x >= y),
    "lt_s": _signed_test(lambda x, y: x < y),
    "gt_s": _signed_test(lambda x, y: x > y),
    "le_s": _signed_test(lambda x, y: x <= y),
    "ge_s": _signed_test(lambda x, y: x >= y),
    "min_u": lambda x, y, bits: min(x, y),
    "max_u": lambda x, y, bits: max(x, y),
    "min_s": lambda x, y, bits: min(x, y, key=lambda v: _signed(v, bits)),
    "max_s": lambda x, y, bits: max(x, y, key=lambda v: _signed(v, bits)),
    "add": lambda x, y, bits: (x + y) % (1 << bits),
    "sub": lambda x, y, bits: (x - y) % (1 << bits),
    "mul": lambda x, y, bits: (x * y) % (1 << bits),
}
NOT_IN_WASM = {("i64x2", op) for op in ("lt_u", "gt_u", "le_u", "ge_u")} | {
    ("i64x2", op) for op in ("min_u", "max_u", "min_s", "max_s")
}
NOT_IN_WASM |= {("i8x16", "mul")}


def _instructions() -> list[tuple[str, str]]:
    return [
        (shape, name) for shape in SHAPES for name in BINARY if (shape, name) not in NOT_IN_WASM
    ]


def _lanes(value: int, bits: int) -> tuple[int, ...]:
    return struct.unpack("<" + FORMATS[bits], value.to_bytes(16, "little"))


def _join(values: list[int], bits: int) -> int:
    return int.from_bytes(struct.pack("<" + FORMATS[bits], *values), "little")


def _vectors(bits: int, count: int = 60) -> list[int]:
    """Vectors whose lanes are edge values (0, 1, the sign boundary, all ones) or random."""
    rng = random.Random(bits)
    top = 1 << (bits - 1)
    edges = [0, 1, top - 1, top, top + 1, (1 << bits) - 1, (1 << bits) - 2]
    lanes = 128 // bits
    vectors = [rng.getrandbits(128) for _ in range(count // 2)]
    for _ in range(count - len(vectors)):
        vectors.append(_join([rng.choice(edges) for _ in range(lanes)], bits))
    return vectors


def _instance(functions: list[str]) -> Instance:
    module = parse_module("(module " + "\n".join(functions) + ")")
    validate_module(module)
    return compile_module(module).instantiate({})


@pytest.fixture(scope="module")
def binary_ops() -> Instance:
    return _instance(
        [
            f'(func (export "{shape}.{name}") (param v128 v128) (result v128) '
            f"({shape}.{name} (local.get 0) (local.get 1)))"
            for shape, name in _instructions()
        ]
    )


@pytest.mark.parametrize(("shape", "name"), _instructions(), ids="{0[0]}.{0[1]}".format)
def test_binary_integer_lanes_agree_with_lane_by_lane(
    binary_ops: Instance, shape: str, name: str
) -> None:
    bits = SHAPES[shape]
    vectors = _vectors(bits)
    reference = BINARY[name]
    # Every pair of a few, and each vector with itself (equal lanes) and its neighbour.
    pairs = [(a, b) for a in vectors[:12] for b in vectors[-12:]]
    pairs += [(a, a) for a in vectors] + list(itertools.pairwise(vectors))
    for a, b in pairs:
        want = _join(
            [reference(x, y, bits) for x, y in zip(_lanes(a, bits), _lanes(b, bits), strict=True)],
            bits,
        )
        assert binary_ops.invoke(f"{shape}.{name}", a, b) == [want], (hex(a), hex(b))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_abs_shr_s_and_all_true_agree_with_lane_by_lane(shape: str) -> None:
    bits = SHAPES[shape]
    vm = _instance(
        [
            f'(func (export "abs") (param v128) (result v128) ({shape}.abs (local.get 0)))',
            f'(func (export "shr_s") (param v128 i32) (result v128) '
            f"({shape}.shr_s (local.get 0) (local.get 1)))",
            f'(func (export "all_true") (param v128) (result i32) '
            f"({shape}.all_true (local.get 0)))",
        ]
    )
    for a in _vectors(bits):
        lanes = _lanes(a, bits)
        signed = [_signed(x, bits) for x in lanes]
        assert vm.invoke("abs", a) == [_join([abs(x) % (1 << bits) for x in signed], bits)]
        assert vm.invoke("all_true", a) == [int(all(lanes))]
        for count in (0, 1, bits - 1, bits, bits + 3):
            want = _join([(x >> (count % bits)) % (1 << bits) for x in signed], bits)
            assert vm.invoke("shr_s", a, count) == [want], (hex(a), count)


SHUFFLES = [
    (16, 1, 2, 3, 17, 5, 6, 7, 18, 9, 10, 11, 19, 13, 14, 15),  # widen 4 bytes to i32 lanes
    tuple(range(15, 31)),  # a byte shift across both operands
    tuple(range(16)),  # the first operand
    tuple(range(16, 32)),  # the second
    (8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0),  # many groups: the helper
    (31, 0, 16, 15, *[1] * 12),
]


def test_constant_shuffles_agree_with_picking_bytes() -> None:
    rng = random.Random(7)
    patterns = SHUFFLES + [tuple(rng.randrange(32) for _ in range(16)) for _ in range(20)]
    patterns += [tuple(rng.randrange(16) + 16 * (i > 9) for i in range(16)) for _ in range(20)]
    assert any(len(shuffle_groups(p)) <= MAX_SHUFFLE_TERMS for p in patterns)
    assert any(len(shuffle_groups(p)) > MAX_SHUFFLE_TERMS for p in patterns)
    functions = []
    for index, pattern in enumerate(patterns):
        lanes = " ".join(map(str, pattern))
        functions.append(
            f'(func (export "s{index}") (param v128 v128) (result v128) '
            f"(i8x16.shuffle {lanes} (local.get 0) (local.get 1)))"
        )
        functions.append(  # a constant zero operand drops out of the expression
            f'(func (export "z{index}") (param v128) (result v128) '
            f"(i8x16.shuffle {lanes} (v128.const i64x2 0 0) (local.get 0)))"
        )
    vm = _instance(functions)
    for a, b in zip(_vectors(8, 8), _vectors(16, 8), strict=True):
        for index, pattern in enumerate(patterns):
            assert vm.invoke(f"s{index}", a, b) == [shuffle(a, b, pattern)], pattern
            assert vm.invoke(f"z{index}", b) == [shuffle(0, b, pattern)], pattern
