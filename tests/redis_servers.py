"""Real Redis servers for tests: Debian's redis-server on loopback ports, in
temp dirs, stopped by PID (a single server, or a 3-master Redis Cluster made
with ``redis-cli --cluster create``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")

needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None or REDIS_CLI is None, reason="redis-server/redis-cli not installed"
)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(cluster: bool = False) -> int:
    """A free loopback port; for a cluster node also its bus port (+10000),
    which must stay below 65536."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not cluster:
            return port
        if port < 55535 and _bindable(port + 10000):
            return port


class RedisServer:
    """One redis-server process; ``restart`` keeps its directory (AOF)."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        cluster: bool = False,
        appendfsync: str | None = None,
    ) -> None:
        self.directory = directory
        self.port = port or free_port(cluster)
        self.cluster = cluster
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        args = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--logfile", "",
            "--daemonize", "no",
            "--protected-mode", "no",
        ]  # fmt: skip
        if self.appendfsync is not None:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.process.stdout is not None
        seen = []
        # Readiness is the server's own log line, not a timer.
        for raw in self.process.stdout:
            line = raw.decode(errors="replace")
            seen.append(line)
            if "Ready to accept connections" in line:
                break
        else:
            raise RuntimeError("redis-server did not start:\n" + "".join(seen[-20:]))
        # Keep draining its log so that it never blocks on a full pipe.
        stdout = self.process.stdout
        threading.Thread(target=lambda: [None for _ in stdout], daemon=True).start()

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no flush beyond what fsync already did."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    def cli(self, *args: str) -> str:
        assert REDIS_CLI is not None
        out = subprocess.run(
            [REDIS_CLI, "-p", str(self.port), *args],
            capture_output=True,
            check=True,
            timeout=30,
        )
        return out.stdout.decode()


@contextlib.contextmanager
def redis_server(appendfsync: str | None = None) -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="stunlike-redis-") as directory:
        server = RedisServer(Path(directory), appendfsync=appendfsync)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def redis_cluster(masters: int = 3) -> Iterator[list[RedisServer]]:
    """A Redis Cluster of ``masters`` masters and no replicas."""
    assert REDIS_CLI is not None
    with tempfile.TemporaryDirectory(prefix="stunlike-cluster-") as directory:
        servers = []
        try:
            for i in range(masters):
                node_dir = Path(directory) / f"n{i}"
                node_dir.mkdir()
                server = RedisServer(node_dir, cluster=True)
                server.start()
                servers.append(server)
            subprocess.run(
                [
                    REDIS_CLI,
                    "--cluster",
                    "create",
                    *[f"127.0.0.1:{s.port}" for s in servers],
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                check=True,
                timeout=60,
            )
            # redis-cli waited for the nodes to agree; every node must say so.
            deadline = time.monotonic() + 30
            for server in servers:
                while "cluster_state:ok" not in server.cli("cluster", "info"):
                    if time.monotonic() > deadline:
                        raise RuntimeError("cluster did not become ready")
            yield servers
        finally:
            for server in servers:
                server.stop()
