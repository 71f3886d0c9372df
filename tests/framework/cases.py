"""What each fixture must do under ``kindling run``: the table the run tests are made from.

One ``Case`` is one invocation of one fixture: arguments, stdin, environment, CLI options,
and the expected stdout and ending. ``test_fixtures_run`` runs every case under Kindling;
``test_differential`` runs the ``differential`` ones under wasmtime as well and compares.
Long outputs live in ``tests/fixtures/expected/<case id>.stdout`` (written by
``python -m tests.framework.golden`` from wasmtime's output, and checked against wasmtime by
``test_differential``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import expectations as ex
from .paths import FIXTURES_DIR

GOLDEN_DIR = FIXTURES_DIR / "expected"

StdoutCheck = Callable[[bytes], None]


@dataclass(frozen=True)
class Case:
    """One fixture run and its expected outcome."""

    id: str
    fixture: str
    args: tuple[str, ...] = ()
    stdin: bytes = b""
    env: Mapping[str, str] = field(default_factory=dict)
    ending: str = "exited(0)"
    # Exactly one way of checking stdout: a literal, the golden file, or a function.
    stdout: bytes | None = None
    golden: bool = False
    stdout_check: StdoutCheck | None = None
    stderr_contains: bytes = b""
    memory: str | None = None
    timeout: float | None = None
    invoke: str | None = None
    extra_options: tuple[str, ...] = ()
    # A WASI command that ends by itself: comparable with wasmtime.
    differential: bool = True

    @property
    def golden_path(self) -> Path:
        return GOLDEN_DIR / f"{self.id}.stdout"

    def check_stdout(self, stdout: bytes) -> None:
        """Assert that ``stdout`` is what this case must print."""
        if self.stdout is not None:
            assert stdout == self.stdout, (
                f"{self.id}: stdout differs:\n"
                f"got      {stdout[:2000]!r}\nexpected {self.stdout[:2000]!r}"
            )
        elif self.golden:
            expected = self.golden_path.read_bytes()
            assert stdout == expected, (
                f"{self.id}: stdout differs from {self.golden_path.name}:\n"
                f"got      {stdout[:2000]!r}\nexpected {expected[:2000]!r}"
            )
        elif self.stdout_check is not None:
            self.stdout_check(stdout)
        else:
            raise AssertionError(f"case {self.id} says nothing about its stdout")


def _check_flood(stdout: bytes) -> None:
    first_lines = b"".join(
        b"flood line %d: the quick brown fox jumps over the lazy dog\n" % n for n in range(3)
    )
    assert stdout.startswith(first_lines), f"unexpected stdout {stdout[:300]!r}"
    assert len(stdout) <= OUTPUT_FLOOD_MAX_BYTES, f"{len(stdout)} bytes got past the quota"


# The memory bombs must get something, but less than the whole budget: the engine, the
# interpreter and the runtime need their share of it too.
MEMORY_BOMB_MIN_BYTES = 1024 * 1024
MEMORY_BOMB_MAX_BYTES = ex.DEFAULT_MEMORY_BYTES


def _check_malloc_bomb(stdout: bytes) -> None:
    match = re.fullmatch(rb"allocated (\d+) KiB before malloc failed\n", stdout)
    assert match, f"unexpected stdout {stdout!r}"
    got = int(match.group(1)) * 1024
    assert MEMORY_BOMB_MIN_BYTES <= got < MEMORY_BOMB_MAX_BYTES, f"malloc got {got} bytes"


def _check_grow_bomb(stdout: bytes) -> None:
    match = re.fullmatch(rb"\[(\d+)\]\n", stdout)
    assert match, f"unexpected stdout {stdout!r}"
    got = int(match.group(1)) * 65536
    assert MEMORY_BOMB_MIN_BYTES <= got <= MEMORY_BOMB_MAX_BYTES, f"memory grew to {got} bytes"


# Console output quota: the flood is cut somewhere, but never after this many bytes.
OUTPUT_FLOOD_MAX_BYTES = 64 * 1024 * 1024

CAT_TEXT_INPUT = b"first line\nsecond line\nno newline at the end"
CAT_BINARY_INPUT = bytes(range(256)) * 300  # every byte value; larger than one 4 KiB read


def _exit_case(how: str, code: int, *, differential: bool = True) -> Case:
    return Case(
        id=f"exit_code_{how}_{code}",
        fixture="exit_code",
        args=(how, str(code)),
        stdout=f"ending with {how}({code})\n".encode(),
        ending=f"exited({code})",
        differential=differential,
    )


def _invoke_case(
    case_id: str,
    export: str,
    args: tuple[str, ...],
    stdout: bytes,
    ending: str = ex.INVOKE_SUCCESS_ENDING,
) -> Case:
    return Case(
        id=case_id,
        fixture="exports",
        invoke=export,
        args=args,
        stdout=stdout,
        ending=ending,
        differential=False,
    )


def _trap_case(fixture: str, kind: str, first_line: bytes | None) -> Case:
    return Case(
        id=fixture,
        fixture=fixture,
        ending=f"trapped({kind})",
        stdout=first_line if first_line is not None else b"",
    )


CASES: tuple[Case, ...] = (
    Case(
        id="hello",
        fixture="hello",
        stdout=b"Hello from a Kindling guest!\ngoodbye\n",
        stderr_contains=b"this line goes to stderr\n",
    ),
    Case(
        id="args_env",
        fixture="args_env",
        args=("one", "two words", "-x", "--flag", "\u00fcnic\u00f8de", ""),
        env={"GREETING": "hello there", "EMPTY": "", "EQUALS": "a=b=c"},
        # The guest sees exactly the environment it is given: nothing of the host's leaks in.
        stdout=(
            "argc=7\narg[1]=one\narg[2]=two words\narg[3]=-x\narg[4]=--flag\n"
            "arg[5]=\u00fcnic\u00f8de\narg[6]=\n"
            "envc=3\nenv EMPTY=\nenv EQUALS=a=b=c\nenv GREETING=hello there\n"
        ).encode(),
    ),
    Case(
        id="cat_text",
        fixture="cat",
        stdin=CAT_TEXT_INPUT,
        stdout=CAT_TEXT_INPUT,
        stderr_contains=f"cat: {len(CAT_TEXT_INPUT)} bytes\n".encode(),
    ),
    Case(id="cat_empty", fixture="cat", stdout=b"", stderr_contains=b"cat: 0 bytes\n"),
    Case(
        id="cat_binary",
        fixture="cat",
        stdin=CAT_BINARY_INPUT,
        stdout=CAT_BINARY_INPUT,
        stderr_contains=f"cat: {len(CAT_BINARY_INPUT)} bytes\n".encode(),
    ),
    Case(
        id="read_number",
        fixture="read_number",
        stdin=b"10\n27\n  100000\n",
        stdout=(
            b"n=10 sum_of_squares=385 collatz_steps=6\n"
            b"n=27 sum_of_squares=6930 collatz_steps=111\n"
            b"n=100000 sum_of_squares=333338333350000 collatz_steps=128\n"
        ),
    ),
    Case(
        id="read_number_no_input",
        fixture="read_number",
        stdin=b"not a number\n",
        stdout=b"",
        stderr_contains=b"expected at least one integer",
        ending="exited(1)",
    ),
    _exit_case("exit", 0),
    _exit_case("exit", 3),
    _exit_case("return", 0),
    _exit_case("return", 7),
    # wasmtime refuses exit statuses of 126 and above, so 255 is checked against Kindling only.
    _exit_case("exit", 255, differential=False),
    _trap_case("trap_unreachable", "unreachable", b"about to trap\n"),
    _trap_case("trap_div_zero", "integer_divide_by_zero", b"dividing by zero\n"),
    _trap_case("trap_int_overflow", "integer_overflow", b"dividing INT_MIN by -1\n"),
    _trap_case("trap_oob_memory", "out_of_bounds_memory", b"reading past the end of memory\n"),
    _trap_case("trap_stack_exhausted", "call_stack_exhausted", b"recursing forever\n"),
    _trap_case("trap_invalid_conversion", "invalid_conversion", None),
    _trap_case("trap_undefined_element", "undefined_element", None),
    _trap_case("trap_uninitialized_element", "uninitialized_element", None),
    _trap_case("trap_indirect_call_type_mismatch", "indirect_call_type_mismatch", None),
    Case(
        id="deep_recursion",
        fixture="deep_recursion",
        stdout=b"sum(1..10000) = 50005000 by 10000 nested calls\n",
    ),
    Case(id="i64_math", fixture="i64_math", golden=True),
    Case(id="floats", fixture="floats", golden=True),
    Case(id="qsort_fnptr", fixture="qsort_fnptr", golden=True),
    Case(id="switch_dispatch", fixture="switch_dispatch", golden=True),
    Case(id="strings", fixture="strings", golden=True),
    # -- limits: Kindling only (wasmtime has no such budget by default) -----------------------
    Case(
        id="memory_bomb",
        fixture="memory_bomb",
        memory=ex.DEFAULT_MEMORY,
        stdout_check=_check_malloc_bomb,
        differential=False,
    ),
    Case(
        id="memory_grow_bomb",
        fixture="memory_grow_bomb",
        memory=ex.DEFAULT_MEMORY,
        invoke="grow_all",
        ending=ex.INVOKE_SUCCESS_ENDING,
        stdout_check=_check_grow_bomb,
        differential=False,
    ),
    # 5 MiB per operation, forever: the budget must end them, and soon (test_cli times them).
    *(
        Case(
            id=loop,
            fixture=loop,
            extra_options=("--fuel", "100000"),
            ending="limit(fuel)",
            stdout=b"",
            differential=False,
        )
        for loop in ("bulk_fill_loop", "bulk_copy_loop")
    ),
    Case(
        id="infinite_loop",
        fixture="infinite_loop",
        timeout=2,
        ending=ex.TIMEOUT_ENDING,
        stdout=b"spinning forever\n",
        differential=False,
    ),
    Case(
        id="output_flood",
        fixture="output_flood",
        # The quota mechanism, not the default (32 MiB, which takes a minute to print).
        extra_options=("--max-output", "1MiB"),
        ending=ex.OUTPUT_QUOTA_ENDING,
        stdout_check=_check_flood,
        differential=False,
    ),
    # -- --invoke on plain exports ------------------------------------------------------------
    _invoke_case("invoke_add", "add", ("2", "3"), b"[5]\n"),
    _invoke_case("invoke_sub_negative", "sub", ("3", "5"), b"[-2]\n"),
    _invoke_case("invoke_negative_args", "mul64", ("-4", "1000000000000"), b"[-4000000000000]\n"),
    _invoke_case("invoke_two_results", "divmod", ("7", "-2"), b"[-3, 1]\n"),
    _invoke_case("invoke_no_results", "nothing", (), b"[]\n"),
    _invoke_case("invoke_i64_wraps", "fact", ("21",), b"[-4249290049419214848]\n"),
    _invoke_case(
        "invoke_trap", "divmod", ("1", "0"), b"", ending="trapped(integer_divide_by_zero)"
    ),
)

CASES_BY_ID = {case.id: case for case in CASES}
DIFFERENTIAL_CASES = tuple(case for case in CASES if case.differential)
