"""Check the suite against a reference engine: PyPI ``wasmtime`` (test-only) and the Python ports.

    python benchmarks/engine/verify.py [--size small|large] [--write] [FOLDER]

For every program in the README table, at each size asked for (both by default), the module
runs under wasmtime and the port runs under CPython (``python -m host.bench.engine
--port-runner``, as the benchmark runs it); the two outputs must be identical, and identical
to ``expected.json``. A program's SIMD build (``wasm/simd128/NAME.wasm``) must print the
same under wasmtime too. With ``--write``, ``expected.json`` is (re)written from the agreed
outputs instead of being compared (only when every program agrees). Exit status 0 when all
agree, 1 otherwise. Ports at ``large`` take about two minutes in all.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import wasmtime

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from host.bench.engine import SIZES, format_results, readme_table  # noqa: E402


def run_wasmtime(module_path: Path, args: list[str]) -> str:
    """The module's output under wasmtime: stdout of ``_start``, or an export's result list."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module.from_file(engine, str(module_path))
    exports = [e.name for e in module.exports if isinstance(e.type, wasmtime.FuncType)]
    if "_start" not in exports:
        if len(exports) != 1:
            raise SystemExit(f"{module_path.name}: expected one exported function, got {exports}")
        instance = wasmtime.Instance(store, module, [])
        func = instance.exports(store)[exports[0]]
        assert isinstance(func, wasmtime.Func)
        numbers = [int(a) for a in args]
        result = func(store, *numbers)
        return format_results(list(result) if isinstance(result, list | tuple) else [result])
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "stdout"
        config = wasmtime.WasiConfig()
        config.argv = [module_path.name, *args]
        config.stdout_file = str(out)
        store.set_wasi(config)
        instance = linker.instantiate(store, module)
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
        except wasmtime.ExitTrap as exit_:
            if exit_.code != 0:
                raise SystemExit(f"{module_path.name} exited with {exit_.code}") from exit_
        return out.read_text(encoding="utf-8")


def run_port(port: Path, export: str | None, args: list[str]) -> tuple[str, float]:
    call = ["--call", export] if export else []
    done = subprocess.run(
        [sys.executable, "-m", "host.bench.engine", "--port-runner", str(port), *call, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE.parents[1],
    )
    record = json.loads(done.stdout.strip().splitlines()[-1])
    return record["output"], record["run_seconds"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=HERE)
    parser.add_argument("--size", choices=SIZES)
    parser.add_argument("--write", action="store_true")
    options = parser.parse_args(argv)
    suite: Path = options.folder
    sizes = [options.size] if options.size else list(SIZES)
    expected_path = suite / "expected.json"
    expected = json.loads(expected_path.read_text()) if expected_path.exists() else {}
    agreed: dict[str, str] = dict(expected)
    failures = 0
    for row in readme_table(suite / "README.md"):
        name = row["program"]
        module = suite / "wasm" / f"{name}.wasm"
        port = suite / "py" / f"{name}.py"
        wasm_exports = wasmtime.Module.from_file(wasmtime.Engine(), str(module)).exports
        names = [e.name for e in wasm_exports if isinstance(e.type, wasmtime.FuncType)]
        export = None if "_start" in names else names[0]
        for size in sizes:
            args = row[f"{size} arg"].split()
            started = time.perf_counter()
            reference = run_wasmtime(module, args)
            wasmtime_seconds = time.perf_counter() - started
            ported, port_seconds = run_port(port, export, args)
            key = f"{name}/{size}"
            simd_module = suite / "wasm" / "simd128" / f"{name}.wasm"
            simd = run_wasmtime(simd_module, args) if simd_module.is_file() else reference
            verdict = "ok"
            if ported != reference:
                verdict = f"PORT DIFFERS: wasmtime {reference!r}, port {ported!r}"
            elif simd != reference:
                verdict = f"SIMD BUILD DIFFERS: scalar {reference!r}, simd {simd!r}"
            elif not options.write and expected.get(key) != reference:
                verdict = f"EXPECTED DIFFERS: file {expected.get(key)!r}, wasmtime {reference!r}"
            failures += verdict != "ok"
            agreed[key] = reference
            print(
                f"{key:24} wasmtime {wasmtime_seconds:7.3f} s  port {port_seconds:7.3f} s  "
                f"{verdict}  {reference.strip()[:60]!r}"
            )
    if options.write:
        if failures:
            print(f"not writing {expected_path}: {failures} disagreement(s)")
            return 1
        expected_path.write_text(json.dumps(dict(sorted(agreed.items())), indent=1) + "\n")
        print(f"wrote {expected_path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
