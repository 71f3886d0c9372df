"""The guest configuration: one pydantic model for TOML files, the CLI and the Python API.

A TOML file holds any of these keys (all optional; ``host.configkeys`` declares how each is
written and explained, and ``kindling run`` has an option for each but ``args``, its ARGS;
``Host.launch`` takes them as keywords)::

{toml_keys}

Sizes are a number of bytes or a number with a unit: ``KiB``/``MiB``/``GiB`` (and ``K``/``M``/
``G``) are powers of 1024, ``KB``/``MB``/``GB`` powers of 1000.

Every problem is a ``ConfigError`` whose text names the source (the file, or "command
line"), the key, and what is wrong; an unknown key also lists the allowed keys. Only the host
imports this module (it needs pydantic); the ``Boot`` message it fills is declared in
``protocol.messages``.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from protocol.messages import DEFAULT_LOAD_TIMEOUT, MAX_PREOPENS, Boot, BootLimits, Preopen

from .configkeys import BY_NAME, check_fields, toml_keys
from .filebroker import PreopenDirectory

__doc__ = (__doc__ or "").replace(
    "{toml_keys}", "\n".join("    " + line if line else "" for line in toml_keys().splitlines())
)

PAGE_SIZE = 65536
MAX_MEMORY_BYTES = 65536 * PAGE_SIZE  # 4 GiB: all a 32-bit memory can address
DEFAULT_MEMORY_BYTES = 5 * 1024 * 1024
MAX_FUEL = 2**62
"""The largest fuel budget (the engine's counter is a Python int, but a budget has to be a
number people can write down and the protocol can carry as a 64-bit integer)."""
DEFAULT_CALL_DEPTH = 20_000
"""Wasm calls deep a guest may go before it traps ``call_stack_exhausted``."""
DEFAULT_MAX_OUTPUT_BYTES = 8 * 1024 * 1024
"""The default console quota: enough for any ordinary program; a runaway printer is cut off
after this much (at the engine's speed, some seconds of output)."""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1}
for _power, _letter in enumerate("kmg", start=1):
    _UNITS[_letter] = _UNITS[_letter + "i"] = _UNITS[_letter + "ib"] = 1024**_power
    _UNITS[_letter + "b"] = 1000**_power


def parse_size(value: object) -> int:
    """Bytes from an int or a text such as ``"5MiB"``, ``"512k"``, ``"2GB"``, ``"1048576"``.

    ``ValueError`` (naming the text) for anything else, negative numbers included.
    """
    if isinstance(value, bool):
        raise ValueError(f"a size must be a number of bytes or a text like '5MiB', not {value}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            number, unit = match.group(1), (match.group(2) or "").lower()
            size = float(number) * _UNITS[unit]
            if math.isfinite(size):
                return int(size)
    raise ValueError(f"invalid size {value!r}: use a number of bytes or e.g. '5MiB', '64KiB'")


Size = Annotated[int, BeforeValidator(parse_size)]


def parse_directory(spec: str, read_only: bool) -> PreopenDirectory:
    """``HOST[::GUEST]``: a host directory (which must exist) and the name the guest sees it
    by (``HOST`` as written, if not given); ``ValueError`` naming what is wrong."""
    host, _, guest = spec.partition("::")
    if not host:
        raise ValueError(f"{spec!r} names no host directory: use HOST or HOST::GUEST")
    if not os.path.isdir(host):
        raise ValueError(f"{host!r} is not a directory")
    return PreopenDirectory(os.path.realpath(host), guest or host, read_only)


def _no_nul(text: str, what: str) -> str:
    if "\0" in text:
        raise ValueError(f"{what} must not contain a NUL character")
    return text


class GuestConfig(BaseModel):
    """Limits and program inputs for one guest. Defaults: 5 MiB memory, no wall-clock or CPU
    limit (but 60 s to load the module), no fuel budget, 8 MiB of console output, no
    arguments, an empty environment. Each field has its ``ConfigKey`` (``host.configkeys``):
    its description, option and documentation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory: Annotated[Size, Field(ge=0, le=MAX_MEMORY_BYTES)] = Field(
        default=DEFAULT_MEMORY_BYTES, description=BY_NAME["memory"].help
    )
    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        default=None, description=BY_NAME["timeout"].help
    )
    load_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(
        default=DEFAULT_LOAD_TIMEOUT, description=BY_NAME["load_timeout"].help
    )
    cpu: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None, description=BY_NAME["cpu"].help
    )
    fuel: Annotated[int, Field(ge=0, le=MAX_FUEL)] | None = Field(
        default=None, description=BY_NAME["fuel"].help
    )
    max_output: Annotated[Size, Field(ge=0)] = Field(
        default=DEFAULT_MAX_OUTPUT_BYTES, description=BY_NAME["max_output"].help
    )
    args: list[str] = Field(default_factory=list, description=BY_NAME["args"].help)
    env: dict[str, str] = Field(default_factory=dict, description=BY_NAME["env"].help)
    dirs: Annotated[list[str], Field(max_length=MAX_PREOPENS)] = Field(
        default_factory=list, description=BY_NAME["dirs"].help
    )
    ro_dirs: Annotated[list[str], Field(max_length=MAX_PREOPENS)] = Field(
        default_factory=list, description=BY_NAME["ro_dirs"].help
    )

    @field_validator("args")
    @classmethod
    def _check_args(cls, args: list[str]) -> list[str]:
        for index, arg in enumerate(args):
            _no_nul(arg, f"argument {index}")
        return args

    @field_validator("env")
    @classmethod
    def _check_env(cls, env: dict[str, str]) -> dict[str, str]:
        for key, value in env.items():
            if not key or "=" in key:
                raise ValueError(f"environment variable name {key!r} must be non-empty without '='")
            _no_nul(key, f"environment variable name {key!r}")
            _no_nul(value, f"the value of environment variable {key}")
        return env

    @field_validator("dirs", "ro_dirs")
    @classmethod
    def _check_dirs(cls, dirs: list[str]) -> list[str]:
        for index, spec in enumerate(dirs):
            parse_directory(_no_nul(spec, f"directory {index}"), read_only=False)
        return dirs

    def preopen_directories(self) -> list[PreopenDirectory]:
        """The directories the guest is given, in WASI fd order (3, 4, ...): ``dirs``
        then ``ro_dirs``."""
        return [parse_directory(spec, read_only=False) for spec in self.dirs] + [
            parse_directory(spec, read_only=True) for spec in self.ro_dirs
        ]

    def env_entries(self) -> list[bytes]:
        """The environment as WASI wants it: ``KEY=VALUE`` byte strings, UTF-8."""
        return [f"{key}={value}".encode() for key, value in self.env.items()]

    def boot(self, request_id: int, program_name: str, cached: bytes | None = None) -> Boot:
        """The ``Boot`` message for this configuration: the one place where it reaches a
        guest (its limits, and the program's arguments and environment). ``program_name`` is
        argv[0]; ``cached``: the metered code cache entry (``messages.Boot``)."""
        return Boot(
            id=request_id,
            args=[program_name.encode(), *(arg.encode() for arg in self.args)],
            env=self.env_entries(),
            limits=BootLimits(
                memory_bytes=self.memory,
                cpu_seconds=self.cpu,
                call_depth=DEFAULT_CALL_DEPTH,
                fuel=self.fuel,
            ),
            cached=cached,
            preopens=[
                Preopen(name=os.fsencode(d.name), read_only=int(d.read_only))
                for d in self.preopen_directories()
            ]
            or None,
        )


check_fields(GuestConfig.model_fields)  # a field without its ConfigKey fails here, loudly
ALLOWED_KEYS = tuple(sorted(GuestConfig.model_fields))


class ConfigError(Exception):
    """A configuration problem; the text names the source, the key and the cause."""

    def __init__(self, source: str, message: str, key: str | None = None) -> None:
        self.source = source
        self.key = key
        self.message = message
        super().__init__(f"{source}: {message}")


def _error_text(error: Any, key_name: Any) -> tuple[str, str | None]:
    loc = error["loc"]
    key = str(loc[0]) if loc else None
    if error["type"] == "extra_forbidden":
        return (
            f"unknown key {key!r} (allowed keys: {', '.join(ALLOWED_KEYS)})",
            key,
        )
    where = key_name(key) if key is not None else "configuration"
    inner = "".join(f"[{part!r}]" for part in loc[1:])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}{inner}: {message}", key


def validate_config(values: dict[str, Any], source: str, key_name: Any = str) -> GuestConfig:
    """Build a ``GuestConfig`` from plain values; ``ConfigError`` naming ``source`` and key.

    ``key_name`` maps a field name to how the source spells it (``--max-output`` on the
    command line).
    """
    try:
        return GuestConfig.model_validate(values)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        message, key = _error_text(errors[0], key_name)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problems)"
        raise ConfigError(source, message, key) from None


def config_from_keywords(settings: dict[str, Any], source: str) -> GuestConfig:
    """A ``GuestConfig`` from keyword arguments (``Host.launch``'s): None stands for the
    default. ``TypeError`` for a name that is no field, as for any unexpected keyword;
    ``ConfigError`` naming ``source`` and the key for a bad value."""
    unknown = [name for name in settings if name not in GuestConfig.model_fields]
    if unknown:
        raise TypeError(
            f"{source}() got an unexpected keyword argument {unknown[0]!r} "
            f"(the configuration's are {', '.join(ALLOWED_KEYS)})"
        )
    return validate_config({k: v for k, v in settings.items() if v is not None}, source)


def read_config_file(path: Path | str) -> dict[str, Any]:
    """The raw key/value table of a TOML config file; ``ConfigError`` if unreadable."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None


def load_config(path: Path | str) -> GuestConfig:
    """Read and validate a TOML guest config; ``ConfigError`` names the file and the key."""
    return validate_config(read_config_file(path), str(path))
