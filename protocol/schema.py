"""How ``protocol.messages`` declares records, and the guest's checker of them.

A message or a part of one is a frozen dataclass (a ``Record``) whose field annotations say
everything a reader must check: the Python type, and in ``Annotated`` metadata the bounds
(``Range``), sizes (``Length``) and allowed enum members (``OneOf``). One declaration serves
three readers::

    protocol.messages  (declarations) ──▶ schema.from_wire   the guest's checker (this module)
                                      ──▶ protocol.models    the host's pydantic models
                                      ──▶ mypy               attribute types on both sides

Types a declaration may use: ``int`` (never ``bool``), ``float`` (an int is accepted, as
pydantic's strict mode does), ``str``, ``bytes``, ``None``, unions of them, ``Literal``,
enums (by value), ``list[T]``, and nested ``Record``s. A field whose default is ``None`` may be
left out on the wire (``to_wire`` leaves it out when it is None); every other field must be
there, and no other key may be.

Only the standard library: the guest imports this at start-up.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from typing import Any, ClassVar, TypeVar, Union

R = TypeVar("R", bound="Record")


class SchemaError(ValueError):
    """A wire value does not fit its declaration; the text names the record and the field."""


# -- constraints, read by the checker here and by the host's pydantic derivation --------------


@dataclasses.dataclass(frozen=True)
class Range:
    """An int or float between ``low`` and ``high``, both included (floats also finite)."""

    low: int | float
    high: int | float

    def problem(self, value: Any) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return f"{value} is not a finite number"
        if not self.low <= value <= self.high:
            return f"{value} is not between {self.low} and {self.high}"
        return None


@dataclasses.dataclass(frozen=True)
class Length:
    """A str, bytes or list of ``low`` to ``high`` items."""

    low: int
    high: int

    def problem(self, value: Any) -> str | None:
        if not self.low <= len(value) <= self.high:
            return f"length {len(value)} is not between {self.low} and {self.high}"
        return None


class OneOf:
    """Only these members of an enum (a subset of its vocabulary) are allowed here."""

    def __init__(self, *members: enum.Enum) -> None:
        self.members = frozenset(members)

    def problem(self, value: Any) -> str | None:
        if value not in self.members:
            allowed = ", ".join(sorted(str(member.value) for member in self.members))
            shown = value.value if isinstance(value, enum.Enum) else value
            return f"{shown!r} is not allowed here (allowed: {allowed})"
        return None


Constraint = Range | Length | OneOf


# -- records -----------------------------------------------------------------------------------


class Record:
    """Base of every declared record. Subclasses are ``@record`` dataclasses.

    ``WIRE_PAIR``: the record travels as a ``[first, second]`` list rather than a map (a
    result's ``[type, value]``). ``problem()`` may add a check across fields (None: fine).
    """

    WIRE_PAIR: ClassVar[bool] = False

    def problem(self) -> str | None:
        return None


@typing.dataclass_transform(frozen_default=True, kw_only_default=True)
def record(cls: type[R]) -> type[R]:
    """Make ``cls`` a frozen, keyword-only dataclass: how every record is declared."""
    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One field as the checker and the pydantic derivation see it."""

    name: str
    annotation: Any  # the type with its Annotated metadata removed
    constraints: tuple[Constraint, ...]
    optional: bool  # its default is None: it may be left out


_SPECS: dict[type, tuple[FieldSpec, ...]] = {}


def fields_of(cls: type[Record]) -> tuple[FieldSpec, ...]:
    """The declared fields of ``cls``, in order (computed once per class)."""
    specs = _SPECS.get(cls)
    if specs is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        built = []
        for item in dataclasses.fields(cls):  # type: ignore[arg-type]
            annotation, constraints = _split(hints[item.name])
            built.append(FieldSpec(item.name, annotation, constraints, item.default is None))
        specs = _SPECS[cls] = tuple(built)
    return specs


def _split(annotation: Any) -> tuple[Any, tuple[Constraint, ...]]:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        return base, tuple(m for m in metadata if isinstance(m, Range | Length | OneOf))
    return annotation, ()


# -- the checker: wire value -> record -------------------------------------------------------


def from_wire(cls: type[R], value: Any, where: str | None = None) -> R:
    """``value`` (a decoded map, or pair) checked against ``cls`` and made a ``cls``;
    ``SchemaError`` naming the field otherwise. A message's ``type`` key is not a field."""
    where = where or cls.__name__
    specs = fields_of(cls)
    if cls.WIRE_PAIR:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise SchemaError(f"{where}: must be a pair")
        value = {spec.name: item for spec, item in zip(specs, value, strict=True)}
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: must be a map, got {type(value).__name__}")
    names = {spec.name for spec in specs}
    extra = set(value) - names - {"type"}
    if extra:
        raise SchemaError(f"{where}: unexpected field {sorted(map(str, extra))[0]!r}")
    arguments = {}
    for spec in specs:
        if spec.name not in value:
            if spec.optional:
                continue
            raise SchemaError(f"{where}: missing field {spec.name!r}")
        arguments[spec.name] = _check(
            value[spec.name], spec.annotation, spec.constraints, f"{where}.{spec.name}"
        )
    made = cls(**arguments)
    problem = made.problem()
    if problem:
        raise SchemaError(f"{where}: {problem}")
    return made


def _check(
    value: Any,
    annotation: Any,
    constraints: tuple[Constraint, ...],
    where: str,
    in_union: bool = False,
) -> Any:
    checked = _convert(value, annotation, where, in_union)
    for constraint in constraints:
        problem = constraint.problem(checked)
        if problem:
            raise SchemaError(f"{where}: {problem}")
    return checked


def _convert(value: Any, annotation: Any, where: str, in_union: bool) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        for option in typing.get_args(annotation):
            try:
                return _check(value, *_split(option), where, in_union=True)
            except SchemaError:
                continue
        raise SchemaError(f"{where}: {_shown(value)} is not {_type_name(annotation)}")
    if origin is typing.Literal:
        if value not in typing.get_args(annotation) or isinstance(value, bool):
            raise SchemaError(
                f"{where}: {_shown(value)} is not one of {typing.get_args(annotation)}"
            )
        return value
    if origin is list:
        if not isinstance(value, list):
            raise SchemaError(f"{where}: must be a list")
        (item,) = typing.get_args(annotation)
        base, constraints = _split(item)
        return [
            _check(element, base, constraints, f"{where}[{i}]") for i, element in enumerate(value)
        ]
    if annotation is None or annotation is type(None):
        if value is not None:
            raise SchemaError(f"{where}: must be null")
        return None
    if isinstance(annotation, type):
        if issubclass(annotation, Record):
            return from_wire(annotation, value, where)
        if issubclass(annotation, enum.Enum):
            value_type = type(next(iter(annotation)).value)
            if type(value) is value_type or isinstance(value, annotation):
                try:
                    return annotation(value)
                except ValueError:
                    pass
            raise SchemaError(f"{where}: {_shown(value)} is not a {annotation.__name__}")
        if annotation is float and type(value) is int and not in_union:
            return float(value)  # as pydantic's strict mode allows; a union takes it as an int
        if isinstance(value, annotation) and not (isinstance(value, bool) and annotation is int):
            return value
        raise SchemaError(f"{where}: must be {annotation.__name__}, got {type(value).__name__}")
    raise TypeError(f"{where}: the schema cannot check {annotation!r}")  # a declaration bug


def _type_name(annotation: Any) -> str:
    base, constraints = _split(annotation)
    origin = typing.get_origin(base)
    if origin is Union or origin is types.UnionType:
        return " or ".join(_type_name(option) for option in typing.get_args(base))
    name = "null" if base is None or base is type(None) else getattr(base, "__name__", str(base))
    ranges = [c for c in constraints if isinstance(c, Range)]
    return f"{name} in [{ranges[0].low}, {ranges[0].high}]" if ranges else name


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- record -> wire value ----------------------------------------------------------------------


def to_wire(item: Record, tag: str | None = None) -> Any:
    """The map (or pair) a record travels as; ``tag`` becomes its ``type`` key. Optional
    fields that are None are left out."""
    encoded: dict[str, Any] = {} if tag is None else {"type": tag}
    for spec in fields_of(type(item)):
        value = getattr(item, spec.name)
        if value is None and spec.optional:
            continue
        encoded[spec.name] = _encode(value)
    if item.WIRE_PAIR:
        return list(encoded.values())
    return encoded


def _encode(value: Any) -> Any:
    if isinstance(value, Record):
        return to_wire(value)
    if isinstance(value, list):
        return [_encode(element) for element in value]
    return value
