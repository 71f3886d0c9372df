"""The one leak check (tests/framework/leaks.py) finds each kind of leak, and only leaks."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from tests.framework.guest import OWNER_VARIABLE
from tests.framework.leaks import LeakCheck

GRACE = 0.2  # the default grace (5 s) lets a slow exit pass; these leaks never go by themselves


def test_a_clean_test_has_no_problems() -> None:
    check = LeakCheck()
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    done = subprocess.run(["true"])
    assert done.returncode == 0
    assert check.problems(GRACE) == []


def test_a_descriptor_left_open_or_closed_is_named_with_its_target() -> None:
    before = os.open(os.devnull, os.O_RDONLY)
    check = LeakCheck()
    left = os.open(os.devnull, os.O_RDONLY)
    os.close(before)
    try:
        problems = check.problems(GRACE)
    finally:
        os.close(left)
    assert problems == [
        f"descriptors left open: {left}->/dev/null",
        f"descriptors open before the test were closed: {before}->/dev/null",
    ]


def test_a_child_left_running_is_killed_and_reported() -> None:
    check = LeakCheck()
    child = subprocess.Popen(["sleep", "30"])
    problems = check.problems(GRACE)
    assert problems == [f"stray process {child.pid}: sleep 30"]
    assert child.wait(timeout=5) is not None


def test_a_child_left_unreaped_is_a_zombie_and_reported() -> None:
    check = LeakCheck()
    child = subprocess.Popen(["true"])
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.01)
    problems = check.problems(GRACE)
    assert problems == [f"stray process {child.pid} (zombie)"]
    child.wait(timeout=5)


@pytest.mark.slow
def test_an_orphaned_kindling_process_of_this_test_is_found_and_killed() -> None:
    check = LeakCheck()
    # A shell starts a process that looks like a guest (`guestproc` in its command line) and
    # exits: the process is re-parented away from us, but carries our pid in its environment.
    orphan_argv = [sys.executable, "-c", "import time; time.sleep(30)", "guestproc"]
    shell = subprocess.run(
        ["sh", "-c", 'exec "$@" >/dev/null 2>&1 & echo $!', "sh", *orphan_argv],
        env={**os.environ, OWNER_VARIABLE: str(os.getpid())},
        capture_output=True,
        check=True,
    )
    orphan = psutil.Process(int(shell.stdout))
    assert orphan.pid not in {p.pid for p in psutil.Process().children(recursive=True)}
    problems = check.problems(GRACE)
    assert problems == [f"stray process {orphan.pid}: {' '.join(orphan_argv)}"]
    assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE
