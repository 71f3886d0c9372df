"""Numbers across the protocol: invoke arguments in, results out.

The host does not know an export's signature (it never decodes the module), so it sends the
numbers as the user wrote them (ints and floats) and the guest fits them to the parameter
types here. Results go back as ``[type, value]`` pairs with the engine's canonical values
(integers unsigned); the host prints them signed.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from guestproc.engine.runtime import Function
from guestproc.engine.types import ValType
from protocol.messages import ResultValue, ValueType

_F32 = struct.Struct("<f")
_BITS = {ValType.I32: 32, ValType.I64: 64}
_NUMBERS = frozenset({ValType.I32, ValType.I64, ValType.F32, ValType.F64})
# The protocol's name of each value type, looked up once: calling the enum (``ValueType(text)``)
# runs the enum module's Python code, whose pages a forked guest would copy on first use.
_KINDS = {
    valtype: ValueType(valtype.text)
    for valtype in ValType
    if valtype.text in ValueType._value2member_map_
}


class ArgumentError(ValueError):
    """An argument does not fit its parameter; the text names which and why."""


def _to_f32(value: float) -> float:
    try:
        return float(_F32.unpack(_F32.pack(value))[0])
    except OverflowError:
        # Out of single-precision range: rounds to infinity, as a conversion would.
        return float("inf") if value > 0 else float("-inf")


def convert_argument(valtype: ValType, value: Any, export: str, index: int) -> Any:
    """``value`` as a canonical value of ``valtype``; ``ArgumentError`` if it cannot be.
    ``export`` and ``index`` (from 1) say which parameter it is, for the error.

    Integers may be given signed or unsigned (``-1`` and ``4294967295`` are the same i32);
    floats accept ints; references cannot be passed.
    """
    # The plain cases first: the parameter is named only on the way to an error, so a
    # forked guest's first request builds (and copies the pages of) no text for it.
    kind = type(value)
    if valtype in _BITS:
        bits = _BITS[valtype]
        if kind is int and -(1 << (bits - 1)) <= value < (1 << bits):
            return value & ((1 << bits) - 1)
    elif valtype in (ValType.F32, ValType.F64) and (kind is float or kind is int):
        number = float(value)
        return _to_f32(number) if valtype is ValType.F32 else number
    name = f"{export}'s parameter {index} ({valtype.text})"
    return _convert_other(valtype, value, name)


def _convert_other(valtype: ValType, value: Any, name: str) -> Any:
    """``convert_argument`` for what is not a plain int or float, or does not fit."""
    if valtype in _BITS:
        bits = _BITS[valtype]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError(f"{name} must be an integer, got {value!r}")
        if not -(1 << (bits - 1)) <= value < (1 << bits):
            low, high = -(1 << (bits - 1)), (1 << bits) - 1
            raise ArgumentError(f"{name} is out of range: {value} (it takes {low} to {high})")
        return value & ((1 << bits) - 1)
    if valtype in (ValType.F32, ValType.F64):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ArgumentError(f"{name} must be a number, got {value!r}")
        number = float(value)
        return _to_f32(number) if valtype is ValType.F32 else number
    if valtype is ValType.V128:
        raise ArgumentError(f"{name}: {_NO_V128}")
    raise ArgumentError(f"{name}: a reference cannot be passed as an argument")


# The protocol's numbers are msgpack ints of 64 bits at most, and ``ValueType`` has no v128.
_NO_V128 = "a v128 cannot cross between host and guest (the protocol has no v128 values yet)"


def convert_arguments(func: Function, export: str, args: Sequence[Any]) -> list[Any]:
    """``args`` fitted to ``func``'s parameters; ``ArgumentError`` if they do not fit, or if
    ``func`` returns a value ``encode_result`` cannot send (a v128: refused before it runs)."""
    if ValType.V128 in func.type.results:
        raise ArgumentError(f"{export} returns a v128: {_NO_V128}")
    params = func.type.params
    if len(args) != len(params):
        wanted = ", ".join(p.text for p in params) or "nothing"
        raise ArgumentError(f"{export} takes {len(params)} arguments ({wanted}), got {len(args)}")
    converted = []
    # A loop: a comprehension would make a function object, and copy its pages, per call.
    for index, valtype in enumerate(params):
        converted.append(convert_argument(valtype, args[index], export, index + 1))
    return converted


def encode_result(valtype: ValType, value: Any) -> ResultValue:
    """One value of a ``Result`` message: numbers as the engine holds them (integers
    unsigned), references None for null or a short description."""
    kind = _KINDS.get(valtype) or ValueType(valtype.text)
    if valtype in _NUMBERS or value is None:
        return ResultValue(type=kind, value=value)
    if isinstance(value, Function):
        return ResultValue(type=kind, value=(value.name or "function")[:200])
    return ResultValue(type=kind, value=valtype.text)
