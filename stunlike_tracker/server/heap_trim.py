"""Freed handshake memory goes back to the OS (glibc ``malloc_trim``).

A DTLS handshake allocates ~70 KiB inside OpenSSL; the record layer frees it
once the peer's first application record authenticates (transport/dtls.py).
Those frees leave holes between the small allocations made meanwhile (the
response cache's datagrams, Python's larger objects), and glibc returns only
the top of its heap, so after a burst of handshakes the process keeps their
peak in RSS. ``malloc_trim(0)`` gives whole free pages inside the heap back.
It walks the heap's free chunks, so it runs from the server's housekeeping
tick and only after ``every`` handshakes since the last trim. Elsewhere than
glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class HeapTrimmer:
    __slots__ = ("_since", "_trim", "every", "trims")

    def __init__(self, every: int = 256) -> None:
        self._trim = _load_malloc_trim()
        self._since = 0
        self.every = every
        self.trims = 0

    def handshake_done(self) -> None:
        self._since += 1

    def maybe_trim(self) -> bool:
        """Trim if ``every`` handshakes completed since the last trim."""
        if self._trim is None or self._since < self.every:
            return False
        self._since = 0
        self._trim(0)
        self.trims += 1
        return True
