"""Layering (issue 9, ARCHITECTURE): the pure layers load no I/O library.

Each package is imported, with every module below it, in a fresh
interpreter, and the modules that ended up loaded are checked: importing
``stunlike_tracker.core``, ``.ppsp`` or ``.stun`` must not load (directly or
through anything they import) aioice, aiortc, OpenSSL or asyncio, and the
server must not load the ICE agents.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, sys.argv[1] + "."):
    importlib.import_module(module.name)
print(json.dumps(sorted(sys.modules)))
"""

_IO = ("aioice", "aiortc", "OpenSSL", "asyncio")
_ICE_AGENTS = ("aioice", "aiortc")


def _loaded_by(package: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, package], capture_output=True, text=True, check=True
    )
    return {name.split(".")[0] for name in json.loads(out.stdout)}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("stunlike_tracker.core", _IO),
        ("stunlike_tracker.ppsp", _IO),
        ("stunlike_tracker.stun", _IO),
        ("stunlike_tracker.server", _ICE_AGENTS),
    ],
)
def test_package_loads_no_forbidden_library(package: str, forbidden: tuple[str, ...]) -> None:
    loaded = _loaded_by(package)
    assert package.split(".")[0] in loaded
    assert sorted(loaded & set(forbidden)) == []


def test_the_probe_sees_what_a_package_loads() -> None:
    # The check above can fail: the peer does load the ICE agents.
    assert {"aioice", "aiortc", "asyncio"} <= _loaded_by("stunlike_tracker.peer")
