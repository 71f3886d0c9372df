"""Invoke arguments and results across the protocol: what cannot cross is refused up front."""

from __future__ import annotations

import pytest

from guestproc.engine.runtime import Function, host_function
from guestproc.engine.types import FuncType, ValType
from guestproc.values import ArgumentError, convert_arguments


def _function(params: tuple[ValType, ...], results: tuple[ValType, ...]) -> Function:
    return host_function(FuncType(params, results), lambda *args: None, "f")


def test_numbers_fit_their_parameters() -> None:
    func = _function((ValType.I32, ValType.F64), ())
    assert convert_arguments(func, "f", [-1, 2]) == [0xFFFFFFFF, 2.0]


@pytest.mark.parametrize(
    ("params", "results"), [((ValType.V128,), ()), ((), (ValType.V128,))], ids=["param", "result"]
)
def test_a_v128_parameter_or_result_is_refused_before_the_call(
    params: tuple[ValType, ...], results: tuple[ValType, ...]
) -> None:
    """The protocol has no v128 values (msgpack ints stop at 64 bits): a clear refusal, not
    a guest that fails while encoding the result."""
    func = _function(params, results)
    with pytest.raises(ArgumentError, match="v128"):
        convert_arguments(func, "f", [0] * len(params))
