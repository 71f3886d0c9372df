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

from guestproc.engine import decode_module, validate_module
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
        wasi.bind(memory)
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
