"""Shared pytest configuration."""

from tests.store.backends import redis_backends  # noqa: F401 - a shared fixture
