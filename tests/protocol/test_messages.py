"""Message declarations, the guest's checker and the host's pydantic models derived from them."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from protocol import messages as m
from protocol.frames import decode_body, encode_frame
from protocol.messages import MessageType
from protocol.models import InvalidMessage, model_of, parse_guest_message, parse_template_reply
from protocol.schema import SchemaError
from tests.framework.paths import REPO_ROOT

TIMINGS = m.LoadTimings(decode_ms=1.5, validate_ms=0.5, compile_ms=2)
BOOT_TIMINGS = m.BootTimings(instantiate_ms=0.25, precompile_ms=80.0, precompiled=31)
LIMITS = m.BootLimits(memory_bytes=65536, cpu_seconds=None, call_depth=100, fuel=None)


def value(kind: m.ValueType, number: Any) -> m.ResultValue:
    return m.ResultValue(type=kind, value=number)


VALID_REPLIES: list[m.Message] = [
    m.GuestHello(id=0, ready_ns=123_456_789),
    m.Loaded(id=1, timings=TIMINGS),
    m.Loaded(id=1, timings=TIMINGS, cache="rejected: damaged: the payload checksum does not match"),
    m.Ready(id=1, timings=BOOT_TIMINGS),
    m.Ready(id=1, timings=BOOT_TIMINGS, cache="miss"),
    m.Code(id=1, data=b"KNDLCODE" * 8192),
    m.Starting(id=2),
    m.Snapshot(id=2, data=b"\x85" * 100),
    m.Loaded(id=1, timings=TIMINGS, cache="hit", code_size=9, start=3),
    m.Result(
        id=2,
        results=[
            value(m.ValueType.I32, 5),
            value(m.ValueType.I64, 2**64 - 1),
            value(m.ValueType.F32, 1.5),
            value(m.ValueType.F64, -0.0),
            value(m.ValueType.FUNCREF, None),
        ],
    ),
    m.Result(id=2, results=[], fuel=12),
    m.Trapped(id=2, kind=m.TrapKind.INTEGER_DIVIDE_BY_ZERO, message="integer divide by zero"),
    m.Exited(id=2, code=0),
    m.Exited(id=2, code=2**32 - 1),
    m.LimitReached(id=1, resource=m.Limit.MEMORY, message="too big"),
    m.LoadFailed(id=1, stage=m.LoadStage.VALIDATION, message="type mismatch"),
    m.Refused(id=2, reason=m.RefusalReason.NO_EXPORT, message="no such export"),
    m.Console(id=2, stream=m.Stream.STDOUT, data=b"hello\n"),
    m.Console(id=2, stream=m.Stream.STDERR, data=b"\x00\xff"),
    m.StdinRequest(id=2, max=4096),
    m.FileCall(id=2, op=m.FileOp.OPEN, path=b"a/b", numbers=[1, 1, 0, 1, 0]),
    m.FileCall(id=2, op=m.FileOp.RENAME, handle=3, path=b"a", handle2=4, path2=b"b", numbers=[]),
    m.FileCall(id=2, op=m.FileOp.WRITE, handle=5, numbers=[], data=b"x" * m.FILE_CHUNK),
]

VALID_REQUESTS: list[m.Message] = [
    m.HostHello(id=0),
    m.Load(id=1, module=b"\0asm"),
    m.Load(id=1, module=b"\0asm", cached=b""),
    m.Boot(id=1, args=[b"prog"], env=[b"A=B"], limits=LIMITS),
    m.Boot(id=1, args=[b"prog"], env=[], limits=LIMITS, cached=b"KNDLCODE"),
    m.Boot(id=1, args=[], env=[], limits=LIMITS, start=m.StartMode.SNAPSHOT),
    m.Boot(id=1, args=[], env=[], limits=LIMITS, start=m.StartMode.RESTORE, snapshot=b"\x83"),
    m.Invoke(id=2, export="add", args=[1, 2.5, -(2**63), 2**64 - 1]),
    m.StdinData(id=2, data=b"input"),
    m.StdinData(id=2, data=b""),
    m.FileAnswer(id=2, errno=0, numbers=[5, 4]),
    m.ConsoleClosed(id=2, stream=m.Stream.STDOUT),
    m.FileAnswer(id=2, errno=76, numbers=[], data=b""),
    m.FileAnswer(id=2, errno=0, numbers=[], data=b"\0" * m.FILE_CHUNK),
    m.Boot(
        id=1,
        args=[],
        env=[],
        limits=LIMITS,
        preopens=[m.Preopen(name=b"/", read_only=0), m.Preopen(name=b"data", read_only=1)],
    ),
    m.Shutdown(id=3),
]


def wire(message: m.Message | dict[str, Any]) -> Any:
    """What the other side really receives: the message after a trip through a frame."""
    raw = message.wire() if isinstance(message, m.Message) else message
    return decode_body(encode_frame(raw)[4:])


@pytest.mark.parametrize("message", VALID_REPLIES, ids=lambda msg: str(msg.TYPE))
def test_every_reply_the_guest_builds_passes_both_readers(message: m.Message) -> None:
    parsed = parse_guest_message(wire(message))
    assert type(parsed) is model_of(type(message))
    assert isinstance(parsed, type(message))  # the host dispatches on the declared classes
    assert parsed.wire() == message.wire()
    assert m.read_message(m.GUEST_TO_HOST, wire(message)) == message


@pytest.mark.parametrize("message", VALID_REQUESTS, ids=lambda msg: str(msg.TYPE))
def test_every_request_the_host_builds_passes_the_guests_checker(message: m.Message) -> None:
    assert m.read_message(m.HOST_TO_GUEST, wire(message)) == message


def test_every_message_type_is_declared_on_a_channel() -> None:
    channels = [m.HOST_TO_GUEST, m.GUEST_TO_HOST, m.HOST_TO_TEMPLATE, m.TEMPLATE_TO_HOST]
    declared = {tag for channel in channels for tag in channel}
    assert declared == {str(tag) for tag in MessageType}
    covered = {str(msg.TYPE) for msg in VALID_REPLIES}
    assert covered == set(m.GUEST_TO_HOST)
    assert {str(msg.TYPE) for msg in VALID_REQUESTS} == set(m.HOST_TO_GUEST)


def test_requests_are_verbs_and_replies_nouns() -> None:
    requests = set(m.HOST_TO_GUEST) - {"Hello"}
    # StdinData and FileAnswer answer the guest's own mid-request asks; ConsoleClosed tells.
    assert requests == {
        "Load",
        "Boot",
        "Invoke",
        "StdinData",
        "FileAnswer",
        "ConsoleClosed",
        "Shutdown",
    }
    assert not requests & set(m.GUEST_TO_HOST)


BAD_REPLIES = [
    ({"type": "Gimme", "id": 1}, "Gimme"),
    ({"id": 1}, "None"),
    ([1, 2], "map"),
    ("Hello", "map"),
    ({**m.Exited(id=1, code=0).wire(), "extra": True}, "extra"),
    ({"type": "Exited", "id": 1, "code": "3"}, "Exited.code"),
    ({"type": "Exited", "id": 1, "code": True}, "Exited.code"),
    ({"type": "Exited", "id": 1, "code": -1}, "Exited.code"),
    ({"type": "Exited", "id": 1, "code": 2**32}, "Exited.code"),
    ({"type": "Exited", "id": -1, "code": 0}, "Exited.id"),
    ({"type": "Exited", "id": 1.0, "code": 0}, "Exited.id"),
    ({"type": "Console", "id": 1, "stream": 3, "data": b"x"}, "Console.stream"),
    ({"type": "Console", "id": 1, "stream": "1", "data": b"x"}, "Console.stream"),
    ({"type": "Console", "id": 1, "stream": 1.0, "data": b"x"}, "Console.stream"),
    ({"type": "Console", "id": 1, "stream": 1, "data": b""}, "Console.data"),
    ({"type": "Console", "id": 1, "stream": 1, "data": "text, not bytes"}, "Console.data"),
    ({"type": "StdinRequest", "id": 1, "max": 0}, "StdinRequest.max"),
    ({"type": "StdinRequest", "id": 1, "max": m.MAX_STDIN_REQUEST + 1}, "StdinRequest.max"),
    ({"type": "Trapped", "id": 1, "kind": "made_up", "message": "x"}, "Trapped.kind"),
    (
        {"type": "Trapped", "id": 1, "kind": "unreachable", "message": "x" * (m.MAX_TEXT + 1)},
        "message",
    ),
    ({"type": "LimitReached", "id": 1, "resource": "patience", "message": "x"}, "resource"),
    ({"type": "LimitReached", "id": 1, "resource": "wall", "message": "x"}, "resource"),
    ({"type": "LoadFailed", "id": 1, "stage": "vibes", "message": "x"}, "LoadFailed.stage"),
    ({"type": "LoadFailed", "id": 1, "stage": "read", "message": "x"}, "LoadFailed.stage"),
    ({"type": "Result", "id": 1, "results": [["i32", -1]]}, "out of range"),
    ({"type": "Result", "id": 1, "results": [["i32", 2**32]]}, "out of range"),
    ({"type": "Result", "id": 1, "results": [["i64", 1.5]]}, "int"),
    ({"type": "Result", "id": 1, "results": [["f64", 1]]}, "float"),
    ({"type": "Result", "id": 1, "results": [["v128", 0]]}, "results"),
    ({"type": "Result", "id": 1, "results": [["i32"]]}, "pair"),
    ({"type": "Result", "id": 1, "results": [["i32", 0]] * (m.MAX_RESULTS + 1)}, "results"),
    (
        {"type": "Loaded", "id": 1, "timings": {**vars(TIMINGS), "decode_ms": float("nan")}},
        "decode_ms",
    ),
    (
        {"type": "Loaded", "id": 1, "timings": {"decode_ms": 1.0}, "cache": "", "code_size": 0},
        "timings",
    ),
    (
        {
            "type": "Ready",
            "id": 1,
            "timings": {**vars(BOOT_TIMINGS), "precompiled": -1},
            "cache": "",
        },
        "precompiled",
    ),
    ({"type": "Code", "id": 1, "data": b""}, "Code.data"),
    ({"type": "Code", "id": 1, "data": b"x" * (m.CODE_CHUNK + 1)}, "Code.data"),
    ({"type": "Code", "id": 1, "data": "text"}, "Code.data"),
    (
        {
            "type": "Loaded",
            "id": 1,
            "timings": vars(TIMINGS),
            "cache": "x" * (m.MAX_TEXT + 1),
            "code_size": 0,
        },
        "Loaded.cache",
    ),
    ({"type": "Loaded", "id": 1, "timings": vars(TIMINGS), "code_size": 0}, "cache"),
    ({**m.GuestHello(id=0, ready_ns=1).wire(), "protocol": "http"}, "protocol"),
    (m.HostHello(id=0).wire(), "ready_ns"),
    (m.Load(id=1, module=b"").wire(), "Load"),  # a guest cannot send the host a request
    (m.Shutdown(id=1).wire(), "Shutdown"),
]


@pytest.mark.parametrize(("value", "named"), BAD_REPLIES, ids=lambda v: repr(v)[:40])
def test_bad_replies_are_refused_by_both_readers(value: Any, named: str) -> None:
    received = wire(value) if isinstance(value, dict) else value
    with pytest.raises(InvalidMessage) as caught:
        parse_guest_message(received)
    assert named.lower() in str(caught.value).lower(), str(caught.value)
    with pytest.raises(SchemaError) as checked:
        m.read_message(m.GUEST_TO_HOST, received)
    assert named.lower() in str(checked.value).lower(), str(checked.value)


BAD_REQUESTS = [
    ({"type": "Load", "id": 1}, "module"),
    ({"type": "Load", "id": True, "module": b""}, "Load.id"),
    ({"type": "Load", "id": 1, "module": b"", "cached": "text"}, "Load.cached"),
    ({"type": "Boot", "id": 1, "args": [], "env": [1], "limits": vars(LIMITS)}, "Boot.env[0]"),
    ({"type": "Boot", "id": 1, "args": [], "env": [], "limits": {}}, "Boot.limits"),
    (
        {"type": "Boot", "id": 1, "args": [], "env": [], "limits": {**vars(LIMITS), "fuel": "x"}},
        "Boot.limits.fuel",
    ),
    ({"type": "Invoke", "id": 1, "export": "f", "args": [None]}, "Invoke.args[0]"),
    ({"type": "Invoke", "id": 1, "export": "f", "args": [True]}, "Invoke.args[0]"),
    ({"type": "Invoke", "id": 1, "export": b"f", "args": []}, "Invoke.export"),
    ({"type": "Shutdown", "id": 1, "now": True}, "now"),
    ({"type": "Hello", "id": 0, "protocol": "kindling", "version": -1}, "Hello.version"),
    ({"type": "Console", "id": 1, "stream": 1, "data": b"x"}, "Console"),  # not a request
]


@pytest.mark.parametrize(("value", "named"), BAD_REQUESTS, ids=lambda v: repr(v)[:40])
def test_bad_requests_are_refused_by_the_guests_checker(value: Any, named: str) -> None:
    with pytest.raises(SchemaError) as checked:
        m.read_message(m.HOST_TO_GUEST, wire(value))
    assert named.lower() in str(checked.value).lower(), str(checked.value)


def test_template_replies_are_declared_and_checked() -> None:
    forked = m.Forked(id=3, pid=1234)
    assert parse_template_reply(wire(forked)).wire() == forked.wire()
    failed = m.ForkFailed(id=4, error="clone: no memory")
    assert parse_template_reply(wire(failed)).wire() == failed.wire()
    for bad in (
        {"type": "Forked", "id": 3, "pid": 1},
        {"type": "Forked", "id": 3, "pid": True},
        {"type": "Forked", "id": 3},
        {"type": "Fork", "id": 3},
        {"type": "Console", "id": 3, "stream": 1, "data": b"x"},
    ):
        with pytest.raises(InvalidMessage):
            parse_template_reply(wire(bad))
    assert m.read_message(m.HOST_TO_TEMPLATE, wire(m.Fork(id=9))) == m.Fork(id=9)


def test_trap_kinds_are_the_engines_trap_codes() -> None:
    from guestproc.engine import TrapCode

    limits = {TrapCode.OUT_OF_FUEL.kind, TrapCode.HOST_MEMORY_EXHAUSTED.kind}
    engine_kinds = {code.kind for code in TrapCode} - limits
    assert engine_kinds | {"internal_error"} == {str(kind) for kind in m.TrapKind}


def test_the_guest_reports_only_its_own_load_stages() -> None:
    guest_stages = {"decode", "validation", "link", "compile", "snapshot", "init"}
    assert {str(stage) for stage in m.GUEST_LOAD_STAGES.members} == guest_stages
    assert guest_stages < {str(stage) for stage in m.LoadStage}


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
    result = parse_guest_message({"type": "Result", "id": 1, "results": [pair]})
    assert isinstance(result, m.Result)
    assert result.results[0].display() == shown


def test_the_guest_side_of_protocol_imports_no_pydantic() -> None:
    code = (
        "import sys, protocol, protocol.frames, protocol.messages, protocol.schema\n"
        "heavy = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('pydantic', 'pydantic_core', 'annotated_types', 'asyncio', 'click', 'psutil'))\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


FORK_CORPUS: list[Any] = [
    {"type": "Fork", "id": 1},
    {"type": "Fork", "id": 0},
    {"type": "Fork", "id": m.REQUEST_ID_MAX},
    {"type": "Fork", "id": -1},
    {"type": "Fork", "id": True},
    {"type": "Fork", "id": 1.0},
    {"type": "Fork", "id": "1"},
    {"type": "Fork"},
    {"type": "Fork", "id": 1, "pid": 2},
    {"type": "Forked", "id": 1},
    {"id": 1},
    [1, 2],
    "Fork",
]


@pytest.mark.parametrize("value", FORK_CORPUS, ids=repr)
def test_the_templates_fork_reader_agrees_with_the_declaration(value: Any) -> None:
    """A template reads Fork with a few dict operations (``fork_request_id``); it must
    accept and refuse exactly what the declared checker does."""
    from guestproc.template import fork_request_id

    data = encode_frame(value)[4:]
    try:
        declared: int | None = m.read_message(m.HOST_TO_TEMPLATE, wire(value)).id
    except SchemaError:
        declared = None
    try:
        fast: int | None = fork_request_id(data)
    except ValueError:
        fast = None
    assert fast == declared


FAST_CORPUS = [
    *(value for value, _ in BAD_REQUESTS),
    {"type": "Invoke", "id": 1, "export": "f", "args": [1, -(1 << 63), (1 << 64) - 1, 2.5]},
    {"type": "Invoke", "id": 1, "export": "f", "args": [1 << 64]},
    {"type": "Invoke", "id": 1, "export": "f", "args": [-(1 << 63) - 1]},
    {"type": "Invoke", "id": 1, "export": "f", "args": [float("inf"), float("nan"), -0.0]},
    {"type": "Invoke", "id": 1, "export": "f", "args": [[1]]},
    {"type": "Invoke", "id": 1, "export": "f", "args": (1,)},
    {"type": "Invoke", "id": 1 << 40, "export": "f", "args": []},
    {"type": "Invoke", "id": 1.0, "export": "f", "args": []},
    {"type": "Invoke", "id": 1, "args": []},
    {"type": "Invoke", "id": 1, "export": "f", "args": [], "extra": 1},
    {"id": 1, "export": "f", "args": []},
    {"type": "Load", "id": 1, "module": b"\0asm"},
    {"type": "Load", "id": 1, "module": b"", "cached": None},
    {"type": "Load", "id": 1, "module": b"", "cached": b"x"},
    {"type": "Load", "id": 1, "module": "text"},
    {"type": "StdinData", "id": 1, "data": b""},
    {"type": "StdinData", "id": 1, "data": b"x" * (m.MAX_STDIN_REQUEST + 1)},
    {"type": "Shutdown", "id": 0},
    {"type": "Shutdown", "id": -1},
    {"type": "Fork", "id": 3},
    {"type": "Exited", "id": 1, "code": 0xFFFFFFFF},
    {"type": "Exited", "id": 1, "code": 1 << 32},
    {"type": "Code", "id": 1, "data": b""},
    {"type": "StdinRequest", "id": 1, "max": 0},
    [1, 2],
    None,
]


ALL_RECORDS = [*m.HOST_TO_GUEST.values(), *m.GUEST_TO_HOST.values(), m.Fork, m.Forked]


@pytest.mark.parametrize("value", FAST_CORPUS, ids=lambda v: repr(v)[:40])
def test_the_fast_readers_agree_with_the_checker(value: Any) -> None:
    """``schema.from_wire`` first tries a record's generated reader, which must take only
    what the checker takes, and make the same record of it."""
    from protocol import schema

    schema.prepare(ALL_RECORDS)  # as a template does: the generated readers exist after it
    for covered in (m.Load, m.Invoke, m.StdinData, m.Shutdown, m.Exited):
        assert covered in schema._READERS, covered
    for cls in ALL_RECORDS:
        fast = schema._READERS.get(cls)
        if fast is None:  # a record the generated readers do not cover: the checker reads it
            continue
        try:
            checked: Any = schema.from_wire(cls, value, cls.__name__)  # the checker alone
        except SchemaError:
            checked = None
        made = fast(value)
        assert made is None or made == checked, (cls, made, checked)
        if made is not None:
            assert [type(v) for v in vars(made).values()] == [
                type(v) for v in vars(checked).values()
            ]


@pytest.mark.parametrize(
    "message",
    [*VALID_REPLIES, *VALID_REQUESTS, m.Fork(id=1), m.Forked(id=1, pid=2)],
    ids=lambda msg: str(msg.TYPE),
)
def test_the_generated_writers_agree_with_the_declaration(message: m.Message) -> None:
    from protocol import schema

    schema.prepare(ALL_RECORDS)  # as a template does: the generated writers exist after it
    assert type(message) in schema._WRITERS
    written = message.wire()
    walked = schema._to_wire_walk(message, message.TYPE)
    assert list(written.items()) == list(walked.items())
    assert encode_frame(written) == encode_frame(walked)
    parsed = parse_guest_message(wire(message)) if type(message) in VALID_TYPES else None
    if parsed is not None:
        assert encode_frame(parsed.wire()) == encode_frame(
            schema._to_wire_walk(parsed, parsed.TYPE)
        )


VALID_TYPES = {type(reply) for reply in VALID_REPLIES}


def test_records_are_frozen_and_built_with_keywords() -> None:
    """``schema.record`` is not ``dataclasses`` (building 26 dataclasses cost every guest
    process tens of milliseconds at start-up); records must behave as frozen, keyword-only
    dataclasses would."""
    import dataclasses

    loaded = m.Load(id=1, module=b"x")
    assert loaded.cached is None and vars(loaded) == {"id": 1, "module": b"x", "cached": None}
    assert (
        m.Loaded(id=2, timings=m.LoadTimings(decode_ms=0, validate_ms=0, compile_ms=0)).cache
        == "off"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.id = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.Load(id=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        m.Load(1, b"x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        m.Load(id=1, module=b"x", extra=2)  # type: ignore[call-arg]
    assert loaded == m.Load(id=1, module=b"x") and loaded != m.Load(id=1, module=b"y")
    assert repr(loaded) == "Load(id=1, module=b'x', cached=None)"
    assert hash(loaded) == hash(m.Load(id=1, module=b"x"))


TAGGED_CORPUS = [
    *FAST_CORPUS,
    *(wire(request) for request in VALID_REQUESTS),
    {"type": "Exited", "id": 1, "code": 0},  # declared, but not on the host's channel
    {"type": 3, "id": 1},
    {"type": None, "id": 1},
    {"type": "Invoke"},
    {},
]


@pytest.mark.parametrize("value", TAGGED_CORPUS, ids=lambda v: repr(v)[:40])
def test_the_tag_reader_agrees_with_the_channels_checker(value: Any) -> None:
    """A template's guests read the host's frames with ``schema.tag_reader`` first: it must
    take only what ``read_message`` takes on that channel, make the same message of it,
    and leave everything else (None) to the checker, which says why it does not fit."""
    from protocol import schema

    read = schema.tag_reader({str(m.Invoke.TYPE): m.Invoke, **m.HOST_TO_GUEST})
    try:
        checked: Any = m.read_message(m.HOST_TO_GUEST, value)
    except SchemaError:
        checked = None
    made = read(value)
    assert made is None or made == checked, (made, checked)
    if made is not None:
        assert type(made) is type(checked)
        assert [type(v) for v in vars(made).values()] == [type(v) for v in vars(checked).values()]
    elif checked is not None:  # left to the checker: only a record with no fast reader
        assert schema._fast_reader(type(checked), "read", "NAMES", "RECORD") is None, checked


def test_the_tag_reader_reads_the_requests_a_forked_guest_serves_most() -> None:
    from protocol import schema

    read = schema.tag_reader(m.HOST_TO_GUEST)
    for request in (
        m.Invoke(id=2, export="add", args=[1, 2]),
        m.Invoke(id=2, export="_start", args=[], argv=[b"x"], environ=[b"A=1"], stdin=b""),
        m.StdinData(id=2, data=b"x"),
        m.FileAnswer(id=2, errno=0, numbers=[1]),
        m.Shutdown(id=3),
    ):
        assert read(wire(request)) == request
