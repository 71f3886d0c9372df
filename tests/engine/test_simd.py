"""SIMD: the v128 representation, the lanes that are easy to get wrong, and the edges of the
binary format, checked without the spec suite (which ``tests/test_spec_suite.py`` runs)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from guestproc.engine import compile_module, parse_module
from guestproc.engine import opcodes as op
from guestproc.engine.decoder import decode_module
from guestproc.engine.errors import Trap, TrapCode, ValidationError
from guestproc.engine.instance import Instance
from guestproc.engine.simd_opcodes import SIGNATURES
from guestproc.engine.snapshot import capture, install
from guestproc.engine.validator import validate_module


def instance(text: str, metered: bool = False) -> Instance:
    module = parse_module(text)
    validate_module(module)
    return compile_module(module, fuel=metered).instantiate({})


def lanes(value: int, fmt: str) -> tuple[Any, ...]:
    return struct.unpack("<" + fmt, value.to_bytes(16, "little"))


def test_every_simd_instruction_of_wasm_2_has_an_opcode() -> None:
    assert len(SIGNATURES) == 236
    assert all(code >> 8 == 0xFD for code in SIGNATURES)


# --- representation ---------------------------------------------------------------------------


def test_a_v128_is_an_unsigned_int_with_lane_0_in_the_low_bits() -> None:
    vm = instance(
        """(module (memory 1)
        (func (export "const") (result v128) (v128.const i32x4 1 2 3 -1))
        (func (export "load") (result v128)
          (i32.store (i32.const 0) (i32.const 0x04030201)) (v128.load (i32.const 0)))
        (func (export "store") (param v128)
          (v128.store offset=16 (i32.const 0) (local.get 0)))
        (func (export "byte") (param i32) (result i32) (i32.load8_u (local.get 0)))
        (func (export "lane") (param v128) (result i32) (i8x16.extract_lane_u 1 (local.get 0))))"""
    )
    (const,) = vm.invoke("const")
    assert const == 1 | 2 << 32 | 3 << 64 | 0xFFFFFFFF << 96
    assert vm.invoke("load") == [0x04030201]
    vm.invoke("store", 0x0F0E0D0C_0B0A0908_07060504_03020100)
    assert [vm.invoke("byte", 16 + i)[0] for i in range(16)] == list(range(16))
    assert vm.invoke("lane", 0xAB00) == [0xAB]


def test_v128_locals_start_at_zero_and_select_picks_a_whole_vector() -> None:
    vm = instance(
        """(module (func (export "f") (param i32) (result v128) (local v128)
        (select (local.get 1) (v128.const i64x2 -1 -1) (local.get 0))))"""
    )
    assert vm.invoke("f", 1) == [0]
    assert vm.invoke("f", 0) == [(1 << 128) - 1]


def test_mutable_v128_globals_travel_in_snapshots_as_16_bytes() -> None:
    text = """(module (global $g (mut v128) (v128.const i8x16 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0))
      (func $start (global.set $g (v128.const i32x4 1 2 3 0x80000000)))
      (start $start)
      (func (export "g") (result v128) (global.get $g)))"""
    started = instance(text)
    module = parse_module(text)
    validate_module(module)
    fresh = compile_module(module).instantiate({}, run_start=False)
    state = capture(started)
    assert state["globals"] == [[0, struct.pack("<4I", 1, 2, 3, 0x80000000)]]
    install(fresh, state)
    assert fresh.invoke("g") == started.invoke("g")


# --- tricky lanes -------------------------------------------------------------------------------

F32_CANONICAL_NAN = 0x7FC00000
F32_SIGNALLING_NAN = 0x7FA00001  # quiet bit clear, payload 0x200001


@pytest.mark.parametrize("metered", [False, True], ids=["plain", "metered"])
def test_float_lanes_follow_the_nan_rules(metered: bool) -> None:
    vm = instance(
        """(module
        (func (export "min") (param v128 v128) (result v128) (f32x4.min (local.get 0) (local.get 1)))
        (func (export "add") (param v128 v128) (result v128) (f32x4.add (local.get 0) (local.get 1)))
        (func (export "neg") (param v128) (result v128) (f32x4.neg (local.get 0)))
        (func (export "pmax") (param v128 v128) (result v128) (f32x4.pmax (local.get 0) (local.get 1))))""",
        metered,
    )
    nan = struct.unpack("<I", struct.pack("<I", F32_SIGNALLING_NAN))[0]
    a = int.from_bytes(struct.pack("<4I", nan, 0x3F800000, 0x80000000, 0), "little")
    b = int.from_bytes(struct.pack("<4I", 0x3F800000, nan, 0, 0x80000000), "little")
    (low,) = vm.invoke("min", a, b)
    # min with a NaN gives the canonical NaN; min(-0, +0) is -0 in either order.
    assert lanes(low, "4I") == (F32_CANONICAL_NAN, F32_CANONICAL_NAN, 0x80000000, 0x80000000)
    (total,) = vm.invoke("add", a, b)
    added = lanes(total, "4I")
    # Arithmetic on a signalling NaN quietens it (an arithmetic NaN: quiet bit set).
    assert added[0] & 0x7FC00000 == 0x7FC00000 and added[1] & 0x7FC00000 == 0x7FC00000
    # neg flips the sign bit only, even of a signalling NaN.
    (negated,) = vm.invoke("neg", a)
    assert lanes(negated, "4I")[0] == F32_SIGNALLING_NAN | 0x80000000
    # pmax is `a < b ? b : a`: a NaN in a is kept bit for bit, one in b never picked.
    (picked,) = vm.invoke("pmax", a, b)
    assert lanes(picked, "4I") == (F32_SIGNALLING_NAN, 0x3F800000, 0x80000000, 0)


def test_integer_lanes_saturate_where_asked_and_wrap_elsewhere() -> None:
    vm = instance(
        """(module
        (func (export "add_sat_s") (param v128 v128) (result v128)
          (i8x16.add_sat_s (local.get 0) (local.get 1)))
        (func (export "sub_sat_u") (param v128 v128) (result v128)
          (i16x8.sub_sat_u (local.get 0) (local.get 1)))
        (func (export "add") (param v128 v128) (result v128)
          (i8x16.add (local.get 0) (local.get 1)))
        (func (export "narrow") (param v128 v128) (result v128)
          (i8x16.narrow_i16x8_u (local.get 0) (local.get 1)))
        (func (export "q15") (param v128 v128) (result v128)
          (i16x8.q15mulr_sat_s (local.get 0) (local.get 1))))"""
    )

    def pack(fmt: str, *values: int) -> int:
        return int.from_bytes(struct.pack("<" + fmt, *values), "little")

    a = pack("16b", 127, -128, 100, -100, *range(12))
    b = pack("16b", 1, -1, 100, -100, *range(12))
    (saturated,) = vm.invoke("add_sat_s", a, b)
    assert lanes(saturated, "16b")[:4] == (127, -128, 127, -128)
    (wrapped,) = vm.invoke("add", a, b)
    assert lanes(wrapped, "16b")[:4] == (-128, 127, -56, 56)
    (floor,) = vm.invoke("sub_sat_u", pack("8H", 0, 5, *[0] * 6), pack("8H", 1, 3, *[0] * 6))
    assert lanes(floor, "8H")[:2] == (0, 2)
    (narrowed,) = vm.invoke("narrow", pack("8h", -1, 256, 255, 0, 0, 0, 0, 0), 0)
    assert lanes(narrowed, "16B")[:4] == (0, 255, 255, 0)
    (q15,) = vm.invoke("q15", pack("8h", -32768, *[0] * 7), pack("8h", -32768, *[0] * 7))
    assert lanes(q15, "8h")[0] == 32767


def test_shifts_take_the_count_modulo_the_lane_width() -> None:
    vm = instance(
        """(module (func (export "shr_s") (param v128 i32) (result v128)
        (i32x4.shr_s (local.get 0) (local.get 1))))"""
    )
    value = int.from_bytes(struct.pack("<4i", -16, 16, 0, 0), "little")
    (shifted,) = vm.invoke("shr_s", value, 34)
    assert struct.unpack("<4i", shifted.to_bytes(16, "little"))[:2] == (-4, 4)


def test_swizzle_gives_zero_for_indices_out_of_range() -> None:
    vm = instance(
        """(module (func (export "f") (param v128 v128) (result v128)
        (i8x16.swizzle (local.get 0) (local.get 1))))"""
    )
    data = int.from_bytes(bytes(range(100, 116)), "little")
    indices = int.from_bytes(bytes([15, 16, 255, 0] + [1] * 12), "little")
    (picked,) = vm.invoke("f", data, indices)
    assert picked.to_bytes(16, "little")[:4] == bytes([115, 0, 0, 100])


# --- validation of immediates -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "(i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 32 (local.get 0) (local.get 0))",
        "(i8x16.extract_lane_u 16 (local.get 0)) drop (local.get 0)",
        "(i64x2.replace_lane 2 (local.get 0) (i64.const 0))",
        "(v128.load32_lane 4 (i32.const 0) (local.get 0))",
    ],
)
def test_lane_indices_out_of_range_are_invalid(body: str) -> None:
    module = parse_module(f"(module (memory 1) (func (param v128) (result v128) {body}))")
    with pytest.raises(ValidationError, match="invalid lane index"):
        validate_module(module)


def test_shuffle_indices_up_to_31_pick_from_the_second_operand() -> None:
    vm = instance(
        """(module (func (export "f") (param v128 v128) (result v128)
        (i8x16.shuffle 31 0 16 15 1 1 1 1 1 1 1 1 1 1 1 1 (local.get 0) (local.get 1))))"""
    )
    first = int.from_bytes(bytes(range(16)), "little")
    second = int.from_bytes(bytes(range(16, 32)), "little")
    (shuffled,) = vm.invoke("f", first, second)
    assert shuffled.to_bytes(16, "little")[:4] == bytes([31, 0, 16, 15])


def test_lane_memory_accesses_are_over_aligned_only_when_invalid() -> None:
    module = parse_module(
        "(module (memory 1) (func (param v128) (result v128) "
        "(v128.load16_lane align=4 0 (i32.const 0) (local.get 0))))"
    )
    with pytest.raises(ValidationError, match="alignment must not be larger than natural"):
        validate_module(module)


# --- lane loads and stores ------------------------------------------------------------------------

LANE_MEMORY = """(module (memory 1)
  (func (export "load64_lane") (param i32 v128) (result v128)
    (v128.load64_lane 1 (local.get 0) (local.get 1)))
  (func (export "store32_lane") (param i32 v128) (v128.store32_lane offset=1 3 (local.get 0)
    (local.get 1)))
  (func (export "load") (param i32) (result v128) (v128.load (local.get 0)))
  (func (export "splat") (param i32) (result v128) (v128.load16_splat (local.get 0))))"""


@pytest.mark.parametrize("metered", [False, True], ids=["plain", "metered"])
def test_misaligned_lane_accesses_work_and_out_of_bounds_ones_trap(metered: bool) -> None:
    vm = instance(LANE_MEMORY, metered)
    value = 0xDDCCBBAA << 96
    vm.invoke("store32_lane", 6, value)  # lane 3 at the odd address 7
    assert vm.invoke("load", 0)[0].to_bytes(16, "little")[7:11] == bytes([0xAA, 0xBB, 0xCC, 0xDD])
    (loaded,) = vm.invoke("load64_lane", 3, 0)
    assert loaded >> 64 == int.from_bytes(bytes([0, 0, 0, 0, 0xAA, 0xBB, 0xCC, 0xDD]), "little")
    assert vm.invoke("splat", 65534)[0] == 0
    for export, args in [
        ("load64_lane", (65529, 0)),  # its last byte one past the end
        ("store32_lane", (65532, value)),  # offset=1 takes it over the end
        ("load", (65521,)),
        ("splat", (65535,)),
        ("load", (0xFFFFFFFF,)),
    ]:
        with pytest.raises(Trap) as trapped:
            vm.invoke(export, *args)
        assert trapped.value.code is TrapCode.OUT_OF_BOUNDS_MEMORY, export


# --- the binary format ------------------------------------------------------------------------------


def _all_instructions() -> str:
    """A module that uses every SIMD instruction once (valid, though it is never run)."""
    lines = []
    for code, (params, results) in sorted(SIGNATURES.items()):
        name = op.NAMES[code]
        imm = op.IMMEDIATES[code]
        immediate = {
            op.Imm.NONE: "",
            op.Imm.MEMARG: "offset=3",
            op.Imm.MEMARG_LANE: "offset=5 1",
            op.Imm.LANE: "1",
            op.Imm.V128: "i32x4 1 -2 3 0x80000000",
            op.Imm.SHUFFLE: " ".join(str(i * 2) for i in range(16)),
        }[imm]
        operands = " ".join(
            f"(local.get {['i32', 'i64', 'f32', 'f64', 'v128'].index(p.text)})" for p in params
        )
        drops = " drop" * len(results)
        lines.append(f"({name} {immediate} {operands}){drops}")
    body = "\n".join(lines)
    return f"(module (memory 1) (func (param i32 i64 f32 f64 v128)\n{body}))"


def test_binary_encoding_agrees_with_wabt(tmp_path: Path) -> None:
    """wat2wasm's binary of every SIMD instruction decodes to what our text parser makes."""
    if shutil.which("wat2wasm") is None:
        pytest.skip("wat2wasm (wabt) is not installed")
    source = tmp_path / "all.wat"
    source.write_text(_all_instructions())
    subprocess.run(["wat2wasm", str(source), "-o", str(tmp_path / "all.wasm")], check=True)
    decoded = decode_module((tmp_path / "all.wasm").read_bytes())
    parsed = parse_module(source.read_text())
    validate_module(decoded)
    ours = [(i.op, i.arg) for i in parsed.functions[0].body]
    theirs = [(i.op, i.arg) for i in decoded.functions[0].body]
    assert theirs == ours
