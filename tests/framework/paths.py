"""Where things are: the repository, the committed fixtures, the shared benchmark programs."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
FIXTURE_WASM_DIR = FIXTURES_DIR / "wasm"
EXAMPLES_DIR = REPO_ROOT / "examples"


def fixture(name: str) -> Path:
    """The committed binary of fixture ``name`` (``tests/fixtures/wasm/NAME.wasm``)."""
    path = FIXTURE_WASM_DIR / f"{name}.wasm"
    if not path.is_file():
        raise FileNotFoundError(f"no fixture {name!r}: {path} does not exist")
    return path


def bench_dir() -> Path | None:
    """The reference benchmark programs, or None when they are not on this machine.

    ``$KINDLING_BENCH`` wins; otherwise ``shared/bench`` beside the repository (where CI puts
    it: a clone of main with ``shared/`` next to it).
    """
    configured = os.environ.get("KINDLING_BENCH")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "bench"
    return candidate if (candidate / "expected.json").is_file() else None


def spec_suite_dir(folder: str = "core") -> Path | None:
    """A folder of the WebAssembly spec test suite (``core/``, ``simd/``), or None when it is
    not on this machine.

    ``$KINDLING_WASM_TESTSUITE`` (the suite's root) wins; otherwise ``shared/wasm-testsuite``
    beside the repository.
    """
    configured = os.environ.get("KINDLING_WASM_TESTSUITE")
    root = Path(configured) if configured else REPO_ROOT.parent / "shared" / "wasm-testsuite"
    # The variable may name the suite or its core/ (then the other folders are its siblings).
    candidates = (
        (root / folder, root) if folder == "core" else (root / folder, root.parent / folder)
    )
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.wast")):
            return candidate
    return None


def no_spec_suite(folder: str = "core") -> str:
    """Why tests of the suite's ``folder`` skip: it is not on this machine."""
    return (
        f"the WebAssembly spec test suite's {folder}/ is not on this machine "
        "(put the suite at ../shared/wasm-testsuite or set KINDLING_WASM_TESTSUITE)"
    )


NO_SPEC_SUITE = no_spec_suite()
