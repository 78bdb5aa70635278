"""Fixtures for the state tests: a real redis-server on a free port, config snapshots."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.state.redis_server import RedisServer


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        # CI must run these: `make test` installs redis-server, so a missing binary is a failure.
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (run `make redis-server`)")
        pytest.skip("redis-server is not installed (run `make redis-server`)")
    return binary


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session's Redis tests (flushed before each test)."""
    with tempfile.TemporaryDirectory(prefix="llmgw-redis-") as workdir:
        server = RedisServer(_redis_binary(), Path(workdir))
        server.start()
        yield server
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, emptied first."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone, for tests that kill and restart it."""
    with tempfile.TemporaryDirectory(prefix="llmgw-redis-") as workdir:
        server = RedisServer(_redis_binary(), Path(workdir))
        server.start()
        yield server
        server.stop()
