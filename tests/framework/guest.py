"""One guest as the tests see it: a real ``kindling run`` process and what it left behind.

::

    test ──Guest.spawn()──▶ kindling run [options] MODULE ARGS   (the host, a subprocess)
      │                         └── guest process(es) running the module (python -m guestproc)
      └──Guest.wait()──▶ stdout, stderr, exit status, --report JSON, ending

A ``Guest`` is modelled on Firecracker's ``Microvm`` test object: it is built with its
configuration, ``spawn()`` starts it, ``wait()`` collects the outcome, ``kill()`` /
``mark_killed()`` end it on purpose, and ``ps`` is a cached ``psutil.Process`` of the host
process. Guests are made by a ``GuestFactory`` (see ``factory.py``), which tracks every one
it made so the test's teardown can prove nothing was left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import psutil

from . import expectations as ex
from .paths import REPO_ROOT

# How long a test waits for a guest that is expected to end by itself. Generous: it is a
# safety net against a hung host, not a measurement.
DEFAULT_WAIT_SECONDS = 90.0


def kindling_command() -> list[str]:
    """The argv prefix that starts the ``kindling`` CLI of *this* checkout.

    ``$KINDLING_CLI`` (a shell-quoted command, e.g. ``kindling``) overrides. The default runs
    the console script's entry point (``host.cli:main``) with this interpreter and this
    repository first on ``PYTHONPATH`` -- exactly what the installed ``kindling`` script does,
    but immune to a stale install pointing at another checkout.
    """
    override = os.environ.get("KINDLING_CLI")
    if override:
        return shlex.split(override)
    return [sys.executable, "-c", "import sys; from host.cli import main; sys.exit(main())"]


# Set in the environment of every `kindling` process a test starts, to the test process's pid,
# so leak checks can tell this run's orphans from another run's processes.
OWNER_VARIABLE = "KINDLING_TEST_OWNER"


def kindling_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a ``kindling`` process: ours, with this checkout importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env[OWNER_VARIABLE] = str(os.getpid())
    env.update(extra or {})
    return env


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return list(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def is_guest_process(process: psutil.Process) -> bool:
    """Whether ``process`` looks like a Kindling guest or template (``python -m guestproc``)."""
    return any(
        arg == "guestproc" or arg.startswith("guestproc.") or "/guestproc/" in arg
        for arg in _cmdline(process)
    )


def is_kindling_process(process: psutil.Process) -> bool:
    """Whether ``process`` is a guest, a template or a ``kindling`` host (or a fork of one)."""
    if is_guest_process(process):
        return True
    return any(
        "from host.cli import main" in arg or arg == "kindling" or arg.endswith("/kindling")
        for arg in _cmdline(process)
    )


class Guest:
    """A ``kindling run`` invocation; see the module docstring.

    After ``wait()`` returns, ``returncode``, ``stdout`` and ``stderr`` are set; with
    ``report=True`` (the default) ``report`` is the parsed ``--report`` JSON and ``ending``
    its ending in text form (``trapped(unreachable)``).
    """

    def __init__(
        self,
        module: Path | str,
        args: Sequence[str] = (),
        *,
        memory: str | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        invoke: str | None = None,
        report: bool = True,
        extra_options: Sequence[str] = (),
    ) -> None:
        self.module = Path(module)
        self.args = [str(a) for a in args]
        self.memory = memory
        self.timeout = timeout
        self.env = dict(env or {})
        self.invoke = invoke
        self.want_report = report
        self.extra_options = list(extra_options)

        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.stdout = b""
        self.stderr = b""
        self.report: dict[str, Any] | None = None
        self.elapsed: float | None = None
        self.killed = False
        self._started_at = 0.0

    # -- configuration ----------------------------------------------------------------------

    def command(self) -> list[str]:
        """The full argv: ``kindling run [options] [--] MODULE ARGS...``."""
        options: list[str] = []
        if self.memory is not None:
            options += [ex.OPT_MEMORY, self.memory]
        if self.timeout is not None:
            options += [ex.OPT_TIMEOUT, f"{self.timeout:g}"]
        for key, value in self.env.items():
            options += [ex.OPT_ENV, f"{key}={value}"]
        if self.invoke is not None:
            options += [ex.OPT_INVOKE, self.invoke]
        if self.want_report:
            options.append(ex.OPT_REPORT)
        options += self.extra_options
        # `--` keeps guest arguments such as "-5" or "--flag" from being read as options.
        separator = ["--"] if any(a.startswith("-") for a in self.args) else []
        return [
            *kindling_command(),
            *ex.RUN_SUBCOMMAND,
            *options,
            *separator,
            str(self.module),
            *self.args,
        ]

    def __repr__(self) -> str:
        state = "not started" if self.process is None else f"pid {self.process.pid}"
        return f"<Guest {self.module.name} {' '.join(self.args)} ({state})>"

    # -- life cycle ---------------------------------------------------------------------------

    def spawn(self) -> None:
        """Start the host process. Its stdin stays open until ``wait()`` feeds it."""
        if self.process is not None:
            raise RuntimeError(f"{self!r} was already spawned")
        self._started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=kindling_environment(),
            cwd=REPO_ROOT,
        )

    def wait(self, stdin: bytes = b"", timeout: float = DEFAULT_WAIT_SECONDS) -> Guest:
        """Feed ``stdin`` (then end of file), wait for the host to exit, collect the outcome.

        If the host has not exited after ``timeout`` seconds it is killed together with its
        descendants and ``AssertionError`` is raised with whatever it had printed.
        """
        process = self._require_process()
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = process.communicate()
            self._record(out, err)
            raise AssertionError(
                f"{self!r} did not finish within {timeout} s; killed it.\n"
                f"stdout (tail): {out[-2000:]!r}\nstderr (tail): {err[-2000:]!r}"
            ) from None
        self._record(out, err)
        return self

    def run(self, stdin: bytes = b"", timeout: float = DEFAULT_WAIT_SECONDS) -> Guest:
        """``spawn()`` then ``wait()``."""
        self.spawn()
        return self.wait(stdin, timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the host process and every descendant (guests first)."""
        process = self._require_process()
        self.mark_killed()
        try:
            descendants = self.ps.children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        for victim in [*reversed(descendants), self.ps]:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.send_signal(sig)
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    def mark_killed(self) -> None:
        """Record that this guest was ended on purpose (so teardown does not report it)."""
        self.killed = True

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        return self._require_process().pid

    @cached_property
    def ps(self) -> psutil.Process:
        """A ``psutil.Process`` for the host process, made once (pid reuse cannot fool it)."""
        return psutil.Process(self.pid)

    def guest_processes(self) -> list[psutil.Process]:
        """Descendants of the host that look like guest or template processes, oldest first."""
        try:
            found = [p for p in self.ps.children(recursive=True) if is_guest_process(p)]
        except psutil.NoSuchProcess:
            return []
        return sorted(found, key=lambda p: p.create_time())

    def wait_for_guest_process(self, timeout: float = 30.0) -> psutil.Process:
        """The newest guest process of this host, once it exists (the guest, not a template)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.guest_processes()
            if found:
                return found[-1]
            if not self.running:
                self.wait()
                raise AssertionError(f"the host ended before a guest appeared\n{self.describe()}")
            time.sleep(0.02)
        raise AssertionError(f"{self!r}: no guest process appeared within {timeout} s")

    # -- outcome ------------------------------------------------------------------------------

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError(f"{self!r} was never spawned")
        return self.process

    def _record(self, out: bytes, err: bytes) -> None:
        process = self._require_process()
        self.stdout, self.stderr = out, err
        self.returncode = process.returncode
        self.elapsed = time.monotonic() - self._started_at
        self.report = self._parse_report() if self.want_report else None

    def _parse_report(self) -> dict[str, Any] | None:
        lines = self.stderr.rstrip(b"\n").split(b"\n")
        if not lines or not lines[-1].startswith(b"{"):
            return None
        try:
            parsed = json.loads(lines[-1])
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    @property
    def ending(self) -> str:
        """The ending from the report, in text form; AssertionError if there is no report."""
        if self.report is None:
            raise AssertionError(f"{self!r} printed no --report line.\n{self.describe()}")
        return ex.ending_text(self.report.get(ex.REPORT_ENDING))

    @property
    def stderr_text_lines(self) -> list[str]:
        """stderr as text lines, without the final report line."""
        text = self.stderr.decode("utf-8", "replace").rstrip("\n")
        lines = text.split("\n") if text else []
        if self.report is not None and lines:
            lines.pop()
        return lines

    def describe(self) -> str:
        """Everything useful for an assertion message."""
        return (
            f"command: {shlex.join(self.command())}\n"
            f"exit status: {self.returncode}  elapsed: {self.elapsed}\n"
            f"stdout ({len(self.stdout)} bytes): {self.stdout[:3000]!r}\n"
            f"stderr ({len(self.stderr)} bytes): {self.stderr[-3000:]!r}"
        )

    def assert_ending(self, ending: str) -> None:
        """The guest ended with ``ending``, the exit status matches it, and the host was fine.

        "Fine" means: the host exited by itself (no signal), printed no Python traceback, gave
        a well-formed report, and for an ending other than ``exited`` a reason on stderr.
        """
        assert self.returncode is not None, f"{self!r} has not finished"
        assert self.returncode >= 0, f"the host itself died of a signal\n{self.describe()}"
        assert b"Traceback (most recent call last)" not in self.stderr, (
            f"the host printed a traceback\n{self.describe()}"
        )
        assert self.ending == ending, f"expected {ending}, got {self.ending}\n{self.describe()}"
        assert self.report is not None
        missing = ex.REPORT_REQUIRED_KEYS - set(self.report)
        assert not missing, f"report lacks {sorted(missing)}: {self.report}"
        status = ex.expected_exit_status(ending)
        if status is not None:
            assert self.returncode == status, (
                f"{ending} must exit with {status}, got {self.returncode}\n{self.describe()}"
            )
        elif ex.ending_kind(ending) != "exited":
            assert self.returncode != 0, f"{ending} must not exit 0\n{self.describe()}"
        if ex.ending_kind(ending) != "exited":
            reason = [line for line in self.stderr_text_lines if line.strip()]
            assert reason, f"{ending}: no one-line reason on stderr\n{self.describe()}"
