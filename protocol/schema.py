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
import inspect
import marshal
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
    """Base of every declared record. Subclasses are made with ``@record``.

    A record is frozen and built with keywords only. Two records are equal when they are of
    the same class with equal fields. ``WIRE_PAIR``: the record travels as a
    ``[first, second]`` list rather than a map (a result's ``[type, value]``). ``TYPE``,
    where a subclass sets it, is the ``type`` key of its map (``protocol.messages``' tags).
    ``problem()`` may add a check across fields (None: fine).
    """

    WIRE_PAIR: ClassVar[bool] = False
    TYPE: ClassVar[Any] = None
    __record_fields__: ClassVar[tuple[str, ...]] = ()
    __record_defaults__: ClassVar[dict[str, Any]] = {}

    def __init__(self, **values: Any) -> None:
        # One generic __init__ for every record: building 26 dataclasses cost every guest
        # process 20 ms at start-up, and a generated __init__ per class touches its own
        # objects (pages a forked guest copies).
        cls = type(self)
        defaults = cls.__record_defaults__
        for name in cls.__record_fields__:
            if name in values:
                value = values[name]
            elif name in defaults:
                value = defaults[name]
            else:
                raise TypeError(f"{cls.__name__}() missing keyword argument {name!r}")
            object.__setattr__(self, name, value)
        if len(values) > len(cls.__record_fields__) or not values.keys() <= set(
            cls.__record_fields__
        ):
            extra = sorted(set(values) - set(cls.__record_fields__))
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {extra[0]!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__record_fields__)

    def __hash__(self) -> int:
        return hash((type(self), *(getattr(self, n) for n in self.__record_fields__)))

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__record_fields__)
        return f"{type(self).__name__}({shown})"

    def problem(self) -> str | None:
        return None

    def replaced(self: R, **changes: Any) -> R:
        """A copy with ``changes`` to some fields."""
        values = {name: getattr(self, name) for name in self.__record_fields__}
        return type(self)(**{**values, **changes})


@typing.dataclass_transform(frozen_default=True, kw_only_default=True)
def record(cls: type[R]) -> type[R]:
    """Declare ``cls`` a record: its annotated fields (a ``ClassVar`` is not a field), after
    its bases', each with the default its class attribute gives, if any."""
    names = list(cls.__record_fields__)
    defaults = dict(cls.__record_defaults__)
    for name, annotation in inspect.get_annotations(cls).items():
        if "ClassVar" in str(annotation):
            continue
        if name not in names:
            names.append(name)
        if name in cls.__dict__:
            defaults[name] = cls.__dict__[name]
            delattr(cls, name)  # every instance sets it; a class attribute would shadow
    cls.__record_fields__ = tuple(names)
    cls.__record_defaults__ = defaults
    return cls


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
        for name in cls.__record_fields__:
            annotation, constraints = _split(hints[name])
            optional = name in cls.__record_defaults__ and cls.__record_defaults__[name] is None
            built.append(FieldSpec(name, annotation, constraints, optional))
        specs = _SPECS[cls] = tuple(built)
    return specs


WARM_UP_ROUNDS = 16
"""How often ``prepare`` reads and writes a sample of each record: more than CPython 3.11
needs to specialise the code it runs (8 calls), so that a template's guests find it done."""


def prepare(classes: typing.Iterable[type[Record]]) -> None:
    """Get reading and writing ``classes`` (and the records they nest) ready now rather
    than on first use: their field tables and checkers, the generated readers and writers
    (``_generate``), and the specialised bytecode of the code that runs them (by reading
    and writing a sample of each, ``WARM_UP_ROUNDS`` times). A template does this before it
    forks: its guests then share the result instead of each building its own (and copying
    every page that holds code the interpreter rewrites on first runs)."""
    chosen: list[type[Record]] = []
    _gather(classes, chosen)
    for cls in chosen:
        _record_checker(cls)
    _generate(chosen)
    for cls in chosen:
        sample = _sample(cls)
        for _ in range(WARM_UP_ROUNDS):
            from_wire(cls, to_wire(sample))


def _gather(classes: typing.Iterable[type[Record]], into: list[type[Record]]) -> None:
    """``classes`` and every record they nest, each once, nested ones first."""
    for cls in classes:
        if cls in into:
            continue
        for spec in fields_of(cls):
            _gather(_records_in(spec.annotation), into)
        into.append(cls)


def _records_in(annotation: Any) -> list[type[Record]]:
    return [p for p in _parts(annotation) if isinstance(p, type) and issubclass(p, Record)]


def _sample(cls: type[R]) -> R:
    """A valid ``cls`` with the least value of every field."""
    values = {
        spec.name: _sample_value(spec.annotation, spec.constraints) for spec in fields_of(cls)
    }
    return cls(**values)


def _sample_value(annotation: Any, constraints: tuple[Constraint, ...]) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return _sample_value(*_split(typing.get_args(annotation)[0]))
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin is list:  # one item, so that the item's checker runs too
        (item,) = typing.get_args(annotation)
        return [_sample_value(*_split(item))]
    if annotation is None or annotation is type(None):
        return None
    if issubclass(annotation, Record):
        return _sample(annotation)
    if issubclass(annotation, enum.Enum):
        allowed = [c.members for c in constraints if isinstance(c, OneOf)]
        return min(allowed[0], key=str) if allowed else next(iter(annotation))
    low = next((c.low for c in constraints if isinstance(c, Range | Length)), 0)
    if annotation is str:
        return "x" * int(low)
    if annotation is bytes:
        return b"x" * int(low)
    return annotation(low)


def _parts(annotation: Any) -> list[Any]:
    arguments = typing.get_args(annotation)
    if not arguments:
        return [annotation]
    return [part for argument in arguments for part in _parts(_split(argument)[0])]


def _split(annotation: Any) -> tuple[Any, tuple[Constraint, ...]]:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        return base, tuple(m for m in metadata if isinstance(m, Range | Length | OneOf))
    return annotation, ()


# -- the checker: wire value -> record -------------------------------------------------------
#
# Each field's annotation is turned into a small function once (``_checker``), so reading a
# message walks no typing objects: a guest reads one per request, and a forked guest that
# touched the template's typing objects would copy their pages for itself.

Check = typing.Callable[[Any, str], Any]  # (value, where) -> the value, converted


@dataclasses.dataclass
class _RecordChecker:
    names: frozenset[str]
    fields: tuple[tuple[str, bool, Check, str], ...]  # name, optional, check, "Record.name"


_CHECKERS: dict[type, _RecordChecker] = {}

_READERS: dict[type, typing.Callable[[Any], Any]] = {}
"""Each record's fields read in one generated function (``_fast_reader``), made by
``prepare`` only: it pays off in a template's forked guests, not in a process that reads a
few messages (compiling them all costs a few milliseconds). Looked up on its own, not in the
record's checker: a guest that reads with it touches nothing of the checker's."""


def _record_checker(cls: type[Record]) -> _RecordChecker:
    checker = _CHECKERS.get(cls)
    if checker is None:
        specs = fields_of(cls)
        checker = _CHECKERS[cls] = _RecordChecker(
            frozenset(spec.name for spec in specs) | {"type"},
            tuple(
                (
                    spec.name,
                    spec.optional,
                    _checker(spec.annotation, spec.constraints),
                    f"{cls.__name__}.{spec.name}",
                )
                for spec in specs
            ),
        )
    return checker


def from_wire(cls: type[R], value: Any, where: str | None = None) -> R:
    """``value`` (a decoded map, or pair) checked against ``cls`` and made a ``cls``;
    ``SchemaError`` naming the field otherwise. A message's ``type`` key is not a field."""
    fast = _READERS.get(cls) if where is None else None
    if fast is not None:
        made = fast(value)
        if made is not None:
            return made  # type: ignore[no-any-return]
    checker = _record_checker(cls)
    nested = where is not None  # else the field names are known: no text is made per read
    where = where or cls.__name__
    if cls.WIRE_PAIR:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise SchemaError(f"{where}: must be a pair")
        value = {field[0]: item for field, item in zip(checker.fields, value, strict=True)}
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: must be a map, got {type(value).__name__}")
    if not checker.names.issuperset(value):
        extra = sorted(map(str, set(value) - checker.names))[0]
        raise SchemaError(f"{where}: unexpected field {extra!r}")
    arguments = {}
    for name, optional, check, named in checker.fields:
        if name in value:
            arguments[name] = check(value[name], f"{where}.{name}" if nested else named)
        elif not optional:
            raise SchemaError(f"{where}: missing field {name!r}")
    made = cls(**arguments)
    problem = made.problem()
    if problem:
        raise SchemaError(f"{where}: {problem}")
    return made


# The fast reader: one function per record, generated from its declaration, that accepts
# only what the checker above accepts (and converts nothing): simple fields (int, float,
# str, bytes, None, unions and lists of them, with ``Range`` and ``Length``). It answers
# None for anything else -- a value it is not sure of -- and ``from_wire`` then reads the
# value with the checker, which accepts it or names the problem. A forked guest reads each
# request with the fast reader: one function and its constants, where the checker calls a
# closure (with its cells, constraints and their bounds, all in different pages) per field
# and per list item, and each touched object is a page the guest copies.

_FAST_SCALARS = {int: "int", float: "float", str: "str", bytes: "bytes"}


def _fast_test(
    annotation: Any, constraints: tuple[Constraint, ...], v: str, in_union: bool
) -> str | None:
    """A Python expression true only when the checker would take ``v`` unchanged."""
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        tests = [_fast_test(*_split(option), v, True) for option in typing.get_args(annotation)]
        if None in tests:
            return None
        test = " or ".join(f"({t})" for t in tests)
    elif annotation is None or annotation is type(None):
        test = f"{v} is None"
    elif annotation in _FAST_SCALARS:
        # type(v) is: no subclass (bool is no int), and a float field takes no int here
        test = f"type({v}) is {_FAST_SCALARS[annotation]}"
    else:
        return None
    if all(isinstance(c, Length) for c in constraints):
        return _fast_length(test, constraints, v)
    return _fast_range(test, constraints, v, annotation is float)


def _fast_length(test: str, constraints: tuple[Constraint, ...], v: str) -> str | None:
    for constraint in constraints:
        if not isinstance(constraint, Length):
            return None
        test = f"({test}) and {constraint.low!r} <= len({v}) <= {constraint.high!r}"
    return test


def _fast_range(
    test: str, constraints: tuple[Constraint, ...], v: str, floating: bool
) -> str | None:
    for constraint in constraints:
        if isinstance(constraint, Range):
            if not all(
                type(b) in (int, float) and math.isfinite(b)
                for b in (constraint.low, constraint.high)
            ):
                return None
            finite = f" and {v} - {v} == 0" if floating else ""
            test = f"({test}) and {constraint.low!r} <= {v} <= {constraint.high!r}{finite}"
        else:
            return None
    return test


def _fast_reader(cls: type[Record], name: str, names: str, made: str) -> list[str] | None:
    """The source of function ``name``, the fast reader of ``cls``; it finds the set of
    allowed keys as global ``names`` and the class as ``made``. None: ``cls`` has a field
    it cannot check."""
    if cls.WIRE_PAIR or cls.problem is not Record.problem:
        return None
    lines = [
        f"def {name}(value):",
        f"    if type(value) is not dict or not {names}.issuperset(value):",
        "        return None",
    ]
    arguments = []
    for number, spec in enumerate(fields_of(cls)):
        v = f"v{number}"
        if typing.get_origin(spec.annotation) is list:
            (item,) = typing.get_args(spec.annotation)
            test = _fast_test(*_split(item), "e", False)
            outer = _fast_length(f"type({v}) is list", spec.constraints, v)
            if test is None or outer is None:
                return None
            check = [
                f"    if not ({outer}):",
                "        return None",
                f"    for e in {v}:",
                f"        if not ({test}):",
                "            return None",
                f"    {v} = list({v})",
            ]
        else:
            test = _fast_test(spec.annotation, spec.constraints, v, False)
            if test is None:
                return None
            check = [f"    if not ({test}):", "        return None"]
        if spec.optional:  # left out: its default, None
            lines.append(f"    {v} = None")
            lines.append(f"    if {spec.name!r} in value:")
            lines.append(f"        {v} = value[{spec.name!r}]")
            lines.extend("    " + line for line in check)
        else:
            lines.append(f"    if {spec.name!r} not in value:")
            lines.append("        return None")
            lines.append(f"    {v} = value[{spec.name!r}]")
            lines.extend(check)
        arguments.append(f"{spec.name}={v}")
    lines.append(f"    return {made}({', '.join(arguments)})")
    return lines


def _checker(annotation: Any, constraints: tuple[Constraint, ...], in_union: bool = False) -> Check:
    """The function that checks (and converts) a value of ``annotation``."""
    convert = _converter(annotation, in_union)
    if not constraints:
        return convert

    def check(value: Any, where: str) -> Any:
        checked = convert(value, where)
        for constraint in constraints:
            problem = constraint.problem(checked)
            if problem:
                raise SchemaError(f"{where}: {problem}")
        return checked

    return check


def _converter(annotation: Any, in_union: bool) -> Check:
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        options = [
            _checker(*_split(option), in_union=True) for option in typing.get_args(annotation)
        ]
        name = _type_name(annotation)

        def one_of(value: Any, where: str) -> Any:
            for option in options:
                try:
                    return option(value, where)
                except SchemaError:
                    continue
            raise SchemaError(f"{where}: {_shown(value)} is not {name}")

        return one_of
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)

        def literal(value: Any, where: str) -> Any:
            if value not in allowed or isinstance(value, bool):
                raise SchemaError(f"{where}: {_shown(value)} is not one of {allowed}")
            return value

        return literal
    if origin is list:
        (item,) = typing.get_args(annotation)
        check_item = _checker(*_split(item))

        def listed(value: Any, where: str) -> Any:
            if not isinstance(value, list):
                raise SchemaError(f"{where}: must be a list")
            try:
                return [check_item(element, where) for element in value]
            except SchemaError as exc:  # name the item (found again: errors are rare)
                index = next(i for i, e in enumerate(value) if _fails(check_item, e, where))
                raise SchemaError(str(exc).replace(where, f"{where}[{index}]", 1)) from None

        return listed
    if annotation is None or annotation is type(None):

        def null(value: Any, where: str) -> Any:
            if value is not None:
                raise SchemaError(f"{where}: must be null")
            return None

        return null
    if not isinstance(annotation, type):
        raise TypeError(f"the schema cannot check {annotation!r}")  # a declaration bug
    if issubclass(annotation, Record):
        nested: type[Record] = annotation
        return lambda value, where: from_wire(nested, value, where)
    if issubclass(annotation, enum.Enum):
        return _enum_converter(annotation)
    return _scalar_converter(annotation, in_union)


def _fails(check: Check, value: Any, where: str) -> bool:
    try:
        check(value, where)
    except SchemaError:
        return True
    return False


def _enum_converter(vocabulary: type[enum.Enum]) -> Check:
    value_type = type(next(iter(vocabulary)).value)

    def member(value: Any, where: str) -> Any:
        if type(value) is value_type or isinstance(value, vocabulary):
            try:
                return vocabulary(value)
            except ValueError:
                pass
        raise SchemaError(f"{where}: {_shown(value)} is not a {vocabulary.__name__}")

    return member


def _scalar_converter(kind: type, in_union: bool) -> Check:
    # As pydantic's strict mode, a float field takes an int; a union takes it as an int.
    widen = kind is float and not in_union

    def scalar(value: Any, where: str) -> Any:
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        if widen and type(value) is int:
            return float(value)
        raise SchemaError(f"{where}: must be {kind.__name__}, got {type(value).__name__}")

    return scalar


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
    writer = _WRITERS.get(type(item))  # generated by ``prepare`` (a template), else walk
    return _to_wire_walk(item, tag) if writer is None else writer(item, tag)


# Each record is written by a function generated from its declaration (``_writer``): one
# function and its constants, rather than a walk over a field table with a call per value
# -- fewer objects, so fewer pages, for a forked guest to touch per reply.

_WRITERS: dict[type, typing.Callable[[Any, str | None], Any]] = {}


def _writer(cls: type[Record], numbers: dict[type[Record], int]) -> list[str]:
    """The source of the writer of ``cls`` (``_names``); ``numbers`` numbers every record
    it may nest."""
    lines = [
        f"def {_names(cls, numbers[cls])[1]}(item, tag=TAG{numbers[cls]}):",
        "    encoded = {} if tag is None else {'type': tag}",
    ]
    for spec in fields_of(cls):
        value = f"item.{spec.name}"
        nested = _records_in(spec.annotation)
        if typing.get_origin(spec.annotation) is list and len(nested) == 1:
            # a list of one kind of record: each written by its own writer
            _, write, made = _names(nested[0], numbers[nested[0]])
            written = _inline_writer(nested[0], "e") or f"{write}(e, None)"
            lines += [
                f"    v = {value}",
                "    if type(v) is list:",
                "        w = []",
                "        for e in v:",
                f"            w.append({written} if type(e) is {made} else ENCODE(e))",
                "        v = w",
                "    else:",
                "        v = ENCODE(v)",
            ]
        elif not _plain(spec):
            lines.append(f"    v = ENCODE({value})")
        else:
            lines.append(f"    v = {value}")
        if spec.optional:
            lines.append("    if v is not None:")
            lines.append(f"        encoded[{spec.name!r}] = v")
        else:
            lines.append(f"    encoded[{spec.name!r}] = v")
    lines.append("    return list(encoded.values())" if cls.WIRE_PAIR else "    return encoded")
    return lines


def _plain(spec: FieldSpec) -> bool:
    """Whether a field's value travels as it is held: no record and no list in its type."""
    parts = _parts(spec.annotation)
    return not (
        _records_in(spec.annotation)
        or any(typing.get_origin(p) is list or p is list for p in parts)
        or typing.get_origin(spec.annotation) is list
    )


def _run_generated(source: list[str], namespace: dict[str, Any]) -> None:
    """Run generated ``source`` in ``namespace``. The compiled module goes through
    ``marshal`` first: unmarshalling makes every code object and constant in one burst,
    packed on few pages (as an imported module's are), where compiling interleaves them
    with the compiler's own short-lived objects. Every object a forked guest touches costs
    it the page it sits on."""
    exec(marshal.loads(marshal.dumps(compile("\n".join(source), "<generated>", "exec"))), namespace)


def _generate(classes: list[type[Record]]) -> None:
    """Make the fast reader (where one can be made) and the writer of each of ``classes``
    (which include every record they nest): the source of all of them compiled as one
    module, sharing one namespace (``_run_generated``)."""
    numbers = {cls: number for number, cls in enumerate(classes)}
    source: list[str] = []
    for cls, number in numbers.items():
        read, _, made = _names(cls, number)
        source += _fast_reader(cls, read, f"NAMES{number}", made) or []
        source += _writer(cls, numbers)
    namespace: dict[str, Any] = {"ENCODE": _encode}
    for cls, number in numbers.items():
        namespace[f"NAMES{number}"] = _wire_keys(cls)
        namespace[f"TAG{number}"] = cls.TYPE
        namespace[_names(cls, number)[2]] = cls
    _run_generated(source, namespace)
    for cls, number in numbers.items():
        read, write, _ = _names(cls, number)
        if read in namespace:
            _READERS[cls] = namespace[read]
        _WRITERS[cls] = namespace[write]
        if cls.TYPE is not None and not cls.__subclasses__():
            # ``item.wire()`` calls the writer itself: no method or lookup in between (set
            # by name: mypy allows no assignment to a method)
            setattr(cls, "wire", namespace[write])  # noqa: B010


def _wire_keys(cls: type[Record]) -> frozenset[str]:
    """The keys a map of ``cls`` may have: its fields, and ``type``."""
    return frozenset(spec.name for spec in fields_of(cls)) | {"type"}


def _inline_writer(cls: type[Record], item: str) -> str | None:
    """An expression that writes ``item``, a ``cls``, as its writer would, where every field
    of ``cls`` is a plain value that must be there (None otherwise): a nested record is then
    written without a call."""
    specs = fields_of(cls)
    if any(spec.optional or not _plain(spec) for spec in specs):
        return None
    if cls.WIRE_PAIR:
        return "[" + ", ".join(f"{item}.{spec.name}" for spec in specs) + "]"
    return "{" + ", ".join(f"{spec.name!r}: {item}.{spec.name}" for spec in specs) + "}"


def tag_reader(tagged: typing.Mapping[str, type[Record]]) -> typing.Callable[[Any], Any]:
    """One generated function that reads a map as the record its ``type`` key names in
    ``tagged`` (looked for in ``tagged``'s order), as ``from_wire`` would; None where the
    checker must look: a value that does not fit, or a record with a field no fast reader
    checks. It is the readers of ``prepare`` with the dispatch in front, in one function:
    a forked guest that reads a request through it runs one function it copies a page of,
    instead of five (a template makes it before it forks)."""
    source = [
        "def read_tagged(value):",
        "    if type(value) is not dict:",
        "        return None",
        "    tag = value.get('type')",
    ]
    namespace: dict[str, Any] = {}
    for number, (tag, cls) in enumerate(tagged.items()):
        body = _fast_reader(cls, "read", f"NAMES{number}", f"RECORD{number}")
        if body is None:
            continue
        namespace[f"NAMES{number}"] = _wire_keys(cls)
        namespace[f"RECORD{number}"] = cls
        source.append(f"    if tag == {str(tag)!r}:")
        source += ["    " + line for line in body[1:]]
    source.append("    return None")
    _run_generated(source, namespace)
    reader: typing.Callable[[Any], Any] = namespace["read_tagged"]
    return reader


def _names(cls: type[Record], number: int) -> tuple[str, str, str]:
    """The generated module's names for ``cls``: its reader, its writer, the class."""
    return f"read_{number}_{cls.__name__}", f"write_{number}_{cls.__name__}", f"RECORD{number}"


def _to_wire_walk(item: Record, tag: str | None = None) -> Any:
    """``to_wire`` by walking the declaration (what the generated writers must agree with)."""
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
    if type(value) is list:
        return [_encode(element) for element in value]
    return value
