"""The attack tests again, with the host as an ordinary user (issue 12, point 9).

A root host's guests run as ``nobody``; an ordinary user's run as that user, so what a
subverted guest can reach differs (with the host's uid, the host itself: the review set its
``RLIMIT_NOFILE`` to 3). Run as root, this test runs every other test of ``tests/security``
in a pytest of its own as the dedicated user ``kindling-test`` (made here if missing), via
``setpriv``. Run as an ordinary user, the suite already is that mode.

The interpreter must be one that user can run, with Kindling's dependencies:
``$KINDLING_UNPRIVILEGED_PYTHON`` (``.ci/run`` makes one from the system's Python; an
interpreter under ``/root`` is out of an ordinary user's reach).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.framework.paths import REPO_ROOT

USER = "kindling-test"
PYTHON = os.environ.get("KINDLING_UNPRIVILEGED_PYTHON", "")
HERE = Path(__file__).resolve()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="the host runs as an ordinary user already: this is that mode"
    ),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing"),
    pytest.mark.skipif(
        not PYTHON,
        reason="no Python an ordinary user can run: set KINDLING_UNPRIVILEGED_PYTHON "
        "(.ci/run makes one)",
    ),
]


def ensure_user() -> None:
    """The test user, with 65,536 subordinate uids and gids of its own: so its host gives
    each template ids of their own (``test_guest_ids.py``), as a user set up for rootless
    containers would have."""
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            check=True,
        )
    for path, option in (
        (Path("/etc/subuid"), "--add-subuids"),
        (Path("/etc/subgid"), "--add-subgids"),
    ):
        lines = path.read_text().splitlines() if path.exists() else []
        if any(line.startswith(f"{USER}:") for line in lines):
            continue
        ends = [int(start) + int(count) for _, start, count in (line.split(":") for line in lines)]
        start = max([100_000, *ends])
        subprocess.run(["usermod", option, f"{start}-{start + 65535}", USER], check=True)


def test_the_attacks_fail_with_the_host_as_an_ordinary_user(tmp_path: Path) -> None:
    ensure_user()
    as_user = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", "--"]
    readable = subprocess.run([*as_user, "test", "-r", str(HERE)], capture_output=True)
    if readable.returncode != 0:
        pytest.skip(f"the checkout ({REPO_ROOT}) is not readable by other users")
    tmp_path.chmod(0o777)  # its home and temporary files
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",  # the checkout is not the user's to write
    }
    suite = [str(HERE.parent), f"--deselect={HERE.relative_to(REPO_ROOT)}"]
    done = subprocess.run(
        [*as_user, PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suite],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 9, summary  # the attacks did run
    assert "skipped" not in summary, summary
