"""Run a real coturn (Debian ``turnserver``) on loopback for tests.

``running_coturn(workdir)`` starts it on a free UDP port with a free relay
port range and TURN REST shared-secret auth (PROTOCOL §7), and returns once
coturn's log says it is ready (never by sleeping). A thread drains the log
so the pipe never fills; its tail goes into error messages.

Readiness: coturn logs "UDP listener opened" (only with ``-v``) before its
relay servers are all set up; with the default one relay thread per core,
an Allocate sent right then is often answered 438 "Wrong nonce" to the
nonce coturn has just handed out. So coturn runs single-threaded
(``-m 0``, plenty for tests) and readiness needs both the listener line
and "Total General servers".

Use from a fixture::

    @pytest.fixture
    def coturn(tmp_path: Path) -> Iterator[Coturn]:
        if shutil.which("turnserver") is None:
            pytest.skip("coturn's turnserver is not installed")
        with running_coturn(tmp_path) as server:
            yield server
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from stunlike_tracker.core.turn import turn_credentials
from stunlike_tracker.ppsp.messages import TurnServer

HOST = "127.0.0.1"
LISTENER_MARK = "UDP listener opened on"
SERVERS_MARK = "Total General servers"


@dataclass(frozen=True)
class Coturn:
    host: str
    port: int
    secret: str
    realm: str
    relay_ports: tuple[int, int]

    @property
    def uri(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    def credentials(self, peer_id: str, *, ttl: int = 600) -> tuple[str, str]:
        """TURN REST credentials, by the tracker's own formula (PROTOCOL §7)."""
        return turn_credentials(self.secret.encode(), peer_id, int(time.time()) + ttl)

    def turn_server(self, peer_id: str, *, ttl: int = 600) -> TurnServer:
        username, credential = self.credentials(peer_id, ttl=ttl)
        return TurnServer(uri=self.uri, username=username, credential=credential, ttl=ttl)


def free_udp_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _udp_range_is_free(host: str, first: int, count: int) -> bool:
    socks = []
    try:
        for port in range(first, first + count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(sock)
            sock.bind((host, port))
    except OSError:
        return False
    finally:
        for sock in socks:
            sock.close()
    return True


def free_udp_range(host: str = HOST, count: int = 16, attempts: int = 50) -> tuple[int, int]:
    for _ in range(attempts):
        first = free_udp_port(host)
        if first + count - 1 <= 65535 and _udp_range_is_free(host, first, count):
            return first, first + count - 1
    raise RuntimeError("no free UDP port range for the TURN relay")


class _LogReader(threading.Thread):
    """Drains coturn's output; ``settled`` is set once every mark was seen, or at EOF."""

    def __init__(self, stream: IO[str], marks: set[str]) -> None:
        super().__init__(daemon=True, name="coturn-log")
        self._stream = stream
        self._missing = set(marks)
        self.ready = False
        self.settled = threading.Event()
        self.tail: deque[str] = deque(maxlen=200)

    def run(self) -> None:
        for line in iter(self._stream.readline, ""):
            self.tail.append(line.rstrip("\n"))
            if not self.ready:
                self._missing = {mark for mark in self._missing if mark not in line}
                if not self._missing:
                    self.ready = True
                    self.settled.set()
        self.settled.set()


def _command(server: Coturn, workdir: Path) -> list[str]:
    return [
        "turnserver",
        "-n",
        "-v",  # the "UDP listener opened" line is only logged verbosely
        "-m",
        "0",  # single-threaded: see the module docstring
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "--no-tcp",
        "--no-tcp-relay",
        "-L",
        server.host,
        "--listening-port",
        str(server.port),
        "--relay-ip",
        server.host,
        "--min-port",
        str(server.relay_ports[0]),
        "--max-port",
        str(server.relay_ports[1]),
        "--use-auth-secret",
        "--static-auth-secret",
        server.secret,
        "--realm",
        server.realm,
        "--log-file",
        "stdout",
        "--simple-log",
        "--allow-loopback-peers",
        "--pidfile",
        str(workdir / "turnserver.pid"),
        "--userdb",
        str(workdir / "turndb.sqlite"),
    ]


@contextlib.contextmanager
def running_coturn(workdir: Path, *, ready_timeout: float = 15.0) -> Iterator[Coturn]:
    server = Coturn(
        host=HOST,
        port=free_udp_port(),
        secret=secrets.token_hex(16),
        realm="stunlike.test",
        relay_ports=free_udp_range(),
    )
    process = subprocess.Popen(
        _command(server, workdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert process.stdout is not None
    marks = {f"{LISTENER_MARK}: {server.host}:{server.port}", SERVERS_MARK}
    reader = _LogReader(process.stdout, marks)
    reader.start()
    try:
        if not reader.settled.wait(timeout=ready_timeout):
            raise RuntimeError("coturn not ready in time:\n" + "\n".join(reader.tail))
        if not reader.ready:
            raise RuntimeError(f"coturn exited ({process.wait()}):\n" + "\n".join(reader.tail))
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        process.stdout.close()
