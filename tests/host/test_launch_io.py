"""A sandbox's stdin and output through ``Host.launch``: bytes, a file or an async iterator
in; ``Sandbox.stdout`` and ``Sandbox.stderr`` out, unless a console takes them as they come
(issue 13, point 4)."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.stdio import CapturedConsole
from host.supervisor import Host
from tests.framework.paths import fixture

CAT = fixture("cat")
BINARY = bytes(range(256)) * 40  # more than one read, every byte value


async def cat(host: Host, stdin: object) -> tuple[bytes, bytes]:
    sandbox = await host.launch(CAT, stdin=stdin)
    assert str(await sandbox.run()) == "exited(0)"
    return sandbox.stdout, sandbox.stderr


async def test_bytes_reach_the_program_and_its_output_is_kept(host: Host) -> None:
    assert await cat(host, BINARY) == (BINARY, f"cat: {len(BINARY)} bytes\n".encode())


async def test_no_stdin_is_the_end_of_input_at_once(host: Host) -> None:
    assert await cat(host, None) == (b"", b"cat: 0 bytes\n")


async def test_a_binary_file_is_read_as_the_program_asks(host: Host, tmp_path: Path) -> None:
    path = tmp_path / "input"
    path.write_bytes(BINARY)
    with path.open("rb") as file:
        assert (await cat(host, file))[0] == BINARY
    assert (await cat(host, io.BytesIO(b"in memory")))[0] == b"in memory"


async def test_a_pipe_that_is_slow_does_not_stall_the_host(host: Host) -> None:
    """The file is read in a worker thread: while the writer holds the rest back, the
    program waits and the event loop runs on (this test's own sleep returns)."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"first half ")
    with os.fdopen(read_end, "rb") as pipe:
        sandbox = await host.launch(CAT, stdin=pipe)
        task = asyncio.ensure_future(sandbox.run())
        await asyncio.sleep(0.3)
        assert not task.done()
        os.write(write_end, b"and the rest")
        os.close(write_end)
        assert str(await asyncio.wait_for(task, 30)) == "exited(0)"
    assert sandbox.stdout == b"first half and the rest"


async def test_an_async_iterator_is_read_chunk_by_chunk(host: Host) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"one ", b"", b"two ", BINARY):
            yield part

    assert (await cat(host, chunks()))[0] == b"one two " + BINARY


async def test_a_console_takes_the_output_instead(host: Host) -> None:
    console = CapturedConsole()
    sandbox = await host.launch(CAT, stdin=b"to the console", console=console)
    await sandbox.run()
    assert console.stdout == b"to the console"
    with pytest.raises(ValueError, match="went to the console given to launch"):
        _ = sandbox.stdout


async def test_stdin_of_another_kind_is_refused_by_name(host: Host) -> None:
    with pytest.raises(TypeError, match="stdin must be bytes, a binary file"):
        await host.launch(CAT, stdin="text is not bytes")
    assert host.guests() == []
