"""``kindling bench engine``: the benchmark suite in benchmarks/engine and its driver.

- Every program of the suite prints expected.json's small output under our engine
  (``guestproc.benchrun`` in-process), and the suite has the documented layout.
- The driver measures real programs end to end in fresh processes (our engine, the Python
  port, pywasm when installed), checks their outputs and marks a mismatch loudly.
- The table and the JSON document carry the documented fields.
- With the recorded toolchain, build.sh reproduces the committed modules byte for byte.
- The SIMD kernels (benchmarks/engine/simd) come in two builds of one source, only one of
  them with SIMD instructions; the driver runs both and reports the SIMD build's time over
  the scalar build's.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guestproc.benchrun import BenchRunError, exported_functions, run_module
from guestproc.engine import decode_module
from guestproc.engine.simd_opcodes import SIMD_CODES
from host.bench.engine import (
    SIZES,
    BenchSuiteError,
    Program,
    Row,
    bench_engine_command,
    default_suite,
    default_suites,
    discover_programs,
    format_table,
    pywasm_installed,
    rows_to_json,
    run_engine_bench,
)
from tests.framework.paths import bench_dir

SUITE = default_suite()
PROGRAMS = discover_programs(SUITE)
SIMD_SUITE = SUITE / "simd"
SIMD_PROGRAMS = discover_programs(SIMD_SUITE)

ROW_FIELDS = {
    "suite",
    "program",
    "size",
    "args",
    "export",
    "repeats",
    "kindling_seconds",
    "port_seconds",
    "ratio",
    "pywasm_seconds",
    "pywasm_ratio",
    "pywasm_status",
    "fuel_seconds",
    "fuel_overhead",
    "fuel_used",
    "load_seconds",
    "ok",
    "problems",
    "kindling_runs",
    "port_runs",
    "pywasm_runs",
    "fuel_runs",
    "simd_seconds",
    "simd_ratio",
    "simd_runs",
}
SUMMARY_FIELDS = {
    "geomean_kindling_over_port",
    "programs_in_geomean",
    "geomean_pywasm_over_kindling",
    "pywasm_programs_in_geomean",
    "pywasm_geomean_is_lower_bound",
    "geomean_fuel_overhead",
    "fuel_programs_in_geomean",
    "geomean_simd_over_scalar",
    "simd_programs_in_geomean",
    "all_ok",
}


def make_suite(root: Path, args: str, expected: str) -> Path:
    """A one-program suite (our tak kernel) with the given arguments and expected output."""
    suite = root / "tiny"
    (suite / "wasm").mkdir(parents=True)
    (suite / "py").mkdir()
    shutil.copy(SUITE / "wasm" / "wat_tak.wasm", suite / "wasm" / "wat_tak.wasm")
    shutil.copy(SUITE / "py" / "wat_tak.py", suite / "py" / "wat_tak.py")
    (suite / "README.md").write_text(
        "# tiny\n\n| program | kind | small arg | large arg |\n|---|---|---|---|\n"
        f"| wat_tak | export `tak(i32, i32, i32) -> i32` | {args} | {args} |\n"
    )
    (suite / "expected.json").write_text(
        json.dumps({"wat_tak/small": expected, "wat_tak/large": expected})
    )
    return suite


# -- the suite ---------------------------------------------------------------------------------


def test_suite_has_the_documented_layout() -> None:
    commands = [p for p in PROGRAMS if (SUITE / "c" / f"{p.name}.c").is_file()]
    kernels = [
        p
        for p in PROGRAMS
        if p.name.startswith("wat_") and (SUITE / "wat" / f"{p.name[4:]}.wat").is_file()
    ]
    assert len(commands) >= 8
    assert len(kernels) >= 3
    assert len(commands) + len(kernels) == len(PROGRAMS)
    expected = json.loads((SUITE / "expected.json").read_text())
    assert set(expected) == {f"{p.name}/{size}" for p in PROGRAMS for size in SIZES}
    for program in PROGRAMS:
        assert program.port == SUITE / "py" / f"{program.name}.py"
        assert all(program.args[size] for size in SIZES), program.name


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_program_prints_its_expected_small_output_under_our_engine(program: Program) -> None:
    module_bytes = program.module.read_bytes()
    exports = exported_functions(module_bytes)
    export = None if "_start" in exports else next(iter(exports))
    run = run_module(module_bytes, program.args["small"], export, name=program.name)
    assert run.ending == ("returned" if export else "exited(0)"), run.stderr
    assert run.output == program.expected["small"]
    assert run.run_seconds > 0
    assert run.compile_seconds > 0


def test_benchrun_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    tak = (SUITE / "wasm" / "wat_tak.wasm").read_bytes()
    with pytest.raises(BenchRunError, match="no exported function 'nope'"):
        run_module(tak, ["1", "2", "3"], "nope")
    with pytest.raises(BenchRunError, match="takes 3 arguments"):
        run_module(tak, ["1"], "tak")
    with pytest.raises(BenchRunError, match="decode failed"):
        run_module(b"\0asm\x01\0\0\0\x99", [])
    done = subprocess.run(
        [sys.executable, "-m", "guestproc.benchrun", str(tmp_path / "missing.wasm")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot read" in done.stderr


def simd_instructions(module: Path) -> int:
    """How many instructions of the module's code are SIMD instructions."""
    decoded = decode_module(module.read_bytes())
    return sum(instr.op in SIMD_CODES for func in decoded.functions for instr in func.body)


def test_simd_kernels_come_in_a_scalar_and_a_simd_build_of_one_source() -> None:
    assert default_suites() == [SUITE, SIMD_SUITE]
    assert len(SIMD_PROGRAMS) >= 3
    assert all(p.simd_module is None for p in PROGRAMS)
    for program in SIMD_PROGRAMS:
        assert (SIMD_SUITE / "c" / f"{program.name}.c").is_file()
        assert program.simd_module == SIMD_SUITE / "wasm" / "simd128" / f"{program.name}.wasm"
        assert simd_instructions(program.module) == 0, program.name
        assert simd_instructions(program.simd_module) > 10, program.name
    expected = json.loads((SIMD_SUITE / "expected.json").read_text())
    assert set(expected) == {f"{p.name}/{size}" for p in SIMD_PROGRAMS for size in SIZES}


@pytest.mark.slow
@pytest.mark.parametrize("program", SIMD_PROGRAMS, ids=lambda p: p.name)
def test_both_builds_of_a_simd_kernel_print_the_ports_output(program: Program) -> None:
    assert program.simd_module is not None
    port = subprocess.run(
        [sys.executable, "-m", "host.bench.engine", "--port-runner", str(program.port), "3"],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = json.loads(port.stdout)["output"]
    assert expected.startswith(f"{program.name}(3) ")
    for module in (program.module, program.simd_module):
        run = run_module(module.read_bytes(), ["3"], None, name=program.name)
        assert (run.ending, run.output) == ("exited(0)", expected), module


def test_a_simd_build_without_a_row_is_refused(tmp_path: Path) -> None:
    suite = make_suite(tmp_path, "12 8 4", "[5]\n")
    (suite / "wasm" / "simd128").mkdir()
    (suite / "wasm" / "simd128" / "other.wasm").write_bytes(b"")
    with pytest.raises(BenchSuiteError, match="no table row for other"):
        discover_programs(suite)


@pytest.mark.slow
def test_driver_runs_the_simd_build_beside_the_scalar_build(tmp_path: Path) -> None:
    suite = tmp_path / "simd"
    for folder in ("wasm", "wasm/simd128", "py"):
        (suite / folder).mkdir(parents=True)
    for part in ("wasm/bytesearch.wasm", "wasm/simd128/bytesearch.wasm", "py/bytesearch.py"):
        shutil.copy(SIMD_SUITE / part, suite / part)
    (suite / "README.md").write_text(
        "| program | small arg | large arg |\n|---|---|---|\n| bytesearch | 2 | 2 |\n"
    )
    output = "bytesearch(2) total 264 hash 00000efa\n"
    (suite / "expected.json").write_text(
        json.dumps({"bytesearch/small": output, "bytesearch/large": output})
    )
    (row,) = run_engine_bench([suite], "small", 2, include_pywasm=False)
    assert row.ok, row.problems
    assert len(row.simd_runs) == len(row.kindling_runs) == 2
    assert row.simd_seconds is not None and row.kindling_seconds is not None
    assert row.simd_ratio == pytest.approx(row.simd_seconds / row.kindling_seconds)
    document = rows_to_json([row])
    assert document["summary"]["geomean_simd_over_scalar"] == pytest.approx(row.simd_ratio)
    assert document["summary"]["simd_programs_in_geomean"] == 1
    table = format_table([row])
    assert "simd s" in table.splitlines()[0] and "simd/scalar" in table.splitlines()[0]
    assert f"{row.simd_ratio:.2f}x" in table.splitlines()[2]
    assert "simd/scalar: that over kindling s" in table

    # A SIMD build that prints something else makes the row fail, loudly.
    (suite / "wasm" / "simd128" / "bytesearch.wasm").write_bytes(
        (SIMD_SUITE / "wasm" / "simd128" / "bytesum.wasm").read_bytes()
    )
    (row,) = run_engine_bench([suite], "small", 1, include_pywasm=False)
    assert not row.ok
    assert any(p.startswith("MISMATCH simd: ") for p in row.problems), row.problems


@pytest.mark.slow
def test_build_reproduces_the_committed_modules() -> None:
    missing = [tool for tool in ("clang", "wasm-ld", "wat2wasm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"needs {', '.join(missing)} (Debian: clang lld wasi-libc "
            "libclang-rt-14-dev-wasm32 wabt)"
        )
    version = subprocess.run(["clang", "--version"], capture_output=True, text=True).stdout
    if not version.startswith("Debian clang version 14."):
        pytest.skip(f"needs Debian clang 14 (the committed modules' compiler), found {version!r}")
    done = subprocess.run(
        ["bash", str(SUITE / "build.sh"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- the driver --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sha256_row() -> Row:
    """One WASI command of our suite, measured end to end (fresh processes, outputs checked)."""
    rows = run_engine_bench([SUITE], "small", 2, include_pywasm=False, programs=["sha256"])
    assert len(rows) == 1
    return rows[0]


@pytest.mark.slow
def test_driver_measures_a_command_against_its_port(sha256_row: Row) -> None:
    row = sha256_row
    assert row.ok, row.problems
    assert row.problems == []
    assert (row.program, row.size, row.export, row.args) == ("sha256", "small", None, ["120000"])
    assert len(row.kindling_runs) == len(row.port_runs) == 2
    assert row.kindling_seconds is not None and row.port_seconds is not None
    assert row.kindling_seconds > 0 and row.port_seconds > 0
    assert row.ratio == pytest.approx(row.kindling_seconds / row.port_seconds)
    assert row.load_seconds is not None and row.load_seconds > 0
    assert row.pywasm_status == "not requested" and row.pywasm_seconds is None


@pytest.mark.slow  # sha256_row is a real benchmark run
def test_table_and_json_have_the_documented_fields(sha256_row: Row) -> None:
    document = json.loads(json.dumps(rows_to_json([sha256_row])))
    assert set(document) == {"rows", "summary"}
    assert set(document["rows"][0]) == ROW_FIELDS
    assert set(document["summary"]) == SUMMARY_FIELDS
    assert document["summary"]["all_ok"] is True
    assert document["summary"]["geomean_kindling_over_port"] == pytest.approx(sha256_row.ratio)

    table = format_table([sha256_row])
    header = table.splitlines()[0].split()
    assert header == [
        "program",
        "kindling",
        "s",
        "port",
        "s",
        "kindling/port",
        "pywasm",
        "s",
        "pywasm/kindling",
        "load",
        "s",
        "ok",
    ]
    line = next(line for line in table.splitlines() if line.startswith("sha256"))
    assert line.split()[-1] == "ok"
    assert f"{sha256_row.ratio:.2f}x" in line
    assert any(line.startswith("geomean") for line in table.splitlines())


def test_driver_calls_a_kernel_export_and_pywasm(tmp_path: Path) -> None:
    suite = make_suite(tmp_path, "12 8 4", "[5]\n")
    rows = run_engine_bench([suite], "small", 1, include_pywasm=None)
    (row,) = rows
    assert row.ok, row.problems
    assert row.export == "tak"
    if not pywasm_installed():
        assert row.pywasm_status == "not installed"
        pytest.skip("pywasm (PyPI) is not installed; the kindling/port half passed")
    assert row.pywasm_status == "measured", row.problems
    assert row.pywasm_seconds is not None and row.kindling_seconds is not None
    assert row.pywasm_ratio == pytest.approx(row.pywasm_seconds / row.kindling_seconds)


def test_pywasm_is_skipped_at_large_size_by_default(tmp_path: Path) -> None:
    suite = make_suite(tmp_path, "12 8 4", "[5]\n")
    (row,) = run_engine_bench([suite], "large", 1)
    assert row.ok, row.problems
    assert row.pywasm_status == "skipped at large size"
    assert "pywasm: skipped at size large" in format_table([row])


def test_a_wrong_output_is_marked_loudly(tmp_path: Path) -> None:
    suite = make_suite(tmp_path, "12 8 4", "[6]\n")
    out, err = io.StringIO(), io.StringIO()
    status = bench_engine_command([suite], "small", 1, include_pywasm=False, out=out, err=err)
    assert status == 1
    table = out.getvalue()
    assert "MISMATCH" in table.splitlines()[2]
    assert "!! tiny/wat_tak: MISMATCH kindling: expected '[6]\\n', got '[5]\\n'" in table
    assert "!! tiny/wat_tak: MISMATCH port: expected '[6]\\n', got '[5]\\n'" in table
    assert "bench: tiny/wat_tak small run 1/1" in err.getvalue()


def test_json_output_of_the_command(tmp_path: Path) -> None:
    suite = make_suite(tmp_path, "12 8 4", "[5]\n")
    out = io.StringIO()
    status = bench_engine_command([suite], "small", 1, True, False, out=out, err=io.StringIO())
    assert status == 0
    document = json.loads(out.getvalue())
    assert document["summary"]["all_ok"] is True
    assert document["rows"][0]["program"] == "wat_tak"


@pytest.mark.slow
def test_fuel_adds_metered_runs_through_the_cli(tmp_path: Path) -> None:
    suite = make_suite(tmp_path, "12 8 4", "[5]\n")
    command = [sys.executable, "-m", "host.cli", "bench", "engine", str(suite), "--repeat", "2"]
    done = subprocess.run(
        [*command, "--no-pywasm", "--fuel", "--json"], capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    (row,) = document["rows"]
    assert row["ok"], row["problems"]
    assert len(row["fuel_runs"]) == 2 and row["fuel_seconds"] > 0
    assert row["fuel_overhead"] == pytest.approx(row["fuel_seconds"] / row["kindling_seconds"] - 1)
    # The metered run counts exactly what the engine counts for the same call in-process.
    module = (suite / "wasm" / "wat_tak.wasm").read_bytes()
    metered = run_module(module, ["12", "8", "4"], "tak", fuel=1 << 40)
    assert metered.output == "[5]\n"
    assert metered.fuel_used is not None
    assert row["fuel_used"] == metered.fuel_used > 1000
    assert document["summary"]["fuel_programs_in_geomean"] == 1
    assert document["summary"]["geomean_fuel_overhead"] == pytest.approx(row["fuel_overhead"])

    table = subprocess.run(
        [*command, "--no-pywasm", "--fuel"], capture_output=True, timeout=300, text=True
    )
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0]
    assert "fuel s" in header and "fuel cost" in header
    assert "fuel cost: how much slower that is" in table.stdout


def test_a_run_out_of_fuel_is_an_ending_not_a_crash() -> None:
    module = (SUITE / "wasm" / "wat_tak.wasm").read_bytes()
    starved = run_module(module, ["12", "8", "4"], "tak", fuel=100)
    assert starved.ending.startswith("trapped: ") and "fuel" in starved.ending
    assert starved.fuel_used == 100


@pytest.mark.slow
def test_shared_reference_folder_works_too() -> None:
    bench = bench_dir()
    if bench is None:
        pytest.skip("shared/bench (the reference benchmark programs) is not beside the repository")
    rows = run_engine_bench(
        [bench], "small", 1, include_pywasm=False, programs=["fib", "wat_sum_i64"]
    )
    assert [(r.program, r.export, r.ok) for r in rows] == [
        ("fib", None, True),
        ("wat_sum_i64", "mix64", True),
    ], [r.problems for r in rows]


def test_bad_suites_and_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BenchSuiteError, match="is not a directory"):
        discover_programs(tmp_path / "nowhere")
    suite = make_suite(tmp_path, "12 8 4", "[5]\n")
    with pytest.raises(ValueError, match="size must be one of small, large"):
        run_engine_bench([suite], "medium")
    with pytest.raises(ValueError, match="no program named nope"):
        run_engine_bench([suite], programs=["nope"])
    (suite / "wasm" / "extra.wasm").write_bytes(b"")
    with pytest.raises(BenchSuiteError, match="no table row for extra"):
        discover_programs(suite)
    (suite / "wasm" / "extra.wasm").unlink()
    (suite / "expected.json").write_text("{}")
    with pytest.raises(BenchSuiteError, match="has no entry 'wat_tak/small'"):
        discover_programs(suite)
    (suite / "README.md").write_text("# no table\n")
    with pytest.raises(BenchSuiteError, match="no Markdown table"):
        discover_programs(suite)
    err = io.StringIO()
    assert bench_engine_command([suite], out=io.StringIO(), err=err) == 2
    assert "no Markdown table" in err.getvalue()
