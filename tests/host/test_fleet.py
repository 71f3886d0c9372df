"""``Fleet``: a template's key, made by the caller once and passed, spares the hashing."""

from __future__ import annotations

import pytest

from host.config import GuestConfig
from host.fleet import Fleet
from host.uids import GuestUids

MODULE = b"\0asm\1\0\0\0"


def test_a_template_key_names_module_configuration_and_init() -> None:
    config = GuestConfig()
    key = Fleet.key(MODULE, config)
    assert Fleet.key(bytes(bytearray(MODULE)), GuestConfig(memory=config.memory)) == key
    assert Fleet.key(MODULE, config, "init") != key
    assert Fleet.key(MODULE, GuestConfig(memory=config.memory * 2)) != key
    assert Fleet.key(MODULE + b"\0", config) != key


def test_a_key_given_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Fleet(None, None, GuestUids(subordinate=False))
    key = Fleet.key(MODULE, GuestConfig())

    def refused(module: bytes) -> bytes:
        raise AssertionError("hashed the module again")

    monkeypatch.setattr("host.fleet.module_digest", refused)
    assert not fleet.has_template(MODULE, GuestConfig(), None, key)
