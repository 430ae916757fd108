"""A throwaway HTTP server on 127.0.0.1:0 for the page's modules (tests only)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

STATIC = Path(__file__).resolve().parents[3] / "stunlike_tracker" / "http" / "static"


@contextmanager
def static_server(extra: Path) -> Iterator[str]:
    """Serve the package's static files, and ``extra``'s files under ``/extra/``."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def translate_path(self, path: str) -> str:
            if path.startswith("/extra/"):
                return str(extra / path.removeprefix("/extra/").split("?")[0])
            return super().translate_path(path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(STATIC))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
