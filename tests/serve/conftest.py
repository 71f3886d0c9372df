"""Fixtures for the serve tests: an open ``Host``, and proof that no process or descriptor
leaked (the host tests' ``no_leaks``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from host.supervisor import Host
from tests.framework.leaks import LeakCheck


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    check = LeakCheck()
    yield
    problems = check.problems()
    if problems:
        pytest.fail("leaks after the test:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    async with Host(cache=False) as opened:
        yield opened
