"""The shared reference benchmark programs, at their small size, under `kindling run`.

Each program in shared/bench/wasm must print exactly what shared/bench/expected.json says:
WASI commands get the size as argv[1]; WAT kernels are called with `--invoke EXPORT SIZE`.
Sizes and export names come from the table in shared/bench/README.md, so a program added
there is picked up here. shared/bench is found beside the repository or via $KINDLING_BENCH.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.framework import GuestFactory
from tests.framework import expectations as ex
from tests.framework.paths import bench_dir

BENCH = bench_dir()
pytestmark = [
    pytest.mark.slow,  # every program under a real `kindling run`
    pytest.mark.skipif(
        BENCH is None,
        reason="shared/bench (the reference benchmark programs) is not beside the repository; "
        "set KINDLING_BENCH to its path",
    ),
]


@dataclass(frozen=True)
class BenchProgram:
    name: str
    module: Path
    small_arg: str
    export: str | None  # None for a WASI command


# | program | source | kind | small arg | large arg | ... in shared/bench/README.md
_ROW = re.compile(r"^\|\s*(?P<name>\w+)\s*\|[^|]*\|\s*(?P<kind>[^|]*)\|\s*(?P<small>\d+)\s*\|")
_EXPORT = re.compile(r"export\s+`(?P<export>\w+)\(")


def bench_programs() -> list[BenchProgram]:
    if BENCH is None:
        return []
    rows: dict[str, tuple[str, str | None]] = {}
    for line in (BENCH / "README.md").read_text().splitlines():
        row = _ROW.match(line)
        if row:
            kernel = _EXPORT.search(row["kind"])
            rows[row["name"]] = (row["small"], kernel["export"] if kernel else None)
    programs = []
    for module in sorted((BENCH / "wasm").glob("*.wasm")):
        if module.stem not in rows:
            raise LookupError(f"{module.name} has no row in {BENCH / 'README.md'}")
        small, export = rows[module.stem]
        programs.append(BenchProgram(module.stem, module, small, export))
    return programs


def expected_outputs() -> dict[str, str]:
    assert BENCH is not None
    loaded = json.loads((BENCH / "expected.json").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_every_bench_program_is_found() -> None:
    """Guards the README parsing: every expected small output has a program, and vice versa."""
    names = {p.name for p in bench_programs()}
    expected = {key.split("/")[0] for key in expected_outputs() if key.endswith("/small")}
    assert names == expected
    assert any(p.export for p in bench_programs()), "no WAT kernel recognised"


@pytest.mark.parametrize("program", bench_programs(), ids=lambda p: p.name)
def test_bench_program_small(guest_factory: GuestFactory, program: BenchProgram) -> None:
    expected = expected_outputs()[f"{program.name}/small"].encode()
    guest = guest_factory.run(program.module, [program.small_arg], invoke=program.export)
    guest.assert_ending(ex.INVOKE_SUCCESS_ENDING if program.export else "exited(0)")
    assert guest.stdout == expected, guest.describe()
