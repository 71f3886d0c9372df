"""The official WASI test suite's preview1 programs, each under `kindling run` (issue 14.3).

The suite (WebAssembly/wasi-testsuite, prebuilt binaries with a JSON spec beside each) sits
outside the repository, in ``../shared/wasi-testsuite`` (``$KINDLING_WASI_TESTSUITE``
overrides); without it every item is skipped, naming the folder. A test runs as its spec
says: its ``args``, exactly its ``env`` (``--env``; the program sees no other variable), its
``root`` directory preopened as ``/`` on a fresh copy (``--dir COPY::/``: the tests create,
rename and delete files there), and passes when the exit status and, where the spec gives
one, stdout match exactly. The programs check themselves: a failed assertion traps or exits
non-zero.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.framework import GuestFactory
from tests.framework.paths import REPO_ROOT

pytestmark = pytest.mark.slow  # 72 programs under `kindling run`

SUITE = Path(
    os.environ.get("KINDLING_WASI_TESTSUITE", REPO_ROOT.parent / "shared" / "wasi-testsuite")
)
PROGRAMS = sorted(SUITE.glob("tests/*/testsuite/wasm32-wasip1/*.wasm"))


def spec_of(program: Path) -> dict[str, Any]:
    """The program's JSON spec, with the suite's defaults."""
    path = program.with_suffix(".json")
    spec: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    return {"args": [], "env": {}, "root": None, "exit_code": 0, **spec}


def name_of(program: Path) -> str:
    return f"{program.parents[2].name}/{program.stem}"  # e.g. rust/fd_readdir


@pytest.mark.skipif(not PROGRAMS, reason=f"the WASI test suite is not in {SUITE}")
@pytest.mark.parametrize("program", PROGRAMS or [None], ids=name_of if PROGRAMS else None)
def test_preview1_program(guest_factory: GuestFactory, tmp_path: Path, program: Path) -> None:
    spec = spec_of(program)
    options: list[str] = []
    if spec["root"] is not None:
        root = tmp_path / "root"
        shutil.copytree(program.parent / spec["root"], root, symlinks=True)
        options += ["--dir", f"{root}::/"]
    guest = guest_factory.run(
        program, spec["args"], env=spec["env"], report=False, extra_options=options
    )
    assert guest.returncode == spec["exit_code"], guest.stderr.decode(errors="replace")
    if "stdout" in spec:
        assert guest.stdout.decode() == spec["stdout"]
