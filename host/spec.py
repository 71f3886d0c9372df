"""``kindling spec``: run WebAssembly spec test scripts in guest-side processes and total them.

::

    kindling spec PATH...  ──▶ one ``python -S -P -m guestproc.spectest NAME < FILE`` per
                               script, ``jobs`` at a time ──▶ one JSON line each
                               ──▶ ScriptResult (validated)

Scripts hold modules, which the host never decodes itself: each script runs in its own process,
hardened as a guest is before it parses the script (``confinement.standalone``: namespaces, uid,
seccomp, a memory bound and a CPU limit), so a crash or a hostile script costs that script
only and is reported as such.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from .transport import Launcher

MAX_RESULT_BYTES = 16 * 1024 * 1024
SCRIPT_TIMEOUT_SECONDS = 600.0


class Failure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int
    command: str
    message: str


class ScriptResult(BaseModel):
    """One script's counts: assertions ``passed``/``failed`` (``total``), plus ``errors``:
    failed module, register or action commands, which are not assertions."""

    model_config = ConfigDict(extra="forbid")

    file: str
    passed: int
    failed: int
    errors: int
    total: int
    failures: list[Failure]

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.errors == 0


def collect_scripts(paths: Iterable[Path]) -> list[Path]:
    """The ``.wast`` files named, and those inside the folders named, sorted per folder.

    Raises FileNotFoundError for a path that does not exist.
    """
    scripts: list[Path] = []
    for path in paths:
        if path.is_dir():
            scripts.extend(sorted(path.glob("*.wast")))
        elif path.is_file():
            scripts.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return scripts


def _crashed(script: Path, why: str) -> ScriptResult:
    return ScriptResult(
        file=script.name,
        passed=0,
        failed=0,
        errors=1,
        total=0,
        failures=[Failure(line=0, command="script", message=why)],
    )


def run_script(script: Path, launcher: Launcher | None = None) -> ScriptResult:
    """Run one script in its own hardened process (``guestproc.spectest``), which gets it on
    stdin; a crash or a bad answer is an error of that script."""
    launcher = (launcher or Launcher.default()).with_module("guestproc.spectest")
    try:
        source = script.read_bytes()
    except OSError as exc:
        return _crashed(script, f"cannot read it: {exc.strerror or exc}")
    try:
        completed = subprocess.run(
            [*launcher.argv, script.name],
            env=dict(launcher.env),
            input=source,
            capture_output=True,
            timeout=SCRIPT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _crashed(script, f"the runner took longer than {SCRIPT_TIMEOUT_SECONDS:.0f} s")
    if completed.returncode != 0:
        detail = completed.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return _crashed(
            script, f"the runner process failed (status {completed.returncode}) {detail[0]}"
        )
    if len(completed.stdout) > MAX_RESULT_BYTES:
        return _crashed(script, "the runner's answer is over the size cap")
    try:
        return ScriptResult.model_validate(json.loads(completed.stdout))
    except (ValueError, ValidationError) as exc:
        return _crashed(script, f"the runner's answer is not a valid result: {exc}")


def run_scripts(scripts: Sequence[Path], jobs: int = 2) -> list[ScriptResult]:
    """Run every script, ``jobs`` processes at a time; results in the scripts' order."""
    launcher = Launcher.default()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda script: run_script(script, launcher), scripts))


def totals(results: Sequence[ScriptResult]) -> dict[str, int]:
    return {
        "passed": sum(r.passed for r in results),
        "failed": sum(r.failed for r in results),
        "total": sum(r.total for r in results),
        "errors": sum(r.errors for r in results),
    }


def to_json(results: Sequence[ScriptResult]) -> dict[str, object]:
    return {**totals(results), "files": [r.model_dump() for r in results]}


def format_table(results: Sequence[ScriptResult]) -> str:
    """A per-file table, then every failure with its line, then the totals."""
    width = max([len(r.file) for r in results] + [4])
    lines = [f"{'file':<{width}}  {'passed':>7}  {'failed':>7}  {'total':>7}"]
    for r in results:
        mark = "" if r.ok else "  FAILED" if r.failed else "  ERROR"
        lines.append(f"{r.file:<{width}}  {r.passed:>7}  {r.failed:>7}  {r.total:>7}{mark}")
    sums = totals(results)
    lines.append(
        f"{'total':<{width}}  {sums['passed']:>7}  {sums['failed']:>7}  {sums['total']:>7}"
    )
    problems = [(r.file, f) for r in results for f in r.failures]
    if problems:
        lines.append("")
        lines.extend(f"{file}:{f.line}: {f.command}: {f.message}" for file, f in problems)
    if sums["errors"]:
        lines.append(
            f"{sums['errors']} module or action commands failed (not counted as assertions)"
        )
    return "\n".join(lines)
