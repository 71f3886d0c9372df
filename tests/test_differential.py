"""Differential tests: each terminating WASI fixture under wasmtime (PyPI) and `kindling run`.

Both must print the same stdout and end the same way (the same exit code, or a trap of the
same kind). wasmtime is an independent implementation, so agreement is evidence that the
engine and the WASI layer are right; the first test also checks the expectations table and
the golden files against wasmtime, which needs no part of Kindling at all.
"""

from __future__ import annotations

import functools

import pytest

from tests.framework import GuestFactory
from tests.framework import expectations as ex
from tests.framework.cases import CASES, CASES_BY_ID, DIFFERENTIAL_CASES, Case
from tests.framework.paths import fixture
from tests.framework.reference import ReferenceOutcome, invoke_reference, run_reference


def reference(case: Case) -> ReferenceOutcome:
    """wasmtime's outcome for ``case``, computed once per test session."""
    return _reference_by_id(case.id)


@functools.cache
def _reference_by_id(case_id: str) -> ReferenceOutcome:
    case = CASES_BY_ID[case_id]
    return run_reference(fixture(case.fixture), case.args, stdin=case.stdin, env=case.env)


@pytest.fixture(scope="session")
def wasmtime_started() -> None:
    """Run one program under wasmtime before any guest_factory takes its descriptor count.

    wasmtime's WASI runtime opens a few descriptors (epoll, eventfd) once per process and keeps
    them; session scope makes this happen before the function-scoped factory is set up.
    """
    reference(DIFFERENTIAL_CASES[0])


@pytest.mark.parametrize("case", DIFFERENTIAL_CASES, ids=lambda case: case.id)
def test_wasmtime_agrees_with_expectations(case: Case) -> None:
    """The expected outcome in tests/framework/cases.py is what wasmtime does."""
    outcome = reference(case)
    assert outcome.ending == case.ending
    case.check_stdout(outcome.stdout)
    assert case.stderr_contains in outcome.stderr


@pytest.mark.slow
@pytest.mark.parametrize("case", DIFFERENTIAL_CASES, ids=lambda case: case.id)
def test_kindling_matches_wasmtime(
    wasmtime_started: None, guest_factory: GuestFactory, case: Case
) -> None:
    expected = reference(case)
    guest = guest_factory.run(fixture(case.fixture), case.args, stdin=case.stdin, env=case.env)
    assert guest.stdout == expected.stdout, (
        f"stdout differs from wasmtime's\nwasmtime: {expected.stdout[:2000]!r}\n{guest.describe()}"
    )
    guest.assert_ending(expected.ending)
    assert expected.stderr in guest.stderr, (
        f"the guest's stderr differs from wasmtime's {expected.stderr!r}\n{guest.describe()}"
    )


INVOKE_CASES = tuple(case for case in CASES if case.invoke is not None)


@pytest.mark.parametrize("case", INVOKE_CASES, ids=lambda case: case.id)
def test_wasmtime_agrees_with_invoke_expectations(case: Case) -> None:
    """The `--invoke` cases' expected results are what wasmtime returns (under the same budget)."""
    assert case.invoke is not None
    memory = ex.DEFAULT_MEMORY_BYTES if case.memory is not None else None
    outcome = invoke_reference(
        fixture(case.fixture), case.invoke, case.args, memory_limit_bytes=memory
    )
    assert outcome.ending == case.ending
    case.check_stdout(outcome.stdout)


def test_wasmtime_runs_the_malloc_bomb_within_the_budget() -> None:
    """The malloc bomb, capped at the same budget under wasmtime, stops and reports."""
    case = CASES_BY_ID["memory_bomb"]
    outcome = run_reference(fixture(case.fixture), memory_limit_bytes=ex.DEFAULT_MEMORY_BYTES)
    assert outcome.ending == case.ending
    case.check_stdout(outcome.stdout)
