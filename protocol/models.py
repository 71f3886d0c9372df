"""Pydantic models of every frame a guest may send: the host's gate for untrusted input.

The host runs each decoded frame through ``parse_guest_message`` before acting on it. The
models are strict (no coercion: ``"1"`` is not an int, ``True`` is not a number, text is not
bytes), forbid unknown fields, and bound every size (message text, result count, console
chunk, stdin request). A frame that does not fit raises ``InvalidMessage`` naming the
message type and field -- and the host then ends that guest with ``protocol_error``.

Only the host imports this module: pydantic is far too slow to import in every guest.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from .messages import (
    CODE_CHUNK,
    GUEST_FRAME_CAP,
    MAX_RESULTS,
    MAX_STDIN_REQUEST,
    MAX_TEXT,
    PROTOCOL_NAME,
    TRAP_KINDS,
    RefusalReason,
)

U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF
REQUEST_ID_MAX = (1 << 63) - 1


class InvalidMessage(Exception):
    """A frame's value is not a message the guest may send; the text says what is wrong."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: Annotated[int, Field(ge=0, le=REQUEST_ID_MAX)]


Text = Annotated[str, Field(max_length=MAX_TEXT)]
Millis = Annotated[float, Field(ge=0.0, le=1e9, allow_inf_nan=False)]


class Hello(_Message):
    """The guest's first frame: which protocol and version it speaks."""

    type: Literal["Hello"]
    protocol: Literal["kindling"]
    version: Annotated[int, Field(ge=0, le=U32_MAX)]
    ready_ns: Annotated[int, Field(ge=0, le=(1 << 63) - 1)]  # CLOCK_MONOTONIC when ready


class LoadTimings(BaseModel):
    """How long each step of loading took inside the guest, in milliseconds."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    decode_ms: Millis
    validate_ms: Millis
    compile_ms: Millis


class Loaded(_Message):
    """The module is decoded, valid and ready to be instantiated."""

    type: Literal["Loaded"]
    timings: LoadTimings
    cache: Text  # what the code cache did (``messages.loaded``)
    # The code size the running memory bound allows for (``protocol.limits``).
    code_size: Annotated[int, Field(ge=0, le=U64_MAX)]


class BootTimings(BaseModel):
    """Instantiation, and the functions translated ahead of time while the guest waited."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    instantiate_ms: Millis
    precompile_ms: Millis
    precompiled: Annotated[int, Field(ge=0, le=U32_MAX)]


class Ready(_Message):
    """The module is instantiated (its start function, if any, has run)."""

    type: Literal["Ready"]
    timings: BootTimings
    cache: Text  # what the code cache did for the metered translation (``messages.ready``)


ValueType = Literal["i32", "i64", "f32", "f64", "funcref", "externref"]

_INT_RANGE = {"i32": U32_MAX, "i64": U64_MAX}


class ResultValue(BaseModel):
    """One result: its Wasm type and its canonical value (ints unsigned)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: ValueType
    value: int | float | Annotated[str, Field(max_length=200)] | None

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, data: Any) -> Any:
        # On the wire a result is a [type, value] pair.
        if isinstance(data, list | tuple):
            if len(data) != 2:
                raise ValueError(f"a result must be a [type, value] pair, got {len(data)} items")
            return {"type": data[0], "value": data[1]}
        return data

    @model_validator(mode="after")
    def _value_fits_type(self) -> ResultValue:
        value = self.value
        if self.type in _INT_RANGE:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"an {self.type} result must be an int")
            if not 0 <= value <= _INT_RANGE[self.type]:
                raise ValueError(f"{value} is out of range for an {self.type}")
        elif self.type in ("f32", "f64"):
            if not isinstance(value, float):
                raise ValueError(f"an {self.type} result must be a float")
        elif not (value is None or isinstance(value, str)):
            raise ValueError(f"a {self.type} result must be null or a description")
        return self

    def signed(self) -> int | float | str | None:
        """The value as people read it: integers signed (an i32 0xFFFFFFFF is -1)."""
        value = self.value
        if self.type == "i32" and isinstance(value, int):
            return value - (1 << 32) if value >= 1 << 31 else value
        if self.type == "i64" and isinstance(value, int):
            return value - (1 << 64) if value >= 1 << 63 else value
        return value

    def display(self) -> str:
        """How ``kindling run --invoke`` prints this value."""
        value = self.signed()
        if value is None:
            return "null"
        if isinstance(value, float):
            return repr(value) if math.isfinite(value) else str(value)
        return str(value)


class Result(_Message):
    """An invoked export returned."""

    type: Literal["Result"]
    results: Annotated[list[ResultValue], Field(max_length=MAX_RESULTS)]
    fuel: Annotated[int, Field(ge=0, le=1 << 63)] | None = None  # used so far, when metered


class Trapped(_Message):
    """Execution trapped; ``kind`` is one of ``messages.TRAP_KINDS``."""

    type: Literal["Trapped"]
    kind: str
    message: Text

    @model_validator(mode="after")
    def _known_kind(self) -> Trapped:
        if self.kind not in TRAP_KINDS:
            raise ValueError(f"unknown trap kind {self.kind[:60]!r}")
        return self


class Exited(_Message):
    """The program called ``proc_exit(code)``; the guest process exits next."""

    type: Literal["Exited"]
    code: Annotated[int, Field(ge=0, le=U32_MAX)]


class LimitReached(_Message):
    """The guest hit a limit it enforces itself (linear memory at instantiation, fuel)."""

    type: Literal["LimitReached"]
    resource: Literal["memory", "fuel"]
    message: Text


class LoadFailed(_Message):
    """The module could not be loaded; the guest process exits next."""

    type: Literal["LoadFailed"]
    stage: Literal["decode", "validation", "link", "compile"]
    message: Text


class Refused(_Message):
    """The guest cannot do what the request asked (no such export, wrong arguments)."""

    type: Literal["Refused"]
    reason: Annotated[RefusalReason, Field(strict=False)]  # strict wants an enum instance
    message: Text


class Console(_Message):
    """Output of the running request on stdout (1) or stderr (2); never empty."""

    type: Literal["Console"]
    stream: Literal[1, 2]
    data: Annotated[bytes, Field(min_length=1, max_length=GUEST_FRAME_CAP)]


class Code(_Message):
    """A piece of a new code cache entry (``protocol.codeentry``), during Load or Boot."""

    type: Literal["Code"]
    data: Annotated[bytes, Field(min_length=1, max_length=CODE_CHUNK)]


class StdinRequest(_Message):
    """The running request wants up to ``max`` bytes of stdin."""

    type: Literal["StdinRequest"]
    max: Annotated[int, Field(ge=1, le=MAX_STDIN_REQUEST)]


GuestMessage = Annotated[
    Hello
    | Loaded
    | Ready
    | Result
    | Trapped
    | Exited
    | LimitReached
    | LoadFailed
    | Refused
    | Console
    | StdinRequest
    | Code,
    Field(discriminator="type"),
]
FinalReply = Loaded | Ready | Result | Trapped | Exited | LimitReached | LoadFailed | Refused

_ADAPTER: TypeAdapter[GuestMessage] = TypeAdapter(GuestMessage)


def _describe(error: ValidationError, value: Any) -> str:
    tag = value.get("type") if isinstance(value, dict) else None
    where = tag if isinstance(tag, str) and len(tag) <= 40 else "message"
    first = error.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(part) for part in first["loc"][1:] if part != tag)
    more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"{where}{'.' + path if path else ''}: {first['msg']}{more}"


def parse_guest_message(value: Any) -> GuestMessage:
    """Validate one decoded frame from a guest; ``InvalidMessage`` if it is not allowed."""
    if not isinstance(value, dict):
        raise InvalidMessage(f"a message must be a map, got {type(value).__name__}")
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as exc:
        raise InvalidMessage(_describe(exc, value)) from None


__all__ = [
    "PROTOCOL_NAME",
    "BootTimings",
    "Code",
    "Console",
    "Exited",
    "FinalReply",
    "GuestMessage",
    "Hello",
    "InvalidMessage",
    "LimitReached",
    "LoadFailed",
    "LoadTimings",
    "Loaded",
    "Ready",
    "Refused",
    "Result",
    "ResultValue",
    "StdinRequest",
    "Trapped",
    "parse_guest_message",
]
