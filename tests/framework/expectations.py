"""The CLI conventions the tests rely on, in one place.

Everything here is product API that the tests pin down: how ``kindling run`` is spelled, what
its ``--report`` line holds, and which exit status each guest ending maps to. When the CLI
changes one of these on purpose, change it here (and in the README's table) and nothing else.

Endings are written in the text form of DESIGN.md: ``exited(3)``, ``trapped(unreachable)``,
``limit(wall)``, ``signalled(9)``, ``protocol_error``. ``ending_text`` turns whatever the
report holds into that form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# -- how the command line is spelled -------------------------------------------------------

RUN_SUBCOMMAND = ("run",)
OPT_MEMORY = "--memory"  # e.g. "5MiB"
OPT_TIMEOUT = "--timeout"  # seconds, wall clock
OPT_ENV = "--env"  # K=V, repeatable
OPT_INVOKE = "--invoke"  # EXPORT; numbers follow the module as its arguments
OPT_REPORT = "--report"  # final single-line JSON object on stderr

DEFAULT_MEMORY = "5MiB"
DEFAULT_MEMORY_BYTES = 5 * 1024 * 1024


def format_results(values: list[int]) -> str:
    """What `kindling run --invoke` prints for these results: ``[-3, 1]`` and a newline.

    Integers are printed signed (an i32 0xFFFFFFFE prints as -2).
    """
    return "[" + ", ".join(str(v) for v in values) + "]\n"


# -- what the --report line holds ----------------------------------------------------------

REPORT_ENDING = "ending"
REPORT_EXIT_CODE = "exit_code"
REPORT_PEAK_MEMORY = "peak_memory"
REPORT_REQUIRED_KEYS = frozenset({REPORT_ENDING, REPORT_EXIT_CODE, REPORT_PEAK_MEMORY})
# Timings are recognised by their unit suffix; a report must have at least one.
REPORT_TIMING_SUFFIXES = ("_ms", "_s", "_us", "_ns", "_seconds")

# -- ending -> exit status -----------------------------------------------------------------

# The exit status of `kindling run` for every ending that is not `exited(n)` (which gives n).
# Keys are the ending with its detail ("limit(wall)") or just its kind ("trapped"); the more
# specific key wins. None means "not fixed yet": tests then only check that the status is
# non-zero, and test_fixtures_run::test_every_ending_has_an_exit_status fails until it is
# filled in.
# LEAD: copy these from the CLI's documented table (host/) once it exists.
ENDING_EXIT_STATUS: dict[str, int | None] = {
    "trapped": 121,
    "limit(memory)": 122,
    "limit(cpu)": 123,
    "limit(wall)": 124,
    "limit(fuel)": 125,
    "limit(output)": 126,
    "signalled": 128,  # plus the signal number
    "protocol_error": 127,
    "stopped": 118,
    "load_failure": 120,  # the module could not be read, decoded, validated or linked
}

# The ending of a successful `--invoke` call (the export returned).
INVOKE_SUCCESS_ENDING = "exited(0)"
# The ending a guest gets when `--timeout` runs out.
TIMEOUT_ENDING = "limit(wall)"
# The ending a guest gets when it exceeds the console output quota.
OUTPUT_QUOTA_ENDING = "limit(output)"

_ENDING_FORM = re.compile(r"^[a-z_]+(\([A-Za-z0-9_-]+\))?$")


def ending_text(value: object) -> str:
    """Normalise a report's ``ending`` to the text form ``kind`` or ``kind(detail)``.

    Accepts that text itself, or a mapping ``{"kind": ..., <one detail key>: ...}`` such as
    ``{"kind": "trapped", "trap": "unreachable"}``. Anything else raises ``ValueError`` naming
    what was found, so a changed report format fails loudly instead of comparing unequal.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping) and isinstance(value.get("kind"), str):
        details = [v for k, v in value.items() if k not in ("kind", "message", "reason")]
        if len(details) > 1:
            raise ValueError(f"ending {value!r} has more than one detail")
        text = value["kind"] + (f"({details[0]})" if details and details[0] is not None else "")
    else:
        raise ValueError(f"cannot read an ending from {value!r}")
    if not _ENDING_FORM.match(text):
        raise ValueError(f"ending {text!r} is not of the form kind or kind(detail)")
    return text


def ending_kind(ending: str) -> str:
    """``trapped(unreachable)`` -> ``trapped``."""
    return ending.split("(", 1)[0]


def expected_exit_status(ending: str) -> int | None:
    """The exit status ``kindling run`` must give for ``ending``; None while not fixed yet."""
    kind = ending_kind(ending)
    if kind == "exited":
        return int(ending[len("exited(") : -1])
    if kind == "signalled" and ending != kind:
        return 128 + int(ending[len("signalled(") : -1])
    if ending in ENDING_EXIT_STATUS:
        return ENDING_EXIT_STATUS[ending]
    if kind in ENDING_EXIT_STATUS:
        return ENDING_EXIT_STATUS[kind]
    raise KeyError(f"no exit status is documented for ending {ending!r}")
