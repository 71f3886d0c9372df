"""Validator (placeholder until the validator lands)."""

from __future__ import annotations

from .module import Module


def validate_module(module: Module) -> None:
    raise NotImplementedError
