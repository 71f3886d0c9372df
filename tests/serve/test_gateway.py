"""``kindling serve``: a real gateway process over HTTP -- routes, the CGI contract end to
end, metrics, the log, reload on SIGHUP, drain on SIGTERM, bad configs."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.framework.guest import kindling_command, kindling_environment
from tests.framework.paths import EXAMPLES_DIR, fixture

from .server import Server

pytestmark = pytest.mark.slow

CONFIG = f"""
[[function]]
name = "shout"
module = "{EXAMPLES_DIR / "shout.wasm"}"
route = "/shout"

[[function]]
name = "add"
module = "{EXAMPLES_DIR / "add.wasm"}"
mode = "export"
export = "add"
pool = {{ min = 1, max = 4, idle = 60 }}

[[function]]
name = "cgi"
module = "{fixture("cgi")}"
route = "/cgi"
timeout = 5
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = Server(CONFIG, tmp_path).start()
    yield started
    started.stop()


async def test_functions_are_served_at_their_routes_and_below(server: Server) -> None:
    status, _, body = await server.request("POST", "/shout/deeper?x=1", b"quiet")
    assert (status, body) == (200, b"POST /shout/deeper: QUIET\n")
    status, headers, body = await server.request("POST", "/add", b"[40, 2]")
    assert (status, body, headers["Content-Type"]) == (200, b"[42]", "application/json")
    status, headers, body = await server.request("GET", "/cgi?env", X_Custom="v")
    assert status == 201 and headers["X-Guest"] == "cgi"
    assert "env HTTP_X_CUSTOM=v" in body.decode()
    assert f"env SERVER_PORT={server.port}" in body.decode()
    assert (await server.request("GET", "/nothing-here"))[0] == 404
    assert (await server.request("GET", "/shoutier"))[0] == 404  # a prefix, not below


async def test_failures_carry_their_ending(server: Server) -> None:
    status, headers, _ = await server.request("GET", "/cgi?trap")
    assert (status, headers["Kindling-Ending"]) == (500, "trapped(unreachable)")
    status, headers, _ = await server.request("GET", "/cgi?bad")
    assert status == 502


async def test_every_invocation_is_logged_and_counted(server: Server) -> None:
    await server.request("POST", "/add", b"[1, 2]")
    await server.request("GET", "/cgi?trap")
    status, headers, body = await server.request("GET", "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'kindling_invocations_total{ending="returned",function="add"} 1.0' in text
    assert 'kindling_invocations_total{ending="trapped(unreachable)",function="cgi"} 1.0' in text
    assert 'kindling_invocation_duration_seconds_count{function="add"} 1.0' in text
    assert 'kindling_guests_alive{function="add"}' in text
    assert "kindling_in_flight" in text and "kindling_queue_depth" in text
    assert "kindling_starts_total" in text
    reports = [line for line in server.lines() if "request_id" in line]
    assert {(r["function"], r["status"], r["ending"]) for r in reports} == {
        ("add", 200, "returned"),
        ("cgi", 500, "trapped(unreachable)"),
    }
    for report in reports:
        assert {"duration_ms", "fork_ms", "init_ms", "start", "memory", "fuel", "mode"} <= set(
            report
        )


async def test_sighup_reloads_and_requests_in_flight_finish_on_the_old_version(
    server: Server,
) -> None:
    slow = asyncio.ensure_future(server.request("GET", "/cgi?loop"))  # ends at its timeout
    await asyncio.sleep(0.5)
    server.config.write_text(
        CONFIG.replace('route = "/shout"', 'route = "/loud"').replace("timeout = 5", "")
    )
    server.send(signal.SIGHUP)
    for _ in range(100):
        if "reloaded" in server.events():
            break
        await asyncio.sleep(0.05)
    assert (await server.request("POST", "/loud", b"new"))[2] == b"POST /loud: NEW\n"
    assert (await server.request("POST", "/shout", b"old"))[0] == 404
    status, headers, _ = await slow
    assert (status, headers["Kindling-Ending"]) == (504, "limit(wall)")  # the old timeout


async def test_a_bad_reload_keeps_the_old_config(server: Server) -> None:
    server.config.write_text(CONFIG + "\n[[function]]\nname = 'x'\nmodule = 'x.wasm'\nmemry = 1\n")
    server.send(signal.SIGHUP)
    for _ in range(100):
        if "reload failed" in server.events():
            break
        await asyncio.sleep(0.05)
    failed = [line for line in server.lines() if line.get("event") == "reload failed"]
    assert "memry" in failed[0]["error"]
    assert (await server.request("POST", "/add", b"[1, 1]"))[2] == b"[2]"


async def test_sigterm_drains_requests_in_flight_then_stops_every_guest(tmp_path: Path) -> None:
    server = Server(CONFIG, tmp_path).start()
    try:
        pending = asyncio.ensure_future(server.request("POST", "/shout", b"last words"))
        await asyncio.sleep(0.05)
        server.send(signal.SIGTERM)
        status, _, body = await pending
        assert (status, body) == (200, b"POST /shout: LAST WORDS\n")
    finally:
        assert server.stop() == 0
    assert server.events()[-2:] == ["draining", "stopped"]
    # no_leaks (automatic) proves that no guest or template outlived the gateway


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ('[[function]]\nname = "a"\nmodule = "m.wasm"\nmemory = "lots"\n', "memory"),
        ('[[function]]\nname = "a"\nmodule = "m.wasm"\nflavour = 1\n', "flavour"),
        ('[[function]]\nname = "a"\nmodule = "missing.wasm"\n', "module"),
        (
            '[[function]]\nname = "a"\nmodule = "m.wasm"\ndirs = ["/tmp"]\n',
            "serve.toml: function a: dirs: a function may have read-only directories only",
        ),
        ('[[function]]\nname = "a"\nmodule = "m.wasm"\nmode = "export"\n', "export"),
        ('[[functions]]\nname = "a"\n', "functions"),
    ],
)
def test_a_bad_config_exits_2_naming_the_key(tmp_path: Path, config: str, named: str) -> None:
    (tmp_path / "m.wasm").write_bytes((EXAMPLES_DIR / "add.wasm").read_bytes())
    path = tmp_path / "serve.toml"
    path.write_text(config)
    done = subprocess.run(
        [*kindling_command(), "serve", str(path)],
        env=kindling_environment(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert named in done.stderr.decode()
