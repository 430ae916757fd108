"""Store backends for the conformance suites: memory, one Redis, a 3-master
Redis Cluster (servers start once per test session, are emptied per test)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.redis_servers import REDIS_SERVER, RedisServer, redis_cluster, redis_server

BACKENDS = ["memory", "redis", "cluster"]


class RedisBackends:
    """Lazily started servers, shared by the whole test session."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._single: RedisServer | None = None
        self._cluster: list[RedisServer] | None = None

    def url(self, kind: str) -> str:
        if REDIS_SERVER is None:
            pytest.skip("redis-server not installed")
        if kind == "redis":
            if self._single is None:
                self._single = self._stack.enter_context(redis_server())
            self._single.cli("flushall")
            return self._single.url
        if self._cluster is None:
            self._cluster = self._stack.enter_context(redis_cluster())
        for node in self._cluster:
            node.cli("flushall")
        return f"redis+cluster://127.0.0.1:{self._cluster[0].port}"

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def redis_backends() -> Iterator[RedisBackends]:
    backends = RedisBackends()
    try:
        yield backends
    finally:
        backends.close()
