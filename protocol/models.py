"""The host's gate for untrusted input: pydantic models derived from ``protocol.messages``.

Every record declared in ``protocol.messages`` gets a pydantic model here, built from the
same annotations the guest's checker reads (``protocol.schema``): a subclass of the
declaration, so the host dispatches on the declared classes (``isinstance(message,
Console)``) and mypy knows every field. The models are strict (no coercion: ``"1"`` is not
an int, ``True`` is not a number, text is not bytes), forbid unknown fields and bound every
size. A frame that does not fit raises ``InvalidMessage`` naming the message type and field --
and the host then ends that guest with ``protocol_error``.

Only the host imports this module: pydantic is far too slow to import in every guest.
"""

from __future__ import annotations

import enum
import typing
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    create_model,
    model_validator,
)

from .messages import (
    GUEST_TO_HOST,
    TEMPLATE_TO_HOST,
    GuestMessage,
    Message,
    TemplateReply,
    declaration_of,
)
from .schema import Length, OneOf, Range, Record, SchemaError, fields_of

R = TypeVar("R", bound=Record)


class InvalidMessage(Exception):
    """A frame's value is not a message the sender may send; the text says what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Checked(_Strict):
    """For a record with a check across its fields (``Record.problem``): a validator in
    Python costs every frame of the record time, so only these have one."""

    @model_validator(mode="after")
    def _record_problem(self) -> Any:
        problem = self.problem()  # type: ignore[attr-defined]  # Record.problem
        if problem:
            raise ValueError(problem)
        return self


class _Pair(_Checked):
    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, data: Any) -> Any:
        # On the wire this record is a [first, second] pair.
        if isinstance(data, list | tuple):
            if len(data) != 2:
                raise ValueError(f"must be a pair, got {len(data)} items")
            names = list(cls.model_fields)
            return dict(zip(names, data, strict=True))
        return data


_MODELS: dict[type[Record], type[BaseModel]] = {}


def model_of(declaration: type[R]) -> type[R]:
    """The pydantic model of a declared record: a subclass of ``declaration``."""
    model = _MODELS.get(declaration)
    if model is None:
        definitions: dict[str, Any] = {}
        if issubclass(declaration, Message):
            definitions["type"] = (Literal[str(declaration.TYPE)], ...)
        for spec in fields_of(declaration):
            annotation = _pydantic_type(
                typing.get_type_hints(declaration, include_extras=True)[spec.name]
            )
            definitions[spec.name] = (annotation, None if spec.optional else ...)
        checked = declaration.problem is not Record.problem
        base = _Pair if declaration.WIRE_PAIR else _Checked if checked else _Strict
        bases: Any = (base, declaration)
        model = create_model(
            declaration.__name__, __base__=bases, __module__=__name__, **definitions
        )
        _MODELS[declaration] = model
    return model  # type: ignore[return-value]


def _pydantic_type(annotation: Any) -> Any:
    """``annotation`` with nested records replaced by their models, and enums taken by value
    (strict mode would want enum instances, which msgpack never gives)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *metadata = typing.get_args(annotation)
        constraints = tuple(_constraint(item, base) for item in metadata)
        if base is str:  # bounded as sent, then made printable
            return Annotated[(str, *constraints, _PRINTABLE)]
        return Annotated[(_pydantic_type(base), *constraints)]
    if annotation is str:
        return Annotated[str, _PRINTABLE]
    if origin is not None and origin is not Literal:
        arguments = tuple(_pydantic_type(argument) for argument in typing.get_args(annotation))
        if origin is list:
            return list[arguments]  # type: ignore[valid-type]
        return typing.Union[arguments]  # noqa: UP007  # rebuilt from its parts
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return model_of(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return Annotated[annotation, PlainValidator(_enum_reader(annotation))]
    return annotation


def printable(text: str) -> str:
    """``text`` with every character that is not printable escaped as Python writes it
    (``\\x1b``, ``\\u202e``): text from a guest never drives the terminal, the log or
    the report the host puts it in."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_PRINTABLE = AfterValidator(printable)
"""On every text field a guest sends: an export or import name in an error, a trap's
message. (Console output is bytes and passes untouched: it is the program's own.)"""


def _constraint(item: Any, base: Any) -> Any:
    """A ``protocol.schema`` constraint as pydantic expresses it."""
    if isinstance(item, Range):
        if base is float:
            return Field(ge=item.low, le=item.high, allow_inf_nan=False)
        return Field(ge=item.low, le=item.high)
    if isinstance(item, Length):
        return Field(min_length=item.low, max_length=item.high)
    if isinstance(item, OneOf):

        def allowed(value: Any) -> Any:
            problem = item.problem(value)
            if problem:
                raise ValueError(problem)
            return value

        return AfterValidator(allowed)
    return item


def _enum_reader(vocabulary: type[enum.Enum]) -> Any:
    """A validator that takes an enum by its value, of exactly the value's type: strict
    mode wants enum instances, which msgpack never gives, and lax mode takes ``"1"`` or
    ``1.0`` for the int 1."""
    value_type = type(next(iter(vocabulary)).value)

    def read(value: Any) -> enum.Enum:
        if type(value) is value_type or isinstance(value, vocabulary):
            try:
                return vocabulary(value)
            except ValueError:
                pass
        allowed = ", ".join(repr(member.value) for member in vocabulary)
        raise ValueError(f"{_shown(value)} is not one of {allowed}")

    return read


def derive_all() -> None:
    """Derive now the model of every message the host reads (about 30 ms), rather than each
    on first sight. A template's host calls this while the template loads its module: the
    first replies of its guests then find their models made."""
    for declaration in (*GUEST_TO_HOST.values(), *TEMPLATE_TO_HOST.values()):
        model_of(declaration)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: ValidationError, value: Any) -> str:
    tag = value.get("type") if isinstance(value, dict) else None
    where = tag if isinstance(tag, str) and len(tag) <= 40 else "message"
    first = error.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(part) for part in first["loc"] if part != tag)
    more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    text = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}{'.' + path if path else ''}: {text}{more}"


def _parse(channel: dict[str, type[Message]], value: Any) -> Message:
    try:
        declaration = declaration_of(channel, value)
    except SchemaError as exc:
        raise InvalidMessage(f"message: {exc}") from None
    try:
        model: Any = model_of(declaration)
        parsed: Message = model.model_validate(value)
    except ValidationError as exc:
        raise InvalidMessage(_describe(exc, value)) from None
    return parsed


def parse_guest_message(value: Any) -> GuestMessage:
    """Validate one decoded frame from a guest; ``InvalidMessage`` if it is not allowed."""
    return typing.cast("GuestMessage", _parse(GUEST_TO_HOST, value))


def parse_template_reply(value: Any) -> TemplateReply:
    """Validate one control message from a template; ``InvalidMessage`` if not allowed."""
    return typing.cast("TemplateReply", _parse(TEMPLATE_TO_HOST, value))


__all__ = [
    "InvalidMessage",
    "derive_all",
    "model_of",
    "parse_guest_message",
    "parse_template_reply",
]
