"""``kindling run`` as a user runs it: a real process, real guests, exit statuses, stderr."""

from __future__ import annotations

import json
import os
import pty
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import psutil
import pytest
from click.testing import CliRunner

from host import cli
from host.cli import main
from host.configkeys import BY_NAME, KEYS, ConfigKey
from tests.framework.binary import name, section, uleb, vec
from tests.framework.guest import kindling_command, kindling_environment
from tests.framework.paths import EXAMPLES_DIR, REPO_ROOT, fixture

pytestmark = pytest.mark.slow  # every test here runs `kindling` processes


def kindling(
    *args: str | Path, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*kindling_command(), *map(str, args)],
        input=stdin,
        capture_output=True,
        env=kindling_environment(),
        cwd=REPO_ROOT,
        timeout=timeout,
    )


def report_of(done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    last = done.stderr.rstrip(b"\n").split(b"\n")[-1]
    parsed: dict[str, Any] = json.loads(last)
    return parsed


def test_help_explains_options_endings_and_statuses() -> None:
    done = kindling("run", "--help")
    assert done.returncode == 0
    text = done.stdout.decode()
    for option in (
        "--memory",
        "--timeout",
        "--cpu",
        "--max-output",
        "--env",
        "--invoke",
        "--config",
        "--report",
    ):
        assert option in text
    for ending, status in [
        ("exited(n)", " n "),
        ("load_failure(stage)", "120"),
        ("trapped(kind)", "121"),
        ("limit(memory)", "122"),
        ("limit(cpu)", "123"),
        ("limit(wall)", "124"),
        ("limit(fuel)", "125"),
        ("limit(output)", "126"),
        ("protocol_error", "127"),
        ("signalled(n)", "128+n"),
        ("stopped", "118"),
    ]:
        line = next(line for line in text.splitlines() if ending in line)
        assert status in line, line
    for field in (
        "spawn_ms",
        "decode_ms",
        "validate_ms",
        "compile_ms",
        "instantiate_ms",
        "run_ms",
        "peak_memory",
        "exit_code",
    ):
        assert field in text


def test_arguments_after_the_module_go_to_the_program_untouched() -> None:
    done = kindling("run", fixture("args_env"), "-x", "--report", "--memory", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        b"argc=5\narg[1]=-x\narg[2]=--report\narg[3]=--memory\narg[4]=1\nenvc=0\n"
    )
    assert done.stderr == b""


def test_double_dash_before_the_module() -> None:
    done = kindling("run", "--env", "A=1", "--env", "B=x=y", "--", fixture("args_env"), "-5")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"argc=2\narg[1]=-5\nenvc=2\nenv A=1\nenv B=x=y\n"


def test_report_line() -> None:
    done = kindling("run", "--report", fixture("hello"))
    assert done.returncode == 0
    lines = done.stderr.decode().splitlines()
    assert lines[0] == "this line goes to stderr"
    report = report_of(done)
    assert report["ending"] == "exited(0)" and report["exit_code"] == 0 and report["status"] == 0
    for key in (
        "spawn_ms",
        "precompile_ms",
        "decode_ms",
        "validate_ms",
        "compile_ms",
        "instantiate_ms",
        "run_ms",
        "total_ms",
    ):
        assert isinstance(report[key], int | float) and report[key] >= 0, key
    assert isinstance(report["peak_memory"], int) and report["peak_memory"] > 0


def test_fuel_budget_stops_a_runaway_and_spares_a_program_within_it() -> None:
    stopped = kindling("run", "--report", "--fuel", "2000000", fixture("infinite_loop"))
    assert stopped.returncode == 125
    assert report_of(stopped)["ending"] == "limit(fuel)"
    assert b"fuel" in stopped.stderr.split(b"\n")[0]
    done = kindling("run", "--fuel", "50000000", fixture("hello"))
    assert done.returncode == 0
    assert done.stdout == kindling("run", fixture("hello")).stdout


@pytest.mark.parametrize("loop", ["bulk_fill_loop", "bulk_copy_loop"])
def test_fuel_bounds_the_time_of_bulk_operations(loop: str) -> None:
    """Each pass of these loops moves 5 MiB; 100,000 units used to buy half a minute of CPU."""
    done = kindling("run", "--report", "--fuel", "100000", fixture(loop))
    assert done.returncode == 125, done.stderr
    report = report_of(done)
    assert report["ending"] == "limit(fuel)"
    # CPU time, not wall time: the machine may be busy. Loading the module is in it too.
    assert report["cpu_ms"] < 1000, report
    assert report["run_ms"] < 1000, report


def test_exit_code_above_255() -> None:
    done = kindling("run", "--report", fixture("exit_code"), "exit", "300")
    assert done.returncode == 255
    assert report_of(done)["exit_code"] == 300
    assert report_of(done)["ending"] == "exited(300)"


def test_trap_reason_is_one_line() -> None:
    """One line of reason, then the Wasm backtrace, innermost first, named (issue 14.4)."""
    done = kindling("run", fixture("trap_div_zero"))
    assert done.returncode == 121
    lines = done.stderr.decode().splitlines()
    assert lines[:2] == ["kindling: guest trapped: integer divide by zero", "wasm backtrace:"]
    assert all(re.fullmatch(r"  \d+: wasm function \d+( \(.+\))?", line) for line in lines[2:])
    assert lines[-1].endswith("(_start.command_export)")
    assert done.stdout == b"dividing by zero\n"


ENDLESS_RECURSION = """
(module
  (func $down (param i32) (result i32)
    (i32.add (call $down (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func $main (export "_start") (drop (call $down (i32.const 0)))))
"""


def test_call_stack_exhausted_prints_a_backtrace_bounded_by_max_backtrace(
    tmp_path: Path,
) -> None:
    """Deep recursion traps on the engine's Python side (RecursionError), not in Wasm code:
    its backtrace is the innermost MAX_BACKTRACE calls, on stderr and in --report."""
    from protocol.messages import MAX_BACKTRACE

    module = tmp_path / "endless.wat"
    module.write_text(ENDLESS_RECURSION)
    done = kindling("run", "--report", module)
    assert done.returncode == 121
    lines = done.stderr.decode().splitlines()
    assert lines[:2] == ["kindling: guest trapped: call stack exhausted", "wasm backtrace:"]
    frames = [f"  {number}: wasm function 0" for number in range(MAX_BACKTRACE)]
    assert lines[2:-1] == frames
    report = report_of(done)
    assert report["ending"] == "trapped(call_stack_exhausted)"
    assert report["backtrace"] == [frame.strip() for frame in frames]


def test_an_out_of_bounds_access_prints_a_backtrace() -> None:
    """The engine makes this trap of Python's IndexError outside Wasm code, too."""
    done = kindling("run", fixture("trap_oob_memory"))
    lines = done.stderr.decode().splitlines()
    assert lines[:2] == ["kindling: guest trapped: out of bounds memory access", "wasm backtrace:"]
    assert lines[2] == "  0: wasm function 6 (__original_main)"


@pytest.mark.parametrize(
    ("export", "numbers", "printed"),
    [
        ("add", ["2", "3"], b"[5]\n"),
        ("sub", ["3", "5"], b"[-2]\n"),
        ("divmod", ["7", "-2"], b"[-3, 1]\n"),
        ("nothing", [], b"[]\n"),
        ("add", ["0x10", "1"], b"[17]\n"),
        ("add", ["4294967295", "1"], b"[0]\n"),
    ],
)
def test_invoke(export: str, numbers: list[str], printed: bytes) -> None:
    done = kindling("run", "--invoke", export, fixture("exports"), *numbers)
    assert (done.returncode, done.stdout, done.stderr) == (0, printed, b"")


def test_invoke_floats_print_as_python_repr(tmp_path: Path) -> None:
    if shutil.which("wat2wasm") is None:
        pytest.skip("wat2wasm (Debian package wabt) is not installed")
    wat = tmp_path / "floats.wat"
    wat.write_text(
        '(module (func (export "half") (param f64 f32) (result f64 f32 i64)'
        " local.get 0 f64.const 0.5 f64.mul local.get 1 i64.const -1))"
    )
    module = tmp_path / "floats.wasm"
    subprocess.run(["wat2wasm", str(wat), "-o", str(module)], check=True)
    done = kindling("run", "--invoke", "half", module, "3", "0.1")
    assert done.stdout == b"[1.5, 0.10000000149011612, -1]\n", done.stderr
    done = kindling("run", "--invoke", "half", module, "nan", "-inf")
    assert done.stdout == b"[nan, -inf, -1]\n", done.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--invoke", "add", fixture("exports"), "two", "3"], "not a number"),
        # Only the guest knows the signature; what does not fit is still a usage error.
        (["--invoke", "add", fixture("exports"), "3"], "add takes 2 arguments (i32, i32), got 1"),
        (["--invoke", "add", fixture("exports"), "3", "1.5"], "add's parameter 2 (i32)"),
        (["--invoke", "add", fixture("exports"), "3", "0x1_0000_0000"], "out of range"),
        (["--memory", "lots", fixture("hello")], "--memory"),
        (["--env", "NOEQUALS", fixture("hello")], "KEY=VALUE"),
        (["--timeout", "-1", fixture("hello")], "--timeout"),
        (["--load-timeout", "0", fixture("hello")], "--load-timeout"),
        (["--bogus", fixture("hello")], "--bogus"),
        ([], ""),
    ],
)
def test_usage_errors_exit_2(args: list[Any], words: str) -> None:
    done = kindling("run", *args)
    assert done.returncode == 2, done.stderr
    assert words.encode() in done.stderr + done.stdout
    assert b"Traceback" not in done.stderr


def big_module(functions: int, pairs: int) -> bytes:
    """``functions`` functions of ``pairs`` (i32.const 1; drop) each, and an export "_init"."""
    body = b"\x00" + b"\x41\x01\x1a" * pairs + b"\x0b"
    return (
        b"\0asm\x01\0\0\0"
        + section(1, vec(b"\x60\x00\x00"))
        + section(3, vec(*[b"\x00"] * functions))
        + section(7, vec(name("_init") + b"\x00\x00"))
        + section(10, vec(*[uleb(len(body)) + body] * functions))
    )


def test_loading_has_a_deadline_and_the_ending_says_so(tmp_path: Path) -> None:
    """A 3.6 MB module takes seconds to decode and validate; --load-timeout cuts it short."""
    module = tmp_path / "big.wasm"
    module.write_bytes(big_module(2000, 600))
    done = kindling("run", "--no-cache", "--report", "--load-timeout", "0.3", module)
    assert done.returncode == 124, done.stderr
    report = report_of(done)
    assert report["ending"] == "limit(wall)"
    assert "loading the module" in report["reason"] and "0.3 s" in report["reason"]
    assert report["total_ms"] < 0.3 * 1000 + 2000


def test_config_file_and_overrides(tmp_path: Path) -> None:
    config = tmp_path / "guest.toml"
    config.write_text('args = ["from-file"]\n[env]\nA = "file"\nB = "file"\n')
    done = kindling("run", "--config", config, "--env", "B=cli", fixture("args_env"))
    assert done.stdout == b"argc=2\narg[1]=from-file\nenvc=2\nenv A=file\nenv B=cli\n"
    done = kindling("run", "--config", config, fixture("args_env"), "from-cli")
    assert done.stdout.startswith(b"argc=2\narg[1]=from-cli\n")


def test_config_file_unknown_key(tmp_path: Path) -> None:
    config = tmp_path / "guest.toml"
    config.write_text('memory = "5MiB"\ntimout = 3\n')
    done = kindling("run", "--config", config, fixture("hello"))
    assert done.returncode == 2
    assert (
        f"{config}: unknown key 'timout' (allowed keys: args, cpu, dirs, env, fuel, load_timeout, max_output, memory, ro_dirs, timeout)".encode()
        in done.stderr
    )


def test_the_example_config_runs_the_demo() -> None:
    done = kindling(
        "run", "--config", REPO_ROOT / "configs" / "hello.toml", EXAMPLES_DIR / "hello.wasm"
    )
    assert done.returncode == 0, done.stderr
    assert b"argument 2: a config file\n" in done.stdout


def test_missing_module_is_a_load_failure() -> None:
    done = kindling("run", "--report", "no/such/module.wasm")
    assert done.returncode == 120
    assert (
        b"kindling: cannot load the module (read): cannot read no/such/module.wasm: No such file or directory\n"
        in done.stderr
    )
    assert report_of(done)["ending"] == "load_failure(read)"


def test_stdin_reaches_the_guest() -> None:
    done = kindling("run", fixture("cat"), stdin=b"through the host\n")
    assert done.stdout == b"through the host\n"
    assert done.stderr == b"cat: 17 bytes\n"


def test_stdin_from_a_file(tmp_path: Path) -> None:
    data = tmp_path / "input"
    data.write_bytes(b"x" * 100_000)
    with data.open("rb") as handle:
        done = subprocess.run(
            [*kindling_command(), "run", str(fixture("cat"))],
            stdin=handle,
            capture_output=True,
            env=kindling_environment(),
            cwd=REPO_ROOT,
            timeout=60,
        )
    assert done.stdout == b"x" * 100_000


def test_interrupt_stops_the_guest() -> None:
    process = subprocess.Popen(
        [*kindling_command(), "run", "--report", str(fixture("infinite_loop"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=kindling_environment(),
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"spinning forever\n"
        guests = psutil.Process(process.pid).children()
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 118
    assert b"kindling: guest stopped: interrupted by SIGINT\n" in err
    assert json.loads(err.splitlines()[-1])["ending"] == "stopped"
    _gone, alive = psutil.wait_procs(guests, timeout=5)
    assert not alive


def test_a_closed_stdout_does_not_hang_the_host() -> None:
    process = subprocess.Popen(
        [*kindling_command(), "run", "--max-output", "4MiB", str(fixture("output_flood"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=kindling_environment(),
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        process.stdout.read(1000)
        process.stdout.close()
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 126, err
    assert b"Traceback" not in err


def test_main_returns_the_status_when_given_argv(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--bogus"]) == 2
    assert main(["--help"]) == 0
    assert "run" in capsys.readouterr().out


def test_the_limit_options_are_the_config_keys() -> None:
    """``kindling run`` has an option for every configuration key that has one, as
    ``host.configkeys`` declares it, and the same keys are what its help names for TOML."""
    options = {
        param.name: param
        for param in cli.run_command.params
        if isinstance(param, click.Option) and param.name in BY_NAME
    }
    assert list(options) == [key.name for key in KEYS if key.option]
    assert set(BY_NAME) - set(options) == {"args"}  # ARGS, the positional arguments
    for field, option in options.items():
        key = BY_NAME[field]
        assert option.opts == [key.flag]
        assert (option.metavar, option.help, option.multiple) == (
            key.metavar,
            key.option_help,
            key.repeatable or key.listed,
        )
        assert option.type.name == click.types.convert_type(key.parse).name
    assert ", ".join(key.name for key in KEYS) in " ".join(cli.RUN_HELP.split())


def test_a_new_key_becomes_an_option() -> None:
    stack = ConfigKey("stack_size", "Stack bytes.", metavar="SIZE", example='"1MiB"')
    got: dict[str, Any] = {}

    @click.command()
    @cli.config_options([*KEYS, stack])
    def command(**settings: Any) -> None:
        got.update(settings)

    runner = CliRunner()
    done = runner.invoke(command, ["--stack-size", "1MiB", "--fuel", "7", "--env", "A=b"])
    assert done.exit_code == 0, done.output
    assert got["stack_size"] == "1MiB" and got["fuel"] == 7 and got["env"] == ("A=b",)
    assert got["memory"] is None and "args" not in got
    help_lines = runner.invoke(command, ["--help"]).output.splitlines()
    assert [line.split() for line in help_lines if "--stack-size" in line] == [
        ["--stack-size", "SIZE", "Stack", "bytes.", "Default:", "none."]
    ]


def test_the_cli_imports_only_click_and_two_leaves_at_start_up() -> None:
    """``kindling``'s start-up: pydantic, asyncio and the protocol come once a command runs."""
    code = (
        "import sys, click\nbefore = set(sys.modules)\nimport host.cli\n"
        "print(*sorted(set(sys.modules) - before))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    ours = [m for m in done.stdout.split() if m.split(".")[0] not in sys.stdlib_module_names]
    assert ours == ["host", "host.cli", "host.configkeys", "host.exitcodes"]


def test_run_dash_reads_the_module_from_stdin_and_the_guest_reads_nothing(
    guest_factory: Any,
) -> None:
    """``kindling run -``: the module comes on stdin, so the program's stdin is empty (issue
    14.4): cat copies nothing and says it read 0 bytes."""
    guest = guest_factory.run("-", stdin=fixture("cat").read_bytes(), report=False)
    assert (guest.returncode, guest.stdout, guest.stderr) == (0, b"", b"cat: 0 bytes\n")


CONSOLE_FILETYPE = Path(__file__).parent / "data" / "console_filetype.wat"
UNKNOWN, CHARACTER_DEVICE = 0, 2


@pytest.mark.parametrize("fd", ["0", "1", "2"])
def test_a_console_stream_on_a_pipe_is_no_terminal(guest_factory: Any, fd: str) -> None:
    """isatty() is false when the stream is a pipe (issue 14.4): not a character device."""
    guest = guest_factory.run(CONSOLE_FILETYPE, [fd], report=False)
    assert guest.returncode == UNKNOWN


def test_a_console_stream_on_a_terminal_is_a_character_device() -> None:
    main_end, terminal = pty.openpty()
    try:
        for fd, expected in (("1", CHARACTER_DEVICE), ("2", UNKNOWN)):
            done = subprocess.run(
                [*kindling_command(), "run", str(CONSOLE_FILETYPE), fd],
                stdin=subprocess.DEVNULL,
                stdout=terminal,
                stderr=subprocess.PIPE,
                env=kindling_environment(),
                timeout=120,
            )
            assert done.returncode == expected, done.stderr
    finally:
        os.close(main_end)
        os.close(terminal)


def test_a_guest_writing_to_a_closed_pipe_gets_epipe(guest_factory: Any) -> None:
    """``kindling run yes.wat | head -1`` (issue 14.4): once the host's write to stdout
    fails, the guest is told, and its next fd_write answers PIPE (64), which it exits with;
    before, every write seemed to succeed and it ran until its output quota."""
    guest = guest_factory.build(Path(__file__).parent / "data" / "yes.wat", report=False)
    guest.spawn()
    assert guest.process.stdout.read(2) == b"y\n"
    guest.process.stdout.close()  # the reader goes
    guest.wait()
    assert guest.returncode == 64, guest.stderr


def test_a_write_the_host_cannot_make_fails_the_program_though_it_went_ahead(
    tmp_path: Path,
) -> None:
    # The host's own file size limit stops its worker's write partway: the guest, which sent
    # its writes ahead, hears of it at a later write or at close and exits 100 + EFBIG (22).
    limit = 100_000
    command = [*kindling_command(), "run", "--dir", f"{tmp_path}::/"]
    command += [str(fixture("file_throughput")), "w", str(1024 * 1024)]
    done = subprocess.run(
        command,
        capture_output=True,
        env=kindling_environment(),
        cwd=REPO_ROOT,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    assert done.returncode == 122, done.stderr
    assert (tmp_path / "data").stat().st_size == limit
