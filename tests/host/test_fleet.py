"""``Fleet``: the key of a template is made once for the same module and configuration."""

from __future__ import annotations

import pytest

from host.config import GuestConfig
from host.fleet import KNOWN_KEYS, Fleet
from host.uids import GuestUids
from protocol.codeentry import module_digest


def test_a_template_key_is_made_once_for_the_same_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digests = 0

    def counted(module: bytes) -> bytes:
        nonlocal digests
        digests += 1
        return module_digest(module)

    monkeypatch.setattr("host.fleet.module_digest", counted)
    fleet = Fleet(None, None, GuestUids(subordinate=False))
    module, config = b"\0asm\1\0\0\0", GuestConfig()
    for _ in range(3):
        assert not fleet.has_template(module, config)
    assert digests == 1
    # Equal but other objects: made again, and the same key.
    other = GuestConfig(memory=config.memory)
    assert fleet._key(bytes(bytearray(module)), other, None) == fleet._key(module, config, None)
    assert digests == 2
    assert fleet._key(module, config, "init") != fleet._key(module, config, None)
    # Bounded: the oldest go first.
    modules = [bytes([n]) * 8 for n in range(KNOWN_KEYS + 5)]
    for each in modules:
        fleet._key(each, config, None)
    assert len(fleet._keys) == KNOWN_KEYS
