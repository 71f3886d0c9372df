"""Where guest output goes and where its stdin comes from, on real pipes."""

from __future__ import annotations

import asyncio
import os
import threading

from host.stdio import HIGH_WATER, BytesStdin, HostStdin, NoStdin, StdioConsole


def drain_pipe(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_output_keeps_its_order_across_streams() -> None:
    read_end, write_end = os.pipe()
    other = os.dup(write_end)  # stdout and stderr on the same pipe, as with 2>&1

    async def main() -> None:
        console = StdioConsole(asyncio.get_running_loop(), (write_end, other))
        for n in range(200):
            console.write(1 if n % 2 else 2, f"{n},".encode())
        await console.drain()
        console.close()

    try:
        asyncio.run(main())
        assert os.get_blocking(write_end)  # restored
    finally:
        os.close(write_end)
        os.close(other)
    try:
        assert drain_pipe(read_end) == b"".join(f"{n},".encode() for n in range(200))
    finally:
        os.close(read_end)


def test_a_slow_reader_backs_the_console_up_without_blocking_the_loop() -> None:
    read_end, write_end = os.pipe()
    received: list[bytes] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        console = StdioConsole(loop, (write_end, write_end))
        console.write(1, b"x" * (HIGH_WATER + 100_000))
        assert console.backed_up  # the pipe took 64 KiB at most
        ticks = 0
        while ticks < 3:  # the loop keeps running meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        reader = threading.Thread(target=lambda: received.append(drain_pipe(read_end)))
        reader.start()
        await asyncio.wait_for(console.drain(), 10)
        assert not console.backed_up
        console.close()
        os.close(write_end)
        await loop.run_in_executor(None, reader.join)

    try:
        asyncio.run(main())
    finally:
        os.close(read_end)
    assert received == [b"x" * (HIGH_WATER + 100_000)]


def test_output_to_a_closed_pipe_is_dropped() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)

    async def main() -> None:
        console = StdioConsole(asyncio.get_running_loop(), (write_end, write_end))
        console.write(1, b"nobody reads this")
        console.write(2, b"nor this")
        await console.drain()
        console.close()

    try:
        asyncio.run(main())
    finally:
        os.close(write_end)


def test_host_stdin_waits_for_data_and_sees_the_end() -> None:
    read_end, write_end = os.pipe()

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        stdin = HostStdin(loop, read_end)
        pending = asyncio.ensure_future(stdin.read(100))
        await asyncio.sleep(0.05)
        assert not pending.done()  # nothing there yet: waiting, not blocking
        os.write(write_end, b"hello")
        first = await asyncio.wait_for(pending, 5)
        os.close(write_end)
        return [first, await stdin.read(100), await stdin.read(100)]

    try:
        assert asyncio.run(main()) == [b"hello", b"", b""]
    finally:
        os.close(read_end)


def test_host_stdin_from_a_regular_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "input"
    path.write_bytes(b"abc")
    fd = os.open(path, os.O_RDONLY)

    async def main() -> list[bytes]:
        stdin = HostStdin(asyncio.get_running_loop(), fd)
        return [await stdin.read(2), await stdin.read(2), await stdin.read(2)]

    try:
        assert asyncio.run(main()) == [b"ab", b"c", b""]
    finally:
        os.close(fd)


def test_fixed_stdins() -> None:
    async def main() -> list[bytes]:
        fixed = BytesStdin(b"12345")
        return [
            await fixed.read(2),
            await fixed.read(10),
            await fixed.read(1),
            await NoStdin().read(5),
        ]

    assert asyncio.run(main()) == [b"12", b"345", b"", b""]
