"""The control API on its Unix socket: functions deployed, replaced, invoked and retired;
guests listed, paused, resumed and killed; the OpenAPI document; the CLI clients."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host.serve.client import call
from host.serve.control import openapi_document
from host.supervisor import proc_state
from tests.framework.guest import kindling_command, kindling_environment
from tests.framework.paths import EXAMPLES_DIR, REPO_ROOT

from .server import Server

PROBE = REPO_ROOT / "tests" / "security" / "data" / "fileprobe.wat"

CONFIG = f"""
[[function]]
name = "shout"
module = "{EXAMPLES_DIR / "shout.wasm"}"
"""


def test_the_committed_openapi_document_is_the_served_one() -> None:
    committed = json.loads((REPO_ROOT / "docs" / "openapi.json").read_text())
    assert committed == openapi_document(), (
        "docs/openapi.json is stale: regenerate it from host.serve.control.openapi_document"
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    socket = tmp_path / "api.sock"
    started = Server(CONFIG, tmp_path, "--api-socket", str(socket)).start()
    started.socket = socket  # type: ignore[attr-defined]
    yield started
    started.stop()
    assert not socket.exists()


async def api(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return await call(server.socket, method, path, data)  # type: ignore[attr-defined]


@pytest.mark.slow
async def test_the_socket_is_private(server: Server) -> None:
    mode = os.stat(server.socket).st_mode  # type: ignore[attr-defined]
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    status, document = await api(server, "GET", "/openapi.json")
    assert (status, document) == (200, openapi_document())


@pytest.mark.slow
async def test_functions_are_deployed_invoked_replaced_and_retired(server: Server) -> None:
    status, functions = await api(server, "GET", "/functions")
    assert status == 200 and [f["name"] for f in functions] == ["shout"]
    add = {"module": str(EXAMPLES_DIR / "add.wasm"), "mode": "export", "export": "add"}
    status, info = await api(server, "PUT", "/functions/add", add)
    assert (status, info["route"], info["mode"]) == (201, "/add", "export")
    assert (await server.request("POST", "/add", b"[20, 22]"))[2] == b"[42]"
    status, result = await api(server, "POST", "/functions/add/invoke", b"[1, 2]")
    assert status == 200 and base64.b64decode(result["body_base64"]) == b"[3]"
    assert result["report"]["function"] == "add" and result["status"] == 200
    moved = {**add, "route": "/sum"}
    assert (await api(server, "PUT", "/functions/add", moved))[0] == 200
    assert (await server.request("POST", "/sum", b"[1, 1]"))[2] == b"[2]"
    assert (await server.request("POST", "/add", b"[1, 1]"))[0] == 404
    inline = {"module_base64": base64.b64encode((EXAMPLES_DIR / "add.wasm").read_bytes()).decode()}
    inline |= {"mode": "export", "export": "add"}
    assert (await api(server, "PUT", "/functions/inline", inline))[0] == 201
    assert (await api(server, "DELETE", "/functions/add"))[0] == 204
    assert (await api(server, "DELETE", "/functions/add"))[0] == 404
    status, functions = await api(server, "GET", "/functions")
    assert sorted(f["name"] for f in functions) == ["inline", "shout"]


@pytest.mark.slow
async def test_a_function_put_with_read_only_directories_reads_them(
    server: Server, tmp_path: Path
) -> None:
    """ro_dirs through the control API (issue 14.1); dirs is refused (below)."""
    (tmp_path / "page").write_bytes(b"Content-Type: text/plain\n\nfrom a preopen\n")
    body = {"module": str(PROBE), "ro_dirs": [f"{tmp_path}::/data"]}
    assert (await api(server, "PUT", "/functions/probe", body))[0] == 201
    assert (await server.request("GET", "/probe?o&page"))[2] == b"from a preopen\n"
    status, result = await api(server, "POST", "/functions/probe/invoke?w&made", b"")
    assert status == 200 and result["status"] == 500
    assert result["report"]["ending"] in ("exited(76)", "exited(69)")  # ENOTCAPABLE, EROFS
    assert not (tmp_path / "made").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"module": "relative.wasm"}, "absolute path"),
        ({"module": "/nonexistent/x.wasm"}, "cannot read"),
        ({"module": "/x.wasm", "memory": "lots"}, "memory"),
        ({"module": "/x.wasm", "colour": 1}, "colour"),
        ({"name": "other", "module": "/x.wasm"}, "differs"),
        ({"module_base64": "%%%"}, "module_base64"),
        ({"module": str(EXAMPLES_DIR / "add.wasm"), "route": "/shout"}, "route"),
        (
            {"module": str(EXAMPLES_DIR / "shout.wasm"), "dirs": ["/tmp"]},
            "dirs: a function may have read-only directories only (ro_dirs)",
        ),
        (b"not json", "not JSON"),
        ([], "JSON object"),
    ],
)
async def test_bad_bodies_are_400_naming_the_key(server: Server, body: Any, named: str) -> None:
    status, answer = await api(server, "PUT", "/functions/new", body)
    assert status == 400 and named in answer["error"]


@pytest.mark.slow
async def test_guests_are_listed_paused_resumed_and_killed(server: Server) -> None:
    add: dict[str, Any] = {"module": str(EXAMPLES_DIR / "add.wasm"), "mode": "export"}
    add |= {"export": "add", "pool": {"min": 1, "max": 2}}
    await api(server, "PUT", "/functions/add", add)
    assert (await server.request("POST", "/add", b"[1, 1]"))[0] == 200
    status, guests = await api(server, "GET", "/guests")
    ids = [g["id"] for g in guests if g["function"] == "add"]
    assert status == 200 and ids
    guest = ids[0]
    status, info = await api(server, "PATCH", f"/guests/{guest}", {"state": "paused"})
    assert (status, info["state"], info["paused"]) == (200, "paused", True)
    assert proc_state(guest) in ("T", "t")
    # A paused guest is not handed out: the request is served by another one.
    assert (await server.request("POST", "/add", b"[2, 2]"))[2] == b"[4]"
    status, info = await api(server, "PATCH", f"/guests/{guest}", {"state": "running"})
    assert (status, info["paused"]) == (200, False)
    assert (await api(server, "PATCH", f"/guests/{guest}", {"state": "asleep"}))[0] == 400
    assert (await api(server, "DELETE", f"/guests/{guest}"))[0] == 204
    assert (await api(server, "GET", f"/guests/{guest}"))[0] == 404
    assert (await api(server, "GET", "/guests/nope"))[0] == 404


@pytest.mark.slow
def test_the_cli_clients(server: Server) -> None:
    socket = str(server.socket)  # type: ignore[attr-defined]
    env = kindling_environment()
    done = subprocess.run(
        [*kindling_command(), "invoke", "shout", "--api-socket", socket, "--data", "-"],
        input=b"quiet",
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == b"POST /shout: QUIET\n"
    assert json.loads(done.stderr)["status"] == 200
    done = subprocess.run(
        [*kindling_command(), "ps", "--api-socket", socket],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0 and b"shout" in done.stdout and b"command" in done.stdout
    done = subprocess.run(
        [*kindling_command(), "top", "--api-socket", socket, "--frames", "2", "--interval", "0.2"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert b"kindling top" in done.stdout and b"shout" in done.stdout
