"""The guest configuration's keys as people write them: one ``ConfigKey`` per ``GuestConfig`` field.

::

    KEYS ──▶ GuestConfig (host.config)   each field's description is its key's help; at
      │                                  import, the fields and the keys must be the same
      ├──▶ kindling run (host.cli)       an option per key: flag, metavar, type, help; the
      │                                  TOML keys its help names; how errors spell a key
      └──▶ host.config's docstring       the TOML keys, with an example value each

``Host.launch`` takes the same names as keywords, and ``GuestConfig`` validates what comes
from all three doors (a TOML file, the command line, ``Host.launch``) alike. So a new limit
is: a ``GuestConfig`` field, its ``ConfigKey`` here, its field in the ``Boot`` message
(``GuestConfig.boot``) and whatever enforces it.

Standard library only: ``kindling`` builds its options from this module at start-up, and
pydantic is imported only later, while the guest process starts (``host.run_cli``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple


class ConfigKey(NamedTuple):
    """How one configuration key is written, shown and explained."""

    name: str
    """The ``GuestConfig`` field, the TOML key and the ``Host.launch`` keyword."""
    help: str
    """What it is and what happens at the limit: the option's help, the TOML key's comment
    and the field's description."""
    metavar: str
    """What the value is called on the command line: ``SIZE``, ``SECONDS``."""
    example: str
    """A TOML value for it (tests/host/test_config.py checks that each one is valid)."""
    default: str | None = "none"
    """How the default reads (``5MiB``), as the command line would give it (a test checks
    that it validates to the field's default); None: not worth saying (an empty list)."""
    parse: type = str
    """What click turns the option's text into before the model validates it (a size stays
    text: the model parses ``5MiB``)."""
    option: bool = True
    """Whether ``kindling run`` has an option for it (``args`` are its ARGS instead)."""
    repeatable: bool = False
    """A table, given one ``KEY=VALUE`` per option; the command line's entries are laid over
    the config file's."""
    listed: bool = False
    """A list, given one item per option; the command line's list replaces the file's."""
    option_name: str = ""
    """The option's name where it is not the key's: ``dir`` for ``dirs``, as wasmtime has it."""

    @property
    def flag(self) -> str:
        """``--max-output``; ``ARGS`` for the key without an option."""
        if not self.option:
            return self.metavar
        return "--" + (self.option_name or self.name.replace("_", "-"))

    @property
    def option_help(self) -> str:
        """The help of its ``kindling run`` option, the default included."""
        return self.help if self.default is None else f"{self.help} Default: {self.default}."


KEYS: tuple[ConfigKey, ...] = (
    ConfigKey(
        "memory",
        "Linear memory budget, e.g. 64MiB: memory.grow past it returns -1. The guest's own "
        "memory is held to it + 64 MiB + 256 bytes per byte of code: limit(memory) past that.",
        metavar="SIZE",
        example='"5MiB"',
        default="5MiB",
    ),
    ConfigKey(
        "timeout",
        "Wall-clock seconds the guest may run; then it is killed: limit(wall).",
        metavar="SECONDS",
        example="10",
        parse=float,
    ),
    ConfigKey(
        "load_timeout",
        "Wall-clock seconds loading the module (decode, validate, compile) may take: limit(wall).",
        metavar="SECONDS",
        example="60",
        default="60",
        parse=float,
    ),
    ConfigKey(
        "cpu",
        "CPU seconds (RLIMIT_CPU); then SIGXCPU: limit(cpu).",
        metavar="SECONDS",
        example="5",
        parse=int,
    ),
    ConfigKey(
        "fuel",
        "Fuel budget: about one unit per Wasm instruction executed, bulk work by its length; "
        "then limit(fuel). Deterministic; without it the code carries no metering.",
        metavar="N",
        example="1000000000",
        parse=int,
    ),
    ConfigKey(
        "max_output",
        "Console output quota in bytes, stdout and stderr together: limit(output) past it.",
        metavar="SIZE",
        example='"8MiB"',
        default="8MiB",
    ),
    ConfigKey(
        "args",
        "The program's arguments after argv[0] (the module path).",
        metavar="ARGS",
        example='["--verbose", "two words"]',
        default=None,
        option=False,
    ),
    ConfigKey(
        "env",
        "An environment variable of the program, which sees no others (repeatable; in TOML, "
        "a table).",
        metavar="KEY=VALUE",
        example='{ GREETING = "hello" }',
        default=None,
        repeatable=True,
    ),
    ConfigKey(
        "dirs",
        "A host directory the guest may read and change, HOST or HOST::GUEST (seen as GUEST; "
        "repeatable). Paths cannot leave it: '..', absolute paths and symlinks out fail.",
        metavar="HOST[::GUEST]",
        example='["/tmp::/scratch"]',
        default=None,
        listed=True,
        option_name="dir",
    ),
    ConfigKey(
        "ro_dirs",
        "A host directory the guest may only read, HOST or HOST::GUEST (repeatable): every "
        "change in it fails with EROFS.",
        metavar="HOST[::GUEST]",
        example='["."]',
        default=None,
        listed=True,
        option_name="ro-dir",
    ),
)

BY_NAME = {key.name: key for key in KEYS}


def spelling(name: str) -> str:
    """How the command line spells a key, for its error messages: ``--max-output``."""
    key = BY_NAME.get(name)
    return key.flag if key is not None else name


def check_fields(fields: Iterable[str]) -> None:
    """``TypeError`` unless ``fields`` (a model's) and ``KEYS`` name the same keys: a field
    without its key would be missing from the command line and the documentation."""
    fields = list(fields)
    missing = [name for name in fields if name not in BY_NAME]
    extra = [key.name for key in KEYS if key.name not in fields]
    if missing or extra:
        raise TypeError(
            "GuestConfig's fields and host.configkeys.KEYS differ: "
            f"no ConfigKey for {missing}, no field for {extra}"
        )


def toml_keys(keys: Sequence[ConfigKey] = KEYS, width: int = 88) -> str:
    """The keys as a TOML file of examples, each under its help as a comment."""
    import textwrap  # only the pydantic side (host.config) calls this: not at start-up

    lines: list[str] = []
    for key in keys:
        if lines:
            lines.append("")
        lines.extend(
            textwrap.wrap(key.option_help, width, initial_indent="# ", subsequent_indent="# ")
        )
        lines.append(f"{key.name} = {key.example}")
    return "\n".join(lines)
