"""Export mode's bodies: a JSON array of numbers in, a JSON array of numbers out.

Integers are exact at any width the Wasm types hold (JSON has no limit; Python's ``json``
keeps them as ints). NaN and the infinities, which JSON cannot spell, are the strings
``"nan"``, ``"inf"`` and ``"-inf"``, both ways. Floats keep their shortest repr.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

MAX_NUMBERS = 1000
"""The most arguments one request may carry (``protocol.messages.MAX_RESULTS`` for results)."""

_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class BadNumbers(ValueError):
    """The body is not a JSON array of numbers (the gateway answers 400)."""


def _refuse_constant(name: str) -> float:
    raise BadNumbers(f'{name} is not JSON: write NaN and the infinities as "nan", "inf"')


def parse_numbers(body: bytes) -> list[int | float]:
    """The arguments a body carries; ``BadNumbers`` naming what is wrong."""
    try:
        value = json.loads(body or b"[]", parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, BadNumbers):
            raise
        raise BadNumbers(f"the body is not JSON: {exc}") from None
    if not isinstance(value, list):
        raise BadNumbers("the body must be a JSON array of numbers")
    if len(value) > MAX_NUMBERS:
        raise BadNumbers(f"at most {MAX_NUMBERS} numbers, got {len(value)}")
    numbers: list[int | float] = []
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int | float | str):
            raise BadNumbers(f"item {index} is not a number: {json.dumps(item)[:40]}")
        if isinstance(item, str):
            if item not in _SPECIAL:
                raise BadNumbers(f'item {index}: the only strings are "nan", "inf", "-inf"')
            numbers.append(_SPECIAL[item])
        else:
            numbers.append(item)
    return numbers


def format_numbers(values: Sequence[int | float | str | None]) -> bytes:
    """Results as a JSON array (the guest's NaN payloads and infinities as strings)."""
    out: list[int | float | str | None] = []
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            out.append("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
        else:
            out.append(value)
    return json.dumps(out).encode()
