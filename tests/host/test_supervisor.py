"""The Python API: Host, Sandbox, lifecycle, restart policies, events, watchdog, metrics.

Real templates and guests throughout, from the ``host`` and ``sandbox`` fixtures (conftest);
``no_leaks`` checks every test for stray processes and descriptors.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any, TypedDict

import pytest

from host import guest as guest_module
from host.config import ConfigError, GuestConfig
from host.errors import GuestEnded, GuestTrapped, InvokeRefused
from host.lifecycle import (
    TRANSITIONS,
    LifecycleError,
    Restart,
    RestartCounter,
    RestartPolicy,
    State,
)
from host.supervisor import Host, Sandbox
from host.sync import SyncHost
from host.watchdog import own_memory
from protocol.messages import RefusalReason
from tests.framework.paths import REPO_ROOT, fixture
from tests.framework.proc import proc_limit

pytestmark = pytest.mark.slow  # nearly every test here starts templates and guests

EXPORTS = fixture("exports")


class Backoff(TypedDict):
    initial_backoff: float
    max_backoff: float


class StartLimits(TypedDict, total=False):
    cpu: int
    fuel: int


FAST: Backoff = {"initial_backoff": 0.01, "max_backoff": 0.05}


async def test_launch_invoke_stop_with_events(host: Host) -> None:
    events: list[tuple[str, str]] = []
    host.subscribe(lambda e: events.append((e.old.value, e.new.value)))
    sandbox = await host.launch(EXPORTS, memory="5MiB", fuel=10**6, timeout=30)
    assert sandbox.state is State.RUNNING and sandbox.pid is not None
    assert await sandbox.invoke("sub", 3, 5) == [-2]
    assert host.guests() == [sandbox]
    assert str(await sandbox.stop()) == "stopped"
    # mypy keeps the narrowing to RUNNING from above across the awaits: the state has moved.
    assert sandbox.state is State.EXITED and sandbox.pid is None  # type: ignore[comparison-overlap]
    assert events == [
        ("not started", "starting"),
        ("starting", "running"),
        ("running", "stopping"),
        ("stopping", "exited"),
    ]


async def test_a_module_path_or_bytes_and_one_template_per_configuration(host: Host) -> None:
    first = await host.launch(EXPORTS)
    second = await host.launch(EXPORTS.read_bytes())
    third = await host.launch(EXPORTS, memory="1MiB")
    assert len(host.templates()) == 2  # same module and config share a template
    assert {await s.invoke("add", 20, 22) == [42] for s in (first, second, third)} == {True}


async def test_illegal_actions_name_the_state(sandbox: Sandbox) -> None:
    with pytest.raises(LifecycleError, match="cannot resume sandbox sandbox-1: it is running"):
        await sandbox.resume()
    await sandbox.pause()
    assert sandbox.state is State.PAUSED
    with pytest.raises(LifecycleError, match=r"cannot invoke .* it is paused, not running"):
        await sandbox.invoke("add", 1, 2)
    await sandbox.resume()
    assert await sandbox.invoke("add", 1, 2) == [3]
    await sandbox.stop()
    with pytest.raises(LifecycleError, match="it is exited"):
        await sandbox.invoke("add", 1, 2)


def process_state(pid: int | None) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]


async def test_pause_really_stops_the_process(sandbox: Sandbox) -> None:
    await sandbox.pause()
    assert process_state(sandbox.pid) == "T"
    await sandbox.resume()
    assert process_state(sandbox.pid) in "SR"
    # A paused guest stops at once: no shutdown request can reach it.
    await sandbox.pause()
    assert str(await sandbox.stop(grace=5)) == "stopped"


async def test_refusals_and_traps_in_invoke_leave_the_sandbox_running(sandbox: Sandbox) -> None:
    with pytest.raises(InvokeRefused, match="nope") as no_export:
        await sandbox.invoke("nope")
    assert no_export.value.reason is RefusalReason.NO_EXPORT
    with pytest.raises(InvokeRefused, match="sub's parameter 2 \\(i32\\) is out of range") as bad:
        await sandbox.invoke("sub", 1, 1 << 40)
    assert bad.value.reason is RefusalReason.ARGUMENTS
    with pytest.raises(GuestTrapped, match="integer divide by zero"):
        await sandbox.invoke("divmod", 1, 0)
    assert sandbox.state is State.RUNNING
    assert await sandbox.invoke("sub", 3, 5) == [-2]


async def test_a_command_that_traps_ends_its_sandbox(host: Host) -> None:
    """Issue 10: run() raised but left the sandbox running, so wait() never returned."""
    sandbox = await host.launch(fixture("trap_div_zero"))
    with pytest.raises(GuestTrapped, match="integer divide by zero"):
        await sandbox.run()
    ending = await asyncio.wait_for(sandbox.wait(), 10)
    assert ending.text == "trapped(integer_divide_by_zero)"
    assert sandbox.state is State.EXITED and sandbox.pid is None
    with pytest.raises(LifecycleError, match="exited"):
        await sandbox.run()


async def test_on_failure_restarts_a_command_that_trapped(host: Host) -> None:
    policy = Restart(RestartPolicy.ON_FAILURE, max_restarts=2, window=60, **FAST)
    sandbox = await host.launch(fixture("trap_div_zero"), restart=policy)
    pids = set()
    while not sandbox.state.final:
        if sandbox.state is State.RUNNING and sandbox.guest is not None:
            pids.add(sandbox.pid)
            with pytest.raises(GuestTrapped):
                await sandbox.run()
        await asyncio.sleep(0.005)
    assert sandbox.restarts == 2 and len(pids) == 3
    assert sandbox.state is State.FATAL
    assert (await sandbox.wait()).text == "trapped(integer_divide_by_zero)"


async def test_never_restart_ends_exited_with_the_ending(host: Host) -> None:
    sandbox = await host.launch(fixture("exit_code"))
    assert str(await sandbox.run()) == "exited(2)"
    assert str(await sandbox.wait()) == "exited(2)"
    assert sandbox.state is State.EXITED and sandbox.restarts == 0


async def test_on_failure_restarts_with_backoff_then_goes_fatal(host: Host) -> None:
    seen: list[str] = []
    policy = Restart(RestartPolicy.ON_FAILURE, max_restarts=3, window=60, **FAST)
    sandbox = await host.launch(fixture("exit_code"), restart=policy)
    sandbox.subscribe(lambda e: seen.append(e.new.value))
    pids = set()
    while not sandbox.state.final:
        if sandbox.state is State.RUNNING and sandbox.guest is not None:
            pids.add(sandbox.pid)
            guest = sandbox.guest
            await sandbox.run()
            await guest.wait()
        await asyncio.sleep(0.005)
    assert sandbox.state is State.FATAL
    assert sandbox.restarts == 3 and len(pids) == 4  # a new guest process each time
    assert seen.count("backoff") == 3 and seen[-1] == "fatal"
    assert str(await sandbox.wait()) == "exited(2)"


async def test_on_failure_does_not_restart_a_clean_exit_but_always_does(host: Host) -> None:
    clean = await host.launch(fixture("hello"), restart="on-failure")
    assert str(await clean.run()) == "exited(0)"
    assert str(await clean.wait()) == "exited(0)" and clean.state is State.EXITED

    always = await host.launch(fixture("hello"), restart=Restart(RestartPolicy.ALWAYS, **FAST))
    first = always.pid
    assert str(await always.run()) == "exited(0)"
    while always.state is not State.RUNNING or always.pid == first:
        await asyncio.sleep(0.005)
    assert always.restarts == 1
    assert str(await always.stop()) == "stopped"
    # stopped by the host: never restarted (mypy keeps the narrowing of the loop above)
    assert always.state is State.EXITED  # type: ignore[comparison-overlap]


async def test_stop_during_backoff_ends_at_once(host: Host) -> None:
    slow = Restart(RestartPolicy.ALWAYS, initial_backoff=30, max_backoff=30)
    sandbox = await host.launch(fixture("hello"), restart=slow)
    await sandbox.run()
    while sandbox.state is not State.BACKOFF:
        await asyncio.sleep(0.005)
    assert str(await asyncio.wait_for(sandbox.stop(), 5)) == "exited(0)"
    assert sandbox.state is State.EXITED  # type: ignore[comparison-overlap]  # as above


async def test_a_module_that_cannot_load_raises_with_its_cause(host: Host) -> None:
    with pytest.raises(GuestEnded) as caught:
        await host.launch(b"\0asm\x01\0\0\0\x03\x02\x01\x05")
    assert caught.value.ending.text.startswith("load_failure(")
    (sandbox,) = host.guests()
    assert sandbox.state is State.FATAL


async def test_bad_limits_are_config_errors(host: Host) -> None:
    with pytest.raises(ConfigError, match="memory") as caught:
        await host.launch(EXPORTS, memory="lots")
    assert caught.value.source == "Host.launch" and caught.value.key == "memory"
    with pytest.raises(ValueError, match="restart"):
        await host.launch(EXPORTS, restart="sometimes")
    with pytest.raises(TypeError, match="unexpected keyword argument 'memroy'"):
        await host.launch(EXPORTS, memroy="5MiB")
    assert host.guests() == []


async def test_launch_takes_every_config_field_as_a_keyword(host: Host, tmp_path: Path) -> None:
    """The keywords are ``GuestConfig``'s fields (nothing lists them again); None stands for
    the default, and any sequence or mapping does for ``args`` and ``env``."""
    settings: dict[str, Any] = {
        "memory": "4MiB",
        "fuel": 10**6,
        "timeout": 30,
        "load_timeout": 20,
        "cpu": 5,
        "max_output": "1MiB",
        "args": ("one", "two"),
        "env": types.MappingProxyType({"A": "b"}),
        "dirs": [f"{tmp_path}::data"],
        "ro_dirs": (str(tmp_path),),
    }
    assert sorted(settings) == sorted(GuestConfig.model_fields)
    sandbox = await host.launch(EXPORTS, **settings)
    assert sandbox.config == GuestConfig(
        memory=4 * 1024 * 1024,
        fuel=10**6,
        timeout=30,
        load_timeout=20,
        cpu=5,
        max_output=1024 * 1024,
        args=["one", "two"],
        env={"A": "b"},
        dirs=[f"{tmp_path}::data"],
        ro_dirs=[str(tmp_path)],
    )
    assert await sandbox.invoke("add", 2, 3) == [5]
    unset: dict[str, Any] = dict.fromkeys(settings)
    defaults = await host.launch(EXPORTS, **unset)
    assert defaults.config == GuestConfig()


async def test_a_dead_template_is_replaced_and_its_guests_go_on(
    host: Host, sandbox: Sandbox
) -> None:
    (template,) = host.templates()
    assert template.pid is not None
    os.kill(template.pid, signal.SIGKILL)
    await template.guest.wait()
    assert await sandbox.invoke("add", 1, 1) == [2]
    second = await host.launch(EXPORTS)
    assert await second.invoke("add", 2, 2) == [4]
    (replacement,) = host.templates()
    assert replacement is not template and replacement.alive


async def test_metrics_report_memory_cpu_and_fuel(host: Host) -> None:
    sandbox = await host.launch(EXPORTS, fuel=10**6)
    await sandbox.invoke("add", 1, 2)
    metrics = sandbox.metrics()
    assert metrics.pid == sandbox.pid and metrics.state is State.RUNNING
    assert metrics.uss is not None and metrics.rss is not None
    assert 0 < metrics.uss < metrics.rss
    assert metrics.cpu_seconds is not None and metrics.cpu_seconds >= 0
    assert metrics.fuel_used is not None and metrics.fuel_used > 0
    assert metrics.invocations == 1 and metrics.restarts == 0


async def test_the_watchdog_ends_a_guest_over_its_memory(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = await host.launch(EXPORTS, memory=0)
    assert sandbox.guest is not None
    uss = own_memory(sandbox.pid or 0)
    assert uss is not None and 0 < uss < sandbox.guest.memory_bound
    assert host.sweep() == 0
    # Any guest is over a bound below its own memory: the real kill path runs.
    monkeypatch.setattr(guest_module, "running_bound", lambda *_: uss // 2)
    assert host.sweep() == 1
    ending = await sandbox.wait()
    assert ending.text == "limit(memory)" and "watchdog" in ending.message
    assert "(USS)" in ending.message


def test_restart_counter_follows_intensity_and_period() -> None:
    counter = RestartCounter(Restart(RestartPolicy.ALWAYS, max_restarts=2, window=10))
    assert counter.allow(100.0) and counter.allow(101.0)
    assert not counter.allow(102.0)  # three within ten seconds
    assert counter.allow(111.5)  # the first two have left the window
    backoff = Restart(RestartPolicy.ALWAYS, initial_backoff=1, max_backoff=5)
    doubling = RestartCounter(backoff)
    delays = []
    for _ in range(5):
        doubling.failed_starts += 1
        delays.append(doubling.backoff())
    assert delays == [2.0, 4.0, 5.0, 5.0, 5.0]


def test_the_transition_table_is_closed() -> None:
    assert set(TRANSITIONS) == set(State)
    assert all(targets <= set(State) for targets in TRANSITIONS.values())
    assert TRANSITIONS[State.FATAL] == frozenset()
    with pytest.raises(ValueError):
        Restart(initial_backoff=2, max_backoff=1)


def test_the_synchronous_facade() -> None:
    with SyncHost(cache=False) as host:
        sandbox = host.launch(str(EXPORTS))
        assert sandbox.invoke("add", 2, 3) == [5]
        sandbox.pause()
        assert sandbox.state is State.PAUSED
        sandbox.resume()
        assert sandbox.metrics().uss
        assert [s.name for s in host.guests()] == [sandbox.name]
        assert str(sandbox.stop()) == "stopped"
    with pytest.raises(RuntimeError, match="closed"):
        host.launch(str(EXPORTS))


def test_the_readme_example_runs() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    code = re.search(r"## The Python API\n\n```python\n(.*?)```", readme, re.S)
    assert code is not None
    done = subprocess.run(
        [sys.executable, "-c", code.group(1)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "[5]" and "State.RUNNING" in lines[1] and lines[2] == "stopped"


async def test_a_burst_of_launches_all_become_ready_and_answer(host: Host) -> None:
    """Issue 10: 1,000 launches at once hung the host (500 did not). All become ready, and
    as many invocations issued at once all answer."""
    count = 1500
    sandboxes = await asyncio.wait_for(
        asyncio.gather(*(host.launch(EXPORTS) for _ in range(count))), 120
    )
    assert len({s.pid for s in sandboxes}) == count
    answers = await asyncio.wait_for(
        asyncio.gather(*(s.invoke("add", i, 1) for i, s in enumerate(sandboxes))), 60
    )
    assert answers == [[i + 1] for i in range(count)]
    assert len(host.templates()) == 1


START_LOOP = b"""(module
  (func $spin (loop $again (br $again)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (start $spin))"""


async def test_a_launch_whose_start_function_loops_raises_within_its_timeout(host: Host) -> None:
    """The start function runs while the template starts: the launch's timeout holds there
    too (before issue 10 this launch was still pending after 25 s and the host hung)."""
    started = time.monotonic()
    with pytest.raises(GuestEnded) as raised:
        await asyncio.wait_for(host.launch(START_LOOP, timeout=1.5), 30)
    elapsed = time.monotonic() - started
    assert raised.value.ending.text == "limit(wall)"
    assert "start function" in raised.value.ending.reason()
    assert host.templates() == []
    await host.close()
    assert elapsed < 1.5 + 1.0
    assert time.monotonic() - started < elapsed + 3.0  # the host closed promptly too


@pytest.mark.parametrize(
    ("limits", "ending"), [({"cpu": 1}, "limit(cpu)"), ({"fuel": 10**6}, "limit(fuel)")]
)
async def test_a_launch_whose_start_function_loops_ends_at_its_cpu_or_fuel_limit(
    host: Host, limits: StartLimits, ending: str
) -> None:
    with pytest.raises(GuestEnded) as raised:
        await asyncio.wait_for(host.launch(START_LOOP, **limits), 30)
    assert raised.value.ending.text == ending
    assert host.templates() == []


async def test_leaving_the_host_ends_templates_that_are_still_starting(host: Host) -> None:
    """No limit at all: the start function would loop for ever, but leaving the Host kills
    the template and ends the sandboxes waiting for it."""
    started = time.monotonic()
    sandboxes = [await host.launch(START_LOOP, wait=False) for _ in range(3)]
    await asyncio.sleep(0.5)
    assert {s.state for s in sandboxes} == {State.STARTING}
    await host.close()
    assert time.monotonic() - started < 0.5 + 3.0
    assert {s.state for s in sandboxes} == {State.EXITED}
    assert {str(s.ending) for s in sandboxes} == {"stopped"}


async def test_the_cpu_limit_holds_a_template_only_while_it_starts(host: Host) -> None:
    """The launch's CPU limit is the template's while it runs the start; once it only forks,
    its guests have their own limit and the template none (it would die after ``cpu``
    seconds of forking otherwise)."""
    sandbox = await host.launch(EXPORTS, cpu=2)
    (template,) = host.templates()
    assert template.pid is not None and sandbox.pid is not None
    unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    assert proc_limit(template.pid, "Max cpu time") == unlimited
    assert proc_limit(sandbox.pid, "Max cpu time") == (2, 3)
    assert len(host.watchdog) == 1  # the guest; the template only while it started
