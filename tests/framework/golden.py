"""Rewrite the golden stdout files of the cases that have one, from wasmtime's output.

    python -m tests.framework.golden

Run it after changing a fixture whose case has ``golden=True``; review the diff. The files are
checked against wasmtime on every test run (``test_differential``), so they cannot drift.
"""

from __future__ import annotations

from .cases import CASES, GOLDEN_DIR
from .paths import fixture
from .reference import run_reference


def main() -> None:
    GOLDEN_DIR.mkdir(exist_ok=True)
    for case in CASES:
        if not case.golden:
            continue
        outcome = run_reference(fixture(case.fixture), case.args, stdin=case.stdin, env=case.env)
        if outcome.ending != case.ending:
            raise SystemExit(f"{case.id}: wasmtime ended with {outcome.ending}, not {case.ending}")
        case.golden_path.write_bytes(outcome.stdout)
        print(f"wrote {case.golden_path} ({len(outcome.stdout)} bytes)")


if __name__ == "__main__":
    main()
