"""Message records and the host's pydantic models of what a guest may send."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from protocol import messages as m
from protocol.frames import decode_body, encode_frame
from protocol.messages import MessageType
from protocol.models import InvalidMessage, ResultValue, parse_guest_message
from tests.framework.paths import REPO_ROOT

TIMINGS = {"decode_ms": 1.5, "validate_ms": 0.5, "compile_ms": 2}
BOOT_TIMINGS = {"instantiate_ms": 0.25, "precompile_ms": 80.0, "precompiled": 31}

VALID_REPLIES: list[dict[str, Any]] = [
    m.hello(ready_ns=123_456_789),
    m.loaded(1, TIMINGS),
    m.loaded(1, TIMINGS, "rejected: damaged: the payload checksum does not match"),
    m.ready(1, BOOT_TIMINGS),
    m.ready(1, BOOT_TIMINGS, "miss"),
    m.code(1, b"KNDLCODE" * 8192),
    m.result(2, [["i32", 5], ["i64", 2**64 - 1], ["f32", 1.5], ["f64", -0.0], ["funcref", None]]),
    m.trapped(2, "integer_divide_by_zero", "integer divide by zero"),
    m.exited(2, 0),
    m.exited(2, 2**32 - 1),
    m.limit_reached(1, "memory", "too big"),
    m.load_failed(1, m.LoadStage.VALIDATION, "type mismatch"),
    m.refused(2, m.RefusalReason.NO_EXPORT, "no such export"),
    m.console(2, m.STDOUT, b"hello\n"),
    m.console(2, m.STDERR, b"\x00\xff"),
    m.stdin_request(2, 4096),
]


def wire(message: dict[str, Any]) -> Any:
    """What the host really receives: the message after a trip through a frame."""
    return decode_body(encode_frame(message)[4:])


@pytest.mark.parametrize("message", VALID_REPLIES, ids=lambda msg: str(msg["type"]))
def test_every_reply_the_guest_builds_passes_the_host_models(message: dict[str, Any]) -> None:
    parsed = parse_guest_message(wire(message))
    assert parsed.type == message["type"]
    assert parsed.id == message["id"]


def test_every_reply_type_has_a_model() -> None:
    covered = {str(msg["type"]) for msg in VALID_REPLIES}
    assert covered == {str(t) for t in m.REPLIES} | {"Hello"}


def test_requests_and_replies_are_verbs_and_nouns() -> None:
    assert {str(t) for t in m.REQUESTS} == {"Load", "Boot", "Invoke", "StdinData", "Shutdown"}
    assert not m.REQUESTS & m.REPLIES
    during = {MessageType.CONSOLE, MessageType.STDIN_REQUEST, MessageType.CODE}
    assert m.REPLIES - during == m.FINAL_REPLIES


def test_request_constructors_carry_an_id() -> None:
    for message in (
        m.load(1, b"\0asm"),
        m.load(1, b"\0asm", cached=b""),
        m.boot(1, [b"prog"], [b"A=B"], {"memory_bytes": 65536}),
        m.boot(1, [b"prog"], [b"A=B"], {"memory_bytes": 65536}, cached=b"KNDLCODE"),
        m.invoke(2, "add", [1, 2]),
        m.stdin_data(2, b"input"),
        m.shutdown(3),
    ):
        assert isinstance(message["id"], int)
        assert message["type"] in m.REQUESTS


BAD_REPLIES = [
    ({"type": "Gimme", "id": 1}, "Gimme"),
    ({"id": 1}, "type"),
    ([1, 2], "map"),
    ("Hello", "map"),
    ({**m.exited(1, 0), "extra": True}, "extra"),
    ({"type": "Exited", "id": 1, "code": "3"}, "Exited.code"),
    ({"type": "Exited", "id": 1, "code": True}, "Exited.code"),
    ({"type": "Exited", "id": 1, "code": -1}, "Exited.code"),
    ({"type": "Exited", "id": 1, "code": 2**32}, "Exited.code"),
    ({"type": "Exited", "id": -1, "code": 0}, "Exited.id"),
    ({"type": "Exited", "id": 1.0, "code": 0}, "Exited.id"),
    (m.console(1, 3, b"x"), "Console.stream"),
    (m.console(1, 1, b""), "Console.data"),
    ({"type": "Console", "id": 1, "stream": 1, "data": "text, not bytes"}, "Console.data"),
    (m.stdin_request(1, 0), "StdinRequest.max"),
    (m.stdin_request(1, m.MAX_STDIN_REQUEST + 1), "StdinRequest.max"),
    (m.trapped(1, "made_up", "x"), "trap kind"),
    (
        {"type": "Trapped", "id": 1, "kind": "unreachable", "message": "x" * (m.MAX_TEXT + 1)},
        "message",
    ),
    (m.limit_reached(1, "patience", "x"), "LimitReached.resource"),
    (m.load_failed(1, "vibes", "x"), "LoadFailed.stage"),  # type: ignore[arg-type]
    (m.result(1, [["i32", -1]]), "out of range"),
    (m.result(1, [["i32", 2**32]]), "out of range"),
    (m.result(1, [["i64", 1.5]]), "int"),
    (m.result(1, [["f64", 1]]), "float"),
    (m.result(1, [["v128", 0]]), "results"),
    (m.result(1, [["i32"]]), "pair"),
    (m.result(1, [["i32", 0]] * (m.MAX_RESULTS + 1)), "results"),
    (m.loaded(1, {**TIMINGS, "decode_ms": float("nan")}), "decode_ms"),
    (m.loaded(1, {"decode_ms": 1.0}), "timings"),
    (m.ready(1, {**BOOT_TIMINGS, "precompiled": -1}), "precompiled"),
    (m.code(1, b""), "Code.data"),
    (m.code(1, b"x" * (m.CODE_CHUNK + 1)), "Code.data"),
    ({"type": "Code", "id": 1, "data": "text"}, "Code.data"),
    (m.loaded(1, TIMINGS, "x" * (m.MAX_TEXT + 1)), "Loaded.cache"),
    ({k: v for k, v in m.loaded(1, TIMINGS).items() if k != "cache"}, "Loaded.cache"),
    ({**m.hello(1), "protocol": "http"}, "protocol"),
    (m.hello(), "ready_ns"),
]


@pytest.mark.parametrize(("value", "named"), BAD_REPLIES, ids=lambda v: repr(v)[:40])
def test_bad_replies_are_refused_with_a_reason(value: Any, named: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_guest_message(wire(value) if isinstance(value, dict) else value)
    assert named.lower() in str(caught.value).lower(), str(caught.value)


def test_requests_are_not_replies() -> None:
    """A guest cannot send the host a request."""
    for request in (m.load(1, b""), m.invoke(1, "f", []), m.shutdown(1), m.stdin_data(1, b"")):
        with pytest.raises(InvalidMessage):
            parse_guest_message(wire(request))


def test_trap_kinds_are_the_engines_trap_codes() -> None:
    from guestproc.engine import TrapCode

    limits = {TrapCode.OUT_OF_FUEL.kind, TrapCode.HOST_MEMORY_EXHAUSTED.kind}
    engine_kinds = {code.kind for code in TrapCode} - limits
    assert engine_kinds | {"internal_error"} == m.TRAP_KINDS


def test_load_stages_match_the_model() -> None:
    from typing import get_args

    from protocol.models import LoadFailed

    assert set(get_args(LoadFailed.model_fields["stage"].annotation)) == {
        str(stage) for stage in m.LoadStage
    }


@pytest.mark.parametrize(
    ("pair", "shown"),
    [
        (["i32", 0xFFFFFFFE], "-2"),
        (["i32", 0x7FFFFFFF], "2147483647"),
        (["i64", 2**64 - 4000000000000], "-4000000000000"),
        (["f64", 0.1], "0.1"),
        (["f32", float("inf")], "inf"),
        (["f64", float("nan")], "nan"),
        (["funcref", None], "null"),
    ],
)
def test_results_display_signed(pair: list[Any], shown: str) -> None:
    assert ResultValue.model_validate(pair).display() == shown


def test_the_guest_side_of_protocol_imports_no_pydantic() -> None:
    code = (
        "import sys, protocol, protocol.frames, protocol.messages\n"
        "heavy = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('pydantic', 'pydantic_core', 'asyncio', 'click', 'psutil'))\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
