"""Fixtures for the host's tests: real guest processes, and proof that none leaked.

``no_leaks`` (automatic for every test here) records the test process's children and open
descriptors (``/proc/self/fd``) before the test and fails it if, afterwards, a child process
is still alive (zombies included: the host must reap) or a descriptor stayed open.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from host.api import RunReport, run_guest
from host.config import GuestConfig
from host.guest import Guest
from host.stdio import BytesStdin, CapturedConsole
from host.transport import Launcher
from tests.framework.paths import fixture


def open_fds() -> dict[int, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listdir itself used is gone
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return found


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    gc.collect()
    fds_before = open_fds()
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    yield
    deadline = time.monotonic() + 5
    while True:
        gc.collect()
        leaked_children = [p for p in me.children(recursive=True) if p.pid not in children_before]
        leaked_fds = {fd: target for fd, target in open_fds().items() if fd not in fds_before}
        if (not leaked_children and not leaked_fds) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for child in leaked_children:
        child.kill()
    psutil.wait_procs(leaked_children, timeout=5)
    assert not leaked_children, f"processes left behind: {leaked_children}"
    assert not leaked_fds, f"descriptors left open: {leaked_fds}"


def misbehaving(mode: str) -> Launcher:
    """A launcher for the test-only guest that breaks the protocol in ``mode``
    (``tests/guests/misbehave.py``, run by path: see ``tests.guests``)."""
    from tests import guests

    return guests.misbehaving(mode)


class Run:
    """Runs a guest to its end through ``run_guest`` and keeps what it printed."""

    def __call__(
        self,
        module: bytes | str,
        *,
        stdin: bytes = b"",
        launcher: Launcher | None = None,
        handshake_timeout: float = 30.0,
        invoke: str | None = None,
        numbers: tuple[int | float, ...] = (),
        cache_dir: str | None = None,
        **config: Any,
    ) -> RunReport:
        module_bytes = fixture(module).read_bytes() if isinstance(module, str) else module
        self.console = CapturedConsole()

        async def main() -> RunReport:
            guest = Guest(
                GuestConfig(**config),
                console=self.console,
                stdin=BytesStdin(stdin),
                launcher=launcher,
                handshake_timeout=handshake_timeout,
            )
            self.guest = guest
            return await run_guest(
                guest, module_bytes, invoke=invoke, args=numbers, cache_dir=cache_dir
            )

        return asyncio.run(main())

    @property
    def stdout(self) -> bytes:
        return self.console.stdout

    @property
    def stderr(self) -> bytes:
        return self.console.stderr


@pytest.fixture
def run() -> Run:
    return Run()


async def with_guest(
    body: Callable[[Guest], Any], config: GuestConfig | None = None, **options: Any
) -> Any:
    """Start a guest, hand it to ``body``, and stop it whatever happens."""
    guest = Guest(config, **options)
    try:
        return await body(guest)
    finally:
        await guest.stop()
