"""The guest's code cache entries (``guestproc.codecache``): marshalled code objects only,
checked for shape; an entry never makes an object of a class of its choosing."""

from __future__ import annotations

import marshal
import pickle
from typing import Any

import pytest

from guestproc.codecache import pack, unpack
from guestproc.engine import compile_module, decode_module
from guestproc.loading import decode
from protocol.codeentry import EntryError, seal
from tests.framework.paths import fixture

RAN: list[str] = []


class Planted:
    """What a planted pickle would do when loaded: call whatever it names."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (RAN.append, ("the entry's code ran",))


def module_bytes() -> bytes:
    return fixture("exports").read_bytes()


def test_an_entry_round_trips_to_a_working_module() -> None:
    entry = pack(compile_module(decode_module(module_bytes())))
    compiled = unpack(entry, False, decode(module_bytes(), bodies=False))
    assert compiled.from_cache
    assert all(not f.body for f in compiled.module.functions)  # bodies come from the entry
    instance = compiled.instantiate({})
    add = instance.exports["add"]
    from guestproc.engine import invoke

    assert invoke(add, [2, 3]) == [5]  # type: ignore[arg-type]


def test_a_pickle_in_an_intact_envelope_is_never_unpickled() -> None:
    entry = seal(pickle.dumps(Planted()), False)
    with pytest.raises(EntryError):
        unpack(entry, False, decode(module_bytes(), bodies=False))
    assert RAN == []


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (marshal.dumps({"not": "a list"}), "unexpected payload contents"),
        (marshal.dumps([1, 2, 3]), "unexpected payload contents"),
        (marshal.dumps([(lambda: 0).__code__]), "does not cover every function"),
    ],
)
def test_payloads_of_the_wrong_shape_are_rejected(payload: bytes, why: str) -> None:
    with pytest.raises(EntryError, match=why):
        unpack(seal(payload, False), False, decode(module_bytes(), bodies=False))


def test_a_module_decoded_without_bodies_is_the_module_less_its_bodies() -> None:
    full = decode_module(module_bytes())
    bare = decode(module_bytes(), bodies=False)
    assert [f.body for f in bare.functions] == [[] for _ in full.functions]
    assert [(f.type_index, f.locals) for f in bare.functions] == [
        (f.type_index, f.locals) for f in full.functions
    ]
    assert bare.exports == full.exports and bare.types == full.types
