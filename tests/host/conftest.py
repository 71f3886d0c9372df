"""Fixtures for the host's tests: real guest processes, and proof that none leaked.

``no_leaks`` (automatic for every test here) snapshots the test process's descendants and open
descriptors before the test and fails it if, afterwards, a process it started is still alive
(zombies included: the host must reap), an orphaned guest of it lives on, or a descriptor was
opened or closed (tests/framework/leaks.py, the same check as ``GuestFactory``'s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from host.api import RunReport, run_guest
from host.guest import Guest
from host.stdio import BytesStdin, CapturedConsole
from host.transport import Launcher
from protocol.config import GuestConfig
from tests.framework.leaks import LeakCheck
from tests.framework.paths import fixture


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it left a process or a descriptor behind (tests/framework/leaks.py)."""
    check = LeakCheck()
    yield
    problems = check.problems()
    if problems:
        pytest.fail("leaks after the test:\n  " + "\n  ".join(problems), pytrace=False)


def misbehaving(mode: str) -> Launcher:
    """A launcher for the test-only guest that breaks the protocol in ``mode``."""
    return Launcher.default().with_module("guestproc.misbehave", mode)


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
