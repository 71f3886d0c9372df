"""Fixtures for the host's tests: real guest processes, handed out at later and later stages,
and proof that none leaked.

Like Firecracker's ``uvm`` fixtures, each builds on the one before::

    host ──▶ sandbox      an open Host (no code cache) ─▶ a running sandbox of exports.wasm
    template              a started template of exports.wasm
    new_guest             makes host.guest.Guest objects, stopped after the test
      ├─▶ guest           a guest started (its Hello received), no module yet
      ├─▶ spinning_guest  a new guest inside infinite_loop's endless Wasm code
      └─▶ run             a module run to its end in a new guest: the report, the output

Whatever a fixture opens it closes after the test: the host (every sandbox and template with
it), the template, every guest ``new_guest`` made. The tests are ``async def``; pytest-asyncio
runs each, with its fixtures, in an event loop of its own.

``no_leaks`` (automatic for every test here) snapshots the test process's descendants and open
descriptors before the test and fails it if, afterwards, a process it started is still alive
(zombies included: the host must reap), an orphaned guest of it lives on, or a descriptor was
opened or closed (tests/framework/leaks.py, the same check as ``GuestFactory``'s).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from host.api import RunReport, run_guest
from host.config import GuestConfig
from host.guest import Guest, GuestState
from host.stdio import BytesStdin, CapturedConsole
from host.supervisor import Host, Sandbox
from host.template import Template
from host.transport import Launcher
from tests.framework.leaks import LeakCheck
from tests.framework.paths import fixture

EXPORTS = fixture("exports")


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it left a process or a descriptor behind (tests/framework/leaks.py)."""
    check = LeakCheck()
    yield
    problems = check.problems()
    if problems:
        pytest.fail("leaks after the test:\n  " + "\n  ".join(problems), pytrace=False)


def misbehaving(mode: str) -> Launcher:
    """A launcher for the test-only guest that breaks the protocol in ``mode``
    (``tests/guests/misbehave.py``, run by path: see ``tests.guests``)."""
    from tests import guests

    return guests.misbehaving(mode)


# -- the Host API: host -> sandbox ----------------------------------------------------------


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    """An open ``Host`` without a code cache, closed (every sandbox and template ended) after
    the test. A test may close it itself first; closing again does nothing."""
    async with Host(cache=False) as opened:
        yield opened


@pytest.fixture
async def sandbox(host: Host) -> Sandbox:
    """A running sandbox of exports.wasm (``add``, ``sub``, ``divmod``, ``mul64``) with the
    default limits: the first sandbox of ``host``, so named ``sandbox-1``."""
    return await host.launch(EXPORTS)


# -- templates --------------------------------------------------------------------------------


@pytest.fixture
async def template() -> AsyncIterator[Template]:
    """A started template of exports.wasm with the default configuration, closed after the
    test."""
    started = await Template.start(EXPORTS.read_bytes(), GuestConfig())
    yield started
    await started.close()
    await started.release()


# -- single guests: new_guest -> guest, spinning_guest, run ---------------------------------


class Guests:
    """Makes ``host.guest.Guest`` objects for one test and remembers them, so that the
    ``new_guest`` fixture can stop every one after it."""

    def __init__(self) -> None:
        self.made: list[Guest] = []

    def __call__(self, config: GuestConfig | None = None, **options: Any) -> Guest:
        """A new guest, not yet begun; ``options`` as for ``Guest``."""
        guest = Guest(config, **options)
        self.made.append(guest)
        return guest


@pytest.fixture
async def new_guest() -> AsyncIterator[Guests]:
    """Makes guests (not yet begun); each is stopped after the test, whatever state it is in."""
    guests = Guests()
    yield guests
    for guest in guests.made:
        await guest.stop()


@pytest.fixture
async def guest(new_guest: Guests) -> Guest:
    """A started guest with the default configuration: its process spawned, its Hello
    received, no module loaded yet."""
    started = new_guest()
    await started.start()
    return started


@dataclass(frozen=True)
class Spinning:
    """A guest inside infinite_loop's endless ``_start``."""

    guest: Guest
    invocation: asyncio.Future[Any]  # the call of _start: it ends only with the guest
    process: psutil.Process


class SpinningGuest:
    """Starts infinite_loop's ``_start`` in a new guest (timeout 30 s unless given) and
    returns once the guest runs Wasm code."""

    def __init__(self, new_guest: Guests) -> None:
        self._new_guest = new_guest

    async def __call__(self, **config: Any) -> Spinning:
        guest = self._new_guest(GuestConfig(timeout=30, **config))
        guest.begin()
        guest.submit_load(fixture("infinite_loop").read_bytes())
        guest.submit_boot()
        invocation = guest.submit_invoke("_start")
        await guest.handshake()
        while guest.state is not GuestState.RUNNING:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert guest.pid is not None
        return Spinning(guest, invocation, psutil.Process(guest.pid))


@pytest.fixture
def spinning_guest(new_guest: Guests) -> SpinningGuest:
    return SpinningGuest(new_guest)


class Run:
    """Runs a module to its end in a new guest through ``run_guest``; keeps the guest and
    what it printed."""

    guest: Guest

    def __init__(self, new_guest: Guests) -> None:
        self._new_guest = new_guest
        self.console = CapturedConsole()

    async def __call__(
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
        """``module`` is the module's bytes or a fixture's name; ``config`` is
        ``GuestConfig``'s."""
        module_bytes = fixture(module).read_bytes() if isinstance(module, str) else module
        self.console = CapturedConsole()
        self.guest = self._new_guest(
            GuestConfig(**config),
            console=self.console,
            stdin=BytesStdin(stdin),
            launcher=launcher,
            handshake_timeout=handshake_timeout,
        )
        return await run_guest(
            self.guest, module_bytes, invoke=invoke, args=numbers, cache_dir=cache_dir
        )

    @property
    def stdout(self) -> bytes:
        return self.console.stdout

    @property
    def stderr(self) -> bytes:
        return self.console.stderr


@pytest.fixture
def run(new_guest: Guests) -> Run:
    return Run(new_guest)
