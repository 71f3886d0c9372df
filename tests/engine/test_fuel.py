"""Fuel metering: exact counts, the same counts with and without the charge shortcuts, budgets
larger than the counter's window, and deterministic stops.

The shortcuts (``guestproc.engine.fuelplan``) move charges across blocks and branches; the
plain scheme charges every basic block when it ends. Both must count exactly the same on any
run that finishes, so each program here runs under both and the totals are compared.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from guestproc.engine import decode_module, parse_module, validate_module
from guestproc.engine import fuel as fuel_module
from guestproc.engine.errors import Trap, TrapCode
from guestproc.engine.instance import CompiledModule, EngineLimits, Instance
from guestproc.engine.runtime import Memory
from guestproc.wasi.environment import WasiEnvironment, WasiExit
from tests.framework.paths import bench_dir

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "wasm"
OWN_BENCH = REPO / "benchmarks" / "engine" / "wasm"

# (module, export or None for _start, arguments): small runs of varied control flow.
PROGRAMS = [
    (OWN_BENCH / "mandelbrot.wasm", None, ["24"]),
    (OWN_BENCH / "interp.wasm", None, ["800"]),
    (OWN_BENCH / "quicksort.wasm", None, ["300"]),
    (OWN_BENCH / "strings.wasm", None, ["600"]),
    (OWN_BENCH / "i64math.wasm", None, ["300"]),
    (OWN_BENCH / "bintrees.wasm", None, ["5"]),
    (OWN_BENCH / "particles.wasm", None, ["20"]),
    (OWN_BENCH / "sha256.wasm", None, ["2000"]),
    (OWN_BENCH / "wat_tak.wasm", "tak", ["12", "8", "4"]),
    (OWN_BENCH / "wat_orbit.wasm", "orbit", ["2000"]),
    (FIXTURES / "switch_dispatch.wasm", None, []),
    (FIXTURES / "qsort_fnptr.wasm", None, []),
    (FIXTURES / "floats.wasm", None, []),
]


def _load(path: Path, fuel: bool, shortcuts: bool = True) -> CompiledModule:
    module = decode_module(path.read_bytes())
    validate_module(module)
    return CompiledModule(module, fuel=fuel, fuel_shortcuts=shortcuts)


def _run(
    compiled: CompiledModule, export: str | None, args: list[str], budget: int | None
) -> tuple[str, Instance]:
    """Run to the end; the output (stdout, results or trap) and the instance."""
    out = io.BytesIO()

    def write_console(_fd: int, data: bytes) -> None:
        out.write(data)

    argv = [b"prog", *(a.encode() for a in args)]
    wasi = WasiEnvironment(argv, [], write_console=write_console, read_stdin=lambda _n: b"")
    limits = EngineLimits(memory_pages=2048, fuel=budget)
    instance = compiled.instantiate(wasi.imports(), limits)
    memory = instance.exports.get("memory")
    if isinstance(memory, Memory):
        wasi.bind(memory, instance.pay_bytes)
    try:
        if export is None:
            instance.invoke("_start")
            ending = "returned"
        else:
            ending = repr(instance.invoke(export, *(int(a) for a in args)))
    except WasiExit as exc:
        ending = f"exit {exc.code}"
    except Trap as exc:
        ending = f"trap {exc.code.name}"
    return out.getvalue().decode() + ending, instance


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p[0].stem)
def test_shortcuts_count_exactly_what_the_plain_scheme_counts(
    program: tuple[Path, str | None, list[str]],
) -> None:
    path, export, args = program
    unmetered, _ = _run(_load(path, fuel=False), export, args, None)
    fast, fast_instance = _run(_load(path, fuel=True), export, args, 1 << 40)
    plain, plain_instance = _run(_load(path, fuel=True, shortcuts=False), export, args, 1 << 40)
    assert fast == plain == unmetered
    assert "trap" not in fast
    assert fast_instance.fuel_used == plain_instance.fuel_used > 1000


def test_unmetered_code_does_not_mention_fuel() -> None:
    compiled = _load(OWN_BENCH / "interp.wasm", fuel=False)
    for index in range(compiled.imported_functions, len(compiled.info.func_types)):
        assert "FUEL" not in compiled.source(index)
    bulk = CompiledModule(parse_module(BULK), fuel=False)
    for index in bulk.defined_indices():
        assert "FUEL" not in bulk.source(index) and "PAY" not in bulk.source(index)


@pytest.mark.skipif(bench_dir() is None, reason="the shared bench folder is not present")
def test_budgets_beyond_the_counter_window_count_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = bench_dir()
    assert bench is not None
    fib = bench / "wasm" / "fib.wasm"
    wide, wide_instance = _run(_load(fib, fuel=True), None, ["15"], 1 << 60)
    # A tiny window makes the code refill the counter thousands of times.
    monkeypatch.setattr(fuel_module, "FUEL_WINDOW", 100)
    narrow, narrow_instance = _run(_load(fib, fuel=True), None, ["15"], 1 << 60)
    assert wide == narrow == "fib(15) = 610\nreturned"
    assert wide_instance.fuel_used == narrow_instance.fuel_used


@pytest.mark.parametrize("window", [100, fuel_module.FUEL_WINDOW])
def test_a_spent_budget_stops_the_same_way_every_time(
    monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    monkeypatch.setattr(fuel_module, "FUEL_WINDOW", window)
    path = OWN_BENCH / "mandelbrot.wasm"
    compiled = _load(path, fuel=True)
    _, full = _run(compiled, None, ["24"], 1 << 40)
    needed = full.fuel_used
    enough, _ = _run(compiled, None, ["24"], needed + 1000)
    assert "trap" not in enough
    stops = [_run(compiled, None, ["24"], needed // 2) for _ in range(2)]
    for output, instance in stops:
        assert output.endswith("trap OUT_OF_FUEL")
        assert instance.fuel_used == needed // 2
    assert stops[0][0] == stops[1][0]


def test_a_trapped_instance_stays_out_of_fuel() -> None:
    compiled = _load(OWN_BENCH / "wat_tak.wasm", fuel=True)
    output, instance = _run(compiled, "tak", ["18", "12", "6"], 5000)
    assert output == "trap OUT_OF_FUEL"
    with pytest.raises(Trap) as info:
        instance.invoke("tak", 1, 2, 3)
    assert info.value.code is TrapCode.OUT_OF_FUEL


def test_a_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        fuel_module.FuelTank(-1)


# -- bulk work pays by its length ------------------------------------------------------------

BULK = """
(module
  (memory (export "memory") 2)
  (table $t 64 funcref)
  (data $d "@DATA@")
  (elem $e func $f $f $f $f $f $f $f $f $f $f $f $f $f $f $f $f)
  (func $f)
  (func (export "memory.fill") (param i32) (memory.fill (i32.const 8) (i32.const 0xAA) (local.get 0)))
  (func (export "memory.copy") (param i32) (memory.copy (i32.const 16) (i32.const 0) (local.get 0)))
  (func (export "memory.init") (param i32) (memory.init $d (i32.const 4) (i32.const 0) (local.get 0)))
  (func (export "table.fill") (param i32) (table.fill $t (i32.const 1) (ref.func $f) (local.get 0)))
  (func (export "table.copy") (param i32) (table.copy $t $t (i32.const 8) (i32.const 0) (local.get 0)))
  (func (export "table.init") (param i32) (table.init $t $e (i32.const 2) (i32.const 0) (local.get 0)))
  (func (export "memory.grow") (param i32) (drop (memory.grow (local.get 0))))
  (func (export "table.grow") (param i32) (drop (table.grow $t (ref.null func) (local.get 0))))
)
""".replace("@DATA@", "0123456789abcdef" * 32)

# (export, a short length, a long one, what one unit pays for)
BULK_OPS = [
    ("memory.fill", 0, 65536, fuel_module.BYTES_PER_UNIT),
    ("memory.copy", 0, 65536, fuel_module.BYTES_PER_UNIT),
    ("memory.init", 0, 512, fuel_module.BYTES_PER_UNIT),
    ("table.fill", 0, 63, fuel_module.ELEMENTS_PER_UNIT),
    ("table.copy", 0, 56, fuel_module.ELEMENTS_PER_UNIT),
    ("table.init", 0, 16, fuel_module.ELEMENTS_PER_UNIT),
    ("table.grow", 0, 1000, fuel_module.ELEMENTS_PER_UNIT),
]


def _bulk_instance(budget: int, shortcuts: bool = True) -> Instance:
    module = parse_module(BULK)
    validate_module(module)
    compiled = CompiledModule(module, fuel=True, fuel_shortcuts=shortcuts)
    return compiled.instantiate({}, EngineLimits(memory_pages=8, fuel=budget))


def _state(instance: Instance) -> tuple[bytes, list[object]]:
    return bytes(instance.memories[0].data), list(instance.tables[0].elements)


def _fuel_for(export: str, length: int) -> int:
    instance = _bulk_instance(1 << 40)
    instance.invoke(export, length)
    return instance.fuel_used


@pytest.mark.parametrize(("export", "short", "long", "per_unit"), BULK_OPS, ids=lambda v: str(v))
def test_each_bulk_operation_pays_for_its_length(
    export: str, short: int, long: int, per_unit: int
) -> None:
    assert _fuel_for(export, long) - _fuel_for(export, short) == long // per_unit > 0


def test_memory_grow_pays_for_its_pages() -> None:
    one, three = _fuel_for("memory.grow", 1), _fuel_for("memory.grow", 3)
    assert three - one == 2 * fuel_module.UNITS_PER_PAGE
    refused = _fuel_for("memory.grow", 100)  # past the limit: -1, nothing to pay for
    assert refused == _fuel_for("memory.grow", 0) < one


def test_the_fuel_a_fill_uses_grows_with_its_length() -> None:
    used = [_fuel_for("memory.fill", n) for n in (0, 1000, 10_000, 100_000)]
    assert used == sorted(used) and len(set(used)) == len(used)
    assert used[-1] - used[0] == 100_000 // fuel_module.BYTES_PER_UNIT


@pytest.mark.parametrize(
    ("export", "length"),
    [(op, long) for op, _, long, _ in BULK_OPS if long >= 32] + [("memory.grow", 3)],
    ids=lambda v: str(v),
)
def test_an_operation_the_budget_cannot_pay_for_traps_before_it_acts(
    export: str, length: int
) -> None:
    # Enough for the instructions and the fixed part of the charge, not for the length.
    needed = _fuel_for(export, length)
    instance = _bulk_instance(needed - 2)
    before = _state(instance)
    with pytest.raises(Trap) as info:
        instance.invoke(export, length)
    assert info.value.code is TrapCode.OUT_OF_FUEL
    assert _state(instance) == before
    assert instance.fuel_used == needed - 2
    assert _bulk_instance(needed).invoke(export, length) == []


def test_out_of_bounds_is_found_before_anything_is_paid() -> None:
    instance = _bulk_instance(1000)
    with pytest.raises(Trap) as info:
        instance.invoke("memory.fill", 1 << 30)  # would cost far more than the budget
    assert info.value.code is TrapCode.OUT_OF_BOUNDS_MEMORY
    assert instance.fuel_used < 20


LOOPS = """
(module
  (memory 4)
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $sum i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.and (local.get $i) (i32.const 1))
          (then (memory.fill (i32.const 0) (local.get $i) (i32.mul (local.get $i) (i32.const 977))))
          (else (memory.copy (i32.const 70000) (i32.const 3) (i32.mul (local.get $i) (i32.const 1311)))))
        (br_if $again (i32.eqz (i32.and (local.get $i) (i32.const 7)))
          (local.tee $i (i32.add (local.get $i) (i32.const 1))))
        (drop (memory.grow (i32.and (local.get $i) (i32.const 1))))
        (local.set $sum (i32.add (local.get $sum) (i32.load8_u (local.get $i))))
        (br $again)))
    (local.get $sum)))
"""


def test_bulk_charges_count_the_same_under_both_schemes() -> None:
    totals = []
    for shortcuts in (True, False):
        module = parse_module(LOOPS)
        validate_module(module)
        compiled = CompiledModule(module, fuel=True, fuel_shortcuts=shortcuts)
        instance = compiled.instantiate({}, EngineLimits(memory_pages=64, fuel=1 << 40))
        totals.append((instance.invoke("run", 40), instance.fuel_used))
    assert totals[0] == totals[1]
    assert totals[0][1] > 40 * 100  # the fills and copies paid far more than instructions


WASI_CALLS = """
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "random") (param i32) (result i32) (call $random (i32.const 0) (local.get 0)))
  ;; iovec 0 at 65536: 12 bytes from address 0; the others empty
  (func (export "write") (param i32) (result i32)
    (i32.store (i32.const 65536) (i32.const 0))
    (i32.store (i32.const 65540) (i32.const 12))
    (call $write (i32.const 1) (i32.const 65536) (local.get 0) (i32.const 65532))))
"""


def _wasi_instance(budget: int) -> tuple[Instance, list[bytes], list[int]]:
    written: list[bytes] = []
    asked: list[int] = []

    def random_bytes(n: int) -> bytes:
        asked.append(n)
        return b"\x5a" * n

    wasi = WasiEnvironment(
        [b"p"],
        [],
        write_console=lambda _fd, data: written.append(data),
        read_stdin=lambda _n: b"",
        random_bytes=random_bytes,
    )
    module = parse_module(WASI_CALLS)
    validate_module(module)
    instance = CompiledModule(module, fuel=True).instantiate(
        wasi.imports(), EngineLimits(fuel=budget)
    )
    memory = instance.exports["memory"]
    assert isinstance(memory, Memory)
    wasi.bind(memory, instance.pay_bytes)
    return instance, written, asked


@pytest.mark.parametrize(("export", "small", "large"), [("random", 16, 60000), ("write", 1, 2000)])
def test_wasi_calls_pay_for_what_they_move_before_moving_it(
    export: str, small: int, large: int
) -> None:
    used = []
    for length in (small, large):
        instance, _, _ = _wasi_instance(1 << 40)
        assert instance.invoke(export, length) == [0]
        used.append(instance.fuel_used)
    assert used[1] - used[0] > (large - small) // 16
    instance, written, asked = _wasi_instance(used[1] - 1)
    before = bytes(instance.memories[0].data)
    with pytest.raises(Trap) as info:
        instance.invoke(export, large)
    assert info.value.code is TrapCode.OUT_OF_FUEL
    assert (written, asked) == ([], [])
    if export == "random":
        assert bytes(instance.memories[0].data) == before


def test_bulk_work_pays_by_its_length_in_the_flat_lowering_too() -> None:
    """100 nested ifs are past CPython's indentation limit: the function is flattened
    (``engine.flat``), and its memory.fill still pays for its length."""
    depth = 100
    nested = (
        '(module (memory 2) (func (export "fill") (param i32)'
        + " (if (i32.const 1) (then" * depth
        + " (memory.fill (i32.const 8) (i32.const 0xAA) (local.get 0))"
        + "))" * depth
        + "))"
    )
    module = parse_module(nested)
    validate_module(module)
    compiled = CompiledModule(module, fuel=True)
    assert "_b = " in compiled.source(0)  # the dispatch loop of the flat lowering

    def used(length: int) -> int:
        instance = compiled.instantiate({}, EngineLimits(memory_pages=8, fuel=1 << 40))
        instance.invoke("fill", length)
        return instance.fuel_used

    assert used(65536) - used(0) == 65536 // fuel_module.BYTES_PER_UNIT
