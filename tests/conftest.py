"""Shared fixtures: the guest factory, whose teardown checks for leaked processes and fds."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest

# The framework's helpers assert too: let pytest explain their failures like a test's.
pytest.register_assert_rewrite("tests.framework")

from tests.framework import GuestFactory  # noqa: E402

PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report on the item, so fixtures can see how the test went."""
    report = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def guest_factory(request: pytest.FixtureRequest) -> Iterator[GuestFactory]:
    """Makes guests (real `kindling run` processes) for one test.

    Teardown ends anything still running and fails the test if a process or a file
    descriptor leaked (see tests/framework/factory.py).
    """
    factory = GuestFactory()
    yield factory
    call = request.node.stash.get(PHASE_REPORTS, {}).get("call")
    problems = factory.check_clean(test_failed=call is None or call.failed)
    if problems:
        pytest.fail("leaks after the test:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def private_code_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every `kindling` the tests start keeps its code cache in a fresh directory of this
    run, never the user's ~/.cache (tests of the cache itself use their own)."""
    directory = tmp_path_factory.mktemp("code-cache")
    old = os.environ.get("KINDLING_CACHE_DIR")
    os.environ["KINDLING_CACHE_DIR"] = str(directory)
    yield
    if old is None:
        os.environ.pop("KINDLING_CACHE_DIR", None)
    else:
        os.environ["KINDLING_CACHE_DIR"] = old
