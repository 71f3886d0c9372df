"""Big frames are charged: a deep recursion of them traps "host memory exhausted" at a depth
fixed by the module and the limit, and frames too small to charge cost nothing extra.

Without the charge the kernel's limit ends such a recursion wherever the process runs out,
and CPython 3.11 says so with a ``SystemError`` -- which must still be "host memory
exhausted", not an internal error (the last test).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from guestproc.engine import EngineLimits, Instance, Trap, TrapCode, parse_module, validate_module
from guestproc.engine.frames import CHARGED_FRAME, frame_size
from guestproc.engine.instance import CompiledModule
from tests.framework.paths import REPO_ROOT


def recursive(local_count: int) -> str:
    """``rec(n)`` calls itself n deep (directly, or through the table when ``indirect``),
    counting the depth it reached in the global ``depth``. It reads every local at the
    bottom, so that each is a Python local too (the compiler declares only those read) and
    its Python frames are as big as its Wasm ones."""
    locals_ = f"(local {'i64 ' * local_count})" if local_count else ""
    reads = "".join(f"(global.set $sink (local.get {i}))" for i in range(1, local_count + 1))
    return f"""
    (module
      (type $t (func (param i32) (result i32)))
      (table 1 funcref) (elem (i32.const 0) $rec)
      (global $depth (mut i32) (i32.const 0))
      (global $sink (mut i64) (i64.const 0))
      (func $rec (export "rec") (type $t) {locals_}
        (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
        (if (result i32) (i32.eqz (local.get 0))
          (then {reads} (i32.const 0))
          (else (i32.add (i32.const 1) (call $rec (i32.sub (local.get 0) (i32.const 1)))))))
      (func (export "indirect") (param i32) (result i32)
        (call_indirect (type $t) (local.get 0) (i32.const 0)))
      (func (export "depth") (result i32) (global.get $depth)))
    """


def instantiate(local_count: int, frame_bytes: int | None) -> Instance:
    module = parse_module(recursive(local_count))
    validate_module(module)
    return CompiledModule(module).instantiate({}, EngineLimits(frame_bytes=frame_bytes))


def depth_reached(instance: Instance, n: int) -> int:
    with pytest.raises(Trap) as trapped:
        instance.invoke("rec", n)
    assert trapped.value.code is TrapCode.HOST_MEMORY_EXHAUSTED
    assert "call depth x frame size" in str(trapped.value)
    [depth] = instance.invoke("depth")
    return int(depth)


def test_a_recursion_of_big_frames_traps_at_the_same_depth_every_time() -> None:
    limit = 4 * 1024 * 1024
    first, second = instantiate(2000, limit), instantiate(2000, limit)
    depth = depth_reached(first, 10_000)
    assert depth == depth_reached(second, 10_000)
    code = first.namespace["f0"].__code__  # the charged wrapper ...
    assert code.co_name == "charged"
    size = frame_size(first.compiled.function_code(0).co_consts[0], 2001)
    assert depth == limit // size  # ... let in as many frames as fit, and no more
    assert first.stack.used == 0  # every frame gave its charge back on the way out
    assert first.invoke("rec", 10) == [10]  # and the instance goes on


def test_calls_through_the_table_are_charged_too() -> None:
    instance = instantiate(2000, 1024 * 1024)
    with pytest.raises(Trap, match="call depth x frame size"):
        instance.invoke("indirect", 10_000)
    assert instance.stack.used == 0
    assert instance.invoke("indirect", 5) == [5]


def test_small_frames_are_not_charged() -> None:
    instance = instantiate(0, 1024)  # a limit no charged frame would fit in
    assert instance.invoke("rec", 5000) == [5000]
    assert instance.namespace["f0"].__code__.co_name == "f0"
    assert frame_size(instance.namespace["f0"].__code__, 1) <= CHARGED_FRAME


def test_by_default_only_the_call_depth_limits_the_stack() -> None:
    # The engine's default, which the spec's assert_exhaustion expects. (200 locals: big
    # enough to be charged, small enough that 20,000 of them do not bloat this process.)
    instance = instantiate(200, None)
    assert frame_size(instance.compiled.function_code(0).co_consts[0], 201) > CHARGED_FRAME
    with pytest.raises(Trap) as trapped:
        instance.invoke("rec", 100_000)
    assert trapped.value.code is TrapCode.CALL_STACK_EXHAUSTED
    assert instance.namespace["f0"].__code__.co_name == "f0"


@pytest.mark.slow
def test_without_the_charge_the_kernels_limit_is_still_host_memory_exhausted() -> None:
    # The kernel refuses memory for a frame; CPython 3.11 raises SystemError("error return
    # without exception set") for it, 3.12 MemoryError: both are the same trap.
    script = textwrap.dedent(
        f"""
        import resource, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from tests.engine.test_frames import instantiate
        from guestproc.engine import Trap
        instance = instantiate(4000, 1 << 60)
        instance.invoke("rec", 1)
        resource.setrlimit(resource.RLIMIT_DATA, (128 << 20, resource.RLIM_INFINITY))
        try:
            instance.invoke("rec", 20_000)
        except Trap as trap:
            print(trap.code.name)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "HOST_MEMORY_EXHAUSTED", done.stderr[-2000:]
