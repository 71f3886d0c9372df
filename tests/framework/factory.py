"""``GuestFactory``: makes guests for one test and proves at the end that nothing leaked.

Modelled on Firecracker's ``microvm_factory``: every guest a test starts goes through the
factory, and ``check_clean()`` (run by the fixture's teardown) kills anything still running
and reports a guest the test left running, then what the one leak check (``leaks.py``) finds
against the snapshot the factory took when it was made: stray processes (our descendants,
zombies included, and orphaned Kindling processes of this test) and file descriptors opened
or closed since.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .guest import Guest
from .leaks import LeakCheck


class GuestFactory:
    """Builds ``Guest`` objects and tracks them; see the module docstring."""

    def __init__(self) -> None:
        self.guests: list[Guest] = []
        self._leaks = LeakCheck()

    def build(self, module: Path | str, args: Any = (), **options: Any) -> Guest:
        """A new, not yet spawned ``Guest`` (options as for ``Guest``)."""
        guest = Guest(module, args, **options)
        self.guests.append(guest)
        return guest

    def run(
        self,
        module: Path | str,
        args: Any = (),
        *,
        stdin: bytes = b"",
        wait_seconds: float | None = None,
        **options: Any,
    ) -> Guest:
        """Build, spawn and wait for a guest; return it finished."""
        guest = self.build(module, args, **options)
        if wait_seconds is None:
            return guest.run(stdin)
        return guest.run(stdin, timeout=wait_seconds)

    def __iter__(self) -> Iterator[Guest]:
        return iter(self.guests)

    # -- teardown -----------------------------------------------------------------------------

    def check_clean(self, test_failed: bool = False) -> list[str]:
        """End everything still running and return the leaks found (empty when clean).

        A guest the test left running counts as a leak only if the test itself passed: a
        failed assertion naturally leaves its siblings unfinished.
        """
        problems: list[str] = []
        for guest in self.guests:
            if guest.running and not guest.killed and not test_failed:
                problems.append(f"{guest!r} was still running at teardown")
            if guest.running:
                guest.kill()
            if guest.process is not None:
                for stream in (guest.process.stdin, guest.process.stdout, guest.process.stderr):
                    if stream is not None and not stream.closed:
                        stream.close()
        return problems + self._leaks.problems()
