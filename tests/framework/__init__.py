"""Kindling's test framework: guests as real ``kindling run`` processes, and leak checks.

- ``Guest`` (guest.py): one ``kindling run`` process; spawn, wait, kill, outcome, report.
- ``GuestFactory`` (factory.py): makes guests for a test; its teardown proves no process or
  file descriptor leaked.
- ``LeakCheck`` (leaks.py): the one leak check, used by the factory and by the host tests'
  ``no_leaks`` fixture.
- ``expectations``: CLI spellings, report keys, ending -> exit status (one place to adjust).
- ``cases``: every fixture run and its expected outcome.
- ``reference``: the same program under wasmtime, for differential tests.
- ``binary``: pieces of the binary format, for modules built byte by byte.
"""

from .factory import GuestFactory
from .guest import Guest, kindling_command

__all__ = ["Guest", "GuestFactory", "kindling_command"]
