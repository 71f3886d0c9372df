"""The ``kindling`` command line.

``kindling run MODULE [ARGS...]`` runs a WebAssembly module in a new guest process and exits
with the guest's status. Everything after MODULE goes to the program untouched, options
included; put ``--`` before MODULE when the module's name itself starts with ``-``.

Exit statuses (``host.exitcodes`` declares them, and the words of this table)::

{exit_statuses}

The options of the guest's configuration (``--memory`` ...) are made from
``host.configkeys``, one per key (``config_options``); the model that validates them is
``host.config.GuestConfig``. Start-up is kept lean: this module imports only click and those
two standard-library-only modules (configkeys, exitcodes); asyncio, pydantic and the host
machinery are imported once a command runs, and the guest process is spawned before the
pydantic models are needed, so the two start-ups overlap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from host.configkeys import BY_NAME, KEYS, ConfigKey
from host.exitcodes import CliExitCode, text_table, with_table

__doc__ = with_table(__doc__)

_Command = TypeVar("_Command", bound=Callable[..., Any])

RUN_HELP = f"""Run a WebAssembly MODULE in a new sandboxed guest process.

\b
The program gets ARGS (after argv[0], the MODULE path) and only the
environment given with --env or the config file. Its stdout and stderr
appear here as it writes them; it reads this process's stdin on demand.
MODULE - reads the module from stdin (the program's stdin is then empty).
With --invoke EXPORT, the exported function is called with ARGS as
numbers and its results are printed as a list, integers signed: [-1].

\b
How the guest ended decides the exit status:
{text_table()}
For every ending but exited(n) one line on stderr says why, e.g.
"kindling: guest trapped: integer divide by zero".

\b
--report adds a final line to stderr, one JSON object: ending, exit_code
(the program's, or null), status, reason; timings in milliseconds:
spawn_ms (until the guest process was ready), decode_ms, validate_ms,
compile_ms, precompile_ms (functions translated ahead of their first
call, while the host started up; "precompiled" counts them),
instantiate_ms, run_ms, total_ms (the whole command); peak_memory (bytes,
peak RSS of the guest process), cpu_ms (its CPU time), output_bytes.

Options given here override the --config file (TOML with the keys
{", ".join(key.name for key in KEYS)}; unknown keys are errors).
"""


def config_options(keys: Sequence[ConfigKey] = KEYS) -> Callable[[_Command], _Command]:
    """A decorator that adds a ``kindling run`` option for every configuration key that has
    one, in ``keys``' order; the command gets each as a keyword named like the key (None,
    or ``()`` for a repeatable one, when not given)."""

    def decorate(command: _Command) -> _Command:
        for key in reversed(keys):  # click lists options in the order they were added
            if key.option:
                command = click.option(
                    key.flag,
                    key.name,
                    type=key.parse,
                    multiple=key.repeatable or key.listed,
                    metavar=key.metavar,
                    help=key.option_help,
                )(command)
        return command

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kindling", prog_name="kindling")
def cli() -> None:
    """Kindling: WebAssembly guests, each in its own sandboxed process."""


@cli.command(
    "run",
    help=RUN_HELP,
    context_settings={"allow_interspersed_args": False},
    no_args_is_help=True,
)
@click.argument("module", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@config_options()
@click.option("--invoke", metavar="EXPORT", help="Call EXPORT with ARGS as numbers.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A TOML guest config (see configs/).",
)
@click.option("--report", is_flag=True, help="Print a JSON report as the last line of stderr.")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Compile afresh: neither read nor write the code cache ($KINDLING_CACHE_DIR).",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The code cache's directory (default $KINDLING_CACHE_DIR, else ~/.cache/kindling/"
    "code): one per trust domain, since what one run stores, the next one loads.",
)
def run_command(
    module: Path,
    args: tuple[str, ...],
    invoke: str | None,
    config_file: Path | None,
    report: bool,
    no_cache: bool,
    cache_dir: Path | None,
    **settings: Any,
) -> int:
    started = _now()
    if no_cache and cache_dir is not None:
        raise click.UsageError("--no-cache and --cache-dir contradict each other")
    overrides: dict[str, Any] = {}  # what the command line gave of the configuration
    for name, value in settings.items():  # each key of config_options(): None if not given
        key = BY_NAME[name]
        if key.listed:
            if value:
                overrides[name] = list(value)
        elif key.repeatable:
            if value:
                overrides[name] = dict(_parse_pair(item, key.flag) for item in value)
        elif value is not None:
            overrides[name] = value
    numbers = [_parse_number(arg) for arg in args] if invoke is not None else []

    from_stdin = str(module) == "-"  # `kindling run -`: the module comes on stdin
    try:
        module_bytes = _read_module(module)
    except OSError as exc:
        from host.endings import Ending
        from host.run_cli import finish
        from protocol.messages import LoadStage

        text = f"cannot read {module}: {exc.strerror or exc}"
        ending = Ending.load_failure(LoadStage.READ, text)
        return finish(ending, None, report, started)

    from host.run_cli import run_cli

    return run_cli(
        module_bytes=module_bytes,
        program_name=str(module),
        config_file=config_file,
        overrides=overrides,
        guest_args=None if invoke is not None or not args else list(args),
        invoke=invoke,
        numbers=numbers,
        report=report,
        started=started,
        code_cache=not no_cache,
        cache_dir=cache_dir,
        guest_stdin=not from_stdin,
    )


def _now() -> float:
    import time

    return time.perf_counter()


def _parse_pair(item: str, flag: str) -> tuple[str, str]:
    key, equals, value = item.partition("=")
    if not equals or not key:
        raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag)
    return key, value


def _parse_number(text: str) -> int | float:
    """A number for --invoke: decimal or 0x/0o/0b integers, or a float (``nan``, ``-inf``)."""
    for parse in (lambda t: int(t, 10), lambda t: int(t, 0), float):
        try:
            value: int | float = parse(text)
        except ValueError:
            continue
        if isinstance(value, int) and not -(1 << 63) <= value < (1 << 64):
            raise click.BadParameter(f"{text} does not fit in 64 bits", param_hint="ARGS")
        return value
    raise click.BadParameter(f"{text!r} is not a number", param_hint="ARGS")


def _read_module(path: Path) -> bytes:
    """The module's bytes, from the file, or from stdin for ``-`` (read to its end)."""
    from protocol.messages import MAX_MODULE_BYTES

    with path.open("rb") if str(path) != "-" else os.fdopen(0, "rb", closefd=False) as handle:
        data = handle.read(MAX_MODULE_BYTES + 1)
    if len(data) > MAX_MODULE_BYTES:
        raise OSError(0, f"the module is larger than {MAX_MODULE_BYTES} bytes")
    return data


SPEC_HELP = """Run WebAssembly spec test scripts (.wast) and report per file.

\b
PATHS are .wast files or folders of them (e.g. the official suite's core/).
Each script runs in its own guest-side process against the spec's test host
module `spectest`. The table shows assertions passed, failed and total per
file, then every failure with its line and what differed.
--json prints {"passed", "failed", "total", "errors", "files": [...]} instead.
The exit status is 0 only when nothing failed.
"""


@cli.command("spec", help=SPEC_HELP, no_args_is_help=True)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option(
    "--jobs", type=click.IntRange(1, 64), default=2, show_default=True, help="Scripts run at once."
)
def spec_command(paths: tuple[Path, ...], as_json: bool, jobs: int) -> int:
    import json

    from host.spec import collect_scripts, format_table, run_scripts, to_json, totals

    try:
        scripts = collect_scripts(paths)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from exc
    if not scripts:
        raise click.UsageError("no .wast scripts found in " + ", ".join(map(str, paths)))
    results = run_scripts(scripts, jobs)
    if as_json:
        click.echo(json.dumps(to_json(results)))
    else:
        click.echo(format_table(results))
    sums = totals(results)
    return 0 if sums["failed"] == 0 and sums["errors"] == 0 else 1


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
def doctor(as_json: bool) -> int:
    """Report the isolation this machine allows and what is in force for guests.

    Runs a probe process hardened exactly as a guest is (rlimits, namespaces, uid,
    no_new_privs, seccomp) and has it try what a guest must not do: write or read a file,
    fork, exec, open a socket, signal or trace the host, become root, raise a limit.
    The exit status is 0 when every one of those was blocked.
    """
    from host.doctor import doctor_command

    return doctor_command(as_json)


SERVE_HELP = """Serve the functions of CONFIG over HTTP.

\b
CONFIG is TOML with one [[function]] table per function: name, module
(relative to CONFIG), route (default /NAME; served at that path and
below), mode ("command": WAGI/CGI, a fresh guest per request; "export":
a warm pool, JSON arrays of numbers), export, init, concurrency, queue,
pool = { min, max, idle }, and every key of `kindling run --config`
(memory, timeout, cpu, fuel, max_output, env, args, load_timeout).

\b
GET /metrics gives Prometheus metrics; an unknown route is a 404. One
JSON line per invocation goes to stderr (or --log FILE). SIGHUP reloads
CONFIG (requests in flight finish on the old version); SIGTERM drains
requests in flight for up to --grace seconds, then stops every guest.
A bad CONFIG exits 2 naming the key.
"""


@cli.command("serve", help=SERVE_HELP)
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT")
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Append the invocation log here instead of stderr.",
)
@click.option(
    "--grace",
    type=click.FloatRange(0, 3600),
    default=10.0,
    show_default=True,
    help="Seconds SIGTERM waits for requests in flight.",
)
@click.option(
    "--api-socket",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Serve the control API on this Unix socket (created 0600).",
)
def serve(
    config: Path, listen: str, log_path: Path | None, grace: float, api_socket: Path | None
) -> int:
    from host.serve.server import serve_command

    return serve_command(config, listen, log_path, grace, api_socket)


@cli.command("ps")
@click.option("--api-socket", type=click.Path(path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead.")
def ps(api_socket: Path, as_json: bool) -> int:
    """List the functions and guests of a `kindling serve` (its control API)."""
    from host.serve.client import ps_command

    return ps_command(api_socket, as_json)


@cli.command("top")
@click.option("--api-socket", type=click.Path(path_type=Path), required=True)
@click.option("--interval", type=click.FloatRange(0.1, 60), default=1.0, show_default=True)
@click.option("--frames", type=click.IntRange(1), default=None, help="Stop after N refreshes.")
def top(api_socket: Path, interval: float, frames: int | None) -> int:
    """A live view of a `kindling serve`: per function, requests a second, latency
    percentiles (of its last 1,024 requests), in flight, queued, 429s, guests, memory."""
    from host.serve.client import top_command

    return top_command(api_socket, interval, frames)


@cli.command("invoke")
@click.argument("name")
@click.option("--api-socket", type=click.Path(path_type=Path), required=True)
@click.option("--data", default=None, help="The body: text, @FILE, or - for stdin.")
@click.option("--header", "headers", multiple=True, metavar="K:V", help="A request header.")
@click.option("--query", default="", help="The query string (the command's arguments).")
def invoke(
    name: str, api_socket: Path, data: str | None, headers: tuple[str, ...], query: str
) -> int:
    """Invoke function NAME of a `kindling serve` through its control API: the body on
    stdout, the status and report on stderr; exit 0 for a 2xx status, else 1."""
    from host.serve.client import invoke_command

    return invoke_command(api_socket, name, data, headers, query)


@cli.group("bench")
def bench_group() -> None:
    """Measure Kindling: the engine's speed, and (later) spawning."""


BENCH_ENGINE_HELP = """Time the engine on a benchmark suite against plain CPython.

\b
Without FOLDER, Kindling's own suite (benchmarks/engine) and its SIMD
kernels (benchmarks/engine/simd); any FOLDER laid out like it (README.md
table, wasm/, py/, expected.json -- e.g. the shared bench folder) can be
given instead or as well. For each program, fresh
processes run our engine, the program's Python port and (when installed,
at --size small) pywasm, alternately, --repeat times; only the run phase
is timed and every output is checked against expected.json. The table
shows medians: kindling s, port s, their ratio, pywasm s and how many
times faster we are, and the geomeans. With --fuel, each program also
runs metered (an unreachable budget) and the table adds the overhead.
A program with a SIMD build (wasm/simd128/NAME.wasm, the same source built
with -msimd128) runs that too: the table adds simd s and simd/scalar.
The exit status is 0 when every program ran and printed what it should.
"""


@bench_group.command("engine", help=BENCH_ENGINE_HELP)
@click.argument("folders", nargs=-1, type=click.Path(path_type=Path, file_okay=False))
@click.option("--size", type=click.Choice(["small", "large"]), default="small", show_default=True)
@click.option("--repeat", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@click.option(
    "--pywasm/--no-pywasm", default=None, help="Also time pywasm (default: when installed)."
)
@click.option("--fuel", is_flag=True, help="Also time metered runs; show what metering costs.")
@click.option(
    "--pywasm-timeout",
    type=click.FloatRange(1, 86400),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="Stop a pywasm run after this long (its ratio is then a lower bound).",
)
@click.option(
    "--program", "programs", multiple=True, metavar="NAME", help="Only this program (repeatable)."
)
def bench_engine(
    folders: tuple[Path, ...],
    size: str,
    repeat: int,
    as_json: bool,
    pywasm: bool | None,
    fuel: bool,
    pywasm_timeout: float,
    programs: tuple[str, ...],
) -> int:
    from host.bench.engine import bench_engine_command

    return bench_engine_command(
        list(folders),
        size,
        repeat,
        as_json,
        pywasm,
        fuel=fuel,
        pywasm_timeout=pywasm_timeout,
        programs=programs or None,
    )


BENCH_STARTUP_HELP = """Time how long a guest takes to load a module: cold, and from the code cache.

\b
Without MODULE, the C programs of Kindling's own suite (benchmarks/engine,
about 28 KB each). For each repeat, with a new empty cache directory, one
guest process loads the module cold (decode, validate, compile every
function) and a second one loads it from the cache; the table shows the
medians of what the guests timed, against the targets (cold <= 100 ms for
a 25 KB module, cached <= 10 ms).
"""


@bench_group.command("startup", help=BENCH_STARTUP_HELP)
@click.argument("modules", nargs=-1, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--repeat", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
def bench_startup(modules: tuple[Path, ...], repeat: int, as_json: bool) -> int:
    from host.bench.engine import default_suite
    from host.bench.startup import bench_startup_command

    chosen = list(modules) or sorted(
        path for path in (default_suite() / "wasm").glob("*.wasm") if path.stat().st_size > 1000
    )
    return bench_startup_command(chosen, repeat, as_json)


BENCH_LOAD_HELP = """Time loading modules shaped to be expensive, against wasmtime.

\b
The shapes are those of host/bench/loadshapes.py: deep nesting of blocks,
ifs and loops, wide br_tables, a deep operand stack, many locals; by
default at the sizes issue 10 reported. For each repeat a new guest
process loads one cold (decode, validate, compile every function),
instantiates it and checks what it computes; wasmtime compiles the same
bytes in its own process. The table shows medians against the target
(each load under a second). The exit status is 0 when every module
loaded and ran right.
"""


@bench_group.command("load", help=BENCH_LOAD_HELP)
@click.option("--shape", "shapes", multiple=True, metavar="NAME", help="Only this (repeatable).")
@click.option("--size", type=click.IntRange(1, 1_000_000), help="Instead of each shape's own.")
@click.option("--repeat", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@click.option("--wasmtime/--no-wasmtime", default=True, help="Also time wasmtime, if installed.")
def bench_load(
    shapes: tuple[str, ...], size: int | None, repeat: int, as_json: bool, wasmtime: bool
) -> int:
    from host.bench.load import bench_load_command
    from host.bench.loadshapes import SHAPES

    for name in shapes:
        if name not in SHAPES:
            raise click.BadParameter(
                f"{name!r} is not one of {', '.join(SHAPES)}", param_hint="--shape"
            )
    return bench_load_command(list(shapes), size, repeat, as_json, wasmtime)


BENCH_SPAWN_HELP = """Time guests forked from templates: latency, rate, memory, reaping.

\b
Starts --templates template processes of MODULE (default: the exports
fixture, which adds numbers), then forks --latency guests one at a time
(template -> ready, p50 and p99, as each guest timed it), then --guests
guests at once (creation rate, USS per idle guest, memory in use per
guest), has every one answer an invocation of --export 2 3, stops and
reaps them all. Then --burst launches are issued at once through the Host
API (time to all ready, p50 and p99 per launch, as many invocations at
once, descriptors per guest, time to leave the Host). Last, it checks that
no process or descriptor is left over.
"""


@bench_group.command("spawn", help=BENCH_SPAWN_HELP)
@click.argument(
    "module", required=False, type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@click.option("--guests", type=click.IntRange(1, 20000), default=1000, show_default=True)
@click.option("--latency", type=click.IntRange(1, 100000), default=300, show_default=True)
@click.option(
    "--templates",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Templates of MODULE to fork from (the Host API keeps one per module and config).",
)
@click.option(
    "--window",
    type=click.IntRange(1, 10000),
    default=64,
    show_default=True,
    help="Forks in flight at once while creating --guests.",
)
@click.option("--export", default="add", show_default=True)
@click.option(
    "--churn",
    type=click.IntRange(0, 1_000_000),
    default=5000,
    show_default=True,
    help="Guests created and stopped (then as many invoked once too), at most 256 alive.",
)
@click.option(
    "--burst",
    type=click.IntRange(0, 20000),
    default=1000,
    show_default=True,
    help="Host.launch calls issued at once, then as many invocations (0: skip).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
def bench_spawn(
    module: Path | None,
    guests: int,
    latency: int,
    templates: int,
    window: int,
    export: str,
    churn: int,
    burst: int,
    as_json: bool,
) -> int:
    from host.bench.spawn import bench_spawn_command

    chosen = module or Path(__file__).resolve().parent.parent / "tests/fixtures/wasm/exports.wasm"
    return bench_spawn_command(
        chosen, guests, latency, templates, window, export, as_json, churn=churn, burst=burst
    )


BENCH_FUEL_HELP = """Measure the CPU time one unit of fuel buys, and the worst case.

\b
Without FOLDER, Kindling's own suite (benchmarks/engine); FOLDERs laid out
like it (e.g. the shared bench folder) can be given instead or as well.
Each program runs metered with a budget it never reaches; then a loop of
each bulk operation (memory.fill/copy/init, table.fill/copy/init,
memory.grow, table.grow; WASI random_get, fd_write with many iovecs,
clock_time_get) at a few lengths spends --bulk-fuel units. Every run is a hardened guest with its
code already in the code cache; the table shows the fuel used, the CPU
seconds from boot to exit, and us per unit (CPU seconds per million
units), medians of --repeat runs, and names the worst row: a budget of N
units is at most about N times its figure of CPU.
"""


@bench_group.command("fuel", help=BENCH_FUEL_HELP)
@click.argument("folders", nargs=-1, type=click.Path(path_type=Path, file_okay=False))
@click.option("--size", type=click.Choice(["small", "large"]), default="small", show_default=True)
@click.option("--repeat", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option(
    "--bulk-fuel",
    type=click.IntRange(1000, 1 << 50),
    default=20_000_000,
    show_default=True,
    metavar="UNITS",
    help="Fuel each bulk loop spends.",
)
@click.option("--bulk/--no-bulk", default=True, help="Measure the bulk loops (default: yes).")
@click.option(
    "--program", "programs", multiple=True, metavar="NAME", help="Only this program (repeatable)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
def bench_fuel(
    folders: tuple[Path, ...],
    size: str,
    repeat: int,
    bulk_fuel: int,
    bulk: bool,
    programs: tuple[str, ...],
    as_json: bool,
) -> int:
    from host.bench.fuel import bench_fuel_command

    return bench_fuel_command(
        list(folders),
        size,
        repeat,
        as_json,
        programs=programs or None,
        bulk=bulk,
        bulk_fuel=bulk_fuel,
    )


BENCH_SERVE_HELP = """Load the HTTP gateway of `kindling serve` over loopback.

\b
Starts `kindling serve` with shout.wasm (command mode: a fresh guest per
request) and add.wasm (export mode: a warm pool), copies of examples/
shipped with the package, and a hello-world handler of the same HTTP library (aiohttp). Cold: the first
request to each function of a new gateway (median of --cold runs). Warm:
--concurrency clients for --duration seconds each, with this command's
own async load generator and with `wrk -t2` when it is installed; req/s,
p50 and p99. Targets (issue 13, wrk -t2 -c16): command >= 500 req/s,
p99 <= 50 ms; export >= 3,000 req/s, p99 <= 20 ms. The exit status is 0
when no request failed.
"""


@bench_group.command("serve", help=BENCH_SERVE_HELP)
@click.option("--concurrency", type=click.IntRange(1, 1024), default=16, show_default=True)
@click.option("--duration", type=click.FloatRange(1, 3600), default=10.0, show_default=True)
@click.option("--cold", type=click.IntRange(0, 100), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
def bench_serve(concurrency: int, duration: float, cold: int, as_json: bool) -> int:
    from host.bench.serve import bench_serve_command

    return bench_serve_command(concurrency, duration, cold, as_json)


BENCH_FILES_HELP = """Time bytes through a preopened directory against stdin/stdout.

\b
A guest (tests/fixtures/wat/file_throughput.wat) moves --size bytes in
calls of 64 KiB: it writes a file in a --dir preopen, and the same bytes
to stdout (--max-output raised for them); it reads the file back, and the
same file from stdin. Each is a `kindling run --report` process, and the
figure is its run_ms (program start to exit, start-up not in it); the four
runs of a round go back to back, --repeat rounds. The table shows medians,
MiB/s and preopen / stdio against the target (issue 14: within 2x).
Then --guests guests are launched at once through the Host API, each
reading a file through an --ro-dir preopen and waiting on stdin, and the
host's open descriptors are counted against its limit (ulimit -n).
The exit status is 0 when every run did its work and no descriptor is left.
"""


@bench_group.command("files", help=BENCH_FILES_HELP)
@click.option(
    "--size",
    type=click.IntRange(0, 1 << 34),
    default=16 * 1024 * 1024,
    show_default=True,
    metavar="BYTES",
)
@click.option(
    "--repeat", type=click.IntRange(0, 100), default=5, show_default=True, help="0: no timing."
)
@click.option(
    "--guests",
    type=click.IntRange(0, 20000),
    default=1000,
    show_default=True,
    help="Guests alive at once with a preopen, for the descriptor count (0: skip).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
def bench_files(size: int, repeat: int, guests: int, as_json: bool) -> int:
    from host.bench.files import bench_files_command

    return bench_files_command(size, repeat, guests, as_json)


def main(argv: list[str] | None = None) -> int:
    """The console script: run the CLI and return its exit status.

    Called without ``argv`` (as the ``kindling`` script is), it reads ``sys.argv`` and, once
    everything is written, ends the process at once with that status: the interpreter's
    teardown of pydantic and asyncio would add tens of milliseconds to every run, and the
    guest has already been reaped. Called with ``argv`` it just returns the status.
    """
    status = _main(argv)
    if argv is None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            pass
        os._exit(status)
    return status


def _main(argv: list[str] | None) -> int:
    try:
        result = cli.main(args=argv, prog_name="kindling", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:  # Ctrl-C before the guest's own handler was in place
        sys.stderr.write("kindling: interrupted\n")
        return CliExitCode.STOPPED
    except BrokenPipeError:
        # Our own stdout went away (e.g. `| head`): nothing more to say to anyone.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
