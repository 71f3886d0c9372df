"""Export mode's bodies: JSON arrays of numbers, exact integers, NaN and infinities as text."""

from __future__ import annotations

import math

import pytest

from host.serve.numbers import BadNumbers, format_numbers, parse_numbers


def test_integers_are_exact_at_any_width() -> None:
    big = 2**64 - 1
    assert parse_numbers(f"[{big}, -{big}, 1.5]".encode()) == [big, -big, 1.5]
    assert format_numbers([big, -(2**63)]) == f"[{big}, {-(2**63)}]".encode()


def test_nan_and_infinities_are_strings_both_ways() -> None:
    inf, minus, nan = parse_numbers(b'["inf", "-inf", "nan"]')
    assert (inf, minus) == (math.inf, -math.inf) and math.isnan(nan)
    assert format_numbers([math.nan, math.inf, -math.inf, 0.1]) == b'["nan", "inf", "-inf", 0.1]'


def test_an_empty_body_is_no_arguments() -> None:
    assert parse_numbers(b"") == []


@pytest.mark.parametrize(
    "body", [b"{}", b"[true]", b'["x"]', b"[NaN]", b"[[1]]", b"not json", b"\xff", b"[null]"]
)
def test_anything_else_is_refused(body: bytes) -> None:
    with pytest.raises(BadNumbers):
        parse_numbers(body)
