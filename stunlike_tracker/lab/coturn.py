"""coturn inside the lab: a STUN server with two public addresses (RFC 5780
behaviour discovery needs an alternate address and port) and a TURN relay
with TURN REST credentials (PROTOCOL §7).

Readiness comes from coturn's own log: :meth:`Coturn.start` returns once the
four UDP listeners (two addresses x main and alternate port) say they are
open. The log is drained by a thread for the whole life of the process (a
verbose coturn would otherwise block on a full pipe) and kept in
``<lab workdir>/turnserver.log``.
"""

from __future__ import annotations

import collections
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Final

from stunlike_tracker.core.turn import turn_credentials
from stunlike_tracker.lab.topology import LabError, Topology

TURN_HOST: Final = "turn"
DEFAULT_PORT: Final = 3478
REALM: Final = "stunlike-lab"


class Coturn:
    """A ``turnserver`` running on the lab's ``turn`` host."""

    def __init__(
        self, lab: Topology, *, port: int = DEFAULT_PORT, secret: str | None = None
    ) -> None:
        self.lab = lab
        self.port = port
        self.secret = secret or secrets.token_hex(16)
        self.addresses = lab.host(TURN_HOST).addresses
        if len(self.addresses) < 2:
            raise LabError("coturn needs two addresses on the turn host")
        self.proc: subprocess.Popen[str] | None = None
        self.log_tail: collections.deque[str] = collections.deque(maxlen=400)
        self._settled = threading.Event()
        self._listening = False
        self._reader: threading.Thread | None = None
        self.log_path: Path | None = None
        self.startup_s: float | None = None

    @property
    def stun_server(self) -> tuple[str, int]:
        return self.addresses[0], self.port

    @property
    def turn_server(self) -> tuple[str, int]:
        return self.addresses[0], self.port

    def credentials(self, peer_id: str, ttl_s: int = 600) -> tuple[str, str]:
        """TURN REST credentials valid for ``ttl_s`` from now, by the tracker's
        own formula (PROTOCOL §7)."""
        return turn_credentials(self.secret.encode(), peer_id, int(time.time()) + ttl_s)

    def argv(self, workdir: Path) -> list[str]:
        a1, a2 = self.addresses[:2]
        return [
            "turnserver",
            "-n",  # no configuration file
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "-L",
            a1,
            "-L",
            a2,
            "--listening-port",
            str(self.port),
            "--alt-listening-port",
            str(self.port + 1),
            "--relay-ip",
            a1,
            "--min-port",
            "49152",
            "--max-port",
            "65535",
            "--use-auth-secret",
            "--static-auth-secret",
            self.secret,
            "--realm",
            REALM,
            "--log-file",
            "stdout",
            "--simple-log",
            "--verbose",  # the "UDP listener opened" lines are the readiness signal
            "--pidfile",
            str(workdir / "turnserver.pid"),
            "--userdb",
            str(workdir / "turndb"),
        ]

    def _expected_listeners(self) -> set[str]:
        return {f"{a}:{p}" for a in self.addresses[:2] for p in (self.port, self.port + 1)}

    def start(self, timeout: float = 10.0) -> Coturn:
        if self.proc is not None:
            return self
        workdir = self.lab.workdir
        if workdir is None:
            raise LabError("the lab is not up")
        self.log_path = workdir / "turnserver.log"
        t0 = time.monotonic()
        self.proc = self.lab.spawn(
            TURN_HOST,
            self.argv(workdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self._reader = threading.Thread(
            target=self._drain, args=(self.proc.stdout, self.log_path), daemon=True
        )
        self._reader.start()
        # Set by the reader when all listeners are open or when coturn exits.
        self._settled.wait(timeout)
        if not self._listening:
            tail = "\n".join(list(self.log_tail)[-20:])
            self.stop()
            raise LabError(f"coturn did not open its listeners within {timeout}s:\n{tail}")
        self.startup_s = time.monotonic() - t0
        return self

    def _drain(self, stream: IO[str], log_path: Path) -> None:
        pending = self._expected_listeners()
        with log_path.open("w") as log:
            for line in stream:
                log.write(line)
                log.flush()
                self.log_tail.append(line.rstrip("\n"))
                if pending and "UDP listener opened on" in line:
                    endpoint = line.rsplit(":", 2)
                    pending.discard(f"{endpoint[-2].split()[-1]}:{endpoint[-1].strip()}")
                    if not pending:
                        self._listening = True
                        self._settled.set()
        self._settled.set()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
        self.proc = None

    def __enter__(self) -> Coturn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
