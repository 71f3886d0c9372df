"""Fixtures for the serve tests: the host tests' ``host`` (an open ``Host`` without a code
cache) and ``no_leaks`` (automatic: no process or descriptor left behind)."""

from tests.host.conftest import host, no_leaks

__all__ = ["host", "no_leaks"]
