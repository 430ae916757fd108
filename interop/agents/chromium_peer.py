"""Headless Chromium as the other end of our P2P channel.

    python3 chromium_peer.py ROLE CONFIG_JSON

Serves chromium_peer.html on 127.0.0.1 inside the lab host, starts Chromium
on it, and bridges the page to the driver: what the page POSTs to /out is
printed as one JSON line; each JSON line read on stdin answers one GET /in;
GET /config gives ROLE and CONFIG_JSON ({"stun", "turn"}) to the page.
The page speaks WebRTC itself; this file only carries its SDP.
"""

import http.server
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from stunlike_tracker.lab.cdp import HEADLESS_FLAGS, RAW_HOST_IPS_FLAG

HERE = Path(__file__).resolve().parent
FLAGS = [*HEADLESS_FLAGS, RAW_HOST_IPS_FLAG]


def main() -> int:
    role, config = sys.argv[1], json.loads(sys.argv[2])
    incoming: queue.Queue[bytes] = queue.Queue()
    out_lock = threading.Lock()

    class Bridge(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, body: bytes, kind: str = "application/json") -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/config":
                self._reply(json.dumps({"role": role, **config}).encode())
            elif self.path == "/in":
                self._reply(incoming.get())
            else:
                self._reply((HERE / "chromium_peer.html").read_bytes(), "text/html")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with out_lock:
                sys.stdout.write(json.dumps(json.loads(body)) + "\n")
                sys.stdout.flush()
            self._reply(b"{}")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bridge)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def read_stdin() -> None:
        for line in sys.stdin.buffer:
            incoming.put(line.strip())

    threading.Thread(target=read_stdin, daemon=True).start()
    exe = shutil.which("chromium") or "chromium"
    port = server.server_address[1]
    with tempfile.TemporaryDirectory(prefix="stl-chromium-", ignore_cleanup_errors=True) as d:
        argv = [exe, *FLAGS, f"--user-data-dir={d}", f"http://127.0.0.1:{port}/peer.html"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return proc.wait()
        finally:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
