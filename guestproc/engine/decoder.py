"""Binary format decoder (placeholder until the decoder lands)."""

from __future__ import annotations

from .module import Module


def decode_module(data: bytes) -> Module:
    raise NotImplementedError
