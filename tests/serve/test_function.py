"""``Host.function``: command mode's CGI contract with a fresh guest per request, export
mode's warm pool, limits per request, throttling and containment -- with real guests."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from host.config import ConfigError
from host.errors import GuestEnded
from host.serve import ENDING_HEADER
from host.serve import function as function_module
from host.serve.report import Response
from host.supervisor import Host
from host.watchdog import own_memory
from protocol.messages import MAX_INVOKE_STDIN
from tests.framework.paths import fixture

pytestmark = pytest.mark.slow

CGI = fixture("cgi")
EXPORTS = fixture("serve_exports")
INIT = fixture("serve_init")


def lines(body: bytes) -> list[str]:
    return body.decode().splitlines()


async def test_the_cgi_contract_status_headers_env_and_args(host: Host) -> None:
    fn = await host.function("cgi", CGI, route="/cgi", args=["first"], env={"OWN": "1"})
    response = await fn.invoke(
        body=b"body",
        headers={"X-Test": "yes", "Content-Type": "text/x"},
        query="a=1&env",
        method="PUT",
        path="/cgi/below",
    )
    assert response.status == 201
    assert response.header("X-Guest") == "cgi"
    assert response.header("Content-Type") == "text/plain"
    out = lines(response.body)
    assert out[:4] == ["arg[0]=/cgi", "arg[1]=first", "arg[2]=a=1", "arg[3]=env"]
    env = dict(line.removeprefix("env ").split("=", 1) for line in out[4:])
    assert env["REQUEST_METHOD"] == "PUT"
    assert env["PATH_INFO"] == "/cgi/below"
    assert env["QUERY_STRING"] == "a=1&env"
    assert env["CONTENT_LENGTH"] == "4" and env["CONTENT_TYPE"] == "text/x"
    assert env["HTTP_X_TEST"] == "yes" and env["OWN"] == "1"
    assert env["X_MATCHED_ROUTE"] == "/cgi"
    report = response.report
    assert report is not None
    assert (report.status, report.ending, report.start) == (201, "exited(0)", "cold")
    assert report.memory is not None and report.memory > 0


async def test_the_body_is_stdin(host: Host) -> None:
    fn = await host.function("cgi", CGI)
    body = bytes(range(256)) * 50
    response = await fn.invoke(body=body, query="echo")
    assert (response.status, response.body) == (200, body)
    assert response.header("X-Length") == str(len(body))


async def test_a_body_too_large_to_go_with_the_invoke_is_stdin_too(host: Host) -> None:
    fn = await host.function("cgi", CGI)
    body = bytes(range(256)) * (MAX_INVOKE_STDIN // 256 + 40)  # the fixture reads 64 KiB
    assert len(body) <= 64 * 1024
    response = await fn.invoke(body=body, query="echo")
    assert (response.status, response.body) == (200, body)


async def test_a_function_hashes_its_module_once(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    fn = await host.function("cgi", CGI, start=True)

    def refused(module: bytes) -> bytes:
        raise AssertionError("hashed the module again")

    monkeypatch.setattr("host.fleet.module_digest", refused)
    for _ in range(2):
        assert (await fn.invoke(query="count")).status == 200


async def test_command_memory_is_read_once_a_sample_period(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0

    def counted(pid: int) -> int | None:
        nonlocal reads
        reads += 1
        return own_memory(pid)

    monkeypatch.setattr("host.serve.function.own_memory", counted)
    fn = await host.function("cgi", CGI, start=True)
    reports = [(await fn.invoke(query="count")).report for _ in range(3)]
    assert reads == 1
    figures = {report.memory for report in reports if report is not None}
    assert len(figures) == 1 and (figures.pop() or 0) > 0
    # The log says which figures are another guest's.
    assert [report.memory_sampled for report in reports if report is not None] == [
        False,
        True,
        True,
    ]
    monkeypatch.setattr(function_module, "MEMORY_SAMPLE_SECONDS", 0.0)
    await fn.invoke(query="count")
    assert reads == 2


async def test_every_request_gets_a_fresh_guest(host: Host) -> None:
    fn = await host.function("cgi", CGI, start=True)
    bodies = [(await fn.invoke(query="count")).body for _ in range(5)]
    assert bodies == [b"1\n"] * 5
    assert fn.guests() == []  # each was stopped and reaped


async def test_concurrent_requests_never_see_each_others_data(host: Host) -> None:
    fn = await host.function("cgi", CGI, start=True)
    payloads = [f"request {i} ".encode() * (i + 1) * 100 for i in range(8)]
    responses = await asyncio.gather(*(fn.invoke(body=p, query="echo") for p in payloads))
    assert [r.body for r in responses] == payloads
    assert len({r.report.guest for r in responses if r.report}) == 8


@pytest.mark.parametrize(
    ("query", "status", "ending"),
    [
        ("bad", 502, "exited(0)"),
        ("exit3", 500, "exited(3)"),
        ("trap", 500, "trapped(unreachable)"),
    ],
)
async def test_failures_are_statuses_with_the_ending(
    host: Host, query: str, status: int, ending: str
) -> None:
    fn = await host.function("cgi", CGI)
    response = await fn.invoke(query=query)
    assert response.status == status
    assert response.header(ENDING_HEADER) == ending
    assert b"half a response" not in response.body  # nothing of what it wrote


async def test_limits_hold_per_request(host: Host) -> None:
    slow = await host.function("slow", CGI, timeout=1)
    response = await slow.invoke(query="loop")
    assert (response.status, response.header(ENDING_HEADER)) == (504, "limit(wall)")
    small = await host.function("small", CGI, max_output="4KiB")
    response = await small.invoke(query="big")
    assert (response.status, response.header(ENDING_HEADER)) == (500, "limit(output)")
    metered = await host.function("metered", CGI, fuel=10_000)
    response = await metered.invoke(query="loop")
    assert (response.status, response.header(ENDING_HEADER)) == (500, "limit(fuel)")
    ok = await small.invoke(query="hello")  # the next request is a new guest, within limits
    assert (ok.status, ok.body) == (200, b"hello from cgi\n")


async def test_init_runs_once_before_the_template_forks(host: Host) -> None:
    fn = await host.function("init", INIT, init="init")
    bodies = [(await fn.invoke()).body for _ in range(3)]
    assert bodies == [b"initialised 1\n"] * 3
    without = await host.function("without", INIT)
    assert (await without.invoke()).status == 502  # nothing prepared: no headers


async def test_an_init_that_is_not_an_export_fails_the_function(host: Host) -> None:
    fn = await host.function("broken", INIT, init="missing")
    response = await fn.invoke()
    assert (response.status, response.header(ENDING_HEADER)) == (500, "load_failure(init)")


@pytest.mark.parametrize(
    ("module", "init", "ending"),
    [
        (b"\0asm not a module", None, "load_failure(decode)"),
        (INIT, "missing", "load_failure(init)"),
    ],
)
async def test_a_template_that_will_not_build_backs_off(
    host: Host,
    monkeypatch: pytest.MonkeyPatch,
    module: bytes | Path,
    init: str | None,
    ending: str,
) -> None:
    monkeypatch.setattr(function_module, "BUILD_RETRY_FIRST", 0.3)
    fn = await host.function("broken", module, init=init)
    builds = 0
    build = fn._fleet.template

    async def counted(*args: Any) -> Any:
        nonlocal builds
        builds += 1
        return await build(*args)

    monkeypatch.setattr(fn._fleet, "template", counted)
    first = await fn.invoke()
    assert (first.status, first.header(ENDING_HEADER), builds) == (500, ending, 1)
    # While the backoff lasts, the same failure at once, with when to come back.
    again = await asyncio.gather(*(fn.invoke() for _ in range(5)))
    assert builds == 1
    for response in again:
        assert (response.status, response.header(ENDING_HEADER)) == (500, ending)
        assert response.header("Retry-After") == "1"
        assert b"failed 1 times in a row" in response.body
        assert response.report is not None and response.report.ending == ending
    await asyncio.sleep(0.35)
    assert (await fn.invoke()).status == 500 and builds == 2  # tried again, failed again
    assert fn.backoff.failures == 2 and 0.4 < fn.backoff.waiting() <= 0.6  # twice as long


async def test_a_template_built_after_failures_forgets_them(host: Host) -> None:
    fn = await host.function("cgi", CGI)
    fn.backoff.failed(Response(500, [], b"earlier\n"), "load_failure(decode)")
    fn.backoff.retry_at = 0.0  # due now
    assert (await fn.invoke(query="count")).status == 200
    assert fn.backoff.failures == 0


async def test_export_mode_numbers_in_and_out(host: Host) -> None:
    add = await host.function("add", EXPORTS, mode="export", export="add")
    assert (await add.invoke(body=b"[2, 3]")).body == b"[5]"
    top = 2**63 - 1
    assert (await add.invoke(body=f"[{top}, 0]".encode())).body == f"[{top}]".encode()
    assert (await add.invoke(body=b"[1]")).status == 400
    assert (await add.invoke(body=b"{")).status == 400
    addf = await host.function("addf", EXPORTS, mode="export", export="addf")
    assert (await addf.invoke(body=b'["-inf", 2.5]')).body == b'["-inf"]'
    assert (await addf.invoke(body=b'["nan", 2.5]')).body == b'["nan"]'
    assert (await addf.invoke(body=b"[0.1, 0.2]")).body == b"[0.30000000000000004]"


async def test_a_warm_pool_keeps_its_guests(host: Host) -> None:
    count = await host.function(
        "count", EXPORTS, mode="export", export="count", pool={"min": 1, "max": 1}
    )
    responses = [await count.invoke() for _ in range(3)]
    assert [r.body for r in responses] == [b"[1]", b"[2]", b"[3]"]
    assert [r.report.start for r in responses if r.report] == ["cold", "warm", "warm"]


async def test_a_dying_guest_fails_only_its_request_and_is_replaced(host: Host) -> None:
    die = await host.function("die", EXPORTS, mode="export", export="die", pool={"max": 2})
    add = await host.function("add", EXPORTS, mode="export", export="add")
    died, added = await asyncio.gather(die.invoke(), add.invoke(body=b"[1, 1]"))
    assert (died.status, died.header(ENDING_HEADER)) == (500, "exited(7)")
    assert (added.status, added.body) == (200, b"[2]")
    again = await die.invoke()
    assert again.status == 500 and again.report is not None
    assert again.report.guest != died.report.guest if died.report else True
    trap = await host.function("trap", EXPORTS, mode="export", export="trap")
    first, second = await trap.invoke(), await trap.invoke()
    assert first.header(ENDING_HEADER) == second.header(ENDING_HEADER) == "trapped(unreachable)"
    assert first.report and second.report and first.report.guest == second.report.guest


async def test_a_crashing_command_beside_a_healthy_one(host: Host) -> None:
    fn = await host.function("cgi", CGI, start=True)
    results = await asyncio.gather(*(fn.invoke(query=q) for q in ["trap", "hello"] * 4))
    assert [r.status for r in results] == [500, 200] * 4


async def test_beyond_the_queue_is_429(host: Host) -> None:
    fn = await host.function("one", CGI, concurrency=1, queue=1, timeout=2, start=True)
    busy = asyncio.ensure_future(fn.invoke(query="loop"))
    await asyncio.sleep(0.2)
    queued = asyncio.ensure_future(fn.invoke(query="hello"))
    await asyncio.sleep(0.1)
    throttled = await fn.invoke(query="hello")
    assert throttled.status == 429 and throttled.header("Retry-After") == "1"
    assert fn.gate.throttled == 1
    assert (await busy).status == 504
    assert (await queued).status == 200


async def test_bad_settings_name_the_key(host: Host) -> None:
    with pytest.raises(ConfigError, match="dirs: a function may have read-only directories only"):
        await host.function("d", CGI, dirs=["/tmp"])
    with pytest.raises(ConfigError, match="concurrency"):
        await host.function("c", EXPORTS, mode="export", export="add", concurrency=9)
    with pytest.raises(ConfigError, match="export mode needs export"):
        await host.function("e", EXPORTS, mode="export")
    with pytest.raises(ConfigError, match="memory"):
        await host.function("m", CGI, memory="lots")


async def test_closing_the_host_while_a_template_boots_leaves_no_task_behind() -> None:
    """A boot still in flight when the host closes is over when ``close`` returns (it used
    to outlive the host, and ``asyncio.run`` then waited forever as it cancelled it)."""
    async with Host(cache=False) as host:
        fn = await host.function("cgi", CGI)
        starting = asyncio.ensure_future(fn.start())
        await asyncio.sleep(0.01)
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and t is not starting]
    assert [t for t in left if "boot" in repr(t)] == []
    with pytest.raises(GuestEnded):
        await asyncio.wait_for(starting, 5)


PROBE = Path(__file__).parents[1] / "security" / "data" / "fileprobe.wat"
NOTCAPABLE, ROFS = 76, 69
RESPONSE = b"Content-Type: text/plain\n\nread from a read-only directory\n"


async def test_a_command_reads_a_file_from_its_read_only_directory(
    host: Host, tmp_path: Path
) -> None:
    """ro_dirs reach every fresh guest of a command-mode function (issue 14.1)."""
    (tmp_path / "page").write_bytes(RESPONSE)
    fn = await host.function("probe", PROBE, ro_dirs=[f"{tmp_path}::/data"])
    for _ in range(2):  # a cold guest, then another forked from the same template
        response = await fn.invoke(query="o&page")
        assert (response.status, response.body) == (200, b"read from a read-only directory\n")
        assert response.report is not None and response.report.ending == "exited(0)"


@pytest.mark.parametrize("query", ["w&made", "m&made", "u&page", "r&page&made", "f&page"])
async def test_a_command_cannot_change_its_read_only_directory(
    host: Host, tmp_path: Path, query: str
) -> None:
    """Create, mkdir, unlink, rename, set size and times: each fails EROFS or ENOTCAPABLE
    (the probe exits with the errno), and the directory is as it was."""
    (tmp_path / "page").write_bytes(RESPONSE)
    before = sorted(os.listdir(tmp_path))
    fn = await host.function("probe", PROBE, ro_dirs=[str(tmp_path)])
    response = await fn.invoke(query=query)
    assert response.status == 500
    assert response.report is not None
    assert response.report.ending in (f"exited({NOTCAPABLE})", f"exited({ROFS})")
    assert sorted(os.listdir(tmp_path)) == before
    assert (tmp_path / "page").read_bytes() == RESPONSE
