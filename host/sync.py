"""A thin synchronous facade over ``host.supervisor``, for code that is not async.

::

    with SyncHost() as host:
        sandbox = host.launch("fn.wasm", memory="5MiB")
        sandbox.invoke("add", 2, 3)        # [5]
        sandbox.stop()

The host's event loop runs in a background thread; every call hands a coroutine to it and
waits for the result, so exceptions are the async API's. The guests' parent is that thread:
they die when it ends (``close``, or the process exiting).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .endings import Ending
from .guest import Number
from .lifecycle import Listener, State
from .supervisor import Host, Metrics, Sandbox

T = TypeVar("T")


class SyncSandbox:
    """``Sandbox`` with blocking methods (see it for what each does)."""

    def __init__(self, host: SyncHost, sandbox: Sandbox) -> None:
        self._host = host
        self.sandbox = sandbox

    def __repr__(self) -> str:
        return repr(self.sandbox)

    @property
    def name(self) -> str:
        return self.sandbox.name

    @property
    def pid(self) -> int | None:
        return self.sandbox.pid

    @property
    def state(self) -> State:
        return self.sandbox.state

    def invoke(self, export: str, *args: Number) -> list[int | float | str | None]:
        return self._host.call(self.sandbox.invoke(export, *args))

    def run(self) -> Ending:
        return self._host.call(self.sandbox.run())

    def pause(self) -> None:
        self._host.call(self.sandbox.pause())

    def resume(self) -> None:
        self._host.call(self.sandbox.resume())

    def stop(self, grace: float = 2.0) -> Ending:
        return self._host.call(self.sandbox.stop(grace))

    def kill(self) -> None:
        self._host.call(_sync(self.sandbox.kill))

    def wait(self) -> Ending:
        return self._host.call(self.sandbox.wait())

    def metrics(self) -> Metrics:
        metrics: Metrics = self._host.call(_sync(self.sandbox.metrics))
        return metrics


class SyncHost:
    """``Host`` with blocking methods, its event loop in a thread of its own."""

    def __init__(self, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="kindling-host", daemon=True
        )
        self._thread.start()
        self._host = Host(**options)
        self._sandboxes: dict[str, SyncSandbox] = {}
        self._closed = False
        self.call(self._host.__aenter__())

    def __enter__(self) -> SyncHost:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the host's loop, in its thread, and wait for its result."""
        if self._closed:
            coroutine.close()
            raise RuntimeError("the host is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def launch(self, module: Any, **options: Any) -> SyncSandbox:
        """``Host.launch``: the same arguments; a ``SyncSandbox``."""
        sandbox = self.call(self._host.launch(module, **options))
        wrapped = self._sandboxes[sandbox.name] = SyncSandbox(self, sandbox)
        return wrapped

    def guests(self) -> list[SyncSandbox]:
        return [self._sandboxes.get(s.name) or SyncSandbox(self, s) for s in self._host.guests()]

    def subscribe(self, listener: Listener) -> None:
        """``listener`` runs in the host's thread."""
        self._loop.call_soon_threadsafe(self._host.subscribe, listener)

    def close(self) -> None:
        """Stop every sandbox and template, then the loop and its thread."""
        if self._closed:
            return
        self.call(self._host.close())
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _sync(function: Any) -> Any:
    return function()
