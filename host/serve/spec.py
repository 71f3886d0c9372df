"""A function's configuration: one pydantic model for the TOML file, the control API's bodies
and ``Host.function``'s keywords.

::

    [[function]]                    FunctionSpec = GuestConfig's keys (memory, timeout, cpu,
    name = "shout"                      fuel, max_output, env, args, load_timeout)
    module = "shout.wasm"             + name, module | module_base64, route, mode, export,
    route = "/shout"                    init, concurrency, queue, pool {min, max, idle}
    mode = "command"
    memory = "5MiB"                 ServeConfig = [[function]] ... (names and routes unique)

Every problem is a ``ConfigError`` naming the source (the file), the function and the key,
as ``host.config`` does for a guest's keys. ``dirs`` is refused by name: functions may have
read-only directories only (``ro_dirs``).
"""

from __future__ import annotations

import base64
import binascii
import enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import ConfigError, GuestConfig, read_config_file

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ROUTE_PATTERN = r"^/[A-Za-z0-9_.~/-]*$"
DEFAULT_CONCURRENCY = 32
DEFAULT_QUEUE = 256
RESERVED_ROUTES = ("/metrics",)


class Mode(enum.StrEnum):
    """How a function is served."""

    COMMAND = "command"  # WAGI/CGI 1.1: a fresh guest per request
    EXPORT = "export"  # a warm pool of guests serving one export


class PoolSpec(BaseModel):
    """Export mode's warm pool: at least ``min`` guests kept, at most ``max``, and a guest
    idle for ``idle`` seconds beyond the ``min`` is stopped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: Annotated[int, Field(ge=0, le=1024)] = 1
    max: Annotated[int, Field(ge=1, le=1024)] = 8
    idle: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 60.0

    @model_validator(mode="after")
    def _min_below_max(self) -> PoolSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is more than max ({self.max})")
        return self


class FunctionSpec(GuestConfig):
    """One ``[[function]]``: the guest keys of ``kindling run`` (its limits per request: in
    export mode ``cpu`` and ``fuel`` count per pooled guest, which is replaced when it
    passes them) and the function's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(
        description="The function's name (letters, digits, '_', '.', '-')."
    )
    module: str | None = Field(
        default=None,
        description="The module's path: relative to the config file, or absolute.",
    )
    module_base64: str | None = Field(
        default=None, description="The module's bytes, base64 (control API bodies)."
    )
    route: Annotated[str, Field(pattern=ROUTE_PATTERN)] | None = Field(
        default=None, description="The path it serves, and below it. Default: /NAME."
    )
    mode: Mode = Field(default=Mode.COMMAND, description="command (WAGI/CGI) or export.")
    export: str | None = Field(
        default=None, description="Export mode: the exported function to call."
    )
    init: str | None = Field(
        default=None,
        description="An export run once before the template forks, in a throwaway guest.",
    )
    concurrency: Annotated[int, Field(ge=1, le=4096)] | None = Field(
        default=None,
        description=f"Requests served at once (default {DEFAULT_CONCURRENCY}; export mode: "
        "pool.max).",
    )
    queue: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=DEFAULT_QUEUE, description="Requests that may wait; beyond: 429."
    )
    pool: PoolSpec | None = Field(default=None, description="Export mode's warm pool.")

    @model_validator(mode="after")
    def _consistent(self) -> FunctionSpec:
        if self.dirs:
            raise ValueError(
                "dirs: a function may have read-only directories only (ro_dirs): a writable "
                "one would carry state from request to request"
            )
        if self.module is not None and self.module_base64 is not None:
            raise ValueError("give one of module (a path) and module_base64, not both")
        if self.route in RESERVED_ROUTES:
            raise ValueError(f"route {self.route} is the gateway's own")
        if self.mode is Mode.EXPORT:
            if not self.export:
                raise ValueError("export mode needs export: the function to call")
            if self.concurrency is not None and self.concurrency > self.pool_spec.max:
                raise ValueError(
                    f"concurrency ({self.concurrency}) is more than pool.max "
                    f"({self.pool_spec.max}): each guest serves one request at a time"
                )
        else:
            if self.export is not None:
                raise ValueError("export is for export mode (a command runs _start)")
            if self.pool is not None:
                raise ValueError("pool is for export mode (a command forks a guest per request)")
        return self

    @property
    def path(self) -> str:
        """The route it serves."""
        return self.route or f"/{self.name}"

    @property
    def pool_spec(self) -> PoolSpec:
        return self.pool or PoolSpec()

    @property
    def limit(self) -> int:
        """Requests served at once."""
        if self.concurrency is not None:
            return self.concurrency
        return self.pool_spec.max if self.mode is Mode.EXPORT else DEFAULT_CONCURRENCY

    def guest_config(self) -> GuestConfig:
        """The limits and inputs of each of its guests."""
        return GuestConfig.model_validate(
            self.model_dump(include=set(GuestConfig.model_fields), exclude_defaults=True)
        )

    def module_bytes(self, base: Path | None = None) -> bytes:
        """The module: read from ``module`` (relative to ``base``) or decoded. ``ConfigError``
        naming the key if it cannot be."""
        if self.module_base64 is not None:
            try:
                return base64.b64decode(self.module_base64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ConfigError(f"function {self.name}", f"module_base64: {exc}") from None
        if self.module is None:
            raise ConfigError(f"function {self.name}", "module: missing", "module")
        path = Path(self.module)
        if not path.is_absolute():
            if base is None:
                raise ConfigError(f"function {self.name}", "module: must be an absolute path")
            path = base / path
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"function {self.name}", f"module: cannot read {path}: {exc.strerror}", "module"
            ) from None


def validate_function(values: dict[str, Any], source: str) -> FunctionSpec:
    """A ``FunctionSpec`` from plain values; ``ConfigError`` naming ``source`` and the key."""
    try:
        return FunctionSpec.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(source, _describe(exc), _first_key(exc)) from None


def _first_key(exc: ValidationError) -> str | None:
    loc = exc.errors(include_url=False)[0]["loc"]
    return ".".join(str(part) for part in loc) if loc else None


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    key = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(FunctionSpec.model_fields))
        text = f"unknown key {key!r} (allowed keys: {allowed})"
    elif key:
        text = f"{key}: {message}"
    else:
        text = message
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problems)"
    return text


class ServeConfig(BaseModel):
    """A ``kindling serve`` configuration: its functions, names and routes unique."""

    model_config = ConfigDict(frozen=True)

    functions: list[FunctionSpec]
    base: Path | None = None  # where relative module paths start


def load_serve_config(path: Path | str) -> ServeConfig:
    """Read and validate a serve config file; ``ConfigError`` names the file, the function and
    the key."""
    path = Path(path)
    raw = read_config_file(path)
    unknown = [key for key in raw if key != "function"]
    if unknown:
        raise ConfigError(
            str(path), f"unknown key {unknown[0]!r} (allowed: [[function]] tables)", unknown[0]
        )
    tables = raw.get("function", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(str(path), "function: must be [[function]] tables", "function")
    specs: list[FunctionSpec] = []
    for index, table in enumerate(tables, start=1):
        label = table.get("name") if isinstance(table.get("name"), str) else f"#{index}"
        specs.append(validate_function(table, f"{path}: function {label}"))
    check_unique(specs, str(path))
    return ServeConfig(functions=specs, base=path.resolve().parent)


def check_unique(specs: list[FunctionSpec], source: str) -> None:
    """``ConfigError`` unless names and routes are unique."""
    names: set[str] = set()
    routes: dict[str, str] = {}
    for spec in specs:
        if spec.name in names:
            raise ConfigError(source, f"name: two functions are named {spec.name!r}", "name")
        names.add(spec.name)
        if spec.path in routes:
            raise ConfigError(
                source,
                f"route: {spec.name} and {routes[spec.path]} both serve {spec.path}",
                "route",
            )
        routes[spec.path] = spec.name
