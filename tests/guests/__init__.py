"""Guest processes for the host's tests, kept out of the shipped packages.

``subverted.py`` is the real guest with a hole an engine bug would open: attacker Python
running where module code runs, for the security tests (``subverted()``).
``misbehave.py`` plays the guest's side of the protocol correctly up to a point and then
breaks it on purpose (see its ``MODES``). ``misbehaving(mode)`` is the ``Launcher`` that
starts it: the real guest's interpreter, flags and environment (``Launcher.default()``), but
running the file by path instead of ``-m guestproc``::

    python -S -P .../tests/guests/misbehave.py MODE 3 4    env: the real guest's PYTHONPATH

``-P`` keeps the file's folder off ``sys.path``, and ``PYTHONPATH`` holds only what the real
guest imports, so the file imports ``protocol`` and ``guestproc`` as the real guest does and
nothing from ``tests``. Run by path, it needs no import path of its own, so the production
launcher stays as it is whether Kindling is installed editable or not.
"""

from __future__ import annotations

from pathlib import Path

from host.transport import Launcher

MISBEHAVE = Path(__file__).resolve().with_name("misbehave.py")
SUBVERTED = Path(__file__).resolve().with_name("subverted.py")


def misbehaving(mode: str) -> Launcher:
    """A launcher for the guest that breaks the protocol in ``mode``."""
    real = Launcher.default()
    return Launcher((real.argv[0], "-S", "-P", str(MISBEHAVE), mode), real.env)


def subverted() -> Launcher:
    """A launcher for the real guest with a hole in its engine (``subverted.py``): an export
    name ``python:SOURCE`` runs SOURCE inside the running guest."""
    real = Launcher.default()
    return Launcher((real.argv[0], "-S", "-P", str(SUBVERTED)), real.env)
